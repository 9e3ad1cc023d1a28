"""One epoch of updates, and measuring loss and error on whole splits, for the M models of a
training unit at once (a stack, or M = 1). Every tensor has a leading model dimension.

Data lives on the device; batches index a permutation; nothing here reads a value back to the host
during the epoch, so it runs without synchronising (the caller reads its results once).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from dlcli.components import losses
from dlcli.components.run_log import RunLog
from dlcli.components.schedules import Plan, lr_at
from dlcli.config.schema import Experiment
from dlcli.engine.batches import gather, input_stats, model_inputs, stacked_batches
from dlcli.engine.interface import EVAL_BATCH, Trainable


@dataclass
class Member:
    """One model of a training unit, and all the loop keeps for it alone: its config, its own random
    streams, its files and the lr of its last update. A model that leaves a stack takes its Member
    with it: one filter."""

    experiment: Experiment
    batch_order: torch.Generator  # its own shuffles
    augment: Callable[[Tensor], Tensor] | None  # its augmentation of training batches, or None
    log: RunLog | None = None  # its files; None when nothing is written (the time estimate)
    lr: float = 0.0  # the lr of its last update, logged with the epoch
    augment_stream: torch.Generator | None = None  # the random stream `augment` draws from


@dataclass
class EpochUpdates:
    """What one epoch's updates did: batch losses [steps, M] (on the device), each model's lrs, the
    batch sizes and the end time of each update."""

    batch_losses: Tensor
    lrs: list[list[float]]  # per model, per update
    batch_sizes: list[int]
    times: list[float]  # time.perf_counter() after each update


def train_epoch(models: Trainable, data: dict[str, Tensor], members: list[Member], plan: Plan,
                epoch: int) -> EpochUpdates:
    """One pass over each model's training set with the epoch's batch size and each model's lr."""
    lead = members[0].experiment  # loss, batch size and batch order are the same for every model of a stack
    x, y = data["x_train"], data["y_train"]  # [M, n, ...]
    if models.least_squares:
        return _least_squares_epoch(models, model_inputs(x, input_stats(data)), y, lead)
    batches = stacked_batches(x.shape[1], plan.batch_sizes[epoch - 1], lead.optim.batch_order,
                              [member.batch_order for member in members], x.device)
    first_step = plan.steps_before(epoch)
    lrs = [[lr_at(member.experiment.optim, plan, first_step + i) for i in range(len(batches))] for member in members]
    augments = None if all(m.augment is None for m in members) else [m.augment or (lambda x: x) for m in members]
    loss_fn = losses.LOSSES[lead.loss]
    models.start_epoch(lrs)
    rows = torch.arange(len(x), device=x.device).unsqueeze(1)  # each model's row of the data
    stats = input_stats(data)  # uint8 images: normalized batch by batch, on the device
    batch_losses, times = [], []
    for i, indices in enumerate(batches):
        inputs, targets = model_inputs(gather(x, rows, indices), stats), gather(y, rows, indices)
        if augments is not None:
            inputs = torch.stack([augment(batch) for augment, batch in zip(augments, inputs)])
        data_loss = models.data_loss(loss_fn, inputs, targets)
        models.step(data_loss, i)
        batch_losses.append(data_loss.detach())  # stays on the device: no synchronisation per step
        times.append(time.perf_counter())
    return EpochUpdates(torch.stack(batch_losses), lrs, [indices.shape[1] for indices in batches], times)


def _least_squares_epoch(models: Trainable, x: Tensor, y: Tensor, experiment: Experiment) -> EpochUpdates:
    """The whole fit as one update: the exact solution for the read-out."""
    models.solve(x[0], y[0], experiment.regularization.l2)
    with torch.no_grad():
        loss = models.data_loss(losses.LOSSES[experiment.loss], x, y).reshape(1, 1)
    return EpochUpdates(loss, [[experiment.optim.lr]], [x.shape[1]], [time.perf_counter()])


@torch.inference_mode()
def evaluate_outputs(model: nn.Module, x: Tensor, stats: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """The model's outputs for a whole split, in large batches, with dropout off (`stats`: uint8
    images' channel statistics, see `model_inputs`)."""
    model.eval()
    return torch.cat([model(model_inputs(chunk, stats)) for chunk in x.split(EVAL_BATCH)])


def split_outputs(models: Trainable, x: Tensor, stats: tuple[Tensor, Tensor] | None) -> Tensor:
    """Every model's outputs on a split [M, N, ...]; uint8 images normalized a chunk at a time, so
    that no float copy of the whole split is made."""
    if stats is None:
        return models.outputs(x)
    chunk = max(1, EVAL_BATCH // len(x))
    return torch.cat([models.outputs(model_inputs(part, stats)) for part in x.split(chunk, dim=1)], dim=1)


def measure(models: Trainable, data: dict[str, Tensor], loss: str,
            batch_loss_sums: Tensor | None) -> list[dict[str, float] | None]:
    """Each model's loss and error on every split, and its weight norm; None for a model whose
    losses (or whose epoch's batch losses) are not finite."""
    names = [name for name in ("train", "test", "val") if f"x_{name}" in data]
    measured, sizes, keys = [], [], []
    for name in names:
        outputs = split_outputs(models, data[f"x_{name}"], input_stats(data))  # [M, N, out]
        targets = data[f"y_{name}"]
        flat_outputs, flat_targets = outputs.flatten(0, 1), targets.reshape(-1)
        measured += [losses.LOSSES[loss](flat_outputs, flat_targets).view(targets.shape[:2]).sum(1),
                     losses.errors(loss, flat_outputs, flat_targets).view(targets.shape[:2]).sum(1)]
        sizes += [targets.shape[1]] * 2
        keys += [f"{name}_loss", f"{name}_error"]
    measured.append(models.weight_norms())
    sizes.append(1)
    keys.append("weight_norm")
    if batch_loss_sums is not None:
        measured.append(batch_loss_sums)
        sizes.append(1)
    # Sums, not means, on the device: misclassification counts stay exact in float32.
    table = torch.stack(measured).tolist()  # [quantities][M]: one read-back for every model
    results = []
    for m in range(len(table[0])):
        values = [row[m] / size for row, size in zip(table, sizes)]
        results.append(dict(zip(keys, values)) if all(map(math.isfinite, values)) else None)
    return results
