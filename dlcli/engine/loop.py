"""Training runs: `train` one experiment, or `train_unit` runs that train together (a stack, or one
alone: `dlcli.engine.grouping` decides). One epoch loop serves both.

Each epoch: train (dlcli.engine.epoch), measure every split and hand each model's row to its run's
log (dlcli.engine.records), which ends the run when it diverged or should stop early. A run that ends
leaves the stack; the others go on.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generator

import torch
from torch import Tensor

from dlcli import layout
from dlcli.components import schedules
from dlcli.components.prepare import Prepared, prepare
from dlcli.components.run_log import ModelState, RunLog
from dlcli.components.tags import write_tags
from dlcli.components.threads import one_thread, threads_for
from dlcli.config.flat import config_hash
from dlcli.config.schema import Experiment
from dlcli.config.load import load_experiment
from dlcli.engine.augment import augment_stream, make_augment
from dlcli.engine.batches import select_data, stack_data
from dlcli.engine.checkpoint import CheckpointClock, hand_over, restore
from dlcli.engine.epoch import Member, train_epoch
from dlcli.engine.grouping import build_models
from dlcli.engine.interface import Trainable
from dlcli.engine.records import OnEpoch, check_finite, log_steps, record_epoch
from dlcli.errors import UserError
from dlcli.layout import Status

# Successive halving's hook: given the epoch and the last metrics row of each run still training (by
# run folder), the runs to stop there, each with the reason; they end as `pruned` and leave the stack.
Rung = Callable[[int, dict[Path, dict[str, float]]], dict[Path, str]]
# A unit's training as a generator: after each epoch it yields (epoch, each training run's last row by
# run folder) and is sent the runs to prune there; it returns the unit's results.
Training = Generator[tuple[int, dict[Path, dict[str, float]]], dict[Path, str], list["RunResult"]]


@dataclass
class RunResult:
    run_dir: Path
    # completed | early_stopped | diverged | interrupted | pruned (a failed run raises); running: handed over
    status: Status
    summary: dict[str, Any]


class HandOver(Exception):
    """Thrown into a unit paused after an epoch (a search regrouping its runs at a rung): the unit prunes
    the runs in `stopped` there, as the rung's answer would, then ends; each run still training is
    checkpointed at that epoch for another unit to continue it from there (`resume`), and
    comes back with status running."""

    def __init__(self, stopped: dict[Path, str]):
        super().__init__("handed over")
        self.stopped = stopped


def train(experiment: Experiment, out_root: str | Path = "results", on_epoch: OnEpoch | None = None,
          force: bool = False, tags: dict[str, str] | None = None) -> RunResult:
    """Train one experiment into a new run directory under <out_root>/<name>/; `force`: even when the
    data or the model look too large for the device's free memory; `tags` go to its tags.json. torch
    uses `train.threads` CPU threads meanwhile (dlcli.components.threads), the caller's count after."""
    with threads_for(experiment.train.threads):
        prepared = prepare(experiment, force=force)
        run_dir = layout.new_run_dir(Path(out_root), experiment.name, config_hash(experiment))
        return train_unit([prepared], [run_dir], on_epoch, tags=tags)[0]


def train_unit(unit: list[Prepared], run_dirs: list[Path], on_epoch: OnEpoch | None = None, resume: bool = False,
               on_note: Callable[[str], None] | None = None, tags: dict[str, str] | None = None,
               rung: Rung | None = None) -> list[RunResult]:
    """Train prepared runs together, each into its run folder (created if missing). With several, they
    must stack (same shapes; see dlcli.engine.grouping). With `resume`, the runs continue from their
    checkpoints (taken after the same epoch); a run without a usable one starts again, and `on_note`
    hears so. `tags` are set in each run's tags.json as it starts; `rung`, called after each epoch,
    prunes runs (a search's successive halving)."""
    return drive(unit_training(unit, run_dirs, on_epoch, resume, on_note, tags), rung)


def drive(training: Training, rung: Rung | None = None) -> list[RunResult]:
    """Run a unit's training to its end, `rung` deciding after each epoch which runs stop."""
    answer = None
    while True:
        try:
            epoch, rows = training.send(answer)
        except StopIteration as done:
            return done.value
        try:
            answer = rung(epoch, rows) if rung is not None else {}
        except BaseException as error:  # Ctrl-C too: the runs in flight end as interrupted (or failed) first
            return stop(training, error)


def stop(training: Training, error: BaseException) -> list[RunResult]:
    """End a unit paused between epochs: a KeyboardInterrupt ends its runs as interrupted and returns
    their results; any other error is recorded in each run and raised."""
    try:
        training.throw(error)
    except StopIteration as done:
        return done.value
    raise RuntimeError("a unit's training went on after it was stopped")  # not reached: _epoch_loop ends


def unit_training(unit: list[Prepared], run_dirs: list[Path], on_epoch: OnEpoch | None = None, resume: bool = False,
                  on_note: Callable[[str], None] | None = None, tags: dict[str, str] | None = None) -> Training:
    """`train_unit` as a generator (`Training`): a search steps several units side by side, deciding
    successive halving's rungs across all of them. Nothing starts before the first `send(None)`."""
    for run_dir in run_dirs:
        run_dir.mkdir(parents=True, exist_ok=True)
    logs, checkpoints = _open_logs(unit, run_dirs, resume, on_note or (lambda text: None))
    for run_dir in run_dirs if tags else []:
        write_tags(run_dir, tags)
    members = []
    for point, log in zip(unit, logs):
        seed = point.experiment.seed
        stream = augment_stream(point.experiment.data.augment, point.device, seed)
        members.append(Member(point.experiment, torch.Generator().manual_seed(seed),
                              make_augment(point.experiment.data.augment, point.dataset.kind, stream), log,
                              augment_stream=stream))
    models = build_models(unit)
    if checkpoints:
        restore(models, members, [checkpoint["engine"] for checkpoint in checkpoints])
        snapshot = models.snapshot()
        for m, member in enumerate(members):
            member.log.restore_last_state(ModelState(snapshot, m))
    data = stack_data([point.dataset for point in unit], unit[0].device)
    start = {key: checkpoints[0][key] for key in ("epoch", "step", "seconds")} if checkpoints else None
    return (yield from _epoch_loop(models, members, data, on_epoch or (lambda row: None), start))


def resume(run_dir: str | Path, on_epoch: OnEpoch | None = None,
           on_note: Callable[[str], None] | None = None) -> RunResult:
    """Continue an interrupted or killed run from its last checkpoint (`dlcli train --resume`)."""
    run_dir = Path(run_dir)
    _check_resumable(run_dir)
    experiment = load_experiment(run_dir / layout.CONFIG)
    with threads_for(experiment.train.threads):
        return train_unit([prepare(experiment)], [run_dir], on_epoch, resume=True, on_note=on_note)[0]


def _check_resumable(run_dir: Path) -> None:
    try:
        summary = layout.read_summary(run_dir)
    except (OSError, ValueError):
        raise UserError(f"{run_dir}: not a run directory (no readable {layout.SUMMARY})") from None
    status = summary.get("status")
    if status in layout.FINISHED:
        raise UserError(f"{run_dir}: the run has {status}; there is nothing to resume")
    if layout.run_is_live(summary):
        raise UserError(f"{run_dir}: the run is still training (process {summary['pid']}); "
                        "resume it once it has stopped")


def _open_logs(unit: list[Prepared], run_dirs: list[Path], resume: bool,
               on_note: Callable[[str], None]) -> tuple[list[RunLog], list[dict[str, Any]]]:
    """Each run's log, continued from its checkpoint when resuming and every run of the unit has one
    taken after the same epoch; otherwise fresh (the folders emptied first)."""
    if resume:
        resumed = [RunLog.resume(point, run_dir) for point, run_dir in zip(unit, run_dirs)]
        if all(resumed) and len({checkpoint["epoch"] for _, checkpoint in resumed}) == 1:
            return [log for log, _ in resumed], [checkpoint for _, checkpoint in resumed]
        for run_dir, found in zip(run_dirs, resumed):
            if not found:
                on_note(f"{run_dir}: no usable checkpoint (missing or unreadable): training again from epoch 0")
        for run_dir in run_dirs:
            shutil.rmtree(run_dir, ignore_errors=True)
            run_dir.mkdir(parents=True)
    return [RunLog(point, run_dir) for point, run_dir in zip(unit, run_dirs)], []


def _epoch_loop(models: Trainable, members: list[Member], data: dict[str, Tensor], on_epoch: OnEpoch,
                start: dict[str, Any] | None) -> Training:
    """Epoch 0 measures the initial models; each later epoch trains, then measures. A resumed unit
    starts after its checkpoint's epoch."""
    everyone, lead = list(members), members[0].experiment  # shapes and epochs are the same for every member
    plan = schedules.plan(lead.optim, lead.train.epochs, data["x_train"].shape[1])
    clock = CheckpointClock(lead.train.checkpoint_every, lead.train.epochs)
    if start is None:
        for member in members:
            member.lr = schedules.lr_at(member.experiment.optim, plan, 0) if plan.total_steps \
                else member.experiment.optim.lr
    first, step = (0, 0) if start is None else (start["epoch"] + 1, start["step"])
    started = time.perf_counter() - (0.0 if start is None else start["seconds"])
    try:
        for epoch in range(first, lead.train.epochs + 1):
            updates = None
            if epoch > 0:
                with one_thread(models.single_threaded):
                    updates = train_epoch(models, data, members, plan, epoch)
                log_steps(members, updates, epoch, step, started)
                step += len(updates.batch_sizes)
                for member, lrs in zip(members, updates.lrs):
                    member.lr = lrs[-1]
            if schedules.measured(lead.train, epoch):
                record_epoch(models, data, members, {"epoch": epoch, "step": step}, updates, started, on_epoch)
            else:
                check_finite(members, updates, epoch)
            with clock.paused():
                stopped, handover = yield from _paused(epoch, members)
            _prune(stopped, members)
            members, data = _drop_finished(models, members, data, time.perf_counter() - started)
            position = {"epoch": epoch, "step": step, "seconds": time.perf_counter() - started}
            if handover is not None:
                hand_over(models, members, position)
                break
            if not members:
                break
            if clock.due(epoch):
                clock.write(models, members, position)
    except KeyboardInterrupt:
        for member in members:
            member.log.interrupt()
    except Exception as error:  # a bug or a resource failure: record it, keep the epochs, then raise
        for member in members:
            member.log.fail(error, time.perf_counter() - started)
        raise
    seconds = time.perf_counter() - started
    summaries = [member.log.finish(seconds) for member in everyone]
    return [RunResult(member.log.run_dir, member.log.status, summary) for member, summary in zip(everyone, summaries)]


def _paused(epoch: int, members: list[Member]):
    """Pause after an epoch (yield its rows); the answer: the runs a rung stops, and the HandOver thrown
    in instead, if any."""
    try:
        return (yield _last_rows(epoch, members)), None
    except HandOver as handover:
        return handover.stopped, handover


def _last_rows(epoch: int, members: list[Member]) -> tuple[int, dict[Path, dict[str, float]]]:
    """What a unit yields after an epoch: the epoch, and the last row of each run still training."""
    return epoch, {member.log.run_dir: member.log.last_row for member in members
                   if not member.log.ended and member.log.last_row is not None}


def _prune(stopped: dict[Path, str] | None, members: list[Member]) -> None:
    """End the runs a rung stops (with the reason); `_drop_finished` then takes them out of the stack,
    as it does runs that stopped early."""
    for member in members:
        if member.log.run_dir in (stopped or {}):
            member.log.prune(stopped[member.log.run_dir])


def _drop_finished(models: Trainable, members: list[Member], data: dict[str, Tensor],
                   seconds: float) -> tuple[list[Member], dict[str, Tensor]]:
    """Finish the runs that ended this epoch; the others go on (one filter each: members, data, models)."""
    going = [m for m, member in enumerate(members) if not member.log.ended]
    for member in members:
        if member.log.ended:
            member.log.finish(seconds)
    if going and len(going) < len(members):
        models.keep(going)
        return [members[m] for m in going], select_data(data, going)
    return [members[m] for m in going], data
