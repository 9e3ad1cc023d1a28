"""Model sizes counted from the config alone, and the memory check that uses them before any model is
built (dlcli.components.memory)."""
from __future__ import annotations

import itertools

import pytest
import torch

from conftest import tiny_config
from dlcli.components.memory import (EVAL_CHUNK, available_bytes,
                                     model_memory_problem, parameter_copies, training_numbers)
from dlcli.components.models import buffer_count_of, build_model, parameter_count, parameter_count_of
from dlcli.config.load import experiment_from_dict
from dlcli.config.schema import ModelConfig
from dlcli.errors import UserError
from dlcli.engine.interface import EVAL_BATCH

SHAPES = [(7,), (5, 6), (2, 3, 4), (40,)]  # a table, an image, a 3-D array, a signal


@pytest.mark.parametrize("name", ["linear", "mlp", "cnn", "random_features"])
@pytest.mark.parametrize("norm, hidden", [("none", [3]), ("batch", [4, 5, 6]), ("layer", [2, 9])])
def test_parameter_count_of_equals_the_built_models(name, norm, hidden):
    linear = name in ("linear", "random_features")
    config = ModelConfig(name=name, hidden=hidden, norm="none" if linear else norm, features=11,
                         dropout=0.0 if linear else 0.3)
    for shape, outputs in itertools.product(SHAPES, (1, 3)):
        model = build_model(config, shape, outputs)
        assert parameter_count_of(config, shape, outputs) == parameter_count(model), shape
        assert buffer_count_of(config, shape, outputs) == sum(buffer.numel() for buffer in model.buffers()), shape


def experiment(**sections):
    return experiment_from_dict(tiny_config(**sections))


@pytest.mark.parametrize("optim, copies", [({"name": "sgd"}, 2), ({"name": "sgd", "momentum": 0.9}, 3),
                                           ({"name": "adam"}, 4), ({"name": "adamw"}, 4)])
def test_training_keeps_weights_gradients_and_optimizer_state(optim, copies):
    assert parameter_copies(experiment(optim={"lr": 0.01, **optim})) == copies


def test_the_estimate_counts_parameters_activations_and_data():
    exp = experiment(model={"name": "mlp", "hidden": [100]})  # 2 inputs, 2 classes, batch 32
    parameters, numbers = training_numbers(exp, (2,), 2, [100, 100])
    assert parameters == 2 * 100 + 100 + 100 * 2 + 2
    activations = max(2 * 32 * (100 + 2), 2 * 100 * 100)  # a training batch, or one evaluation chunk
    assert numbers == 2 * parameters + activations + 200 * 3


def test_a_model_is_refused_only_when_it_does_not_fit():
    exp, cpu = experiment(), torch.device("cpu")
    assert model_memory_problem(exp, (2,), 2, [100, 100], cpu) is None  # a tiny model fits anywhere
    huge = experiment(model={"name": "mlp", "hidden": [10**9]})
    problem = model_memory_problem(huge, (2,), 2, [100, 100], cpu)
    assert problem is not None and problem.startswith("model.hidden: ") and "--force" in problem


def test_force_prepares_what_the_check_refuses(monkeypatch):
    import dlcli.components.memory as memory
    from dlcli.components.prepare import prepare

    monkeypatch.setattr(memory, "available_bytes", lambda device: 1000)  # a machine with 1000 bytes free
    with pytest.raises(UserError) as refused:
        prepare(experiment())
    assert "--force" in refused.value.problems[0]
    assert prepare(experiment(), force=True).model is not None


def test_available_memory_is_read_here():
    assert available_bytes(torch.device("cpu")) > 2**20
    if torch.cuda.is_available():
        assert available_bytes(torch.device("cuda")) > 2**20


def test_the_evaluation_chunk_is_the_engines():
    assert EVAL_CHUNK == EVAL_BATCH
