"""The few layer types every registry model is built from, and how a config's layer is counted.

A model is an nn.Sequential of known layers (linear, convolution, norm, activation, pooling, dropout,
flatten) and `Residual` blocks of them: a stack of models (dlcli.engine.stacked_layers) has a stacked
form for each of these and nothing else, so a new model is a new composition, not a new layer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import Tensor, nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}


class Residual(nn.Module):
    """body(x) + shortcut(x): a ResNet block. An empty `shortcut` Sequential is the identity."""

    def __init__(self, body: nn.Sequential, shortcut: nn.Sequential):
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + self.shortcut(x)


def norm_layers(kind: str, width: int, dims: int) -> list[nn.Module]:
    """The norm after a layer of `width` features (dims 0) or channels (dims 1 or 2: signals, images)."""
    if kind == "batch":
        return [(nn.BatchNorm1d, nn.BatchNorm1d, nn.BatchNorm2d)[dims](width)]
    if kind == "layer":
        # Over features for an MLP; over channels and positions (one group) for a CNN.
        return [nn.LayerNorm(width) if dims == 0 else nn.GroupNorm(1, width)]
    return []


@dataclass(frozen=True)
class LayerSize:
    """One layer (with its norm, activation and dropout) of the model a config builds."""

    parameters: int  # trained numbers
    buffers: int  # fixed numbers: random features' weights, batch norm's running statistics
    outputs: int  # numbers it produces per sample (what the backward pass keeps)


def affine_size(inputs: int, outputs: int) -> LayerSize:
    """A linear layer's weights and biases."""
    return LayerSize(inputs * outputs + outputs, 0, outputs)


def norm_size(kind: str, channels: int) -> tuple[int, int]:
    """(parameters, buffers) of the norm after a layer of this many channels: scale and shift, and
    batch norm's running mean, variance and batch count."""
    return {"batch": (2 * channels, 2 * channels + 1), "layer": (2 * channels, 0)}.get(kind, (0, 0))
