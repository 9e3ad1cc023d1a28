"""Running a sweep: every point an ordinary run, resumable point by point, in one process or many.

A point's run id is the content hash of its resolved config, so a second invocation of the same sweep
finds every finished point on disk, skips it, and reruns only what is missing, interrupted or failed.
Each pending point is prepared once (its data loaded, shared with the points that have the same data)
before anything is written; then the points train in units (dlcli.engine.grouping) on a backend.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from dlcli import layout
from dlcli.components.checkpoints import checkpoint_epoch
from dlcli.components.prepare import prepare_all
from dlcli.config.flat import config_hash
from dlcli.config.schema import Experiment
from dlcli.config.sweep import Sweep
from dlcli.engine.estimate import estimate_seconds
from dlcli.engine.grouping import group_key, plan_units, unit_cost
from dlcli.errors import UserError
from dlcli.layout import FINISHED, Status
from dlcli.sweep.backends import Task, choose_backend


@dataclass
class SweepResult:
    sweep_dir: Path
    rows: list[dict[str, Any]]  # runs.csv's rows, one per point
    skipped: int  # points found finished on disk

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [row for row in self.rows if row["status"] not in FINISHED]


def sweep_dir_of(sweep: Sweep, out_root: Path) -> Path:
    names = {experiment.name for experiment in sweep.experiments}
    if len(names) != 1:
        raise UserError(f"name: every point of a sweep needs the same name, got {', '.join(sorted(names))}")
    return Path(out_root) / names.pop()


def run_sweep(sweep: Sweep, out_root: str | Path, workers: int = 1, backend: str = "local",
              address: str | None = None, gpus_per_run: float | None = None,
              on_result: Callable[[dict[str, Any]], None] | None = None,
              on_skipped: Callable[[int], None] | None = None, vectorize: bool = True,
              on_note: Callable[[str], None] | None = None, force: bool = False,
              tags: dict[str, str] | None = None) -> SweepResult:
    """Run every point not already finished on disk; returns one row per point.

    With `vectorize`, points that differ only in per-model values train together as one stacked
    model. `on_skipped` hears how many points an earlier invocation finished, `on_note` what was
    stacked and what trains one by one; `on_result` gets each new row. `force`: train points whose
    data or model look too large for the device's free memory; `tags` go to each new run's tags.json.
    """
    sweep_dir = sweep_dir_of(sweep, Path(out_root))
    run_ids = [config_hash(experiment) for experiment in sweep.experiments]
    _check_distinct(run_ids, sweep.points)
    execute = choose_backend(backend, workers, address, gpus_per_run, on_note)
    rows = [_row(run_id, point, experiment, layout.finished_summary(sweep_dir / run_id))
            for run_id, point, experiment in zip(run_ids, sweep.points, sweep.experiments)]
    pending = [i for i, row in enumerate(rows) if row["status"] not in FINISHED]
    prepared = prepare_all([sweep.experiments[i] for i in pending], sweep.config_path, force)  # before any file
    starts = [None if backend == "ray" else checkpoint_epoch(sweep_dir / run_ids[i]) for i in pending]
    units, notes = plan_units(prepared, vectorize, starts)
    resumed = sum(start is not None for start in starts)
    notes += [f"{resumed} point{'s' if resumed != 1 else ''} continue from their checkpoints"] if resumed else []
    sweep_dir.mkdir(parents=True, exist_ok=True)
    layout.atomic_write_text(sweep_dir / layout.SWEEP_SPEC, _spec_yaml(sweep))
    (on_skipped or (lambda count: None))(len(rows) - len(pending))
    write_runs_csv(sweep_dir, rows, sweep.spec.keys)
    for note in notes:
        (on_note or (lambda text: None))(note)
    if workers > 1 or backend == "ray":  # largest first: the last unit to start is a small one
        units.sort(key=lambda unit: -unit_cost([prepared[i].experiment for i in unit]))
    tasks = [[Task(pending[i], prepared[i], sweep_dir / run_ids[pending[i]], starts[i] is not None, force, tags)
              for i in unit] for unit in units]
    for results in execute(tasks):
        for index, summary in results:
            rows[index] = _row(run_ids[index], sweep.points[index], sweep.experiments[index], summary)
        write_runs_csv(sweep_dir, rows, sweep.spec.keys)
        for index, _ in results:
            (on_result or (lambda row: None))(rows[index])
        if any(rows[index]["status"] == Status.INTERRUPTED for index, _ in results):
            raise KeyboardInterrupt  # Ctrl-C reached the runs first; stop the sweep too
    return SweepResult(sweep_dir, rows, len(rows) - len(pending))


def estimate_sweep(sweep: Sweep, vectorize: bool = True, force: bool = False) -> float:
    """Check every point (nothing is written) and estimate the sweep's time with one worker: a few
    updates of each training unit of a distinct shape, extrapolated."""
    prepared = prepare_all(sweep.experiments, sweep.config_path, force)
    seconds, probed = 0.0, {}
    for unit in plan_units(prepared, vectorize)[0]:
        # Time depends on shapes and counts, not on values like lr or seed.
        shape = (group_key(prepared[unit[0]].experiment), len(unit))
        if shape not in probed:
            probed[shape] = estimate_seconds([prepared[index] for index in unit])
        seconds += probed[shape]
    return seconds


def write_runs_csv(sweep_dir: Path, rows: list[dict[str, Any]], keys: list[str]) -> None:
    layout.atomic_write_text(sweep_dir / layout.RUNS, layout.csv_text(rows, layout.runs_columns(keys)))


def _row(run_id: str, point: dict[str, Any], experiment: Experiment, summary: dict[str, Any] | None) -> dict[str, Any]:
    row = {"run_id": run_id, "seed": experiment.seed, **point, "status": Status.PENDING}
    if summary:
        row |= {"status": summary["status"], **{key: summary.get(key) for key in layout.RUN_RESULT_COLUMNS}}
    return row


def _check_distinct(run_ids: list[str], points: list[dict[str, Any]]) -> None:
    first: dict[str, int] = {}
    problems = []
    for index, run_id in enumerate(run_ids):
        if run_id in first:
            problems.append(f"points {first[run_id] + 1} and {index + 1} are the same experiment "
                            f"({points[index]}); remove the repeated value")
        first.setdefault(run_id, index)
    if problems:
        raise UserError(problems)


def _spec_yaml(sweep: Sweep) -> str:
    spec = {"config": str(sweep.config_path), "overrides": list(sweep.overrides), "points": len(sweep.points),
            **sweep.spec.to_dict()}
    return yaml.safe_dump(spec, sort_keys=False)
