"""Models, from a registry: each builder takes the model config, the input shape and the output width.

Beside each builder, its sizes counted from the config alone (`layer_sizes`, `parameter_count_of`): a run
checks that its model fits in memory before allocating any of it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from dlcli.config.schema import ModelConfig

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}


def build_linear(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> nn.Module:
    """Logistic / softmax / linear regression: one affine map of the flattened input."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), outputs))


def build_mlp(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> nn.Module:
    """Z[l] = W[l] a[l-1] + b[l], a[l] = f(Z[l]) for each hidden width, then a linear read-out."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(input_shape)
    for hidden in config.hidden:
        layers.append(nn.Linear(width, hidden))
        layers += _norm(config.norm, hidden, dims=0)
        layers.append(ACTIVATIONS[config.activation]())
        if config.dropout > 0:
            layers.append(nn.Dropout(config.dropout))  # inverted: scales kept units by 1/(1-p)
        width = hidden
    layers.append(nn.Linear(width, outputs))
    return nn.Sequential(*layers)


def build_cnn(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> nn.Module:
    """Stride-2 convolutions (kernel 3) that halve the length (1-D) or height and width (2-D).

    A 2-D input shape (H, W) is an image; anything else is read as a 1-D signal with one channel.
    """
    spatial = input_shape if len(input_shape) == 2 else (math.prod(input_shape),)
    conv = nn.Conv2d if len(spatial) == 2 else nn.Conv1d
    layers: list[nn.Module] = [nn.Flatten(), nn.Unflatten(1, (1, *spatial))]  # one input channel
    channels = 1
    for width in config.hidden:
        layers.append(conv(channels, width, kernel_size=3, stride=2, padding=1))
        layers += _norm(config.norm, width, dims=len(spatial))
        layers.append(ACTIVATIONS[config.activation]())
        channels = width
        spatial = tuple((size + 1) // 2 for size in spatial)
    layers.append(nn.Flatten())
    if config.dropout > 0:
        layers.append(nn.Dropout(config.dropout))
    layers.append(nn.Linear(channels * math.prod(spatial), outputs))
    return nn.Sequential(*layers)


class RandomReLUFeatures(nn.Module):
    """φ(x) = max(0, W x) with W ~ N(0, 1/d) drawn once and never trained (a buffer, not a parameter)."""

    def __init__(self, inputs: int, features: int):
        super().__init__()
        self.register_buffer("weight", torch.randn(features, inputs) / math.sqrt(inputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ self.weight.T)


def build_random_features(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> nn.Module:
    """Belkin et al.'s random-features model: fixed random ReLU features, a trainable linear head."""
    inputs = math.prod(input_shape)
    return nn.Sequential(nn.Flatten(), RandomReLUFeatures(inputs, config.features),
                         nn.Linear(config.features, outputs))


def _norm(kind: str, width: int, dims: int) -> list[nn.Module]:
    if kind == "batch":
        return [(nn.BatchNorm1d, nn.BatchNorm1d, nn.BatchNorm2d)[dims](width)]
    if kind == "layer":
        # Over features for an MLP; over channels and positions (one group) for a CNN.
        return [nn.LayerNorm(width) if dims == 0 else nn.GroupNorm(1, width)]
    return []


MODELS: dict[str, Callable[[ModelConfig, tuple[int, ...], int], nn.Module]] = {
    "linear": build_linear,
    "mlp": build_mlp,
    "cnn": build_cnn,
    "random_features": build_random_features,
}


def build_model(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> nn.Module:
    return MODELS[config.name](config, input_shape, outputs)


def parameter_count(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


# ---- sizes from the config alone: the memory check runs before anything is allocated --------------


@dataclass(frozen=True)
class LayerSize:
    """One layer (with its norm, activation and dropout) of the model a config builds."""

    parameters: int  # trained numbers
    buffers: int  # fixed numbers: random features' weights, batch norm's running statistics
    outputs: int  # numbers it produces per sample (what the backward pass keeps)


def layer_sizes(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> list[LayerSize]:
    """The layers `build_model` makes for this config, counted without building them."""
    return SIZES[config.name](config, input_shape, outputs)


def parameter_count_of(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> int:
    """`parameter_count(build_model(config, input_shape, outputs))`, without building the model."""
    return sum(layer.parameters for layer in layer_sizes(config, input_shape, outputs))


def buffer_count_of(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> int:
    """The numbers in the built model's buffers, without building it."""
    return sum(layer.buffers for layer in layer_sizes(config, input_shape, outputs))


def _affine(inputs: int, outputs: int) -> LayerSize:
    return LayerSize(inputs * outputs + outputs, 0, outputs)


def _norm_size(kind: str, channels: int) -> tuple[int, int]:
    """(parameters, buffers) of the norm after a layer of this many channels: scale and shift, and
    batch norm's running mean, variance and batch count."""
    return {"batch": (2 * channels, 2 * channels + 1), "layer": (2 * channels, 0)}.get(kind, (0, 0))


def _linear_sizes(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> list[LayerSize]:
    return [_affine(math.prod(input_shape), outputs)]


def _mlp_sizes(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> list[LayerSize]:
    layers, width = [], math.prod(input_shape)
    for hidden in config.hidden:
        parameters, buffers = _norm_size(config.norm, hidden)
        layers.append(LayerSize(width * hidden + hidden + parameters, buffers, hidden))
        width = hidden
    return [*layers, _affine(width, outputs)]


def _cnn_sizes(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> list[LayerSize]:
    spatial = input_shape if len(input_shape) == 2 else (math.prod(input_shape),)
    layers, channels = [], 1
    for width in config.hidden:
        spatial = tuple((size + 1) // 2 for size in spatial)
        parameters, buffers = _norm_size(config.norm, width)
        kernel = channels * width * 3 ** len(spatial) + width
        layers.append(LayerSize(kernel + parameters, buffers, width * math.prod(spatial)))
        channels = width
    return [*layers, _affine(channels * math.prod(spatial), outputs)]


def _random_features_sizes(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> list[LayerSize]:
    features = LayerSize(0, config.features * math.prod(input_shape), config.features)
    return [features, _affine(config.features, outputs)]


SIZES: dict[str, Callable[[ModelConfig, tuple[int, ...], int], list[LayerSize]]] = {
    "linear": _linear_sizes,
    "mlp": _mlp_sizes,
    "cnn": _cnn_sizes,
    "random_features": _random_features_sizes,
}

