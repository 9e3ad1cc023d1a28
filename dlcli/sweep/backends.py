"""Where a sweep's training units run: in this process, in local worker processes, or as Ray tasks.
Each backend takes the units and yields [(point index, summary)] as units finish.

In this process a unit trains from the points already prepared; a worker process or a Ray task gets
the points' configs and prepares them itself.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterator

from dlcli import layout
from dlcli.components.prepare import Prepared, prepare_all
from dlcli.components.write_failures import is_write_failure
from dlcli.components.threads import choose_threads, threads_for
from dlcli.config.schema import Experiment
from dlcli.engine.loop import train_unit
from dlcli.errors import UserError
from dlcli.layout import Status
from dlcli.sweep.interrupts import die_with_parent, ignore_interrupts, interruptible, interrupt_workers

BACKENDS = ("local", "ray")


@dataclass
class Task:
    """One sweep point to train: its index in the sweep, its prepared run, its run folder."""

    index: int
    prepared: Prepared
    run_dir: Path
    resume: bool = False  # continue from the run folder's checkpoint
    force: bool = False  # prepared even if it looks too large for the free memory (in a worker too)
    tags: dict[str, str] | None = None  # set in the run's tags.json as it starts (`--tag`)


Results = list[tuple[int, dict[str, Any]]]  # (point index, summary)
Backend = Callable[[list[list[Task]]], Iterator[Results]]


def check_backend(name: str) -> None:
    """Fail before anything starts when the backend is unknown or not installed."""
    if name not in BACKENDS:
        raise UserError(f"--backend: unknown backend {name!r} (allowed: {', '.join(BACKENDS)})")
    if name == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UserError("--backend ray needs Ray: pip install 'dlcli[ray]'") from None


def choose_backend(name: str, workers: int, address: str | None, gpus_per_run: float | None,
                   on_note: Callable[[str], None] | None = None, threads: int | str = "auto") -> Backend:
    """`threads`: train.threads of the sweep (its first point's), for each process that trains."""
    check_backend(name)
    if name == "ray":
        return lambda units: _ray(units, address, gpus_per_run)
    if workers > 1:
        return lambda units: _processes(units, workers, choose_threads(threads, workers))
    return lambda units: _in_process(units, on_note, threads)


def train_safely(unit: list[Prepared], run_dirs: list[Path], resume: bool = False,
                 on_note: Callable[[str], None] | None = None,
                 tags: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Train a unit into its run folders, continuing from their checkpoints with `resume`, else
    replacing broken earlier attempts; a failure is recorded in runs.csv and the sweep goes on."""
    if not resume:
        clear_run_dirs(run_dirs)
    try:
        return [result.summary for result in train_unit(unit, run_dirs, resume=resume, on_note=on_note, tags=tags)]
    except Exception as error:
        if is_write_failure(error):
            raise
        failed = {"status": Status.FAILED, "message": f"{type(error).__name__}: {error}"}
        return [layout.finished_summary(run_dir) or failed for run_dir in run_dirs]


def clear_run_dirs(run_dirs: list[Path]) -> None:
    """Remove what a broken earlier attempt left in these run folders, before training them afresh."""
    for run_dir in run_dirs:
        shutil.rmtree(run_dir, ignore_errors=True)


def prepare_and_train(experiments: list[Experiment], run_dirs: list[str], resume: bool, force: bool,
                      tags: dict[str, str] | None) -> list[dict[str, Any]]:
    """In a worker: prepare the points of a unit, then train them (an interrupt ends them as
    `interrupted`; between units the worker ignores it)."""
    with interruptible():
        try:
            unit = prepare_all(experiments, "worker", force)
        except UserError as error:
            return [{"status": Status.FAILED, "message": "; ".join(error.problems)} for _ in experiments]
        return train_safely(unit, [Path(run_dir) for run_dir in run_dirs], resume, tags=tags)


def _in_process(units: list[list[Task]], on_note: Callable[[str], None] | None,
                threads: int | str) -> Iterator[Results]:
    while units:
        unit = units.pop(0)  # the caller's list: a unit's prepared data are freed once it has trained
        with threads_for(threads):
            summaries = train_safely([task.prepared for task in unit], [task.run_dir for task in unit],
                                     unit[0].resume, on_note, unit[0].tags)
        yield [(task.index, summary) for task, summary in zip(unit, summaries)]
        if _interrupted(summaries):
            return  # Ctrl-C: the units not started stay pending


def _payload(unit: list[Task]) -> tuple[list[Experiment], list[str], bool, bool, dict[str, str] | None]:
    return ([task.prepared.experiment for task in unit], [str(task.run_dir) for task in unit], unit[0].resume,
            unit[0].force, unit[0].tags)


def _processes(units: list[list[Task]], workers: int, threads: int) -> Iterator[Results]:
    """`threads` torch threads in each worker (chosen here, before they start: see dlcli.components.threads)."""
    # spawn, not fork: a forked child inherits torch's thread pools in an undefined state.
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_start_worker,
                             initargs=(threads, os.getpid())) as pool:
        futures = {pool.submit(prepare_and_train, *_payload(unit)): unit for unit in units}
        try:
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    unit = futures.pop(future)
                    yield [(task.index, summary) for task, summary in zip(unit, future.result())]
                    if _interrupted(future.result()):  # Ctrl-C reached a worker: stop the others too
                        raise KeyboardInterrupt
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM here: the units in flight end as interrupted
            _stop(pool)
            yield from _finished(futures)
        finally:
            if futures:  # the sweep stopped early (an interrupt that reached a worker first)
                _stop(pool)


def _interrupted(summaries: list[dict[str, Any]]) -> bool:
    return any(summary["status"] == Status.INTERRUPTED for summary in summaries)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Interrupt the units in flight, cancel those not started, and wait for every worker to exit."""
    interrupt_workers()
    pool.shutdown(wait=True, cancel_futures=True)


def _finished(futures: dict) -> Iterator[Results]:
    """The results of the units that ended (interrupted ones included) once the pool has stopped."""
    for future, unit in futures.items():
        if future.done() and not future.cancelled() and future.exception() is None:
            yield [(task.index, summary) for task, summary in zip(unit, future.result())]


def _start_worker(threads: int, parent: int) -> None:
    import torch

    ignore_interrupts()
    die_with_parent(parent)
    torch.set_num_threads(threads)


def _ray(units: list[list[Task]], address: str | None, gpus_per_run: float | None) -> Iterator[Results]:
    import ray

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    remote = ray.remote(num_cpus=1, num_gpus=gpus_per_run or 0)(_train_packed)
    # A Ray task starts afresh: the run folders are not on its machine.
    futures = {remote.remote(_payload(unit)[0], [task.run_dir.name for task in unit], unit[0].force,
                             unit[0].tags): unit for unit in units}
    while futures:
        try:
            done, _ = ray.wait(list(futures), num_returns=1, timeout=0.25)  # short waits: Ctrl-C is heard
        except KeyboardInterrupt:  # the tasks in flight are stopped; their points stay pending
            for future in futures:
                ray.cancel(future, force=True)
            raise
        if not done:
            continue
        unit = futures.pop(done[0])
        results = []
        for task, packed in zip(unit, ray.get(done[0])):
            unpack_files(packed["files"], task.run_dir)
            results.append((task.index, packed["summary"]))
        yield results


def _train_packed(experiments: list[Experiment], run_ids: list[str], force: bool,
                  tags: dict[str, str] | None) -> list[dict[str, Any]]:
    """On a Ray worker (maybe another machine): train into a temporary folder, return the files."""
    with tempfile.TemporaryDirectory() as scratch:
        run_dirs = [Path(scratch) / run_id for run_id in run_ids]
        summaries = prepare_and_train(experiments, [str(run_dir) for run_dir in run_dirs], False, force, tags)
        return [{"summary": summary, "files": files_of(run_dir)} for summary, run_dir in zip(summaries, run_dirs)]


def files_of(run_dir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in run_dir.iterdir()} if run_dir.is_dir() else {}


def unpack_files(files: dict[str, bytes], run_dir: Path) -> None:
    """Place a run's files: written to a temporary folder beside it, then renamed into place."""
    shutil.rmtree(run_dir, ignore_errors=True)
    if not files:
        return
    staging = Path(tempfile.mkdtemp(dir=run_dir.parent, prefix=f".{run_dir.name}."))
    for name, payload in files.items():
        (staging / name).write_bytes(payload)
    os.chmod(staging, 0o777 & ~layout.umask())  # mkdtemp makes 0700; a run folder gets the usual permissions
    os.replace(staging, run_dir)
