"""Running a sweep: every point an ordinary run, resumable point by point, in one process or many.

<out>/<name>/
    sweep.yaml        the spec: base config, overrides, axes, seeds
    runs.csv          one row per point, in point order, rewritten atomically as runs finish
    <config-hash>/    each point's run directory (same files as `dlcli train`)

A point's run id is the content hash of its resolved config, so a second invocation of the same sweep
finds every finished point on disk, skips it, and reruns only what is missing, interrupted or failed.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from dlcli.config import Experiment, config_hash
from dlcli.errors import UserError
from dlcli.grouping import group_key, plan_groups, shape_of, unit_cost
from dlcli.results import atomic_write_text, csv_text
from dlcli.sweep import Sweep, point_problems

FINISHED = ("completed", "early_stopped", "diverged")  # outcomes of the experiment itself: never rerun
FAILED = ("failed", "interrupted", "running")  # the run broke or never ended: rerun on resume
RESULT_COLUMNS = ["train_loss", "train_error", "test_loss", "test_error", "gap", "best_test_error",
                  "best_epoch", "epochs_run", "seconds", "message"]


@dataclass
class SweepResult:
    sweep_dir: Path
    rows: list[dict[str, Any]]
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
              on_note: Callable[[str], None] | None = None) -> SweepResult:
    """Run every point not already finished on disk; returns one row per point.

    With `vectorize`, points that differ only in per-model values (dlcli.grouping) train together as
    one stacked model. `on_skipped` hears how many points an earlier invocation finished, `on_note`
    what was stacked and what trains one by one; `on_result` gets each new row.
    """
    sweep_dir = sweep_dir_of(sweep, Path(out_root))
    run_ids = [config_hash(experiment) for experiment in sweep.experiments]
    _check_distinct(run_ids, sweep.points)
    execute = _backend(backend, workers, address, gpus_per_run)  # fails before anything is written
    sweep_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(sweep_dir / "sweep.yaml", _spec_yaml(sweep))
    rows = [_row(run_id, point, experiment, _finished_summary(sweep_dir / run_id))
            for run_id, point, experiment in zip(run_ids, sweep.points, sweep.experiments)]
    skipped = sum(row["status"] in FINISHED for row in rows)
    if on_skipped:
        on_skipped(skipped)
    write_runs_csv(sweep_dir, rows, sweep.spec.keys)
    pending = [i for i, row in enumerate(rows) if row["status"] not in FINISHED]
    units, notes = plan_groups([sweep.experiments[i] for i in pending], vectorize)
    for note in notes:
        (on_note or (lambda text: None))(note)
    if workers > 1 or backend == "ray":  # largest first: the last unit to start is a small one
        units.sort(key=lambda unit: -unit_cost([sweep.experiments[pending[i]] for i in unit]))
    groups = [[(pending[i], sweep.experiments[pending[i]], sweep_dir / run_ids[pending[i]]) for i in unit]
              for unit in units]
    for results in execute(groups):
        for index, summary in results:
            rows[index] = _row(run_ids[index], sweep.points[index], sweep.experiments[index], summary)
        write_runs_csv(sweep_dir, rows, sweep.spec.keys)
        for index, _ in results:
            if on_result:
                on_result(rows[index])
        if any(rows[index]["status"] == "interrupted" for index, _ in results):
            raise KeyboardInterrupt  # Ctrl-C reached the runs first; stop the sweep too
    return SweepResult(sweep_dir, rows, skipped)


def check_points(sweep: Sweep, estimate: bool = False, vectorize: bool = True) -> float | None:
    """Load the data and build the model of every point (nothing is written), reporting every point
    that cannot run; with `estimate`, also time a few updates of each training unit (a stack, or a
    point alone) of a distinct shape, and extrapolate."""
    from dlcli.train import estimate_seconds, prepare

    problems: dict[str, list[int]] = {}
    for index, experiment in enumerate(sweep.experiments):
        try:
            prepare(experiment)
        except UserError as error:
            for problem in error.problems:
                problems.setdefault(f"{sweep.config_path}: {problem}", []).append(index)
    if problems:
        raise UserError(point_problems(problems, len(sweep.points)))
    if not estimate:
        return None
    seconds, probed = 0.0, {}
    for unit in plan_groups(sweep.experiments, vectorize)[0]:
        experiments = [sweep.experiments[index] for index in unit]
        # Time depends on shapes and counts, not on values like lr or seed.
        shape = (group_key(experiments[0]), len(unit))
        if shape not in probed:
            probed[shape] = estimate_seconds(experiments)
        seconds += probed[shape]
    return seconds


def train_group(experiment_jsons: list[dict[str, Any]], run_dirs: list[str]) -> list[tuple[int, dict[str, Any]]]:
    """Train points into their run folders (replacing broken earlier attempts): those whose data
    shapes match as one stack, the rest alone. Returns (position, summary) for each point that ran."""
    from dlcli.train import prepare

    prepared, results = {}, []
    for position, (experiment_json, run_dir) in enumerate(zip(experiment_jsons, run_dirs)):
        shutil.rmtree(run_dir, ignore_errors=True)
        try:
            prepared[position] = prepare(Experiment.model_validate(experiment_json))
        except UserError as error:
            results.append((position, {"status": "failed", "message": "; ".join(error.problems)}))
    stacks: dict[tuple, list[int]] = {}
    for position, point in prepared.items():
        stacks.setdefault(shape_of(point.dataset), []).append(position)
    for positions in stacks.values():
        results += _train_unit([prepared[p] for p in positions], [Path(run_dirs[p]) for p in positions], positions)
        if any(summary["status"] == "interrupted" for _, summary in results):
            break  # Ctrl-C: the points not started stay pending
    return results


def _train_unit(prepared: list, run_dirs: list[Path], positions: list[int]) -> list[tuple[int, dict[str, Any]]]:
    """One point alone, or several as a stack; a failure is recorded in runs.csv and the sweep goes on."""
    from dlcli.train import run, run_stacked

    try:
        if len(prepared) == 1:
            return [(positions[0], run(prepared[0], run_dir=run_dirs[0]).summary)]
        return [(p, result.summary) for p, result in zip(positions, run_stacked(prepared, run_dirs))]
    except Exception as error:
        failed = {"status": "failed", "message": f"{type(error).__name__}: {error}"}
        return [(p, _finished_summary(run_dir) or failed) for p, run_dir in zip(positions, run_dirs)]


# ---- backends: each takes the pending points and yields (index, summary) as runs finish ----------

Groups = list[list[tuple[int, Experiment, Path]]]  # each inner list trains as one unit
Results = list[tuple[int, dict[str, Any]]]  # (point index, summary)


def check_backend(name: str) -> None:
    """Fail before anything starts when the backend is unknown or not installed."""
    if name not in ("local", "ray"):
        raise UserError(f"--backend: unknown backend {name!r} (allowed: local, ray)")
    if name == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UserError("--backend ray needs Ray: pip install 'dlcli[ray]'") from None


def _backend(name: str, workers: int, address: str | None, gpus_per_run: float | None):
    check_backend(name)
    if name == "local":
        return lambda groups: _local(groups, workers)
    return lambda groups: _ray(groups, address, gpus_per_run)


def _local(groups: Groups, workers: int) -> Iterator[Results]:
    if workers <= 1:
        for group in groups:
            yield _indexed(group, train_group(*_payload(group)))
        return
    threads = max(1, (os.cpu_count() or 1) // workers)  # split the cores between the processes
    # spawn, not fork: a forked child inherits torch's thread pools in an undefined state.
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_set_threads,
                             initargs=(threads,)) as pool:
        futures = {pool.submit(train_group, *_payload(group)): group for group in groups}
        while futures:
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for future in done:
                yield _indexed(futures.pop(future), future.result())


def _payload(group) -> tuple[list[dict[str, Any]], list[str]]:
    return [experiment.model_dump(mode="json") for _, experiment, _ in group], [str(d) for _, _, d in group]


def _indexed(group, results: Results) -> Results:
    """Positions in the group → the points' indices in the sweep."""
    return [(group[position][0], summary) for position, summary in results]


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _ray(groups: Groups, address: str | None, gpus_per_run: float | None) -> Iterator[Results]:
    import ray

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    remote = ray.remote(num_cpus=1, num_gpus=gpus_per_run or 0)(_train_packed)
    futures = {remote.remote(_payload(group)[0], [run_dir.name for _, _, run_dir in group]): group
               for group in groups}
    while futures:
        done, _ = ray.wait(list(futures), num_returns=1)
        group = futures.pop(done[0])
        results = []
        for position, packed in ray.get(done[0]):
            _unpack(packed["files"], group[position][2])
            results.append((group[position][0], packed["summary"]))
        yield results


def _train_packed(experiment_jsons: list[dict[str, Any]], run_ids: list[str]) -> list[tuple[int, dict]]:
    """On a Ray worker (maybe another machine): train into a temporary folder, return the files."""
    with tempfile.TemporaryDirectory() as scratch:
        run_dirs = [Path(scratch) / run_id for run_id in run_ids]
        results = train_group(experiment_jsons, [str(run_dir) for run_dir in run_dirs])
        return [(position, {"summary": summary, "files": _files(run_dirs[position])}) for position, summary in results]


def _files(run_dir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in run_dir.iterdir()} if run_dir.is_dir() else {}


def _unpack(files: dict[str, bytes], run_dir: Path) -> None:
    """Place a run's files: written to a temporary folder beside it, then renamed into place."""
    shutil.rmtree(run_dir, ignore_errors=True)
    if not files:
        return
    staging = Path(tempfile.mkdtemp(dir=run_dir.parent, prefix=f".{run_dir.name}."))
    for name, payload in files.items():
        (staging / name).write_bytes(payload)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(staging, 0o777 & ~mask)  # mkdtemp makes 0700; a run folder gets the usual permissions
    os.replace(staging, run_dir)


# ---- runs.csv ------------------------------------------------------------------------------------


def write_runs_csv(sweep_dir: Path, rows: list[dict[str, Any]], keys: list[str]) -> None:
    columns = ["run_id", "status", "seed", *[key for key in keys if key != "seed"], *RESULT_COLUMNS]
    atomic_write_text(sweep_dir / "runs.csv", csv_text(rows, columns))


def _row(run_id: str, point: dict[str, Any], experiment: Experiment, summary: dict[str, Any] | None) -> dict[str, Any]:
    row = {"run_id": run_id, "seed": experiment.seed, **point, "status": "pending"}
    if summary:
        row |= {"status": summary["status"], **{key: summary.get(key) for key in RESULT_COLUMNS}}
    return row


def _finished_summary(run_dir: Path) -> dict[str, Any] | None:
    """The summary of a run that finished on an earlier invocation, else None."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    finished = summary.get("status") in FINISHED and (run_dir / "metrics.csv").is_file()
    return summary if finished else None


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
