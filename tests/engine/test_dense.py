"""Dense stacks (dlcli.engine.dense): the backward written out gives autograd's gradients bit for bit, so
a DenseStack trains exactly as an autograd ModelStack of the same models does, for each loss,
activation and optimizer it takes, and on after models leave it or its states are reloaded; and only
what it can train goes to it."""
from __future__ import annotations

import pytest
import torch

from conftest import tiny_config
from dlcli.components.prepare import prepare
from dlcli.components.schedules import plan
from dlcli.config.load import experiment_from_dict
from dlcli.engine.batches import select_data, stack_data
from dlcli.engine.dense import DenseStack
from dlcli.engine.epoch import Member, train_epoch
from dlcli.engine.grouping import build_models
from dlcli.engine.stack import ModelStack

pytestmark = pytest.mark.usefixtures("one_thread")

GAUSSIANS = {"name": "gaussians", "n_train": 90, "n_test": 30,
             "params": {"classes": 3, "dim": 4, "separation": 2.0, "sigma": 1.0}}
CASES = {
    "cross-entropy, relu, dropout, sgd with momentum and decay": (
        {"loss": "cross_entropy", "model": {"name": "mlp", "hidden": [12, 12], "dropout": 0.3}},
        {"optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "batch_size": 16},
         "regularization": {"weight_decay": 0.01}}),
    "mse, tanh, adam": (
        {"loss": "mse", "model": {"name": "mlp", "hidden": [12], "activation": "tanh"}},
        {"optim": {"name": "adam", "lr": 0.01, "batch_size": 16}}),
    "bce, sigmoid, dropout, adamw": (
        {"loss": "bce", "model": {"name": "mlp", "hidden": [12], "activation": "sigmoid", "dropout": 0.2},
         "data": {**GAUSSIANS, "params": {**GAUSSIANS["params"], "classes": 2}}},
        {"optim": {"name": "adamw", "lr": 0.01, "batch_size": 16}, "regularization": {"weight_decay": 0.1}}),
    "cross-entropy, gelu, plain sgd, a linear model beside": (
        {"loss": "cross_entropy", "model": {"name": "mlp", "hidden": [12, 8], "activation": "gelu"}},
        {"optim": {"name": "sgd", "lr": 0.3, "batch_size": 32}}),
}


def experiments(shared: dict, per_model: dict, lrs=(1.0, 0.5, 0.2)) -> list:
    """Three models of one shape with their own seeds and lrs (the optimizer section's lr scaled)."""
    config = tiny_config(**{"data": GAUSSIANS, **shared, **per_model}, train={"epochs": 3})
    return [experiment_from_dict({**config, "seed": seed, "optim": {**config["optim"], "lr": config["optim"]["lr"] * lr}})
            for seed, lr in enumerate(lrs)]


class Unit:
    """A stack of the prepared models (of `kind`), their members and data: trained an epoch at a time."""

    def __init__(self, kind: type, runs: list):
        self.points = [prepare(experiment) for experiment in runs]
        self.stack = kind([point.model for point in self.points], runs)
        self.members = [Member(e, torch.Generator().manual_seed(e.seed), None) for e in runs]
        self.data = stack_data([point.dataset for point in self.points], self.points[0].device)
        self.plan = plan(runs[0].optim, runs[0].train.epochs, self.data["x_train"].shape[1])

    def epoch(self, epoch: int) -> torch.Tensor:
        return train_epoch(self.stack, self.data, self.members, self.plan, epoch).batch_losses

    def keep(self, indices: list[int]) -> None:
        self.stack.keep(indices)
        self.members = [self.members[i] for i in indices]
        self.data = select_data(self.data, indices)


def assert_same_state(a: ModelStack, b: ModelStack) -> None:
    one, other = a.snapshot(), b.snapshot()
    assert one.keys() == other.keys()
    for key in one:
        assert torch.equal(one[key], other[key]), key
    for m in range(a.state.count):
        slots_a, slots_b = a.state_of(m)["slots"], b.state_of(m)["slots"]
        assert slots_a.keys() == slots_b.keys()
        for name in slots_a:
            for slot in slots_a[name]:
                assert torch.equal(slots_a[name][slot], slots_b[name][slot]), (name, slot)


@pytest.mark.parametrize("case", CASES)
def test_a_dense_stack_trains_exactly_as_autograd_does(case):
    runs = experiments(*CASES[case])
    dense, autograd = Unit(DenseStack, runs), Unit(ModelStack, runs)
    assert type(dense.stack) is DenseStack and type(autograd.stack) is ModelStack
    for epoch in (1, 2):
        assert torch.equal(dense.epoch(epoch), autograd.epoch(epoch))
        assert_same_state(dense.stack, autograd.stack)
    for unit in (dense, autograd):  # the first model diverged, say: the others go on
        unit.keep([1, 2])
    assert torch.equal(dense.epoch(3), autograd.epoch(3))
    assert_same_state(dense.stack, autograd.stack)
    dense_out = dense.stack.outputs(dense.data["x_test"])
    assert torch.equal(dense_out, autograd.stack.outputs(autograd.data["x_test"]))
    assert torch.isfinite(dense_out).all() and dense.stack.state.count == 2


def test_a_dense_stack_reloaded_from_its_states_goes_on_as_if_never_stopped():
    runs = experiments(*CASES["cross-entropy, relu, dropout, sgd with momentum and decay"])
    whole, stopped = Unit(DenseStack, runs), Unit(DenseStack, runs)
    for unit in (whole, stopped):
        unit.epoch(1)
    states = [stopped.stack.state_of(m) for m in range(3)]
    resumed = Unit(DenseStack, runs)
    resumed.stack.load_states(states)
    resumed.members = stopped.members  # their shuffles go on where they stood
    assert torch.equal(resumed.epoch(2), whole.epoch(2))
    assert_same_state(resumed.stack, whole.stack)


@pytest.mark.parametrize("model, regularization, expected", [
    ({"name": "mlp", "hidden": [8]}, {}, DenseStack),
    ({"name": "linear"}, {}, DenseStack),
    ({"name": "mlp", "hidden": [8]}, {"l2": 0.01}, ModelStack),  # the penalty is autograd's term
    ({"name": "mlp", "hidden": [8], "norm": "batch"}, {}, ModelStack),
    ({"name": "cnn", "hidden": [4]}, {}, ModelStack),
])
def test_dense_models_train_dense_and_the_others_through_autograd(model, regularization, expected):
    config = tiny_config(data=GAUSSIANS, model=model, regularization=regularization)
    points = [prepare(experiment_from_dict({**config, "seed": seed})) for seed in (0, 1)]
    assert type(build_models(points)) is expected


@pytest.mark.parametrize("n, k, m", [(32, 16, 1), (32, 1, 16), (1, 16, 16), (100, 16, 16), (64, 40, 10)])
def test_a_model_alone_multiplies_as_its_row_of_a_stack_does(n, k, m):
    """A lone model's products with a dimension of 1 (one output, one input feature, a batch of one
    sample) take other BLAS kernels than a stack's on some CPUs; stack_product makes them the same."""
    from dlcli.engine.per_model import stack_product

    generator = torch.Generator().manual_seed(0)
    bias, a, b = (torch.randn(3, *shape, generator=generator) for shape in ((1, m), (n, k), (k, m)))
    assert torch.equal(stack_product(torch.bmm, a[:1], b[:1]), torch.bmm(a, b)[:1])
    assert torch.equal(stack_product(torch.baddbmm, bias[:1], a[:1], b[:1]), torch.baddbmm(bias, a, b)[:1])
    weight_grad = stack_product(torch.bmm, a[:1].transpose(1, 2), a[:1])  # aᵀ·g, the backward's form
    assert torch.equal(weight_grad, torch.bmm(a.transpose(1, 2), a)[:1])
