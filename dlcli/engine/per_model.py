"""What a stack of M models holds per model, every tensor with the model as its first dimension, and
the protocol its layers' stacked forms read it through (dlcli.engine.stack, dlcli.engine.stacked_layers).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch
from torch import Tensor


@dataclass
class PerModel:
    """Everything a stack holds per model, each with the model as its first dimension (a tensor's
    first axis, a list's entries): `select` keeps the models that go on with one filter over all of it,
    so a new field cannot be left misaligned."""

    params: dict[str, Tensor]  # leaves that require grad (a DenseStack's: views of its flat buffer)
    buffers: dict[str, Tensor]
    slots: dict[str, dict[str, Tensor]]  # optimizer state per parameter name
    hyper: dict[str, Tensor]  # HYPER values in float64 on the CPU, as torch.optim reads Python numbers
    rates: dict[str, Tensor]  # the same in float32 on the device, for the update and the forward pass,
    # and dropout's scale 1/(1 − rate)
    dropout_streams: list[torch.Generator]

    @property
    def count(self) -> int:
        """M, the models held."""
        return len(self.dropout_streams)

    def select(self, indices: list[int]) -> PerModel:
        return PerModel(**{name: _select(value, indices) for name, value in vars(self).items()})

    def part(self, start: int, stop: int) -> PerModel:
        """Models start to stop − 1 as views: what a layer computes or updates on them (gradients,
        batch norm's running statistics) reaches the whole stack's tensors."""
        return PerModel(**{name: _part(value, start, stop) for name, value in vars(self).items()})


def _select(value, indices: list[int]):
    if isinstance(value, dict):
        return {key: _select(item, indices) for key, item in value.items()}
    if isinstance(value, list):
        return [value[i] for i in indices]
    index = torch.tensor(indices, device=value.device)
    kept = torch.empty_like(value[: len(indices)])  # the same memory layout (see ModelStack._laid_out)
    torch.index_select(value.detach(), 0, index, out=kept)
    return kept.requires_grad_() if value.requires_grad else kept


def _part(value, start: int, stop: int):
    if isinstance(value, dict):
        return {key: _part(item, start, stop) for key, item in value.items()}
    return value[start:stop]


@dataclass
class ModelsPart:
    """Some of a stack's models, run in a pass of their own (a `Stacked`)."""

    state: PerModel
    training: bool


class Stacked(Protocol):
    """What a layer's stacked form reads: each model's state, and whether the stack is training
    (dropout on, batch norm on batch statistics) or evaluating."""

    state: PerModel
    training: bool


def per_model(values: Tensor, like: Tensor) -> Tensor:
    """[M] → [M, 1, 1, ...]: one value per model, broadcast over that model's entries."""
    return values.view(-1, *[1] * (like.dim() - 1))


def stack_product(product: Callable[..., Tensor], *operands: Tensor) -> Tensor:
    """`product` (bmm, baddbmm) of stacks of matrices [M, n, k]·[M, k, m], the last two operands. For one
    model with n, k or m of 1 the BLAS takes a kernel that a stack's product does not (a matrix-vector
    product, a fused multiply-add), which rounds otherwise on some CPUs: computed as a stack of two, so a
    model takes the same steps alone as in a stack."""
    a, b = operands[-2:]
    if len(b) == 1 and 1 in (a.shape[1], a.shape[2], b.shape[2]):
        return product(*(x.expand(2, *x.shape[1:]) for x in operands))[:1]
    return product(*operands)
