"""One model trained on its own: an nn.Module and its torch.optim optimizer (M = 1 of the
`Trainable` interface). It serves what has no stacked form: lstsq, torch.compile, bf16.

`step` is the whole training step of one model: forward (in `data_loss`), loss plus penalty,
backward, update.
"""
from __future__ import annotations

import contextlib
from typing import Callable

import torch
from torch import Tensor, nn

from dlcli.components import losses
from dlcli.components.optimizers import LeastSquares, build_optimizer
from dlcli.config.schema import Experiment
from dlcli.engine.interface import EVAL_BATCH


class SingleModel:
    def __init__(self, model: nn.Module, experiment: Experiment):
        self.model = model
        # The compiled module shares the model's parameters; snapshots keep the plain model's key names.
        self.forward = torch.compile(model) if experiment.train.compile else model
        regularization = experiment.regularization
        self.optimizer = build_optimizer(model.parameters(), experiment.optim, regularization.weight_decay)
        self.l1, self.l2 = regularization.l1, regularization.l2
        bf16 = experiment.train.precision == "bf16"
        self.autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
        self.least_squares = isinstance(self.optimizer, LeastSquares)
        self.single_threaded = False
        self.lrs: list[float] = []

    def start_epoch(self, lrs: list[list[float]]) -> None:
        self.lrs = lrs[0]
        self.model.train()

    def data_loss(self, loss_fn: Callable, inputs: Tensor, targets: Tensor) -> Tensor:
        with self.autocast():
            return loss_fn(self.forward(inputs[0]), targets[0]).float().mean().unsqueeze(0)

    def step(self, data_loss: Tensor, i: int) -> None:
        objective = data_loss + losses.penalty(self.model.parameters(), self.l1, self.l2) if (self.l1 or self.l2) \
            else data_loss
        for group in self.optimizer.param_groups:
            group["lr"] = self.lrs[i]
        self.optimizer.zero_grad(set_to_none=True)
        objective.sum().backward()
        self.optimizer.step()

    def solve(self, x: Tensor, y: Tensor, l2: float) -> None:
        targets = losses.one_hot_or_column(y, self.model(x[:1]).shape[-1])
        self.optimizer.fit(self.model, x, targets, l2)

    @torch.inference_mode()
    def outputs(self, x: Tensor) -> Tensor:
        self.forward.eval()
        return torch.cat([self.forward(chunk) for chunk in x[0].split(EVAL_BATCH)]).unsqueeze(0)

    @torch.no_grad()
    def weight_norms(self) -> Tensor:
        return torch.sqrt(sum((p.float() ** 2).sum() for p in self.model.parameters())).unsqueeze(0)

    def snapshot(self) -> dict[str, Tensor]:
        return {key: value.detach().clone().unsqueeze(0) for key, value in self.model.state_dict().items()}

    def keep(self, indices: list[int]) -> None:
        """Nothing to drop: when the one model is done, so is the loop."""

    def state_of(self, m: int) -> dict:
        # nn.Dropout draws from torch's global generators: they are this model's random stream.
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        return {"model": {key: value.detach().clone() for key, value in self.model.state_dict().items()},
                "optimizer": _inner(self.optimizer).state_dict(), "rng": torch.get_rng_state(), "cuda_rng": cuda}

    def load_states(self, states: list[dict]) -> None:
        (state,) = states
        self.model.load_state_dict(state["model"])
        _inner(self.optimizer).load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        if state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])


def _inner(optimizer):
    """The torch optimizer that holds the state (DecoupledDecay wraps one)."""
    return getattr(optimizer, "optimizer", optimizer)
