"""Running a sweep: every point an ordinary run, resumable point by point, in one process or many.

A point's run id is the content hash of its resolved config, so a second invocation of the same sweep
finds every finished point on disk, skips it, and reruns only what is missing, interrupted or failed.
Each pending point is prepared once (its data loaded, shared with the points that have the same data)
before anything is written; then the points train in units (dlcli.engine.grouping) on a backend.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

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
    check_not_a_search(sweep_dir)
    run_ids = [config_hash(experiment) for experiment in sweep.experiments]
    _check_distinct(run_ids, sweep.points)
    execute = choose_backend(backend, workers, address, gpus_per_run, on_note, sweep.experiments[0].train.threads)
    pending = _pending(_rows(sweep, sweep_dir, run_ids))
    prepared = dict(zip(pending, prepare_all([sweep.experiments[i] for i in pending], sweep.config_path, force,
                                             sweep.overrides)))
    with sweep_lock(sweep_dir):  # from here on, this process alone writes the sweep folder
        rows = _rows(sweep, sweep_dir, run_ids)  # again: another sweep may have finished points meanwhile
        pending = [i for i in _pending(rows) if i in prepared]
        starts = {i: None if backend == "ray" else checkpoint_epoch(sweep_dir / run_ids[i]) for i in pending}
        units, notes = plan_units([prepared[i] for i in pending], vectorize, [starts[i] for i in pending])
        _start_files(sweep, sweep_dir, rows, notes, sum(start is not None for start in starts.values()))
        (on_skipped or (lambda count: None))(len(rows) - len(pending))
        for note in notes:
            (on_note or (lambda text: None))(note)
        if workers > 1 or backend == "ray":  # largest first: the last unit to start is a small one
            units.sort(key=lambda unit: -unit_cost([prepared[pending[i]].experiment for i in unit]))
        tasks = [[Task(pending[i], prepared[pending[i]], sweep_dir / run_ids[pending[i]],
                       starts[pending[i]] is not None, force, tags) for i in unit] for unit in units]
        prepared.clear()  # each unit's data now go with its tasks, and are freed once it has trained
        for results in execute(tasks):
            for index, summary in results:
                rows[index] = _row(run_ids[index], sweep.points[index], sweep.experiments[index], summary)
            write_runs_csv(sweep_dir, rows, sweep.spec.keys)
            for index, _ in results:
                (on_result or (lambda row: None))(rows[index])
    if any(row["status"] == Status.INTERRUPTED for row in rows):
        raise KeyboardInterrupt  # Ctrl-C reached the runs first (the backend stopped): stop the sweep too
    return SweepResult(sweep_dir, rows, len(rows) - len(pending))


def check_not_a_search(sweep_dir: Path) -> None:
    """A grid's runs.csv would replace a search's trials there."""
    if (sweep_dir / layout.SEARCH_JOURNAL).is_file():
        spec = yaml.safe_load((sweep_dir / layout.SWEEP_SPEC).read_text(encoding="utf-8")) \
            if (sweep_dir / layout.SWEEP_SPEC).is_file() else None
        method = spec.get("method", "random") if isinstance(spec, dict) else "random"
        raise UserError(f"{sweep_dir}: holds a search; continue it with dlcli sweep --method {method}, or give "
                        "this one another --out")


@contextlib.contextmanager
def sweep_lock(sweep_dir: Path) -> Iterator[None]:
    """One process at a time runs a sweep folder: a second one would train the same points and write
    the same runs.csv. The lock (flock) goes with the process, even when it is killed."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with open(sweep_dir / layout.SWEEP_LOCK, "a+", encoding="utf-8") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            raise UserError(f"{sweep_dir}: another dlcli sweep is running there ({holder}); wait for it to end, "
                            "or give this one another --out") from None
        file.seek(0)
        file.truncate()
        file.write(f"process {os.getpid()} on {socket.gethostname()}\n")
        file.flush()
        yield


def _rows(sweep: Sweep, sweep_dir: Path, run_ids: list[str]) -> list[dict[str, Any]]:
    """runs.csv's rows as the folder stands: finished points with their results, the rest pending."""
    return [_row(run_id, point, experiment, layout.finished_summary(sweep_dir / run_id))
            for run_id, point, experiment in zip(run_ids, sweep.points, sweep.experiments)]


def _pending(rows: list[dict[str, Any]]) -> list[int]:
    return [i for i, row in enumerate(rows) if row["status"] not in FINISHED]


def _start_files(sweep: Sweep, sweep_dir: Path, rows: list[dict[str, Any]], notes: list[str], resumed: int) -> None:
    """sweep.yaml and runs.csv before the first unit trains; a note when points resume."""
    layout.atomic_write_text(sweep_dir / layout.SWEEP_SPEC, _spec_yaml(sweep))
    write_runs_csv(sweep_dir, rows, sweep.spec.keys)
    if resumed:
        notes.append(f"{resumed} point{'s' if resumed != 1 else ''} continue from their checkpoints")


def estimate_sweep(sweep: Sweep, vectorize: bool = True, force: bool = False) -> float:
    """Check every point (nothing is written) and estimate the sweep's time with one worker: a few
    updates of each training unit of a distinct shape, extrapolated."""
    _check_distinct([config_hash(experiment) for experiment in sweep.experiments], sweep.points)
    prepared = prepare_all(sweep.experiments, sweep.config_path, force, sweep.overrides)
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
