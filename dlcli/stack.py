"""The models a run trains: one nn.Module with its torch optimizer, or a stack of same-shape models
trained together as one (vectorized sweeps).

Both give the training loop one interface on tensors with a leading model dimension M (M = 1 for a
single model): `data_loss(loss_fn, inputs [M, B, ...], targets [M, B]) -> [M]`, `step(data_loss, i)`,
`outputs(x [M, N, ...]) -> [M, N, out]`, `weight_norms() -> [M]`, `snapshot()` and `keep(indices)`.
A snapshot is every model's state at once ({key: [M, ...]}, the plain model's keys): one copy per
epoch, however many models; `unstack` takes one model's state out of it when that is written.

A stack holds each parameter as one tensor [M, *shape]: Linear layers run as batched matmuls,
convolutions and group norm one model at a time, and SGD, Adam and AdamW are written on those
tensors with the per-model hyper-parameters (lr, momentum, weight decay, L1, L2, dropout rate) as
tensors, following torch.optim's formulas so that each model follows the path it would alone.
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import stack_module_state

from dlcli import losses
from dlcli.loop import EVAL_BATCH
from dlcli.models import ACTIVATIONS, RandomReLUFeatures
from dlcli.optimizers import LeastSquares, build_optimizer
from dlcli.schema import Experiment

DROPOUT_STREAM = 2  # seed offset of the dropout masks' generator (augmentation uses + 1)
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, which the plain path uses


class OneModel:
    """A single nn.Module and its torch.optim optimizer: the plain path, M = 1."""

    def __init__(self, model: nn.Module, experiment: Experiment):
        self.model = model
        # The compiled module shares the model's parameters; snapshots keep the plain model's key names.
        self.forward = torch.compile(model) if experiment.train.compile else model
        regularization = experiment.regularization
        self.optimizer = build_optimizer(model.parameters(), experiment.optim, regularization.weight_decay)
        self.l1, self.l2 = regularization.l1, regularization.l2
        bf16 = experiment.train.precision == "bf16"
        self.autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
        self.lrs: list[float] = []

    @property
    def least_squares(self) -> bool:
        return isinstance(self.optimizer, LeastSquares)

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


class ModelStack:
    """M models of one architecture (an nn.Sequential of the layers below), trained as one."""

    least_squares = False

    def __init__(self, models: list[nn.Module], experiments: list[Experiment]):
        template = models[0]
        self.keys = list(template.state_dict())  # model.pt's keys and order, as the plain path saves
        self.layers = [_stacked_layer(layer, f"{name}.") for name, layer in template.named_children()]
        params, self.buffers = stack_module_state(models)  # copies: leaves that require grad
        self.params = dict(params)
        self.optimizer = experiments[0].optim.name  # the same in a group: the group key holds it
        self.hyper = {name: torch.tensor([read(e) for e in experiments], dtype=torch.float64)
                      for name, read in HYPER.items()}
        device = next(iter(self.params.values())).device
        self.rates = self.hyper["dropout"].float().to(device)
        self.penalties = {name: self.hyper[name].float().to(device) for name in ("l1", "l2")}
        self.momentum = self.hyper["momentum"].float().to(device)
        # Decided once: a penalty of zeros for the unregularized models of a stack changes nothing.
        self.regularized = bool((self.hyper["l1"] > 0).any() or (self.hyper["l2"] > 0).any())
        # Each model draws its dropout masks from its own stream, seeded by its seed: independent of
        # the other models, and the same masks whether it trains alone or in a stack.
        self.generators = [torch.Generator(device=device).manual_seed(e.seed + DROPOUT_STREAM) for e in experiments]
        self.slots: dict[str, dict[str, Tensor]] = {}  # optimizer state per parameter name
        self.updates = 0  # Adam's step count: every model of a stack steps together
        self.training = False
        self.lr = self.decay = None  # this epoch's [steps, M] tables

    def start_epoch(self, lrs: list[list[float]]) -> None:
        """Per-model lr for each update of the epoch, and the decoupled decay factors 1 − lr·decay,
        computed in float64 as torch.optim does with its Python-number lr."""
        device = self.rates.device
        table = torch.tensor(lrs, dtype=torch.float64).T  # [steps, M]
        self.lr = table.float().to(device)
        decays = self.hyper["weight_decay"]
        self.decay = (1 - table * decays).float().to(device) if bool((decays > 0).any()) else None
        self.training = True

    def data_loss(self, loss_fn: Callable, inputs: Tensor, targets: Tensor) -> Tensor:
        outputs = self._forward(inputs)
        return loss_fn(outputs.flatten(0, 1), targets.flatten(0, 1)).float().view(targets.shape[:2]).mean(1)

    def step(self, data_loss: Tensor, i: int) -> None:
        objective = data_loss + self._penalty() if self.regularized else data_loss
        names = list(self.params)
        grads = torch.autograd.grad(objective.sum(), [self.params[name] for name in names])
        self.updates += 1
        lr = self.lr[i]
        with torch.no_grad():
            for name, grad in zip(names, grads):
                param = self.params[name]
                if self.decay is not None:
                    param.mul_(_per_model(self.decay[i], param))
                UPDATES[self.optimizer](self, name, param, grad, lr)

    @torch.inference_mode()
    def outputs(self, x: Tensor) -> Tensor:
        self.training = False
        chunk = max(1, EVAL_BATCH // len(x))
        return torch.cat([self._forward(part) for part in x.split(chunk, dim=1)], dim=1)

    @torch.no_grad()
    def weight_norms(self) -> Tensor:
        return torch.sqrt(sum((p.float() ** 2).flatten(1).sum(1) for p in self.params.values()))

    def snapshot(self) -> dict[str, Tensor]:
        tensors = self.params | self.buffers
        return {key: tensors[key].detach().clone() for key in self.keys}

    def keep(self, indices: list[int]) -> None:
        """Drop the models that are done (diverged or stopped early); the others go on unchanged."""
        index = torch.tensor(indices, device=self.rates.device)
        self.params = {name: value.detach()[index].requires_grad_() for name, value in self.params.items()}
        self.buffers = {name: value[index] for name, value in self.buffers.items()}
        self.slots = {name: {key: value[index] for key, value in slots.items()} for name, slots in self.slots.items()}
        self.hyper = {name: value[indices] for name, value in self.hyper.items()}
        self.rates, self.momentum = self.rates[index], self.momentum[index]
        self.generators = [self.generators[i] for i in indices]
        self.penalties = {name: value[index] for name, value in self.penalties.items()}

    # ---- internals ----

    def _forward(self, inputs: Tensor) -> Tensor:
        for layer in self.layers:
            inputs = layer(self, inputs)
        return inputs

    def _penalty(self) -> Tensor:
        """Each model's λ₂/2 · ||W||² + λ₁ · ||W||₁, as losses.penalty computes for one."""
        l1, l2 = self.penalties["l1"], self.penalties["l2"]
        total = 0.0
        for param in self.params.values():
            flat = param.flatten(1)
            total = total + 0.5 * l2 * flat.pow(2).sum(1) + l1 * flat.abs().sum(1)
        return total


def unstack(snapshot: dict[str, Tensor], m: int) -> dict[str, Tensor]:
    """Model m's state dict out of a snapshot of all the models."""
    return {key: value[m] for key, value in snapshot.items()}


HYPER: dict[str, Callable[[Experiment], float]] = {
    "momentum": lambda e: e.optim.momentum,
    "weight_decay": lambda e: e.regularization.weight_decay,
    "l1": lambda e: e.regularization.l1,
    "l2": lambda e: e.regularization.l2,
    "dropout": lambda e: e.model.dropout,
}


def _per_model(values: Tensor, like: Tensor) -> Tensor:
    """[M] → [M, 1, 1, ...]: one value per model, broadcast over that model's entries."""
    return values.view(-1, *[1] * (like.dim() - 1))


# ---- optimizers on stacked parameters (torch.optim.SGD and Adam, per-model lr and momentum) --------


def _sgd(stack: ModelStack, name: str, param: Tensor, grad: Tensor, lr: Tensor) -> None:
    slots = stack.slots.setdefault(name, {})
    if "momentum" not in slots:
        slots["momentum"] = grad.clone()  # torch.optim.SGD's first step: the buffer is the gradient
    else:
        slots["momentum"].mul_(_per_model(stack.momentum, grad)).add_(grad)
    param.sub_(_per_model(lr, param) * slots["momentum"])


def _adam(stack: ModelStack, name: str, param: Tensor, grad: Tensor, lr: Tensor) -> None:
    beta1, beta2 = ADAM_BETAS
    slots = stack.slots.setdefault(name, {})
    if not slots:
        slots |= {"exp_avg": torch.zeros_like(param), "exp_avg_sq": torch.zeros_like(param)}
    exp_avg, exp_avg_sq = slots["exp_avg"], slots["exp_avg_sq"]
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    step_size = lr / (1 - beta1 ** stack.updates)
    denom = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2 ** stack.updates)).add_(ADAM_EPS)
    param.sub_(_per_model(step_size, param) * exp_avg / denom)


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
        return lambda stack, a: torch.baddbmm(stack.params[prefix + "bias"].unsqueeze(1), a,
                                              stack.params[prefix + "weight"].transpose(1, 2))
    if isinstance(layer, tuple(ACTIVATIONS.values())):
        return lambda stack, a: layer(a)  # elementwise: the same on any shape
    if isinstance(layer, nn.Dropout):
        return _dropout
    if isinstance(layer, nn.LayerNorm):
        return lambda stack, a: (F.layer_norm(a, layer.normalized_shape, eps=layer.eps)
                                 * stack.params[prefix + "weight"].unsqueeze(1) + stack.params[prefix + "bias"].unsqueeze(1))
    if isinstance(layer, RandomReLUFeatures):
        return lambda stack, a: torch.relu(torch.bmm(a, stack.buffers[prefix + "weight"].transpose(1, 2)))
    if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.GroupNorm)):
        functional = _functional(layer)
        # One call per model: the same kernels as a model alone, so the numbers match it exactly
        # (a vmapped, grouped convolution sums in another order); the matmuls around it still batch.
        return lambda stack, a: torch.stack([functional(a[m], stack.params[prefix + "weight"][m],
                                                        stack.params[prefix + "bias"][m]) for m in range(len(a))])
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
                           for generator in stack.generators])
    rate = _per_model(stack.rates, a)
    return a * (uniform >= rate) / (1 - rate)
