"""The convolutional networks of Nakkiran et al.'s model-wise double descent (arXiv 1912.02292,
appendix B), with their width k, and their sizes counted from the config alone.

`resnet18`: the pre-activation ResNet-18 as in kuangliu/pytorch-cifar's PreActResNet18, which their
code adapts: a 3×3 convolution to k channels; four stages of two pre-activation blocks with k, 2k, 4k
and 8k channels and strides 1, 2, 2, 2; each block norm-ReLU-conv3×3-norm-ReLU-conv3×3 plus a
shortcut (the identity, or a 1×1 convolution of the pre-activated input where the shape changes);
convolutions without bias; then global average pooling (their 4×4 average pool on 32×32 images) and
a linear layer, with no norm or ReLU between the last block and the pooling. k = 64 is the standard
ResNet-18 (11.2M parameters on CIFAR-10).

`cnn` with `model.width`: their 5-layer CNN, four conv3×3 (stride 1, bias) - norm - ReLU layers of
k, 2k, 4k and 8k channels, max-pooled by [1, 2, 2, 8], then a linear layer. The last pool is global
(their 8 on 32×32 images), so other image sizes work too. k = 64 has 1.56M parameters on CIFAR-10.

Inputs: (C, H, W) is an image of C channels, (H, W) an image of one channel, anything else a 1-D
signal (the same networks with 1-D convolutions and pools).
"""
from __future__ import annotations

import math

from torch import nn

from dlcli.components.layers import ACTIVATIONS, LayerSize, Residual, affine_size, norm_layers, norm_size
from dlcli.config.schema import ModelConfig
from dlcli.errors import UserError

RESNET_WIDTH = 64  # k of the standard ResNet-18, when model.width is not set
STAGES = ((1, 1), (2, 2), (4, 2), (8, 2))  # (channels as a multiple of k, stride of its first block)
BLOCKS_PER_STAGE = 2  # ResNet-18: 2 × 4 blocks × 2 convolutions + the first convolution + the linear layer
CONV = {1: nn.Conv1d, 2: nn.Conv2d}
MAX_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d}
GLOBAL_MAX_POOL = {1: nn.AdaptiveMaxPool1d, 2: nn.AdaptiveMaxPool2d}
GLOBAL_AVG_POOL = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d}


def conv_input(input_shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """(channels, spatial shape) a convolutional network reads the input as."""
    if len(input_shape) == 3:
        return input_shape[0], tuple(input_shape[1:])
    if len(input_shape) == 2:
        return 1, tuple(input_shape)
    return 1, (math.prod(input_shape),)


def reshape_layers(channels: int, spatial: tuple[int, ...]) -> list[nn.Module]:
    """Any input layout to [batch, channels, *spatial]."""
    return [nn.Flatten(), nn.Unflatten(1, (channels, *spatial))]


def read_out(config: ModelConfig, features: int, outputs: int) -> list[nn.Module]:
    """Dropout (when configured) and the linear layer on the flattened features."""
    return [*([nn.Dropout(config.dropout)] if config.dropout > 0 else []), nn.Linear(features, outputs)]


# ---- ResNet-18 ---------------------------------------------------------------------------------------


def resnet_width(config: ModelConfig) -> int:
    return config.width or RESNET_WIDTH


def block_plan(k: int) -> list[tuple[int, int]]:
    """(channels, stride) of each of the eight blocks."""
    return [(k * multiple, stride if block == 0 else 1)
            for multiple, stride in STAGES for block in range(BLOCKS_PER_STAGE)]


def build_resnet18(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> nn.Module:
    channels, spatial = conv_input(input_shape)
    dims, k = len(spatial), resnet_width(config)
    layers = [*reshape_layers(channels, spatial), CONV[dims](channels, k, 3, padding=1, bias=False)]
    channels = k
    for width, stride in block_plan(k):
        layers += preact_block(config, channels, width, stride, dims)
        channels = width
    layers += [GLOBAL_AVG_POOL[dims](1), nn.Flatten(), *read_out(config, channels, outputs)]
    return nn.Sequential(*layers)


def preact_block(config: ModelConfig, inputs: int, width: int, stride: int, dims: int) -> list[nn.Module]:
    """kuangliu's PreActBlock: out = conv(act(norm(conv(act(norm(x)))))) + shortcut."""
    conv = CONV[dims]

    def pre_activation(channels: int) -> list[nn.Module]:
        return [*norm_layers(config.norm, channels, dims), ACTIVATIONS[config.activation]()]

    body = [conv(inputs, width, 3, stride=stride, padding=1, bias=False), *pre_activation(width),
            conv(width, width, 3, padding=1, bias=False)]
    if stride == 1 and inputs == width:
        return [Residual(nn.Sequential(*pre_activation(inputs), *body), nn.Sequential())]
    # The projection reads the pre-activated input, as the body does; the identity reads x itself.
    projection = nn.Sequential(conv(inputs, width, 1, stride=stride, bias=False))
    return [*pre_activation(inputs), Residual(nn.Sequential(*body), projection)]


def resnet18_sizes(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> list[LayerSize]:
    channels, spatial = conv_input(input_shape)
    dims, k = len(spatial), resnet_width(config)
    kernel = 3 ** dims
    layers = [LayerSize(channels * k * kernel, 0, k * math.prod(spatial))]
    channels = k
    # Tensors of a block's output size that its backward pass keeps, about: the norms' and
    # activations' inputs and outputs, the convolutions' inputs.
    kept = 5 if config.norm != "none" else 3
    for width, stride in block_plan(k):
        spatial = tuple((size - 1) // stride + 1 for size in spatial)  # kernel 3 padding 1, or 1×1
        projection = channels * width if stride != 1 or channels != width else 0
        weights = channels * width * kernel + width * width * kernel + projection
        (first, first_buffers), (second, second_buffers) = (norm_size(config.norm, channels),
                                                            norm_size(config.norm, width))
        layers.append(LayerSize(weights + first + second, first_buffers + second_buffers,
                                kept * width * math.prod(spatial)))
        channels = width
    return [*layers, affine_size(channels, outputs)]


# ---- the 5-layer CNN of width k ----------------------------------------------------------------------


def cnn_widths(k: int) -> list[int]:
    return [k, 2 * k, 4 * k, 8 * k]


def pooled(spatial: tuple[int, ...], index: int) -> tuple[int, ...]:
    """The spatial shape after layer `index`'s pool: none, 2, 2, then global."""
    if index == 3:
        return (1,) * len(spatial)
    return spatial if index == 0 else tuple(size // 2 for size in spatial)


def _pool(index: int, dims: int) -> list[nn.Module]:
    if index == 3:
        return [GLOBAL_MAX_POOL[dims](1)]
    return [MAX_POOL[dims](2)] if index else []


def _check_poolable(spatial: tuple[int, ...]) -> None:
    if min(spatial) < 4:
        raise UserError(f"model.width: the cnn of width k max-pools twice by 2, so it needs inputs of at least 4 "
                        f"positions along each axis, and these are {'×'.join(map(str, spatial))} (use hidden "
                        "for the stride-2 cnn)")


def build_width_cnn(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> nn.Module:
    channels, spatial = conv_input(input_shape)
    _check_poolable(spatial)
    dims = len(spatial)
    layers = reshape_layers(channels, spatial)
    for index, width in enumerate(cnn_widths(config.width)):
        layers += [CONV[dims](channels, width, 3, padding=1), *norm_layers(config.norm, width, dims),
                   ACTIVATIONS[config.activation](), *_pool(index, dims)]
        channels = width
    return nn.Sequential(*layers, nn.Flatten(), *read_out(config, channels, outputs))


def width_cnn_sizes(config: ModelConfig, input_shape: tuple[int, ...], outputs: int) -> list[LayerSize]:
    channels, spatial = conv_input(input_shape)
    _check_poolable(spatial)
    kernel, layers = 3 ** len(spatial), []
    kept = 2 if config.norm != "none" else 1  # the convolution's and the activation's outputs
    for index, width in enumerate(cnn_widths(config.width)):
        parameters, buffers = norm_size(config.norm, width)
        layers.append(LayerSize(channels * width * kernel + width + parameters, buffers,
                                kept * width * math.prod(spatial)))
        spatial, channels = pooled(spatial, index), width
    return [*layers, affine_size(channels, outputs)]
