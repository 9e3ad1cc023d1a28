"""What an epoch leaves in its runs' logs: every model measured at once (all splits, or what the epochs
before the last measure: `train.eval_splits`, `train.eval_train_subset`), a metrics row per model,
steps.csv's rows, and the runs whose losses stopped being finite.
"""
from __future__ import annotations

import math
import time
from typing import Callable

import torch
from torch import Tensor

from dlcli.components.run_log import ModelState
from dlcli.components.threads import one_thread
from dlcli.engine.batches import gather
from dlcli.engine.epoch import EpochUpdates, Member, measure
from dlcli.engine.interface import Trainable

# A metrics row's measurements, empty (None) when the epoch did not measure that split (`train.eval_splits`).
UNMEASURED = {f"{split}_{quantity}": None for split in ("train", "test") for quantity in ("loss", "error")}
SUBSET_STREAM = 5  # seed offset of the generator that picks the training subset measured each epoch
OnEpoch = Callable[[dict[str, float]], None]  # hears each epoch's metrics row as it is logged


def record_epoch(models: Trainable, data: dict[str, Tensor], members: list[Member], position: dict[str, int],
            updates: EpochUpdates | None, started: float, on_epoch: OnEpoch) -> None:
    """Measure every model and log its epoch (one read-back, one snapshot for all of them)."""
    sums = updates.batch_losses.sum(0) if updates else None
    last = position["epoch"] == members[0].experiment.train.epochs
    measured_data = data if last else between_last(data, members)
    with one_thread(models.single_threaded):  # a model alone sums as in a stack (ModelStack.single_threaded)
        measured = measure(models, measured_data, members[0].experiment.loss, sums)
        if measured_data is not data:
            measured = _last_of_stopping(models, data, members, measured, position, sums)
    snapshot = models.snapshot()
    for m, (member, values) in enumerate(zip(members, measured)):
        if values is None:
            member.log.diverge(position["epoch"], member.lr)
            continue
        row = {**position, "lr": member.lr, **UNMEASURED, **values, "seconds": time.perf_counter() - started}
        member.log.record(row, ModelState(snapshot, m))
        on_epoch(row)


def _last_of_stopping(models: Trainable, data: dict[str, Tensor], members: list[Member],
                      measured: list[dict[str, float] | None], position: dict[str, int],
                      sums: Tensor | None) -> list[dict[str, float] | None]:
    """A run that stops early at this epoch ends on it: it measures every split, as a last epoch does;
    the others keep what the epochs before the last measure (alone or stacked, the same rows)."""
    stopping = [values is not None and member.log.stops_early_at({**position, **values})
                for member, values in zip(members, measured)]
    if not any(stopping):
        return measured
    every = measure(models, data, members[0].experiment.loss, sums)
    return [full if stops else values for full, values, stops in zip(every, measured, stopping)]


def check_finite(members: list[Member], updates: EpochUpdates, epoch: int) -> None:
    """An epoch that is not measured still ends the runs whose batch losses were not finite."""
    for member, total in zip(members, updates.batch_losses.sum(0).tolist()):
        if not math.isfinite(total):
            member.log.diverge(epoch, member.lr)


def between_last(data: dict[str, Tensor], members: list[Member]) -> dict[str, Tensor]:
    """What the epochs before the last measure: the validation split alone (`train.eval_splits: val`),
    or every split with the training set cut to its subset (`train.eval_train_subset`)."""
    if members[0].experiment.train.eval_splits == "val":
        return {key: value for key, value in data.items() if key not in ("x_train", "y_train", "x_test", "y_test")}
    return train_subset(data, members)


def train_subset(data: dict[str, Tensor], members: list[Member]) -> dict[str, Tensor]:
    """The splits with each model's training set cut to its fixed random subset (`train.eval_train_subset`):
    the same samples every epoch, drawn from the model's own seed, so alone or stacked it measures the same."""
    size, n = members[0].experiment.train.eval_train_subset, data["x_train"].shape[1]
    if size is None or size >= n:
        return data
    device = data["x_train"].device
    chosen = torch.stack([torch.randperm(n, generator=torch.Generator().manual_seed(m.experiment.seed + SUBSET_STREAM))
                          [:size] for m in members]).to(device)
    rows = torch.arange(len(members), device=device).unsqueeze(1)
    return {**data, "x_train": gather(data["x_train"], rows, chosen), "y_train": gather(data["y_train"], rows, chosen)}


def log_steps(members: list[Member], updates: EpochUpdates, epoch: int, first_step: int, started: float) -> None:
    """steps.csv rows: one read-back of the epoch's batch losses, then plain numbers."""
    if not any(member.log.logs_steps for member in members):
        return
    batch_losses = updates.batch_losses.T.tolist()  # [M][steps]
    for m, member in enumerate(members):
        member.log.record_steps([
            {"step": first_step + i + 1, "epoch": epoch, "batch_size": size, "lr": lr, "batch_loss": loss,
             "seconds": moment - started}
            for i, (size, lr, loss, moment) in enumerate(zip(updates.batch_sizes, updates.lrs[m], batch_losses[m],
                                                             updates.times))])
