"""A search's stacks on a Ray cluster (`dlcli sweep --method ... --backend ray`): each worker a Ray actor,
maybe on another machine, stepped an epoch at a time from the search's process exactly as local worker
processes are (dlcli.sweep.unit_workers: the same messages, the same `RemoteTraining`), so the rungs are
still decided across the whole batch.

An actor trains in a scratch folder of its own machine and gets each data set once, from the search's
process (no data files needed there). The rows a unit yields and the runs a rung stops are keyed by the
search's run folders; a unit's files come back with its results and are put in place (written beside
the folder, then renamed), so the sweep folder holds what a local search writes. What an actor has not
sent back when the search stops is lost: on an interrupt the actors are stopped, their units' runs are
not told to the study, and the same command trains them again from the start (as a grid's Ray tasks).
"""
from __future__ import annotations

import shutil
import tempfile
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from dlcli.components.datasets import Dataset
from dlcli.engine.loop import HandOver, RunResult
from dlcli.sweep.backends import files_of, unpack_files
from dlcli.sweep.unit_host import UnitPayload, start_unit, step


class UnitHost:
    """The Ray actor: a worker's units, trained in a scratch folder; answers as `unit_workers.serve`
    does, plus the files of the units that ended, by the search's run folders."""

    def __init__(self, threads: int):
        from dlcli.components.threads import use_threads

        use_threads(threads)
        self.scratch = Path(tempfile.mkdtemp(prefix="dlcli-search-"))
        self.units: dict[int, Any] = {}
        self.homes: dict[int, dict[Path, Path]] = {}  # per unit: scratch run folder → the search's
        self.datasets: dict[tuple, Dataset] = {}
        self.notes: list[str] = []

    def start(self, key: int, payload: UnitPayload) -> None:
        self.datasets |= payload.datasets
        here = [self.scratch / run_dir.name for run_dir in payload.run_dirs]
        self.homes[key] = dict(zip(here, payload.run_dirs))
        for run_dir, files in (payload.files or {}).items():  # a resumed unit's folders, checkpoints with them
            unpack_files(files, self.scratch / run_dir.name)
        local = replace(payload, run_dirs=here, datasets={}, files=None)
        self.units[key] = start_unit(local, self.datasets, self.notes.append)

    def step(self, key: int, kind: str, value: Any) -> tuple[str, Any, list[str], dict[Path, dict[str, bytes]]]:
        homes = self.homes[key]
        if kind == "send" and value:
            value = self._here(value)
        if isinstance(value, HandOver):
            value = HandOver(self._here(value.stopped))
        answer, result = step(self.units[key], kind, value, NO_LATCH)
        notes, self.notes = self.notes, []
        if answer == "yield":
            epoch, rows = result
            return answer, (epoch, {homes[run_dir]: row for run_dir, row in rows.items()}), notes, {}
        del self.units[key]
        if answer == "return":
            result = [RunResult(homes[one.run_dir], one.status, one.summary) for one in result]
        files = {home: files_of(here) for here, home in homes.items()}
        for here in homes:
            shutil.rmtree(here, ignore_errors=True)
        return answer, result, notes, files

    def _here(self, stopped: dict[Path, str]) -> dict[Path, str]:
        """The runs a rung stops, by their folders in the scratch folder."""
        return {self.scratch / run_dir.name: reason for run_dir, reason in stopped.items()}


def _get(ref) -> Any:
    """`ray.get`, in waits short enough for Ctrl-C to be heard (a plain get blocks it until the answer)."""
    import ray

    while not ray.wait([ref], timeout=0.25)[0]:
        pass
    return ray.get(ref)


class _NoLatch:
    """An actor takes no signals: the search's process stops it (`RayPool.interrupt`)."""

    seen = False

    def raising(self):
        return nullcontext()


NO_LATCH = _NoLatch()


@dataclass
class RayPool:
    """`workers` Ray actors with `threads` torch threads each (a CPU each, and `gpus` GPUs); used as
    `unit_workers.WorkerPool` is. A context manager that stops them."""

    workers: int | None  # None: one per CPU of the cluster
    threads: int
    on_note: Callable[[str], None] | None = None
    address: str | None = None
    gpus: float | None = None
    interrupted: bool = False
    kind = "Ray actors"
    remote = True  # elsewhere: a resumed unit takes its run folders' files with it
    sent: list[set[tuple]] = field(default_factory=list)
    next_key: int = 0
    _actors: list[Any] = field(default_factory=list)
    _pending: dict[int, Any] = field(default_factory=dict)  # a unit's step in flight
    _started: bool = False  # Ray was started here

    def __enter__(self) -> RayPool:
        import ray

        self._started = not ray.is_initialized()  # then it is shut down at the end
        if self._started:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        if self.workers is None:
            self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        host = ray.remote(num_cpus=1, num_gpus=self.gpus or 0)(UnitHost)
        self._actors = [host.remote(self.threads) for _ in range(self.workers)]
        self.sent = [set() for _ in range(self.workers)]
        return self

    def __exit__(self, *exc) -> None:
        import ray

        if not self.interrupted:
            self._stop_actors()
        if self._started:
            ray.shutdown()

    def send(self, worker: int, message: tuple) -> None:
        kind, key, value = message
        actor = self._actors[worker]
        if kind == "start":
            actor.start.remote(key, value)
        else:
            self._pending[key] = actor.step.remote(key, kind, value)

    def answer(self, worker: int, key: int) -> tuple:
        """The actor's answer about unit `key`, its files put in place; an interrupt meanwhile stops
        every actor, and the units in flight end as interrupted."""
        import ray

        try:
            kind, value, notes, files = _get(self._pending.pop(key))
        except KeyboardInterrupt:
            self.interrupt()
            return "error", KeyboardInterrupt(), []
        except ray.exceptions.RayError as error:  # an actor lost (its machine gone): the search stops
            if not self.interrupted:
                (self.on_note or (lambda text: None))(f"a Ray worker was lost ({type(error).__name__}): the "
                                                      "search stops")
            self.interrupt()
            return "error", KeyboardInterrupt(), []
        for home, payload in files.items():
            unpack_files(payload, home)
        return kind, value, notes

    def interrupt(self) -> None:
        if not self.interrupted:
            self.interrupted = True
            self._stop_actors()

    def _stop_actors(self) -> None:
        import ray

        for actor in self._actors:  # a unit sent a step from now on gets the actor's death as its answer
            ray.kill(actor)
