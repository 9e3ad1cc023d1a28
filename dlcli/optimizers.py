"""Optimizers, from a registry, with weight decay decoupled from the gradient for all of them."""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import Tensor

from dlcli.schema import OptimConfig

OPTIMIZERS: dict[str, Callable[[list[Tensor], OptimConfig, float], torch.optim.Optimizer]] = {
    "sgd": lambda params, config, decay: torch.optim.SGD(params, lr=config.lr, momentum=config.momentum),
    "adam": lambda params, config, decay: torch.optim.Adam(params, lr=config.lr),
    # AdamW decays decoupled itself; the others get the same w ← w − lr·decay·w from DecoupledDecay.
    "adamw": lambda params, config, decay: torch.optim.AdamW(params, lr=config.lr, weight_decay=decay),
}


class DecoupledDecay:
    """Shrinks every parameter by lr·decay before the wrapped optimizer's step, as AdamW does."""

    def __init__(self, optimizer: torch.optim.Optimizer, decay: float):
        self.optimizer, self.decay = optimizer, decay
        self.param_groups = optimizer.param_groups

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            for parameter in group["params"]:
                parameter.mul_(1 - group["lr"] * self.decay)
        self.optimizer.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)


def build_optimizer(parameters: Iterable[Tensor], config: OptimConfig, weight_decay: float):
    parameters = list(parameters)
    optimizer = OPTIMIZERS[config.name](parameters, config, weight_decay)
    if weight_decay > 0 and config.name != "adamw":
        return DecoupledDecay(optimizer, weight_decay)
    return optimizer
