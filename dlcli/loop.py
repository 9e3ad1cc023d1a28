"""The inner loop: one epoch of updates, and measuring loss and error on whole splits, for M models
at once (a stack, or M = 1: the plain path). Every tensor has a leading model dimension.

Data lives on the device; batches index a permutation; nothing here reads a value back to the host,
so an epoch runs without synchronising (the caller reads its results once).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Union

import numpy as np
import torch
from torch import Tensor, nn

from dlcli import losses
from dlcli.data import Dataset
from dlcli.schedules import Plan, lr_at
from dlcli.schema import Augment, Experiment

if TYPE_CHECKING:
    from dlcli.stack import ModelStack, OneModel

Models = Union["OneModel", "ModelStack"]

EVAL_BATCH = 8192  # samples per forward pass when measuring a whole split


@dataclass
class EpochUpdates:
    """What one epoch's updates did: batch losses [steps, M] (on the device), each model's lrs, the
    batch sizes and the end time of each update."""

    batch_losses: Tensor
    lrs: list[list[float]]  # per model, per update
    batch_sizes: list[int]
    times: list[float]  # time.perf_counter() after each update


def train_epoch(models: Models, split: dict[str, Tensor], experiments: list[Experiment],
                generators: list[torch.Generator], run_plan: Plan, epoch: int,
                augments: list[Callable[[Tensor], Tensor]] | None = None) -> EpochUpdates:
    """One pass over each model's training set with the epoch's batch size and each model's lr."""
    lead = experiments[0]  # loss, batch size and batch order are the same for every model of a stack
    x, y = split["x_train"], split["y_train"]  # [M, n, ...]
    if models.least_squares:
        return _least_squares_epoch(models, x[0], y[0], lead)
    batches = stacked_batches(x.shape[1], run_plan.batch_sizes[epoch - 1], lead.optim.batch_order, generators,
                              x.device)
    first_step = run_plan.steps_before(epoch)
    lrs = [[lr_at(experiment.optim, run_plan, first_step + i) for i in range(len(batches))]
           for experiment in experiments]
    loss_fn = losses.LOSSES[lead.loss]
    models.start_epoch(lrs)
    rows = torch.arange(len(x), device=x.device).unsqueeze(1)  # each model's row of the data
    batch_losses, times = [], []
    for i, indices in enumerate(batches):
        inputs, targets = _gather(x, rows, indices), _gather(y, rows, indices)
        if augments is not None:
            inputs = torch.stack([augment(batch) for augment, batch in zip(augments, inputs)])
        data_loss = models.data_loss(loss_fn, inputs, targets)
        models.step(data_loss, i)
        batch_losses.append(data_loss.detach())  # stays on the device: no synchronisation per step
        times.append(time.perf_counter())
    return EpochUpdates(torch.stack(batch_losses), lrs, [indices.shape[1] for indices in batches], times)


def _gather(data: Tensor, rows: Tensor, indices: Tensor) -> Tensor:
    """Each model's batch: data [M, n, ...] at indices [M, B] → [M, B, ...] (rows: [[0], [1], ...])."""
    if len(data) == 1:
        return data[0][indices[0]].unsqueeze(0)
    return data[rows, indices]


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


def _least_squares_epoch(models: OneModel, x: Tensor, y: Tensor, experiment: Experiment) -> EpochUpdates:
    """The whole fit as one update: the exact solution for the read-out."""
    model, optimizer = models.model, models.optimizer
    targets = losses.one_hot_or_column(y, model(x[:1]).shape[-1])
    optimizer.fit(model, x, targets, experiment.regularization.l2)
    with torch.no_grad():
        loss = losses.LOSSES[experiment.loss](model(x), y).mean().reshape(1, 1)
    return EpochUpdates(loss, [[optimizer.param_groups[0]["lr"]]], [len(x)], [time.perf_counter()])


def epoch_batches(n: int, batch_size: int | str, order: str, generator: torch.Generator | None = None,
                  device: torch.device | None = None) -> list[Tensor]:
    """The index batches of one epoch: ceil(n / batch_size) of them, every sample once.

    shuffle: a fresh random permutation each epoch; sequential: 0, 1, 2, ...; in both the last batch
    keeps the remainder. stride: batch k takes samples k, k+s, k+2s, ... with s the number of batches,
    so each batch spans the whole data set with a fixed step (sizes differ by at most one).
    The order is drawn on the CPU (its generator lives there) and sent to `device` in one copy.
    """
    permutation, sizes = _epoch_order(n, batch_size, order, generator)
    return list(permutation.to(device).split(sizes))


def stacked_batches(n: int, batch_size: int | str, order: str, generators: list[torch.Generator],
                    device: torch.device | None = None) -> list[Tensor]:
    """`epoch_batches` for M models at once, each with its own generator: [M, B] index batches."""
    orders = [_epoch_order(n, batch_size, order, generator) for generator in generators]
    permutations = torch.stack([permutation for permutation, _ in orders])
    return list(permutations.to(device).split(orders[0][1], dim=1))


def _epoch_order(n: int, batch_size: int | str, order: str,
                 generator: torch.Generator | None) -> tuple[Tensor, list[int]]:
    """The epoch's sample order and the sizes of the batches it is cut into."""
    size = n if batch_size == "full" else min(int(batch_size), n)
    count = -(-n // size)  # batches per epoch
    if order == "stride":
        strides = [torch.arange(start, n, count) for start in range(count)]
        return torch.cat(strides), [len(stride) for stride in strides]
    permutation = torch.randperm(n, generator=generator) if order == "shuffle" else torch.arange(n)
    return permutation, [size] * (n // size) + ([n % size] if n % size else [])


@torch.inference_mode()
def evaluate_outputs(model: nn.Module, x: Tensor) -> Tensor:
    """The model's outputs for a whole split, in large batches, with dropout off."""
    model.eval()
    return torch.cat([model(chunk) for chunk in x.split(EVAL_BATCH)])


def measure(models: Models, split: dict[str, Tensor], loss: str,
            batch_loss_sums: Tensor | None) -> list[dict[str, float] | None]:
    """Each model's loss and error on every split, and its weight norm; None for a model whose
    losses (or whose epoch's batch losses) are not finite."""
    names = [name for name in ("train", "test", "val") if f"x_{name}" in split]
    measured, sizes, keys = [], [], []
    for name in names:
        outputs = models.outputs(split[f"x_{name}"])  # [M, N, out]
        targets = split[f"y_{name}"]
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


def to_device(dataset: Dataset, device: torch.device) -> dict[str, Tensor]:
    return {key: torch.as_tensor(value).to(device) for key, value in _arrays(dataset).items()}


def _arrays(dataset: Dataset) -> dict[str, np.ndarray]:
    arrays = {"x_train": dataset.x_train, "y_train": dataset.y_train,
              "x_test": dataset.x_test, "y_test": dataset.y_test}
    if dataset.x_val is not None:
        arrays |= {"x_val": dataset.x_val, "y_val": dataset.y_val}
    return arrays


def stack_splits(datasets: list[Dataset], device: torch.device) -> dict[str, Tensor]:
    """The models' splits as [M, n, ...] tensors: one copy expanded when every model has the same
    array (a shared test set), else each model's own (its training-set draw or label noise)."""
    splits = [_arrays(dataset) for dataset in datasets]
    stacked = {}
    for key, first in splits[0].items():
        arrays = [split[key] for split in splits]
        if all(array is first or np.array_equal(array, first) for array in arrays[1:]):
            tensor = torch.as_tensor(first).to(device)
            stacked[key] = tensor.unsqueeze(0).expand(len(arrays), *tensor.shape)
        else:
            stacked[key] = torch.as_tensor(np.stack(arrays)).to(device)
    return stacked


def select_models(split: dict[str, Tensor], indices: list[int]) -> dict[str, Tensor]:
    """The split of the models that go on; a shared (expanded) array stays shared."""
    return {key: value[: len(indices)] if value.stride(0) == 0 else value[indices] for key, value in split.items()}
