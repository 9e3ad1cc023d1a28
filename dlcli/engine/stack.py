"""M same-shape models trained together as one (vectorized sweeps): the `Trainable` interface with
every parameter held as one tensor [M, *shape].

Linear layers run as batched matmuls, convolutions and group norm one model at a time, and SGD, Adam
and AdamW are written on the stacked tensors with the per-model hyper-parameters (lr, momentum, weight
decay, L1, L2, dropout rate) as tensors, following torch.optim's formulas so that each model follows
the path it would alone. A snapshot is every model's state at once ({key: [M, ...]}, the plain
model's keys): one copy per epoch, however many models.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import stack_module_state

from dlcli.components.models import ACTIVATIONS, RandomReLUFeatures
from dlcli.config.schema import Experiment
from dlcli.engine.interface import EVAL_BATCH

DROPOUT_STREAM = 2  # seed offset of the dropout masks' generator (augmentation uses + 1)
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, which the plain path uses


@dataclass
class PerModel:
    """Everything a stack holds per model, each with the model as its first dimension (a tensor's
    first axis, a list's entries): `select` keeps the models that go on with one filter over all of it,
    so a new field cannot be left misaligned."""

    params: dict[str, Tensor]  # leaves that require grad
    buffers: dict[str, Tensor]
    slots: dict[str, dict[str, Tensor]]  # optimizer state per parameter name
    hyper: dict[str, Tensor]  # HYPER values in float64 on the CPU, as torch.optim reads Python numbers
    rates: dict[str, Tensor]  # the same in float32 on the device, for the update and the forward pass
    dropout_streams: list[torch.Generator]

    def select(self, indices: list[int]) -> PerModel:
        return PerModel(**{name: _select(value, indices) for name, value in vars(self).items()})


def _select(value, indices: list[int]):
    if isinstance(value, dict):
        return {key: _select(item, indices) for key, item in value.items()}
    if isinstance(value, list):
        return [value[i] for i in indices]
    index = torch.tensor(indices, device=value.device)
    return value.detach()[index].requires_grad_() if value.requires_grad else value[index]


class ModelStack:
    """M models of one architecture (an nn.Sequential of the layers below), trained as one."""

    least_squares = False

    def __init__(self, models: list[nn.Module], experiments: list[Experiment]):
        template = models[0]
        self.keys = list(template.state_dict())  # model.pt's keys and order, as the plain path saves
        self.layers = [_stacked_layer(layer, f"{name}.") for name, layer in template.named_children()]
        params, buffers = stack_module_state(models)  # copies: leaves that require grad
        device = next(iter(params.values())).device
        hyper = {name: torch.tensor([read(e) for e in experiments], dtype=torch.float64) for name, read in HYPER.items()}
        # Each model draws its dropout masks from its own stream, seeded by its seed: independent of
        # the other models, and the same masks whether it trains alone or in a stack.
        streams = [torch.Generator(device=device).manual_seed(e.seed + DROPOUT_STREAM) for e in experiments]
        self.state = PerModel(dict(params), buffers, {}, hyper,
                              {name: value.float().to(device) for name, value in hyper.items()}, streams)
        self.device = device
        self.optimizer = experiments[0].optim.name  # the same in a group: the group key holds it
        # Decided once: a penalty of zeros for the unregularized models of a stack changes nothing.
        self.regularized = bool((hyper["l1"] > 0).any() or (hyper["l2"] > 0).any())
        self.updates = 0  # Adam's step count: every model of a stack steps together
        self.training = False
        self.lr = self.decay = None  # this epoch's [steps, M] tables

    def start_epoch(self, lrs: list[list[float]]) -> None:
        """Per-model lr for each update of the epoch, and the decoupled decay factors 1 − lr·decay,
        computed in float64 as torch.optim does with its Python-number lr."""
        table = torch.tensor(lrs, dtype=torch.float64).T  # [steps, M]
        self.lr = table.float().to(self.device)
        decays = self.state.hyper["weight_decay"]
        self.decay = (1 - table * decays).float().to(self.device) if bool((decays > 0).any()) else None
        self.training = True

    def data_loss(self, loss_fn: Callable, inputs: Tensor, targets: Tensor) -> Tensor:
        outputs = self._forward(inputs)
        return loss_fn(outputs.flatten(0, 1), targets.flatten(0, 1)).float().view(targets.shape[:2]).mean(1)

    def step(self, data_loss: Tensor, i: int) -> None:
        objective = data_loss + self._penalty() if self.regularized else data_loss
        params = self.state.params
        names = list(params)
        grads = torch.autograd.grad(objective.sum(), [params[name] for name in names])
        self.updates += 1
        lr = self.lr[i]
        with torch.no_grad():
            for name, grad in zip(names, grads):
                param = params[name]
                if self.decay is not None:
                    param.mul_(per_model(self.decay[i], param))
                slots = self.state.slots.setdefault(name, {})
                UPDATES[self.optimizer](slots, param, grad, lr, self.state.rates["momentum"], self.updates)

    def solve(self, x: Tensor, y: Tensor, l2: float) -> None:
        raise TypeError("a stack takes gradient steps; lstsq trains one model alone")

    @torch.inference_mode()
    def outputs(self, x: Tensor) -> Tensor:
        self.training = False
        chunk = max(1, EVAL_BATCH // len(x))
        return torch.cat([self._forward(part) for part in x.split(chunk, dim=1)], dim=1)

    @torch.no_grad()
    def weight_norms(self) -> Tensor:
        return torch.sqrt(sum((p.float() ** 2).flatten(1).sum(1) for p in self.state.params.values()))

    def snapshot(self) -> dict[str, Tensor]:
        tensors = self.state.params | self.state.buffers
        return {key: tensors[key].detach().clone() for key in self.keys}

    def keep(self, indices: list[int]) -> None:
        """Drop the models that are done (diverged or stopped early); the others go on unchanged."""
        self.state = self.state.select(indices)

    def state_of(self, m: int) -> dict:
        one = self.state.select([m])
        return {"params": {name: value.detach()[0].clone() for name, value in one.params.items()},
                "buffers": {name: value[0].clone() for name, value in one.buffers.items()},
                "slots": {name: {key: value[0].clone() for key, value in slots.items()}
                          for name, slots in one.slots.items()},
                "dropout_stream": one.dropout_streams[0].get_state(), "updates": self.updates}

    def load_states(self, states: list[dict]) -> None:
        def stacked(read) -> Tensor:
            return torch.stack([read(state) for state in states]).to(self.device)

        self.state.params = {name: stacked(lambda s: s["params"][name]).requires_grad_() for name in self.state.params}
        self.state.buffers = {name: stacked(lambda s: s["buffers"][name]) for name in self.state.buffers}
        self.state.slots = {name: {key: stacked(lambda s: s["slots"][name][key]) for key in slots}
                            for name, slots in states[0]["slots"].items()}
        for stream, state in zip(self.state.dropout_streams, states):
            stream.set_state(state["dropout_stream"])
        self.updates = states[0]["updates"]

    # ---- internals ----

    def _forward(self, inputs: Tensor) -> Tensor:
        for layer in self.layers:
            inputs = layer(self, inputs)
        return inputs

    def _penalty(self) -> Tensor:
        """Each model's λ₂/2 · ||W||² + λ₁ · ||W||₁, as losses.penalty computes for one."""
        l1, l2 = self.state.rates["l1"], self.state.rates["l2"]
        total = 0.0
        for param in self.state.params.values():
            flat = param.flatten(1)
            total = total + 0.5 * l2 * flat.pow(2).sum(1) + l1 * flat.abs().sum(1)
        return total


HYPER: dict[str, Callable[[Experiment], float]] = {
    "momentum": lambda e: e.optim.momentum,
    "weight_decay": lambda e: e.regularization.weight_decay,
    "l1": lambda e: e.regularization.l1,
    "l2": lambda e: e.regularization.l2,
    "dropout": lambda e: e.model.dropout,
}


def per_model(values: Tensor, like: Tensor) -> Tensor:
    """[M] → [M, 1, 1, ...]: one value per model, broadcast over that model's entries."""
    return values.view(-1, *[1] * (like.dim() - 1))


# ---- optimizers on stacked parameters (torch.optim.SGD and Adam, per-model lr and momentum) --------


def _sgd(slots: dict[str, Tensor], param: Tensor, grad: Tensor, lr: Tensor, momentum: Tensor, updates: int) -> None:
    if "momentum" not in slots:
        slots["momentum"] = grad.clone()  # torch.optim.SGD's first step: the buffer is the gradient
    else:
        slots["momentum"].mul_(per_model(momentum, grad)).add_(grad)
    param.sub_(per_model(lr, param) * slots["momentum"])


def _adam(slots: dict[str, Tensor], param: Tensor, grad: Tensor, lr: Tensor, momentum: Tensor, updates: int) -> None:
    beta1, beta2 = ADAM_BETAS
    if not slots:
        slots |= {"exp_avg": torch.zeros_like(param), "exp_avg_sq": torch.zeros_like(param)}
    exp_avg, exp_avg_sq = slots["exp_avg"], slots["exp_avg_sq"]
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    step_size = lr / (1 - beta1 ** updates)
    denom = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2 ** updates)).add_(ADAM_EPS)
    param.sub_(per_model(step_size, param) * exp_avg / denom)


# AdamW's decoupled decay is the stack's decay factor, applied before the update as torch.optim does.
UPDATES = {"sgd": _sgd, "adam": _adam, "adamw": _adam}


# ---- layers on stacked activations [M, B, ...] -------------------------------------------------------


def _stacked_layer(layer: nn.Module, prefix: str) -> Callable[[ModelStack, Tensor], Tensor]:
    """The stacked form of one layer of the model registry's nn.Sequential models."""
    if isinstance(layer, nn.Flatten):
        return lambda stack, a: a.flatten(layer.start_dim + 1, layer.end_dim)
    if isinstance(layer, nn.Unflatten):
        return lambda stack, a: a.unflatten(layer.dim + 1, layer.unflattened_size)
    if isinstance(layer, nn.Linear):
        return lambda stack, a: torch.baddbmm(stack.state.params[prefix + "bias"].unsqueeze(1), a,
                                              stack.state.params[prefix + "weight"].transpose(1, 2))
    if isinstance(layer, tuple(ACTIVATIONS.values())):
        return lambda stack, a: layer(a)  # elementwise: the same on any shape
    if isinstance(layer, nn.Dropout):
        return _dropout
    if isinstance(layer, nn.LayerNorm):
        return lambda stack, a: (F.layer_norm(a, layer.normalized_shape, eps=layer.eps)
                                 * stack.state.params[prefix + "weight"].unsqueeze(1) + stack.state.params[prefix + "bias"].unsqueeze(1))
    if isinstance(layer, RandomReLUFeatures):
        return lambda stack, a: torch.relu(torch.bmm(a, stack.state.buffers[prefix + "weight"].transpose(1, 2)))
    if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.GroupNorm)):
        functional = _functional(layer)
        # One call per model: the same kernels as a model alone, so the numbers match it exactly
        # (a vmapped, grouped convolution sums in another order); the matmuls around it still batch.
        return lambda stack, a: torch.stack([functional(a[m], stack.state.params[prefix + "weight"][m],
                                                        stack.state.params[prefix + "bias"][m]) for m in range(len(a))])
    raise ValueError(f"{type(layer).__name__} has no stacked form")  # a model registry entry without one


def _functional(layer: nn.Module) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    if isinstance(layer, nn.GroupNorm):
        return lambda a, weight, bias: F.group_norm(a, layer.num_groups, weight, bias, layer.eps)
    conv = F.conv1d if isinstance(layer, nn.Conv1d) else F.conv2d
    return lambda a, weight, bias: conv(a, weight, bias, layer.stride, layer.padding)


def _dropout(stack: ModelStack, a: Tensor) -> Tensor:
    """Inverted dropout with each model's own rate and its own random stream."""
    if not stack.training:
        return a
    uniform = torch.stack([torch.rand(a.shape[1:], generator=generator, device=a.device, dtype=a.dtype)
                           for generator in stack.state.dropout_streams])
    rate = per_model(stack.state.rates["dropout"], a)
    return a * (uniform >= rate) / (1 - rate)
