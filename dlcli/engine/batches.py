"""Batches and data on the device, for M models at once: each model's splits as [M, n, ...] tensors,
and each epoch's index batches drawn from each model's own generator. uint8 images stay uint8 on the
device, with their channel statistics beside them (`x_mean`, `x_std`); `model_inputs` turns a batch or
an evaluation chunk of them into the model's float input.

The order is drawn on the CPU (its generator lives there) and sent to the device in one copy.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from dlcli.components.datasets import Dataset


def epoch_batches(n: int, batch_size: int | str, order: str, generator: torch.Generator | None = None,
                  device: torch.device | None = None) -> list[Tensor]:
    """The index batches of one epoch: ceil(n / batch_size) of them, every sample once.

    shuffle: a fresh random permutation each epoch; sequential: 0, 1, 2, ...; in both the last batch
    keeps the remainder. stride: batch k takes samples k, k+s, k+2s, ... with s the number of batches,
    so each batch spans the whole data set with a fixed step (sizes differ by at most one).
    """
    permutation, sizes = epoch_order(n, batch_size, order, generator)
    return list(permutation.to(device).split(sizes))


def stacked_batches(n: int, batch_size: int | str, order: str, generators: list[torch.Generator],
                    device: torch.device | None = None) -> list[Tensor]:
    """`epoch_batches` for M models at once, each with its own generator: [M, B] index batches."""
    orders = [epoch_order(n, batch_size, order, generator) for generator in generators]
    permutations = torch.stack([permutation for permutation, _ in orders])
    return list(permutations.to(device).split(orders[0][1], dim=1))


def epoch_order(n: int, batch_size: int | str, order: str,
                 generator: torch.Generator | None) -> tuple[Tensor, list[int]]:
    """The epoch's sample order and the sizes of the batches it is cut into."""
    size = n if batch_size == "full" else min(int(batch_size), n)
    count = -(-n // size)  # batches per epoch
    if order == "stride":
        strides = [torch.arange(start, n, count) for start in range(count)]
        return torch.cat(strides), [len(stride) for stride in strides]
    permutation = torch.randperm(n, generator=generator) if order == "shuffle" else torch.arange(n)
    return permutation, [size] * (n // size) + ([n % size] if n % size else [])


def gather(data: Tensor, rows: Tensor, indices: Tensor) -> Tensor:
    """Each model's batch: data [M, n, ...] at indices [M, B] → [M, B, ...] (rows: [[0], [1], ...]). One
    array shared by every model (expanded: stride 0) is read with index_select, a third of the time of
    advanced indexing for small batches."""
    if len(data) == 1 or data.stride(0) == 0:
        return data[0].index_select(0, indices.flatten()).view(*indices.shape, *data.shape[2:])
    return data[rows, indices]


def model_inputs(x: Tensor, stats: tuple[Tensor, Tensor] | None) -> Tensor:
    """The model's float input from stored inputs: uint8 images become (x − mean) / std, channel by
    channel; float inputs (standardized on the host already) pass through unchanged."""
    if stats is None:
        return x
    mean, std = stats
    return x.to(torch.float32, copy=True).sub_(mean).div_(std)  # in place on the copy: (x − mean) / std


def input_stats(data: dict[str, Tensor]) -> tuple[Tensor, Tensor] | None:
    """The channel statistics `model_inputs` normalizes with: [M, 1, C, 1, 1] beside stacked splits,
    [1, C, 1, 1] beside one data set's; None for float data."""
    return (data["x_mean"], data["x_std"]) if "x_mean" in data else None


def device_stats(dataset: Dataset, device: torch.device) -> tuple[Tensor, Tensor] | None:
    """A data set's channel statistics on the device, for `model_inputs` (None for float data)."""
    if dataset.normalize is None:
        return None
    mean, std = dataset.normalize
    return torch.as_tensor(mean).to(device), torch.as_tensor(std).to(device)


def device_arrays(dataset: Dataset, device: torch.device) -> dict[str, Tensor]:
    return {key: torch.as_tensor(value).to(device) for key, value in _arrays(dataset).items()}


def _arrays(dataset: Dataset) -> dict[str, np.ndarray]:
    arrays = {"x_train": dataset.x_train, "y_train": dataset.y_train,
              "x_test": dataset.x_test, "y_test": dataset.y_test}
    if dataset.x_val is not None:
        arrays |= {"x_val": dataset.x_val, "y_val": dataset.y_val}
    if dataset.normalize is not None:
        arrays |= {"x_mean": dataset.normalize[0], "x_std": dataset.normalize[1]}
    return arrays


def stack_data(datasets: list[Dataset], device: torch.device) -> dict[str, Tensor]:
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


def select_data(data: dict[str, Tensor], indices: list[int]) -> dict[str, Tensor]:
    """The split of the models that go on; a shared (expanded) array stays shared."""
    return {key: value[: len(indices)] if value.stride(0) == 0 else value[indices] for key, value in data.items()}
