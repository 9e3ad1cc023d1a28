"""ResNet-18 and the CNN of width k (Nakkiran et al., arXiv 1912.02292): their sizes counted from the
config alone match the built models, the sizes the paper gives, and the input layouts they read."""
from __future__ import annotations

import itertools

import pytest
import torch

from conftest import tiny_config
from dlcli.components.models import buffer_count_of, build_model, parameter_count, parameter_count_of
from dlcli.config.load import experiment_from_dict
from dlcli.config.schema import ModelConfig
from dlcli.errors import UserError

SHAPES = [(3, 32, 32), (1, 28, 28), (8, 8), (40,), (2, 9, 13)]  # CIFAR, MNIST, digits, a signal, odd sizes


@pytest.mark.parametrize("name, width", [("resnet18", 1), ("resnet18", 3), ("cnn", 1), ("cnn", 5)])
@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
def test_parameter_and_buffer_counts_of_equal_the_built_models(name, width, norm):
    config = ModelConfig(name=name, width=width, norm=norm, dropout=0.2)
    for shape, outputs in itertools.product(SHAPES, (1, 10)):
        model = build_model(config, shape, outputs)
        assert parameter_count_of(config, shape, outputs) == parameter_count(model), shape
        assert buffer_count_of(config, shape, outputs) == sum(buffer.numel() for buffer in model.buffers()), shape
        assert model(torch.randn(2, *shape)).shape == (2, outputs)


def test_the_standard_widths_have_the_papers_sizes_on_cifar():
    resnet = parameter_count_of(ModelConfig(name="resnet18", norm="batch"), (3, 32, 32), 10)  # width null: 64
    assert 11.1e6 < resnet < 11.2e6  # ResNet-18: 11.2M
    assert parameter_count_of(ModelConfig(name="cnn", width=64, norm="batch"), (3, 32, 32), 10) == 1_558_026
    widths = [parameter_count_of(ModelConfig(name="resnet18", width=k, norm="batch"), (3, 32, 32), 10)
              for k in (1, 2, 4, 8, 16, 32, 64)]
    assert all(4 * smaller * 0.9 < larger < 4 * smaller for smaller, larger in zip(widths[2:], widths[3:]))


def test_images_are_read_with_their_channels_and_signals_with_one():
    stride_cnn = ModelConfig(name="cnn", hidden=[4])
    assert build_model(stride_cnn, (3, 10, 10), 2)[2].weight.shape == (4, 3, 3, 3)  # (C, H, W): C channels
    assert build_model(stride_cnn, (10, 10), 2)[2].weight.shape == (4, 1, 3, 3)  # (H, W): one channel
    assert build_model(stride_cnn, (10,), 2)[2].weight.shape == (4, 1, 3)  # a signal
    resnet = build_model(ModelConfig(name="resnet18", width=2), (3, 16, 16), 2)
    assert resnet[2].weight.shape == (2, 3, 3, 3) and resnet[-1].in_features == 16  # 8k features


def test_the_cnn_of_width_k_needs_room_for_its_pools():
    config = ModelConfig(name="cnn", width=2)
    build_model(config, (1, 4, 4), 2)
    for shape in [(3, 3, 8), (2, 2)]:
        with pytest.raises(UserError, match="model.width"):
            build_model(config, shape, 2)
        with pytest.raises(UserError, match="model.width"):
            parameter_count_of(config, shape, 2)


def test_width_is_for_conv_nets_only():
    with pytest.raises(UserError, match="model.width: sets the channels of cnn and resnet18, not of mlp"):
        experiment_from_dict(tiny_config(model={"name": "mlp", "hidden": [4], "width": 3}))
    experiment_from_dict(tiny_config(model={"name": "resnet18", "hidden": []}))
    experiment_from_dict(tiny_config(model={"name": "cnn", "width": 3, "hidden": []}))
