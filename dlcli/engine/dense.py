"""Stacks of dense models (a ModelStack of nn.Sequentials of linear layers, elementwise activations and
dropout: the registry's linear models and MLPs) trained with the backward pass written out, and each
model's parameters, gradients and optimizer slots in one flat row of an [M, P] buffer.

Why: a small MLP's training step is a few dozen small kernels, and on a CPU autograd's bookkeeping
around them (a graph node, saved tensors and a Python call per layer) cost more than their arithmetic.
The backward here calls the kernels autograd's formulas call (bmm, threshold_backward,
_log_softmax_backward_data, ...) in the same order, so the gradients are autograd's bit for bit; the
optimizer then updates every parameter of every model with one pass per formula over the buffer, not
one per parameter tensor. benchmarks.md (s) gives the times.

`state.params` and `state.slots` are views of the buffers (a linear layer's weights in the stack's
transposed layout), so evaluation, snapshots and checkpoints read them as any ModelStack's; keeping some
models or loading states rebuilds the buffers.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from dlcli.config.schema import Experiment
from dlcli.engine.per_model import per_model, stack_product
from dlcli.engine.stack import UPDATES, ModelStack
from dlcli.engine.stacked_layers import dropout_multiplier

aten = torch.ops.aten
Backward = Callable[[Tensor], Tensor]  # the gradient at a layer's output → the one at its input
# Activations whose gradient autograd computes from their output, and the kernel it uses.
FROM_OUTPUT: dict[type, Callable[[Tensor, Tensor], Tensor]] = {
    nn.ReLU: lambda grad, out: aten.threshold_backward.default(grad, out, 0),
    nn.Tanh: aten.tanh_backward.default,
    nn.Sigmoid: aten.sigmoid_backward.default,
}
# Their in-place forms, for an activation of a linear layer's output (a new tensor no backward reads).
IN_PLACE: dict[type, Callable[[Tensor], Tensor]] = {
    nn.ReLU: torch.relu_,
    nn.Tanh: torch.tanh_,
    nn.Sigmoid: torch.sigmoid_,
}
DENSE = (nn.Flatten, nn.Linear, nn.Dropout, nn.GELU, *FROM_OUTPUT)


def is_dense(model: nn.Module, experiments: list[Experiment]) -> bool:
    """Whether a stack of these models trains as a DenseStack: an nn.Sequential of dense layers (linear
    ones with a bias), and no L1 or L2 penalty (autograd's terms of the objective)."""
    return (isinstance(model, nn.Sequential) and any(isinstance(layer, nn.Linear) for layer in model)
            and all(type(layer) in DENSE and getattr(layer, "bias", True) is not None for layer in model)
            and not any(e.regularization.l1 or e.regularization.l2 for e in experiments))


class DenseStack(ModelStack):
    """A ModelStack of dense models whose training step needs no autograd graph."""

    def __init__(self, models: list[nn.Module], experiments: list[Experiment]):
        super().__init__(models, experiments)
        self.loss = experiments[0].loss
        children = list(models[0].named_children())
        self.first = next(i for i, (_, layer) in enumerate(children) if isinstance(layer, nn.Linear))
        self.forms = [dense_form(layer, f"{name}.", input_grad=i > self.first,
                                 after_linear=i > 0 and isinstance(children[i - 1][1], nn.Linear))
                      for i, (name, layer) in enumerate(children)]
        self.tape: list[Backward] = []
        self.output_grad: Tensor | None = None
        self._flatten()

    def data_loss(self, loss_fn: Callable, inputs: Tensor, targets: Tensor) -> Tensor:
        """The forward pass, keeping what the backward needs, and the loss's gradient at the outputs."""
        with torch.no_grad():
            a, self.tape = inputs, []
            for form in self.forms:
                a, backward = form(self, a)
                self.tape.append(backward)
            loss, self.output_grad = loss_and_gradient(self.loss, loss_fn, a, targets)
        return loss

    @torch.no_grad()
    def step(self, data_loss: Tensor, i: int) -> None:
        grad = self.output_grad
        for backward in reversed(self.tape[self.first:]):
            grad = backward(grad)
        self.tape, self.output_grad = [], None
        self.updates += 1
        if self.decay is not None:
            self.params.mul_(per_model(self.decay[i], self.params))
        momentum = self.state.rates["momentum"]
        UPDATES[self.optimizer](self.slots, self.params, self.grads, self.lr[i], momentum, self.updates)
        if self.slots and not self.state.slots:  # the optimizer's first step made them
            self._view_slots()

    def _forward(self, inputs: Tensor) -> Tensor:
        """The forward pass alone (evaluation: `outputs`), through the same forms, with no tape kept."""
        a = inputs
        for form in self.forms:
            a, _ = form(self, a)
        return a

    def keep(self, indices: list[int]) -> None:
        super().keep(indices)
        self._flatten()

    def load_states(self, states: list[dict]) -> None:
        super().load_states(states)
        self._flatten()

    def _flatten(self) -> None:
        """The buffers from `state`'s tensors, and `state`'s tensors made views of them."""
        state = self.state
        self.params, state.params = flattened(state.params, self.transposed)
        self.grads = torch.empty_like(self.params)
        self.grad_views = flat_views(self.grads, state.params, self.transposed)
        keys = next(iter(state.slots.values()), {}).keys()
        self.slots = {key: flattened({name: state.slots[name][key] for name in state.params}, self.transposed)[0]
                      for key in keys}
        self._view_slots()

    def _view_slots(self) -> None:
        views = {key: flat_views(buffer, self.state.params, self.transposed) for key, buffer in self.slots.items()}
        self.state.slots = ({name: {key: views[key][name] for key in views} for name in self.state.params}
                            if views else {})


def flat_views(buffer: Tensor, like: dict[str, Tensor], transposed: set[str]) -> dict[str, Tensor]:
    """Views of the rows of `buffer` [M, P] shaped as `like`'s tensors [M, ...], one after another in
    each row; a weight named in `transposed` ([M, out, in]) stored as [M, in, out]."""
    views, offset = {}, 0
    for name, value in like.items():
        shape, size = value.shape[1:], value[0].numel()
        part = buffer[:, offset:offset + size]
        views[name] = (part.view(len(buffer), shape[1], shape[0]).transpose(1, 2) if name in transposed
                       else part.view(len(buffer), *shape))
        offset += size
    return views


def flattened(values: dict[str, Tensor], transposed: set[str]) -> tuple[Tensor, dict[str, Tensor]]:
    """A new [M, P] buffer holding `values`, and its views (`flat_views`)."""
    first = next(iter(values.values()))
    buffer = first.new_empty(len(first), sum(value[0].numel() for value in values.values()))
    views = flat_views(buffer, values, transposed)
    for name, value in values.items():
        views[name].copy_(value.detach())
    return buffer, views


def dense_form(layer: nn.Module, prefix: str, input_grad: bool, after_linear: bool) -> Callable:
    """A layer's training form: (stack, a) → (its output, its backward). `input_grad`: whether the
    backward returns the gradient at the layer's input (not for the first linear layer's);
    `after_linear`: whether its input is a linear layer's output, which an activation may overwrite."""
    if isinstance(layer, nn.Linear):
        return _linear(prefix, input_grad)
    if isinstance(layer, nn.Flatten):
        def flatten(stack: DenseStack, a: Tensor) -> tuple[Tensor, Backward]:
            return a.flatten(layer.start_dim + 1, layer.end_dim), lambda grad: grad.reshape(a.shape)
        return flatten
    if isinstance(layer, nn.Dropout):
        def dropout(stack: DenseStack, a: Tensor) -> tuple[Tensor, Backward]:
            if not stack.training:
                return a, lambda grad: grad
            multiplier = dropout_multiplier(stack, a)
            return a * multiplier, lambda grad: grad * multiplier
        return dropout
    if isinstance(layer, nn.GELU):
        def gelu(stack: DenseStack, a: Tensor) -> tuple[Tensor, Backward]:
            return layer.forward(a), lambda grad: aten.gelu_backward.default(grad, a, approximate=layer.approximate)
        return gelu
    from_output = FROM_OUTPUT[type(layer)]
    forward = IN_PLACE[type(layer)] if after_linear else layer.forward

    def activation(stack: DenseStack, a: Tensor) -> tuple[Tensor, Backward]:
        out = forward(a)
        return out, lambda grad: from_output(grad, out)
    return activation


def _linear(prefix: str, input_grad: bool) -> Callable:
    """a·Wᵀ + b, and in the backward aᵀ·g into the weight's gradient (stored as [M, in, out], as
    dlcli.engine.stacked_layers.StackedLinear makes it), g summed over the batch into the bias's, g·W."""
    def linear(stack: DenseStack, a: Tensor) -> tuple[Tensor, Backward]:
        weight, bias = stack.state.params[prefix + "weight"], stack.state.params[prefix + "bias"]

        def backward(grad: Tensor) -> Tensor:
            # Into a new tensor, then copied: bmm into the buffer's strided view may take another
            # kernel, which sums in another order for some shapes.
            weight_grad = stack_product(torch.bmm, a.transpose(1, 2), grad)
            stack.grad_views[prefix + "weight"].transpose(1, 2).copy_(weight_grad)
            torch.sum(grad, 1, out=stack.grad_views[prefix + "bias"])
            return stack_product(torch.bmm, grad, weight) if input_grad else grad
        return stack_product(torch.baddbmm, bias.unsqueeze(1), a, weight.transpose(1, 2)), backward
    return linear


def loss_and_gradient(loss: str, loss_fn: Callable, outputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Each model's mean loss on its batch [M], and the gradient of their sum at the outputs: as
    autograd computes it through `loss_fn`, whose kernels cross-entropy calls directly (a third of
    the time)."""
    if loss == "cross_entropy":
        return _cross_entropy(outputs, targets)
    leaf = outputs.detach().requires_grad_()
    with torch.enable_grad():
        mean = loss_fn(leaf.flatten(0, 1), targets.flatten(0, 1)).float().view(targets.shape[:2]).mean(1)
        (grad,) = torch.autograd.grad(mean.sum(), leaf)
    return mean.detach(), grad


def _cross_entropy(outputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """F.cross_entropy's kernels forward (log-softmax, then the negative log-likelihood, per sample)
    and backward, from the mean's gradient 1/B at each sample."""
    models, batch = targets.shape[:2]
    flat_targets = targets.flatten(0, 1)
    log_p = torch.log_softmax(outputs.flatten(0, 1), 1)
    nll, total_weight = aten.nll_loss_forward.default(log_p, flat_targets, None, 0, -100)  # 0: no reduction
    mean_grad = torch.ones(models * batch, device=outputs.device).div_(batch)
    grad = aten.nll_loss_backward.default(mean_grad, log_p, flat_targets, None, 0, -100, total_weight)
    grad = aten._log_softmax_backward_data.default(grad, log_p, 1, log_p.dtype)
    return nll.view(models, batch).mean(1), grad.view(outputs.shape)
