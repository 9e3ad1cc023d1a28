"""The inner loop: one epoch of updates, and measuring loss and error on whole splits.

Data lives on the device; batches index a permutation; nothing here reads a value back to the host,
so an epoch runs without synchronising (the caller reads its results once).
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from dlcli import losses
from dlcli.data import Dataset
from dlcli.optimizers import LeastSquares
from dlcli.schedules import Plan, lr_at
from dlcli.schema import Augment, Experiment

EVAL_BATCH = 8192  # samples per forward pass when measuring a whole split


@dataclass
class EpochUpdates:
    """What one epoch's updates did: batch losses (on the device), their lr, size and end time."""

    batch_losses: Tensor
    lrs: list[float]
    batch_sizes: list[int]
    times: list[float]  # time.perf_counter() after each update


def train_epoch(model: nn.Module, optimizer, split: dict[str, Tensor], experiment: Experiment,
                generator: torch.Generator, run_plan: Plan, epoch: int,
                augment: Callable[[Tensor], Tensor] | None = None) -> EpochUpdates:
    """One pass over the training set with the epoch's batch size and the lr schedule."""
    loss_fn = losses.LOSSES[experiment.loss]
    l1, l2 = experiment.regularization.l1, experiment.regularization.l2
    x, y = split["x_train"], split["y_train"]
    if isinstance(optimizer, LeastSquares):
        return _least_squares_epoch(model, optimizer, x, y, experiment)
    batches = epoch_batches(len(x), run_plan.batch_sizes[epoch - 1], experiment.optim.batch_order, generator,
                            x.device)
    first_step = run_plan.steps_before(epoch)
    lrs = [lr_at(experiment.optim, run_plan, first_step + i) for i in range(len(batches))]
    batch_losses, times = [], []
    bf16 = experiment.train.precision == "bf16"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    model.train()
    for i, indices in enumerate(batches):
        for group in optimizer.param_groups:
            group["lr"] = lrs[i]
        inputs = x[indices] if augment is None else augment(x[indices])
        with autocast:
            data_loss = loss_fn(model(inputs), y[indices]).float().mean()
        objective = data_loss + losses.penalty(model.parameters(), l1, l2) if (l1 or l2) else data_loss
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        optimizer.step()
        batch_losses.append(data_loss.detach())  # stays on the device: no synchronisation per step
        times.append(time.perf_counter())
    return EpochUpdates(torch.stack(batch_losses), lrs, [len(indices) for indices in batches], times)


def make_augment(config: Augment, kind: str, device: torch.device, seed: int) -> Callable[[Tensor], Tensor] | None:
    """The augmentation of training batches: Gaussian input noise and random shifts, or None."""
    if config.noise_std == 0 and config.shift == 0:
        return None
    generator = torch.Generator(device=device).manual_seed(seed + 1)  # its own stream: same init, same order
    dims = (-2, -1) if kind == "image" else (-1,)

    def augment(batch: Tensor) -> Tensor:
        if config.shift > 0:
            for dim in dims:
                batch = _shift(batch, dim, config.shift, config.shift_mode, generator)
        if config.noise_std > 0:
            noise = torch.randn(batch.shape, generator=generator, device=batch.device, dtype=batch.dtype)
            batch = batch + config.noise_std * noise
        return batch

    return augment


def _shift(batch: Tensor, dim: int, most: int, mode: str, generator: torch.Generator) -> Tensor:
    """Shift every sample along `dim` by its own random offset in [−most, most]."""
    length = batch.shape[dim]
    offsets = torch.randint(-most, most + 1, (len(batch),), generator=generator, device=batch.device)
    positions = torch.arange(length, device=batch.device)
    source = positions.view(1, -1) - offsets.view(-1, 1)  # out[i, j] = in[i, j − offset_i]
    valid = (source >= 0) & (source < length)
    source = source % length
    shape = [len(batch)] + [1] * (batch.dim() - 1)
    shape[dim] = length
    index = source.view(shape).expand_as(batch)
    shifted = batch.gather(dim, index)
    if mode == "pad":
        shifted = shifted * valid.view(shape).to(batch.dtype)
    return shifted


def _least_squares_epoch(model: nn.Module, optimizer: LeastSquares, x: Tensor, y: Tensor,
                         experiment: Experiment) -> EpochUpdates:
    """The whole fit as one update: the exact solution for the read-out."""
    targets = losses.one_hot_or_column(y, model(x[:1]).shape[-1])
    optimizer.fit(model, x, targets, experiment.regularization.l2)
    with torch.no_grad():
        loss = losses.LOSSES[experiment.loss](model(x), y).mean().reshape(1)
    return EpochUpdates(loss, [optimizer.param_groups[0]["lr"]], [len(x)], [time.perf_counter()])


def epoch_batches(n: int, batch_size: int | str, order: str, generator: torch.Generator | None = None,
                  device: torch.device | None = None) -> list[Tensor]:
    """The index batches of one epoch: ceil(n / batch_size) of them, every sample once.

    shuffle: a fresh random permutation each epoch; sequential: 0, 1, 2, ...; in both the last batch
    keeps the remainder. stride: batch k takes samples k, k+s, k+2s, ... with s the number of batches,
    so each batch spans the whole data set with a fixed step (sizes differ by at most one).
    The order is drawn on the CPU (its generator lives there) and sent to `device` in one copy.
    """
    size = n if batch_size == "full" else min(int(batch_size), n)
    count = -(-n // size)  # batches per epoch
    if order == "stride":
        strides = [torch.arange(start, n, count) for start in range(count)]
        return list(torch.cat(strides).to(device).split([len(stride) for stride in strides]))
    permutation = torch.randperm(n, generator=generator) if order == "shuffle" else torch.arange(n)
    return list(permutation.to(device).split(size))


@torch.inference_mode()
def evaluate_outputs(model: nn.Module, x: Tensor) -> Tensor:
    """The model's outputs for a whole split, in large batches, with dropout off."""
    model.eval()
    return torch.cat([model(chunk) for chunk in x.split(EVAL_BATCH)])


def measure(model: nn.Module, split: dict[str, Tensor], loss: str,
             batch_loss_sum: Tensor | None) -> dict[str, float] | None:
    """Loss and error on every split, and the weight norm; None if any loss (or the epoch's batch
    losses) is not finite."""
    names = [name for name in ("train", "test", "val") if f"x_{name}" in split]
    measured, sizes, keys = [], [], []
    for name in names:
        outputs = evaluate_outputs(model, split[f"x_{name}"])
        targets = split[f"y_{name}"]
        measured += [losses.LOSSES[loss](outputs, targets).sum(), losses.errors(loss, outputs, targets).sum()]
        sizes += [len(targets)] * 2
        keys += [f"{name}_loss", f"{name}_error"]
    with torch.no_grad():
        measured.append(torch.sqrt(sum((p.float() ** 2).sum() for p in model.parameters())))
    sizes.append(1)
    keys.append("weight_norm")
    if batch_loss_sum is not None:
        measured.append(batch_loss_sum)
        sizes.append(1)
    # Sums, not means, on the device: misclassification counts stay exact in float32.
    values = [total / size for total, size in zip(torch.stack(measured).tolist(), sizes)]  # one read-back
    if not all(map(math.isfinite, values)):
        return None
    return dict(zip(keys, values))


def to_device(dataset: Dataset, device: torch.device) -> dict[str, Tensor]:
    arrays = {"x_train": dataset.x_train, "y_train": dataset.y_train,
              "x_test": dataset.x_test, "y_test": dataset.y_test}
    if dataset.x_val is not None:
        arrays |= {"x_val": dataset.x_val, "y_val": dataset.y_val}
    return {key: torch.as_tensor(value).to(device) for key, value in arrays.items()}
