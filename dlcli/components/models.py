"""Models, from a registry: each builder takes the model config, the input shape and the output width.
The conv nets of width k (ResNet-18, the 5-layer CNN) are in dlcli.components.conv_models; every model is
built from the layer types of dlcli.components.layers.

Beside each builder, its sizes counted from the config alone (`layer_sizes`, `parameter_count_of`): a run
checks that its model fits in memory before allocating any of it.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from dlcli.components.conv_models import (build_resnet18, build_width_cnn, conv_input, reshape_layers,
                                          resnet18_sizes, width_cnn_sizes)
from dlcli.components.layers import ACTIVATIONS, LayerSize, affine_size, norm_layers, norm_size
from dlcli.config.schema import ModelConfig


def build_linear(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> nn.Module:
    """Logistic / softmax / linear regression: one affine map of the flattened input."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), outputs))


def build_mlp(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> nn.Module:
    """Z[l] = W[l] a[l-1] + b[l], a[l] = f(Z[l]) for each hidden width, then a linear read-out."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(input_shape)
    for hidden in config.hidden:
        layers.append(nn.Linear(width, hidden))
        layers += norm_layers(config.norm, hidden, dims=0)
        layers.append(ACTIVATIONS[config.activation]())
        if config.dropout > 0:
            layers.append(nn.Dropout(config.dropout))  # inverted: scales kept units by 1/(1-p)
        width = hidden
    layers.append(nn.Linear(width, outputs))
    return nn.Sequential(*layers)


def build_cnn(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> nn.Module:
    """Stride-2 convolutions (kernel 3) that halve the length (1-D) or height and width (2-D); with
    `model.width`, Nakkiran et al.'s 5-layer CNN of that width instead (dlcli.components.conv_models).

    (C, H, W) is an image of C channels, (H, W) one of one channel; anything else a 1-D signal.
    """
    if config.width is not None:
        return build_width_cnn(config, input_shape, outputs)
    channels, spatial = conv_input(input_shape)
    conv = nn.Conv2d if len(spatial) == 2 else nn.Conv1d
    layers = reshape_layers(channels, spatial)
    for width in config.hidden:
        layers.append(conv(channels, width, kernel_size=3, stride=2, padding=1))
        layers += norm_layers(config.norm, width, dims=len(spatial))
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


MODELS: dict[str, Callable[[ModelConfig, tuple[int, ...], int], nn.Module]] = {
    "linear": build_linear,
    "mlp": build_mlp,
    "cnn": build_cnn,
    "random_features": build_random_features,
    "resnet18": build_resnet18,
}


def build_model(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> nn.Module:
    return MODELS[config.name](config, input_shape, outputs)


def parameter_count(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


# ---- sizes from the config alone: the memory check runs before anything is allocated --------------


def layer_sizes(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> list[LayerSize]:
    """The layers `build_model` makes for this config, counted without building them."""
    return SIZES[config.name](config, input_shape, outputs)


def parameter_count_of(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> int:
    """`parameter_count(build_model(config, input_shape, outputs))`, without building the model."""
    return sum(layer.parameters for layer in layer_sizes(config, input_shape, outputs))


def buffer_count_of(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> int:
    """The numbers in the built model's buffers, without building it."""
    return sum(layer.buffers for layer in layer_sizes(config, input_shape, outputs))


def _linear_sizes(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> list[LayerSize]:
    return [affine_size(math.prod(input_shape), outputs)]


def _mlp_sizes(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> list[LayerSize]:
    layers, width = [], math.prod(input_shape)
    for hidden in config.hidden:
        parameters, buffers = norm_size(config.norm, hidden)
        layers.append(LayerSize(width * hidden + hidden + parameters, buffers, hidden))
        width = hidden
    return [*layers, affine_size(width, outputs)]


def _cnn_sizes(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> list[LayerSize]:
    if config.width is not None:
        return width_cnn_sizes(config, input_shape, outputs)
    channels, spatial = conv_input(input_shape)
    layers = []
    for width in config.hidden:
        spatial = tuple((size + 1) // 2 for size in spatial)
        parameters, buffers = norm_size(config.norm, width)
        kernel = channels * width * 3 ** len(spatial) + width
        layers.append(LayerSize(kernel + parameters, buffers, width * math.prod(spatial)))
        channels = width
    return [*layers, affine_size(channels * math.prod(spatial), outputs)]


def _random_features_sizes(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> list[LayerSize]:
    features = LayerSize(0, config.features * math.prod(input_shape), config.features)
    return [features, affine_size(config.features, outputs)]


SIZES: dict[str, Callable[[ModelConfig, tuple[int, ...], int], list[LayerSize]]] = {
    "linear": _linear_sizes,
    "mlp": _mlp_sizes,
    "cnn": _cnn_sizes,
    "random_features": _random_features_sizes,
    "resnet18": resnet18_sizes,
}

