"""Training a search batch's units side by side, an epoch of each in turn, so that successive halving
decides each rung across the whole batch: every trial of the batch reports its validation metric at the
rung before any of them goes on, whichever stack it trains in. Trained one unit after another, the
first stack would be judged against itself alone and the last against everyone: the outcome would hang
on the order of the stacks.

Each unit is a `dlcli.engine.loop.Training` generator, in this process (`LocalTraining`), in a worker
process (dlcli.sweep.unit_workers) or in a Ray actor (dlcli.sweep.ray_units). The models of the units
not training this epoch stay where they are (on the device), so a batch holds at most a stack's worth
of trials: `--batch`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol

from dlcli import layout
from dlcli.components.write_failures import is_write_failure
from dlcli.engine.loop import Rung, RunResult, Training, stop
from dlcli.layout import Status

Finished = Callable[[int, list[dict[str, Any]]], None]  # a unit (its index) and its runs' summaries


class Stepped(Protocol):
    """A unit lockstep steps: `post` the answer to its last epoch (None to start it), then `collect`
    its next (epoch, rows), or StopIteration with its results (`interrupt`: the batch is stopping, the
    unit ends as interrupted instead); `throw` ends a paused unit (`stop`)."""

    def post(self, answer: dict[Path, str] | None) -> None: ...

    def collect(self, interrupt: bool = False) -> tuple[int, dict[Path, dict[str, float]]]: ...

    def throw(self, error: BaseException) -> Any: ...


class LocalTraining:
    """A unit's `Training` generator in this process: `collect` trains its epoch."""

    def __init__(self, training: Training):
        self.training, self.answer = training, None

    def post(self, answer: dict[Path, str] | None) -> None:
        self.answer = answer

    def collect(self, interrupt: bool = False) -> tuple[int, dict[Path, dict[str, float]]]:
        return self.training.throw(KeyboardInterrupt()) if interrupt else self.training.send(self.answer)

    def throw(self, error: BaseException) -> Any:
        return self.training.throw(error)


def train_in_lockstep(trainings: list[Stepped], run_dirs: list[list[Path]], rung: Rung,
                      on_finished: Finished) -> bool:
    """Step the units epoch by epoch; after each epoch every unit paused at the earliest epoch hears the
    runs `rung` stops among all of theirs. A unit that breaks ends as `failed` and the others go on; an
    interrupt ends every unit's runs as interrupted. `on_finished` hears each unit as it ends; returns
    True when interrupted."""
    paused: dict[int, tuple[int, dict[Path, dict[str, float]]]] = {}
    if _advance(list(range(len(trainings))), trainings, run_dirs, None, paused, on_finished):
        return _stop_all(trainings, run_dirs, paused, on_finished)
    while paused:
        epoch = min(at for at, _ in paused.values())
        due = [index for index, (at, _) in paused.items() if at == epoch]
        try:
            stopped = rung(epoch, {run_dir: row for index in due for run_dir, row in paused[index][1].items()})
        except KeyboardInterrupt:
            return _stop_all(trainings, run_dirs, paused, on_finished)
        if _advance(due, trainings, run_dirs, stopped, paused, on_finished):
            return _stop_all(trainings, run_dirs, paused, on_finished)
    return False


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
    except KeyboardInterrupt:  # raised before the unit's loop could catch it (while preparing)
        summaries = [_failed(run_dir, Status.INTERRUPTED, "interrupted") for run_dir in run_dirs[index]]
    except Exception as error:  # recorded in each run by the loop; the search goes on
        if is_write_failure(error):
            raise
        message = f"{type(error).__name__}: {error}"
        summaries = [_failed(run_dir, Status.FAILED, message) for run_dir in run_dirs[index]]
    on_finished(index, summaries)
    return any(summary["status"] == Status.INTERRUPTED for summary in summaries)


def _stop_all(trainings: list[Stepped], run_dirs: list[list[Path]], paused: dict, on_finished: Finished) -> bool:
    """An interrupt: the paused units end their runs as interrupted (their finished epochs kept)."""
    for index in list(paused):
        del paused[index]
        try:
            summaries = _summaries(stop(trainings[index], KeyboardInterrupt()))
        except KeyboardInterrupt:  # it could not end itself (its Ray worker is gone): what is on disk stands
            summaries = [_failed(run_dir, Status.INTERRUPTED, "interrupted") for run_dir in run_dirs[index]]
        on_finished(index, summaries)
    return True


def _summaries(results: list[RunResult]) -> list[dict[str, Any]]:
    return [result.summary for result in results]


def _failed(run_dir: Path, status: Status, message: str) -> dict[str, Any]:
    return layout.finished_summary(run_dir) or {"status": status, "message": message}
