"""Optimizers, from a registry, with weight decay decoupled from the gradient for all of them."""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import Tensor

from dlcli.config.schema import OptimConfig

OPTIMIZERS: dict[str, Callable[[list[Tensor], OptimConfig, float], torch.optim.Optimizer]] = {
    "sgd": lambda params, config, decay: torch.optim.SGD(params, lr=config.lr, momentum=config.momentum),
    "adam": lambda params, config, decay: torch.optim.Adam(params, lr=config.lr),
    # AdamW decays decoupled itself; the others get the same w ← w − lr·decay·w from DecoupledDecay.
    "adamw": lambda params, config, decay: torch.optim.AdamW(params, lr=config.lr, weight_decay=decay),
    "lstsq": lambda params, config, decay: LeastSquares(config.lr),
}


class LeastSquares:
    """Not a gradient method: fits a model's final nn.Linear exactly, in one step, by minimum-norm
    least squares on the fixed features below it (ridge regression when l2 > 0)."""

    def __init__(self, lr: float):
        self.param_groups = [{"lr": lr, "params": []}]  # the lr is logged, never used

    @torch.no_grad()
    def fit(self, model: torch.nn.Sequential, x: Tensor, targets: Tensor, l2: float = 0.0) -> None:
        body, head = model[:-1], model[-1]
        features = body(x).double()
        design = torch.cat([features, torch.ones(len(features), 1, dtype=features.dtype, device=x.device)], 1)
        if l2 > 0:  # (1/n)||A w − y||² + (l2/2)||w||², as the loss path: least squares on [A; √(n·l2/2) I]
            identity = torch.eye(design.shape[1], dtype=design.dtype, device=x.device)
            design = torch.cat([design, (len(x) * l2 / 2) ** 0.5 * identity])
            targets = torch.cat([targets, targets.new_zeros(design.shape[1], targets.shape[1])])
        targets = targets.double()
        if design.device.type == "cpu":  # LAPACK's divide-and-conquer SVD: the minimum-norm solution, fast
            solution = torch.linalg.lstsq(design, targets, driver="gelsd").solution
        else:  # GPU drivers of lstsq assume full rank; the pseudo-inverse does not
            solution = torch.linalg.pinv(design) @ targets
        head.weight.copy_(solution[:-1].T)
        head.bias.copy_(solution[-1])


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
