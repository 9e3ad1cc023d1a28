"""Training a search batch's units side by side, an epoch of each in turn, so that successive halving
decides each rung across the whole batch: every trial of the batch reports its validation metric at the
rung before any of them goes on, whichever stack it trains in. Trained one unit after another, the
first stack would be judged against itself alone and the last against everyone: the outcome would hang
on the order of the stacks.

Each unit is a `dlcli.engine.loop.Training` generator, in this process (`LocalTraining`), in a worker
process (dlcli.sweep.unit_workers) or in a Ray actor (dlcli.sweep.ray_units). The models of the units
not training this epoch stay where they are (on the device), so a batch holds at most a stack's worth
of trials: `--batch`.

At a rung the survivors may be regrouped (`Regroup`): halving leaves them wherever they trained, which
in worker processes can be mostly one worker's. Each unit then hands its survivors over (checkpointed at
the rung: dlcli.engine.loop.HandOver) and new units continue them from there, spread evenly again.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol

from dlcli import layout
from dlcli.components.run_log import interrupt_moved
from dlcli.components.write_failures import is_write_failure
from dlcli.engine.loop import HandOver, Rung, RunResult, Training, stop
from dlcli.layout import Status

Finished = Callable[[dict[Path, dict[str, Any]]], None]  # runs that ended, by run folder: their summaries


class Stepped(Protocol):
    """A unit lockstep steps: `post` the answer to its last epoch (None to start it; a HandOver ends it),
    then `collect` its next (epoch, rows), or StopIteration with its results (`interrupt`: the batch is
    stopping, the unit ends as interrupted instead); `throw` ends a paused unit (`stop`)."""

    def post(self, answer: dict[Path, str] | HandOver | None) -> None: ...

    def collect(self, interrupt: bool = False) -> tuple[int, dict[Path, dict[str, float]]]: ...

    def throw(self, error: BaseException) -> Any: ...


class Regroup(Protocol):
    """Whether and how to regroup the runs that go on after a rung, and the units that continue them."""

    def plan(self, epoch: int, survivors: list[tuple[Stepped, list[Path]]]) -> list[list[Path]] | None:
        """The new units for the runs going on after `epoch` (by the unit they trained in), or None to
        leave them there."""

    def start(self, units: list[list[Path]]) -> list[Stepped]:
        """Units that continue these runs from their checkpoints, not started yet."""


class LocalTraining:
    """A unit's `Training` generator in this process: `collect` trains its epoch."""

    def __init__(self, training: Training):
        self.training, self.answer = training, None

    def post(self, answer: dict[Path, str] | HandOver | None) -> None:
        self.answer = answer

    def collect(self, interrupt: bool = False) -> tuple[int, dict[Path, dict[str, float]]]:
        if interrupt:
            return self.training.throw(KeyboardInterrupt())
        if isinstance(self.answer, HandOver):
            return self.training.throw(self.answer)
        return self.training.send(self.answer)

    def throw(self, error: BaseException) -> Any:
        return self.training.throw(error)


def train_in_lockstep(trainings: list[Stepped], run_dirs: list[list[Path]], rung: Rung,
                      on_finished: Finished, regroup: Regroup | None = None) -> bool:
    """Step the units epoch by epoch; after each epoch every unit paused at the earliest epoch hears the
    runs `rung` stops among all of theirs, and `regroup` may move the rest into new units. A unit that
    breaks ends as `failed` and the others go on; an interrupt ends every unit's runs as interrupted.
    `on_finished` hears the runs of each unit as it ends; returns True when interrupted."""
    trainings, run_dirs = list(trainings), list(run_dirs)  # regrouping adds units
    paused: dict[int, tuple[int, dict[Path, dict[str, float]]]] = {}
    if _advance(list(range(len(trainings))), trainings, run_dirs, None, paused, on_finished):
        return _stop_all(trainings, run_dirs, paused, on_finished)
    while paused:
        epoch = min(at for at, _ in paused.values())
        due = [index for index, (at, _) in paused.items() if at == epoch]
        try:
            stopped = rung(epoch, {run_dir: row for index in due for run_dir, row in paused[index][1].items()})
            survivors = [(trainings[index], [run_dir for run_dir in paused[index][1] if run_dir not in stopped])
                         for index in due]
            units = regroup.plan(epoch, survivors) if regroup is not None else None
        except KeyboardInterrupt:
            return _stop_all(trainings, run_dirs, paused, on_finished)
        if units is not None:
            due = _regrouped(due, units, trainings, run_dirs, stopped, paused, on_finished, regroup)
            stopped = None
        if due is None or _advance(due, trainings, run_dirs, stopped, paused, on_finished):
            return _stop_all(trainings, run_dirs, paused, on_finished)
    return False


def _regrouped(due: list[int], units: list[list[Path]], trainings: list[Stepped], run_dirs: list[list[Path]],
               stopped: dict[Path, str], paused: dict, on_finished: Finished, regroup: Regroup) -> list[int] | None:
    """Hand the due units' runs over (the rung's pruned ones end there), all at once, and start `units`
    with those handed over: their indices, to be started; None when an interrupt came meanwhile (the runs
    handed over by then end as interrupted and continue from their checkpoints when the search runs again)."""
    for index in due:
        del paused[index]
        trainings[index].post(HandOver(stopped))
    moved, interrupted = set(), False
    for index in due:
        try:
            trainings[index].collect(interrupted)
            raise RuntimeError("a unit went on training after it handed its runs over")
        except StopIteration as done:
            results = done.value
        except (KeyboardInterrupt, Exception) as error:
            interrupted |= _ended(index, run_dirs, on_finished, error)
            continue
        moved |= {result.run_dir for result in results if result.status == Status.RUNNING}
        ended = {result.run_dir: result.summary for result in results if result.run_dir not in moved}
        interrupted |= any(summary["status"] == Status.INTERRUPTED for summary in ended.values())
        if ended:
            on_finished(ended)
    if interrupted:
        return _interrupt_moved(moved, on_finished)
    first = len(trainings)
    units = [kept for kept in ([run_dir for run_dir in unit if run_dir in moved] for unit in units) if kept]
    try:
        trainings += regroup.start(units)
    except KeyboardInterrupt:
        return _interrupt_moved(moved, on_finished)
    run_dirs += units
    return list(range(first, len(trainings)))


def _interrupt_moved(moved: set[Path], on_finished: Finished) -> None:
    """The runs handed over end as interrupted; they continue from the rung's checkpoint when the search
    runs again."""
    if moved:
        on_finished({run_dir: interrupt_moved(run_dir) for run_dir in sorted(moved)})


def _advance(indices: list[int], trainings: list[Stepped], run_dirs: list[list[Path]],
             answer: dict[Path, str] | None, paused: dict, on_finished: Finished) -> bool:
    """One more epoch of these units (their first starts them), posted to all before any is waited
    for (units in worker processes train it at once); True when any ended interrupted."""
    for index in indices:
        paused.pop(index, None)
        trainings[index].post(answer)
    interrupted = False
    for index in indices:  # once one has ended interrupted, the others end there too
        interrupted |= _collect(index, trainings, run_dirs, paused, on_finished, interrupted)
    return interrupted


def _collect(index: int, trainings: list[Stepped], run_dirs: list[list[Path]], paused: dict,
             on_finished: Finished, interrupt: bool) -> bool:
    """A unit's epoch: paused again, or ended (its runs' summaries to `on_finished`); True when it
    ended interrupted. With `interrupt` it ends as interrupted instead."""
    try:
        paused[index] = trainings[index].collect(interrupt)
        return False
    except StopIteration as done:
        summaries = _summaries(done.value)
    except (KeyboardInterrupt, Exception) as error:
        return _ended(index, run_dirs, on_finished, error)
    on_finished(summaries)
    return any(summary["status"] == Status.INTERRUPTED for summary in summaries.values())


def _ended(index: int, run_dirs: list[list[Path]], on_finished: Finished, error: BaseException) -> bool:
    """A unit that raised: interrupted before its loop could catch it (while preparing), or broken (the
    loop recorded it in each run; the search goes on). True when interrupted."""
    if isinstance(error, KeyboardInterrupt):
        on_finished({run_dir: _failed(run_dir, Status.INTERRUPTED, "interrupted") for run_dir in run_dirs[index]})
        return True
    if is_write_failure(error):
        raise error
    message = f"{type(error).__name__}: {error}"
    on_finished({run_dir: _failed(run_dir, Status.FAILED, message) for run_dir in run_dirs[index]})
    return False


def _stop_all(trainings: list[Stepped], run_dirs: list[list[Path]], paused: dict, on_finished: Finished) -> bool:
    """An interrupt: the paused units end their runs as interrupted (their finished epochs kept)."""
    for index in list(paused):
        del paused[index]
        try:
            summaries = _summaries(stop(trainings[index], KeyboardInterrupt()))
        except KeyboardInterrupt:  # it could not end itself (its Ray worker is gone): what is on disk stands
            summaries = {run_dir: _failed(run_dir, Status.INTERRUPTED, "interrupted") for run_dir in run_dirs[index]}
        on_finished(summaries)
    return True


def _summaries(results: list[RunResult]) -> dict[Path, dict[str, Any]]:
    return {result.run_dir: result.summary for result in results}


def _failed(run_dir: Path, status: Status, message: str) -> dict[str, Any]:
    return layout.finished_summary(run_dir) or {"status": status, "message": message}
