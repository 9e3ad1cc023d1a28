"""The stacked form of each layer type the registry's models are built from (dlcli.components.layers):
one call runs a layer of all M models of a stack.

Two layouts. Dense layers run on [M, B, F], as batched matmuls. Convolutional layers run in the grouped
layout [B, M·C, *spatial]: model m's channels are channel group m, so one convolution with groups=M is
the M models' convolutions in one kernel launch, the stacked weight [M, Cout, Cin, *k] viewed as
[M·Cout, Cin, *k]. Each model keeps its own batch: [M, B, C, ...] → [B, M·C, ...] puts model m's samples
in group m. Batch norm over the M·C channels is each model's own batch norm (every channel's statistics
and running averages are its own); group norm takes M times the groups, each model's in its channels;
pools and activations work channel by channel. A model's layer sequence changes layout at the
boundaries: into the grouped one before its first convolutional layer, out of it at the flatten.

On a CPU, conv nets whose activations would not fit the caches run in passes of a few models
(`models_per_pass`): a CPU gains nothing from one large launch, and loses to memory traffic.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlcli.components.layers import ACTIVATIONS, Residual
from dlcli.components.models import RandomReLUFeatures
from dlcli.engine.per_model import Stacked, per_model, stack_product

Form = Callable[[Stacked, Tensor], Tensor]  # a layer's stacked form: (the stack, activations) → activations
# Numbers in one layer's activations per pass through a conv net on a CPU (4 MB, about a core's L2
# cache): past it every layer streams its tensors through memory. 16 CNNs of width 8 on 3×32×32
# images stacked whole ran 2.4× slower than one by one; in passes of this size, as fast (benchmarks.md).
CPU_PASS_NUMBERS = 2 ** 20

GROUPED = (nn.Conv1d, nn.Conv2d, nn.BatchNorm2d, nn.GroupNorm, Residual)  # run on [B, M·C, *spatial]
POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool1d,
         nn.AdaptiveAvgPool2d)
# Channel by channel or elementwise: in whichever layout the activations are. BatchNorm1d follows a
# Conv1d (grouped) or a Linear (dense).
ANY_LAYOUT = (*POOLS, *ACTIVATIONS.values(), nn.BatchNorm1d)


def stacked_forms(model: nn.Module, prefix: str = "") -> list[Form]:
    """The stacked forms of an nn.Sequential's layers, with the layout changes between them; the
    activations come in and go out as [M, B, ...]."""
    forms, grouped = [], False
    for name, layer in model.named_children():
        wanted = isinstance(layer, GROUPED) or (grouped and isinstance(layer, ANY_LAYOUT))
        if wanted != grouped:
            forms.append(to_grouped if wanted else from_grouped)
            grouped = wanted
        forms.append(stacked_layer(layer, f"{prefix}{name}.", grouped))
    return forms + [from_grouped] if grouped else forms


def run(forms: list[Form], stack: Stacked, a: Tensor) -> Tensor:
    for form in forms:
        a = form(stack, a)
    return a


def sample_numbers(model: nn.Module) -> int | None:
    """The most numbers a layer of this conv net outputs per sample (from a run on one zero sample in
    evaluation mode, which changes nothing), or None for a model without convolutions."""
    convolutional = any(isinstance(layer, (nn.Conv1d, nn.Conv2d)) for layer in model.modules())
    reshape = next((layer for layer in model.children() if isinstance(layer, nn.Unflatten)), None)
    if not convolutional or reshape is None:
        return None
    training, most = model.training, 0
    model.eval()
    with torch.no_grad():
        a = torch.zeros(1, math.prod(reshape.unflattened_size), device=next(model.parameters()).device)
        for layer in model.children():
            a = layer(a)
            most = max(most, a.numel())
    model.train(training)
    return most


def models_per_pass(device: torch.device, numbers: int | None, samples: int, models: int) -> int:
    """How many models of a stack run in one pass on `samples` samples each: all of them, but on a CPU
    as many conv nets as keep a layer's activations within CPU_PASS_NUMBERS (at least one)."""
    if device.type != "cpu" or numbers is None:
        return models
    return max(1, min(models, CPU_PASS_NUMBERS // (numbers * samples)))


def evaluation_chunk(device: torch.device, numbers: int | None, samples: int) -> int:
    """Samples per model per evaluation pass: `samples`, but on a CPU as many as keep a conv net's
    activations within CPU_PASS_NUMBERS (in evaluation every sample is computed on its own)."""
    if device.type != "cpu" or numbers is None:
        return samples
    return max(1, min(samples, CPU_PASS_NUMBERS // numbers))


def to_grouped(stack: Stacked, a: Tensor) -> Tensor:
    """[M, B, C, *spatial] → [B, M·C, *spatial]."""
    return a.transpose(0, 1).flatten(1, 2)


def from_grouped(stack: Stacked, a: Tensor) -> Tensor:
    """[B, M·C, *spatial] → [M, B, C, *spatial]."""
    return a.unflatten(1, (stack.state.count, -1)).transpose(0, 1)


def stacked_layer(layer: nn.Module, prefix: str, grouped: bool) -> Form:
    """The stacked form of one layer (`prefix`: its state-dict keys' prefix), in the given layout."""
    if isinstance(layer, nn.Flatten):
        return lambda stack, a: a.flatten(layer.start_dim + 1, layer.end_dim)
    if isinstance(layer, nn.Unflatten):
        return lambda stack, a: a.unflatten(layer.dim + 1, layer.unflattened_size)
    if isinstance(layer, nn.Linear):
        return lambda stack, a: StackedLinear.apply(a, stack.state.params[prefix + "weight"],
                                                    stack.state.params[prefix + "bias"])
    if isinstance(layer, (*ACTIVATIONS.values(), *POOLS)):
        return lambda stack, a: layer(a)  # elementwise, or channel by channel: the same on any layout
    if isinstance(layer, nn.Dropout):
        return dropout
    if isinstance(layer, nn.LayerNorm):
        return lambda stack, a: (F.layer_norm(a, layer.normalized_shape, eps=layer.eps)
                                 * stack.state.params[prefix + "weight"].unsqueeze(1) + stack.state.params[prefix + "bias"].unsqueeze(1))
    if isinstance(layer, RandomReLUFeatures):
        return lambda stack, a: torch.relu(
            stack_product(torch.bmm, a, stack.state.buffers[prefix + "weight"].transpose(1, 2)))
    if isinstance(layer, (nn.Conv1d, nn.Conv2d)):
        return _convolution(layer, prefix)
    if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return _batch_norm(layer, prefix, grouped)
    if isinstance(layer, nn.GroupNorm):
        return lambda stack, a: F.group_norm(a, stack.state.count * layer.num_groups,
                                             stack.state.params[prefix + "weight"].flatten(),
                                             stack.state.params[prefix + "bias"].flatten(), layer.eps)
    if isinstance(layer, Residual):
        return _residual(layer, prefix)
    raise ValueError(f"{type(layer).__name__} has no stacked form")  # a model registry entry without one


class StackedLinear(torch.autograd.Function):
    """a·Wᵀ + b for M models at once (a [M, B, in], W [M, out, in], b [M, out]), with autograd's
    products for the gradients (aᵀ·g for Wᵀ: the same numbers with any CPU thread count, where gᵀ·a is
    not) but less of its per-call overhead. W's gradient comes as aᵀ·g, viewed as [M, out, in]: the
    layout a stack stores its linear weights in (ModelStack._laid_out), so the optimizer's passes read
    parameter and gradient alike."""

    @staticmethod
    def forward(ctx, a: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        # This form, not a separate setup_context: that one cost 25 µs more a call (a 64-wide layer's matmul: 50).
        ctx.save_for_backward(a, weight)
        return stack_product(torch.baddbmm, bias.unsqueeze(1), a, weight.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple:
        a, weight = ctx.saved_tensors
        wanted = ctx.needs_input_grad
        return (stack_product(torch.bmm, grad, weight) if wanted[0] else None,
                stack_product(torch.bmm, a.transpose(1, 2), grad).transpose(1, 2) if wanted[1] else None,
                grad.sum(1) if wanted[2] else None)


def _convolution(layer: nn.Conv1d | nn.Conv2d, prefix: str) -> Form:
    """M models' convolutions as one with groups=M (the layer's own groups: 1, as the registry builds)."""
    conv = F.conv1d if isinstance(layer, nn.Conv1d) else F.conv2d
    has_bias = layer.bias is not None

    def form(stack: Stacked, a: Tensor) -> Tensor:
        weight = stack.state.params[prefix + "weight"]  # [M, Cout, Cin, *k], viewed as [M·Cout, Cin, *k]
        bias = stack.state.params[prefix + "bias"].flatten() if has_bias else None
        return conv(a, weight.flatten(0, 1), bias, layer.stride, layer.padding, layer.dilation, len(weight))

    return form


def _batch_norm(layer: nn.BatchNorm1d | nn.BatchNorm2d, prefix: str, grouped: bool) -> Form:
    """Each model's batch norm: in training, its batch's statistics and an update of its running
    averages; in evaluation, its running averages. Dense activations [M, B, F] run as [B, M·F]."""
    if layer.momentum is None or not layer.track_running_stats:
        raise ValueError("batch norm with a cumulative average or no running statistics has no stacked form")

    def form(stack: Stacked, a: Tensor) -> Tensor:
        params, buffers = stack.state.params, stack.state.buffers
        flat = a if grouped else a.transpose(0, 1).flatten(1)
        if stack.training:
            buffers[prefix + "num_batches_tracked"].add_(1)
        # The running statistics [M, C] viewed as [M·C]: F.batch_norm updates them in place.
        out = F.batch_norm(flat, buffers[prefix + "running_mean"].view(-1), buffers[prefix + "running_var"].view(-1),
                           params[prefix + "weight"].flatten(), params[prefix + "bias"].flatten(), stack.training,
                           layer.momentum, layer.eps)
        return out if grouped else out.unflatten(1, (len(a), -1)).transpose(0, 1)

    return form


def _residual(layer: Residual, prefix: str) -> Form:
    """body(x) + shortcut(x), both in the grouped layout (an empty shortcut is the identity)."""
    body = [stacked_layer(inner, f"{prefix}body.{name}.", True) for name, inner in layer.body.named_children()]
    shortcut = [stacked_layer(inner, f"{prefix}shortcut.{name}.", True)
                for name, inner in layer.shortcut.named_children()]

    def form(stack: Stacked, a: Tensor) -> Tensor:
        return run(body, stack, a) + run(shortcut, stack, a)

    return form


def dropout(stack: Stacked, a: Tensor) -> Tensor:
    """Inverted dropout with each model's own rate and its own random stream (`dropout_multiplier`)."""
    if not stack.training:
        return a
    return a * dropout_multiplier(stack, a)


def dropout_multiplier(stack: Stacked, a: Tensor) -> Tensor:
    """What inverted dropout multiplies the activations `a` by: 1/(1 − rate) where a unit's draw is at
    least the model's threshold (`dropout_thresholds`), else 0; forward and backward are one
    multiplication each. The draws are 16-bit, four to each 64-bit number of the model's own stream,
    drawn straight into its rows (no stacking copy): a third of the cost of a float draw per unit, the
    largest cost of a dropout layer on a CPU. Comparing straight into the activations' dtype avoids
    bool masks, whose conversion back to floats is a slow pass there."""
    size = a[0].numel()
    draws = torch.empty(len(a), -(-size // 4), dtype=torch.int64, device=a.device)
    for row, generator in zip(draws, stack.state.dropout_streams):
        row.random_(-2 ** 63, None, generator=generator)  # the full 64-bit range: four uniform int16s
    uniform = draws.view(torch.int16)[:, :size].reshape(a.shape)
    multiplier = torch.empty(a.shape, dtype=a.dtype, device=a.device)
    rates = stack.state.rates
    torch.ge(uniform, per_model(rates["dropout_threshold"], a), out=multiplier)
    return multiplier.mul_(per_model(rates["dropout_scale"], a))


def dropout_thresholds(rates: Tensor) -> tuple[Tensor, Tensor]:
    """Each model's drop rate as the int16 its 16-bit draws must reach to keep a unit, and the scale of
    the kept units. The rate is rounded to a multiple of 2⁻¹⁶ (within 8e-6 of the one asked for), and the
    scale is 1/(1 − the rounded rate), so dropout stays unbiased."""
    dropped = torch.round(rates.double() * 2 ** 16).clamp(max=2 ** 16 - 1)  # of the 65 536 draws
    return (dropped - 2 ** 15).to(torch.int16), (2 ** 16 / (2 ** 16 - dropped)).float()
