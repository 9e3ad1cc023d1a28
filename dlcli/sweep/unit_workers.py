"""A search's training units in worker processes (`dlcli sweep --method ... --workers N`), stepped epoch
by epoch from the search's process as if they trained in it: the rungs are still decided across the whole
batch (dlcli.sweep.lockstep), while the workers train their units' epochs at the same time.

Each worker is a process, forked or spawned (`start_method`). It gets each data set once, from the
search's process, builds its units' models from their configs and holds each unit's `Training` generator
(dlcli.sweep.unit_host, the worker's side). The search's process sends it one message per step (start a
unit; send it the runs to prune; throw an interrupt or a hand-over into it) and reads back what the
generator yielded or returned, in order. A `RemoteTraining` stands for one unit there: `post` sends,
`collect` waits for the answer, so that lockstep posts to every unit due before it waits for any. At a
rung, `Rebalance` moves the survivors into new units spread evenly over the workers when halving has
left most of them in a few.

Interrupts: Ctrl-C reaches every process of the group, SIGTERM the search's process alone, which passes
the first one it sees on to the workers. A worker training a unit ends its runs as interrupted (as in
one process) and answers with their results; once it has seen an interrupt, every later step it is sent
ends its unit the same way instead of training (`InterruptLatch`). A unit that answers an epoch after
the interrupt is stopped there. Every run in flight ends as interrupted, its epochs and checkpoints kept.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Protocol

from dlcli.components.prepare import Prepared, data_identity
from dlcli.engine.grouping import plan_units, unit_cost
from dlcli.engine.loop import HandOver
from dlcli.sweep.backends import files_of
from dlcli.sweep.interrupts import interrupt_workers
from dlcli.sweep.unit_host import Note, UnitPayload, serve

REGROUP_BELOW = 0.9  # of the busiest worker's work: what regrouping at a rung must bring it under


def start_method(threads: int) -> str:
    """fork for workers of one torch thread on Linux: they start at once, where a spawned one imports
    torch again (2 s on 2 cores). A forked child that uses more threads hangs at its first parallel
    operation (it inherits torch's thread pool in an undefined state), one cannot use CUDA once this
    process has, and elsewhere fork is unsafe: spawn then."""
    import torch

    forkable = sys.platform.startswith("linux") and not torch.cuda.is_initialized()
    return "fork" if threads == 1 and forkable else "spawn"


def spread(costs: list[float], workers: int) -> list[int]:
    """Each unit's worker: the largest first, each to the worker with the least work so far."""
    load, chosen = [0.0] * workers, [0] * len(costs)
    for index in sorted(range(len(costs)), key=lambda i: -costs[i]):
        chosen[index] = min(range(workers), key=lambda w: load[w])
        load[chosen[index]] += costs[index]
    return chosen


def loads(costs: list[float], chosen: list[int], workers: int) -> list[float]:
    """Each worker's work: the costs of the units it holds."""
    load = [0.0] * workers
    for cost, worker in zip(costs, chosen):
        load[worker] += cost
    return load


def split_for(units: list[list[int]], workers: int) -> list[list[int]]:
    """Each stack cut into `workers` stacks of nearly equal size (fewer when it has fewer models), so that
    every worker gets a share of each shape. A model computes the same in any stack."""
    return [unit[part::workers] for unit in units for part in range(min(workers, len(unit)))]


class Pool(Protocol):
    """What `start_units` and `RemoteTraining` use of a pool of workers: local (`WorkerPool`) or Ray
    actors (dlcli.sweep.ray_units.RayPool)."""

    workers: int
    kind: str
    remote: bool  # its workers do not share this machine's files
    sent: list[set[tuple]]
    next_key: int
    interrupted: bool
    on_note: Note | None

    def send(self, worker: int, message: tuple) -> None: ...

    def answer(self, worker: int, key: int) -> tuple: ...

    def interrupt(self) -> None: ...


def start_units(pool: Pool, units: list[list[Prepared]], run_dirs: list[list[Path]],
                resumed: list[bool], force: bool, tags: dict[str, str] | None) -> list[RemoteTraining]:
    """Start each unit in one of the pool's workers, the work spread evenly (`spread`). A worker gets
    each data set once, loaded here: it builds its units' models from their configs."""
    chosen = spread([unit_cost([point.experiment for point in unit]) for unit in units], pool.workers)
    trainings = []
    for worker, unit, dirs, resume in zip(chosen, units, run_dirs, resumed):
        datasets = {data_identity(point.experiment): point.dataset for point in unit}
        payload = UnitPayload([point.experiment for point in unit], dirs, resume, force, tags,
                              {key: data for key, data in datasets.items() if key not in pool.sent[worker]},
                              {run_dir: files_of(run_dir) for run_dir in dirs} if resume and pool.remote else None)
        pool.sent[worker] |= set(datasets)
        key, pool.next_key = pool.next_key, pool.next_key + 1
        pool.send(worker, ("start", key, payload))
        trainings.append(RemoteTraining(pool, worker, key))
    return trainings


@dataclass
class WorkerPool:
    """`workers` spawned processes with `threads` torch threads each; a context manager that stops them."""

    workers: int
    threads: int
    on_note: Note | None = None
    interrupted: bool = False  # an interrupt was seen here and passed on to the workers
    kind = "worker processes"
    remote = False
    _links: list[Any] = field(default_factory=list)
    _processes: list[Any] = field(default_factory=list)
    _answers: list[dict[int, tuple]] = field(default_factory=list)  # answers read while waiting for another
    sent: list[set[tuple]] = field(default_factory=list)  # the data sets each worker holds
    next_key: int = 0  # the next unit's key

    def __enter__(self) -> WorkerPool:
        context = get_context(start_method(self.threads))
        for _ in range(self.workers):
            link, far_end = context.Pipe()
            process = context.Process(target=serve, args=(far_end, self.threads, os.getpid()), daemon=True)
            process.start()
            far_end.close()
            self._links.append(link)
            self._processes.append(process)
            self._answers.append({})
            self.sent.append(set())
        return self

    def __exit__(self, *exc) -> None:
        for link in self._links:
            try:
                link.send(("quit", None, None))
            except OSError:  # the worker has gone already
                pass
            link.close()  # a worker still answering a step then finds no reader, and ends
        for process in self._processes:
            process.join()

    def _lost(self, worker: int) -> tuple:
        """A worker that ended unasked: its units' runs stay as they are on disk (continued from their
        checkpoints when the search runs again, as after kill -9), and the others are interrupted."""
        if not self.interrupted:
            (self.on_note or (lambda text: None))(f"worker process {self._processes[worker].pid} died (killed, or "
                                                  "out of memory?): the search stops")
        self.interrupt()
        return "error", KeyboardInterrupt(), []

    def interrupt(self) -> None:
        """Pass an interrupt on to every worker (once)."""
        if not self.interrupted:
            self.interrupted = True
            interrupt_workers()

    def send(self, worker: int, message: tuple) -> None:
        try:
            self._links[worker].send(message)
        except OSError:  # the worker died: waiting for its answer says so
            pass

    def answer(self, worker: int, key: int) -> tuple:
        """The worker's next answer about unit `key` (it answers its units in the order they were sent);
        an interrupt that arrives meanwhile is passed on to every worker, and the wait goes on."""
        answers = self._answers[worker]
        while key not in answers:
            try:
                got_key, *answer = self._links[worker].recv()
            except KeyboardInterrupt:
                self.interrupt()
                continue
            except (EOFError, OSError):  # killed (out of memory?): the search stops as on Ctrl-C
                return self._lost(worker)
            answers[got_key] = tuple(answer)
        return answers.pop(key)


@dataclass
class RemoteTraining:
    """A unit training in a worker, driven as its `Training` generator would be (post, then collect)."""

    pool: Pool
    worker: int
    key: int

    def post(self, answer: dict[Path, str] | HandOver | None) -> None:
        self.pool.send(self.worker, ("throw" if isinstance(answer, HandOver) else "send", self.key, answer))

    def collect(self, interrupt: bool = False) -> tuple[int, dict[Path, dict[str, float]]]:
        """What the unit yielded after its epoch; raises StopIteration with its results when it ended.
        `interrupt`: the batch is stopping; the workers hear so, and the unit ends as interrupted."""
        if interrupt:
            self.pool.interrupt()
        kind, value, notes = self.pool.answer(self.worker, self.key)
        for note in notes:
            (self.pool.on_note or (lambda text: None))(note)
        if kind == "yield" and self.pool.interrupted:  # it finished its epoch before the interrupt reached it
            return self.throw(KeyboardInterrupt())
        if kind == "yield":
            return value
        if kind == "return":
            raise StopIteration(value)
        raise value

    def throw(self, error: BaseException):
        """End the unit with `error` (KeyboardInterrupt: its runs end as interrupted); its results."""
        self.pool.send(self.worker, ("throw", self.key, error))
        kind, value, _ = self.pool.answer(self.worker, self.key)
        if kind == "return":
            raise StopIteration(value)
        if kind == "yield":
            raise RuntimeError("a unit's training went on after it was stopped")
        raise value


@dataclass
class Rebalance:
    """Regrouping at rungs (`dlcli.sweep.lockstep.Regroup`) for a pool: halving keeps each survivor in
    the worker it trained in, which can leave one worker with most of the work and the others idle. When
    regrouping the survivors by shape and spreading them again (as `start_units` does) takes the busiest
    worker's work below REGROUP_BELOW of what it holds, they move: a checkpoint each, a few milliseconds."""

    pool: Pool
    points: dict[Path, Prepared]  # each run folder's prepared point
    vectorize: bool
    force: bool
    tags: dict[str, str] | None

    def plan(self, epoch: int, survivors: list[tuple[Any, list[Path]]]) -> list[list[Path]] | None:
        runs = [run_dir for _, run_dirs in survivors for run_dir in run_dirs]
        if not runs or epoch >= self.points[runs[0]].experiment.train.epochs:  # nothing left to train
            return None
        now = loads([self._cost(run_dirs) for _, run_dirs in survivors],
                    [training.worker for training, _ in survivors], self.pool.workers)
        indices, _ = plan_units([self.points[run_dir] for run_dir in runs], self.vectorize)
        units = [[runs[i] for i in unit] for unit in split_for(indices, self.pool.workers)]
        costs = [self._cost(unit) for unit in units]
        after = loads(costs, spread(costs, self.pool.workers), self.pool.workers)
        if max(after) >= REGROUP_BELOW * max(now):
            return None
        (self.pool.on_note or (lambda text: None))(
            f"after epoch {epoch}: {len(runs)} runs regrouped into {len(units)} units, spread evenly over the "
            f"{self.pool.workers} {self.pool.kind}")
        return units

    def start(self, units: list[list[Path]]) -> list[RemoteTraining]:
        return start_units(self.pool, [[self.points[run_dir] for run_dir in unit] for unit in units], units,
                           [True] * len(units), self.force, self.tags)

    def _cost(self, run_dirs: list[Path]) -> float:
        return unit_cost([self.points[run_dir].experiment for run_dir in run_dirs]) if run_dirs else 0.0
