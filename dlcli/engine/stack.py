"""M same-shape models trained together as one (vectorized sweeps): the `Trainable` interface with
every parameter held as one tensor [M, *shape].

Linear layers run as batched matmuls, convolutional layers as grouped convolutions, batch norm as each
model's own (dlcli.engine.stacked_layers), and SGD, Adam and AdamW are written on the stacked tensors
with the per-model hyper-parameters (lr, momentum, weight decay, L1, L2, dropout rate) as tensors,
following torch.optim's formulas so that each model follows the path it would alone. A snapshot is
every model's state at once ({key: [M, ...]}, the plain model's keys): one copy per epoch, however many
models.

Dense models match one model alone exactly on the CPU. A grouped convolution sums in another order than
one model's own convolution, so a stacked conv net matches the same model trained alone (a stack of
one: plain convolutions) to float32 rounding, not bit for bit: the tests allow 1e-4 relative on every
logged number on the CPU (where they differ by about 1e-7 after two epochs) and 1e-2 on a GPU, where
cuDNN convolves in TF32 by default.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn
from torch.func import stack_module_state

from dlcli.config.schema import Experiment
from dlcli.engine.interface import EVAL_BATCH
from dlcli.engine.per_model import ModelsPart, PerModel, per_model
from dlcli.engine.stacked_layers import (dropout_thresholds, evaluation_chunk, models_per_pass, run, sample_numbers,
                                         stacked_forms)

DROPOUT_STREAM = 2  # seed offset of the dropout masks' generator (augmentation uses + 1)
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, which the plain path uses


class ModelStack:
    """M models of one architecture (an nn.Sequential of the layers dlcli.engine.stacked_layers has
    stacked forms for), trained as one."""

    least_squares = False

    def __init__(self, models: list[nn.Module], experiments: list[Experiment]):
        template = models[0]
        self.keys = list(template.state_dict())  # model.pt's keys and order, as the plain path saves
        self.layers = stacked_forms(template)
        self.sample_numbers = sample_numbers(template)  # None: no convolutions
        params, buffers = stack_module_state(models)  # copies: leaves that require grad
        self.transposed = {f"{name}.weight" for name, layer in template.named_modules() if isinstance(layer, nn.Linear)}
        params = {name: self._laid_out(name, value).requires_grad_() for name, value in params.items()}
        device = next(iter(params.values())).device
        hyper = {name: torch.tensor([read(e) for e in experiments], dtype=torch.float64) for name, read in HYPER.items()}
        # Each model draws its dropout masks from its own stream, seeded by its seed: independent of
        # the other models, and the same masks whether it trains alone or in a stack.
        streams = [torch.Generator(device=device).manual_seed(e.seed + DROPOUT_STREAM) for e in experiments]
        rates = {name: value.float().to(device) for name, value in hyper.items()}
        rates["dropout_threshold"], rates["dropout_scale"] = dropout_thresholds(hyper["dropout"].to(device))
        self.state = PerModel(params, buffers, {}, hyper, rates, streams)
        self.device = device
        self.optimizer = experiments[0].optim.name  # the same in a group: the group key holds it
        # Decided once: a penalty of zeros for the unregularized models of a stack changes nothing.
        self.regularized = bool((hyper["l1"] > 0).any() or (hyper["l2"] > 0).any())
        self.updates = 0  # Adam's step count: every model of a stack steps together
        self.training = False
        self.lr = self.decay = None  # this epoch's [steps, M] tables

    @property
    def single_threaded(self) -> bool:
        """A dense model alone runs on one thread. In a stack of several, the threads share out the
        models, and each model's products and sums run on one; a model alone on several would have the
        BLAS and torch's long sums split across them, in an order that depends on their count (a batch of
        10, a sum over 40 000 weights). On one thread it computes what it computes in a stack, whatever
        `train.threads` is. Conv nets keep their threads: their convolutions sum in an order that
        depends on the count in a stack too (dlcli.components.threads)."""
        return self.state.count == 1 and self.sample_numbers is None and self.device.type == "cpu"

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
        chunk = evaluation_chunk(self.device, self.sample_numbers, max(1, EVAL_BATCH // len(x)))
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

        self.state.params = {name: self._laid_out(name, stacked(lambda s: s["params"][name])).requires_grad_()
                             for name in self.state.params}
        self.state.buffers = {name: stacked(lambda s: s["buffers"][name]) for name in self.state.buffers}
        self.state.slots = {name: {key: self._laid_out(name, stacked(lambda s: s["slots"][name][key])) for key in slots}
                            for name, slots in states[0]["slots"].items()}
        for stream, state in zip(self.state.dropout_streams, states):
            stream.set_state(state["dropout_stream"])
        self.updates = states[0]["updates"]

    # ---- internals ----

    def _laid_out(self, name: str, value: Tensor) -> Tensor:
        """A linear layer's weights [M, out, in] stored as their transpose [M, in, out] (viewed back): the
        layout of its gradient aᵀ·g (dlcli.engine.stacked_layers.StackedLinear), so that the optimizer's
        passes read parameter, gradient and slots alike; mixed layouts made each pass several times
        slower on a CPU. Any other tensor as it is."""
        if name not in self.transposed:
            return value.detach()
        return value.detach().transpose(1, 2).contiguous().transpose(1, 2)

    def _forward(self, inputs: Tensor) -> Tensor:
        """All models at once, or on a CPU conv nets in passes of a few models (`models_per_pass`)."""
        models = len(inputs)
        size = models_per_pass(self.device, self.sample_numbers, inputs.shape[1], models)
        if size == models:
            return run(self.layers, self, inputs)
        return torch.cat([run(self.layers, ModelsPart(self.state.part(start, start + size), self.training),
                              inputs[start:start + size]) for start in range(0, models, size)])

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


# ---- optimizers on stacked parameters (torch.optim.SGD and Adam, per-model lr and momentum) --------


def _sgd(slots: dict[str, Tensor], param: Tensor, grad: Tensor, lr: Tensor, momentum: Tensor, updates: int) -> None:
    """buf ← momentum·buf + grad, then p ← p − lr·buf, each one pass in place with no [M, ...]
    temporary (a fresh lr·buf was the update's costliest pass). addcmul may fuse the multiply and the
    add (FMA), rounding once where torch.optim.SGD rounds twice: the same for every model of a stack,
    so a model's numbers still do not depend on the stack it trains in."""
    if "momentum" not in slots:
        slots["momentum"] = grad.clone()  # torch.optim.SGD's first step; laid out as the parameter is
    else:
        torch.addcmul(grad, slots["momentum"], per_model(momentum, grad), out=slots["momentum"])
    param.addcmul_(slots["momentum"], per_model(lr, param), value=-1)


def _adam(slots: dict[str, Tensor], param: Tensor, grad: Tensor, lr: Tensor, momentum: Tensor, updates: int) -> None:
    beta1, beta2 = ADAM_BETAS
    if not slots:
        slots |= {"exp_avg": torch.zeros_like(param), "exp_avg_sq": torch.zeros_like(param)}
    exp_avg, exp_avg_sq = slots["exp_avg"], slots["exp_avg_sq"]
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    step_size = lr / (1 - beta1 ** updates)
    denom = exp_avg_sq.sqrt().div_(math.sqrt(1 - beta2 ** updates)).add_(ADAM_EPS)
    param.addcdiv_(per_model(step_size, param) * exp_avg, denom, value=-1)  # p − step·m/denom, rounded as such


# AdamW's decoupled decay is the stack's decay factor, applied before the update as torch.optim does.
UPDATES = {"sgd": _sgd, "adam": _adam, "adamw": _adam}
