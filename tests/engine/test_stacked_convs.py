"""Conv nets in a stack: ResNet-18 and the CNN of width k train on images, and a stack of conv nets
(grouped convolutions, each model's own batch norm) gives each model the numbers it gets alone.

A grouped convolution sums in another order than one model's own convolution, so stacked and one-by-one
sweeps agree within TOLERANCE (relative, every logged number of every epoch), not bit for bit. Both
sweeps run the stacked layers (one by one is a stack of one), so each model of a stack is also checked
against an nn.Module trained with torch.optim.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import assert_no_traceback, read_csv_rows, run_dirs, text, tiny_config
from dlcli.cli import app
from dlcli.components.losses import LOSSES
from dlcli.components.models import build_model
from dlcli.components.prepare import prepare
from dlcli.config.load import experiment_from_dict
from dlcli.engine import stacked_layers
from dlcli.engine.stack import ModelStack

runner = CliRunner()
NUMBERS = ("train_loss", "train_error", "test_loss", "test_error", "weight_norm")
ON_CPU = os.environ.get("DLCLI_TEST_DEVICE", "cpu") == "cpu"
# Relative. On the CPU they differ by about 1e-7 after two epochs; on a GPU cuDNN convolves in TF32
# (a 10-bit mantissa) by default, with other algorithms for grouped convolutions.
TOLERANCE = 1e-4 if ON_CPU else 1e-2

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """Two classes of 3×8×8 images told apart by the mean of their first channel."""
    rng = np.random.default_rng(0)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 2, n)
        x = rng.normal(size=(n, 3, 8, 8)).astype(np.float32)
        x[:, 0] += (2 * y - 1)[:, None, None] * 0.8
        return x, y

    path = tmp_path_factory.mktemp("images") / "images.npz"
    (x, y), (x_test, y_test) = draw(40), draw(24)
    np.savez(path, x=x, y=y, x_test=x_test, y_test=y_test)
    return path


def image_config(images: Path, model: dict, **sections) -> dict:
    defaults = {"data": {"name": "npz", "params": {"path": str(images)}},
                "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "batch_size": 16}, "train": {"epochs": 2}}
    return tiny_config(model=model, **{**defaults, **sections})


def sweep(config: Path, out: Path, *args: str) -> str:
    result = runner.invoke(app, ["sweep", str(config), "--out", str(out), *args], env={"COLUMNS": "300"})
    assert_no_traceback(result)
    assert result.exit_code == 0, result.output
    return text(result.stdout)


def assert_close_sweeps(expected: Path, actual: Path, rel: float) -> None:
    """The same runs with the same statuses, every logged number of every epoch within `rel`."""
    _, expected_rows = read_csv_rows(expected / "runs.csv")
    _, actual_rows = read_csv_rows(actual / "runs.csv")
    assert [(row["run_id"], row["status"]) for row in actual_rows] == \
        [(row["run_id"], row["status"]) for row in expected_rows]
    for run_id in run_dirs(expected):
        _, rows_a = read_csv_rows(expected / run_id / "metrics.csv")
        _, rows_b = read_csv_rows(actual / run_id / "metrics.csv")
        assert len(rows_a) == len(rows_b) > 1, run_id
        for row_a, row_b in zip(rows_a, rows_b):
            for key in NUMBERS:
                assert float(row_b[key]) == pytest.approx(float(row_a[key]), rel=rel, abs=1e-6), (run_id, key)
        weights_a = torch.load(expected / run_id / "model.pt", weights_only=True)
        weights_b = torch.load(actual / run_id / "model.pt", weights_only=True)
        assert weights_a.keys() == weights_b.keys()
        for key in weights_a:  # batch norm's running statistics and batch counts included
            assert torch.allclose(weights_b[key].double(), weights_a[key].double(), rtol=10 * rel, atol=1e-5), key


WIDTH_CNN = {"name": "cnn", "width": 2, "norm": "batch"}
RESNET = {"name": "resnet18", "width": 1, "norm": "batch"}
KNOBS = {  # each knob a stack holds per model, on conv nets: the grid, the model and its other sections
    "seed": (["--seeds", "2"], WIDTH_CNN, {}),
    "lr": (["--grid", "optim.lr=0.02,0.1"], WIDTH_CNN, {}),
    "weight_decay": (["--grid", "regularization.weight_decay=0,0.05"], WIDTH_CNN, {}),
    "dropout": (["--grid", "model.dropout=0.2,0.5"], {**WIDTH_CNN, "dropout": 0.2}, {}),
    "layer_norm": (["--seeds", "2"], {**WIDTH_CNN, "norm": "layer"}, {}),
    "resnet18_batch_norm": (["--grid", "optim.lr=0.02,0.1"], RESNET, {}),
    "stride_cnn_batch_norm": (["--seeds", "2"], {"name": "cnn", "hidden": [4, 8], "norm": "batch"},
                              {"data": {"name": "digits", "n_train": 60, "n_test": 40}}),
    "mlp_batch_norm": (["--grid", "optim.lr=0.05,0.2"], {"name": "mlp", "hidden": [16], "norm": "batch"},
                       {"data": tiny_config()["data"]}),
}


@pytest.mark.parametrize("knob", KNOBS)
def test_stacked_conv_nets_give_the_numbers_of_one_by_one(images, write_config, tmp_path, knob):
    grid, model, sections = KNOBS[knob]
    config = write_config(image_config(images, model, **sections))
    output = sweep(config, tmp_path / "stacked", *grid)
    sweep(config, tmp_path / "alone", *grid, "--no-vectorize")
    assert "vectorized: 2 points train as 1 stacked model" in output and "one by one:" not in output
    assert_close_sweeps(tmp_path / "alone" / "tiny", tmp_path / "stacked" / "tiny", TOLERANCE)
    _, rows = read_csv_rows(tmp_path / "stacked" / "tiny" / "runs.csv")
    assert len({row["train_loss"] for row in rows}) == len(rows)  # the knob changed every run


@pytest.mark.parametrize("model", [{"name": "resnet18", "width": 2, "norm": "batch"},
                                   {"name": "resnet18", "width": 1, "norm": "none"},
                                   {"name": "cnn", "width": 3, "norm": "batch", "dropout": 0.1},
                                   {"name": "cnn", "width": 2, "norm": "layer"}])
def test_resnet18_and_the_cnn_of_width_k_learn_images(images, write_config, tmp_path, model):
    config = write_config(image_config(images, model, train={"epochs": 4}))
    result = runner.invoke(app, ["train", str(config), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    run = next((tmp_path / "tiny").iterdir())
    _, metrics = read_csv_rows(run / "metrics.csv")
    losses = [float(row["train_loss"]) for row in metrics]
    assert len(losses) == 5 and losses[-1] < losses[0]  # epoch 0 (the initial model), then 4 epochs
    weights = torch.load(run / "model.pt", weights_only=True)
    plain = build_model(experiment_from_dict(image_config(images, model)).model, (3, 8, 8), 2)
    assert weights.keys() == plain.state_dict().keys()
    assert all(weights[key].shape == value.shape for key, value in plain.state_dict().items())


@pytest.mark.parametrize("pass_numbers", [None, 1])
def test_each_model_in_a_stack_trains_as_a_plain_module_with_torch_optim(images, monkeypatch, pass_numbers):
    """Three CNNs with batch norm (their own seeds and lrs) in one stack, against each trained alone
    as an nn.Module with torch.optim.SGD on the same batches: outputs and running statistics agree.
    On a CPU large conv nets run in passes of a few models: here all at once, then one by one."""
    if pass_numbers is not None:
        monkeypatch.setattr(stacked_layers, "CPU_PASS_NUMBERS", pass_numbers)
    experiments = [experiment_from_dict(image_config(images, WIDTH_CNN, seed=seed,
                                                     optim={"name": "sgd", "lr": lr, "batch_size": 10}))
                   for seed, lr in ((0, 0.05), (1, 0.1), (2, 0.02))]
    prepared = [prepare(experiment) for experiment in experiments]
    models = [point.model for point in prepared]
    stack = ModelStack(models, experiments)
    x = torch.as_tensor(prepared[0].dataset.x_train, device=stack.device)
    y = torch.as_tensor(prepared[0].dataset.y_train, device=stack.device)
    generator = torch.Generator().manual_seed(5)
    batches = [torch.randperm(len(x), generator=generator).view(-1, 10).to(stack.device) for _ in range(3)]
    optimizers = [torch.optim.SGD(model.parameters(), lr=e.optim.lr) for model, e in zip(models, experiments)]
    stack.start_epoch([[e.optim.lr] * 4 for e in experiments])
    for step in range(4):
        indices = torch.stack([order[step] for order in batches])  # each model its own batch
        loss = stack.data_loss(LOSSES["cross_entropy"], x[indices], y[indices])
        stack.step(loss, step)
        for model, optimizer, index in zip(models, optimizers, indices):
            model.train()
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[index]), y[index]).backward()
            optimizer.step()
    stacked = stack.outputs(x.expand(3, *x.shape))
    snapshot = stack.snapshot()
    for m, model in enumerate(models):
        model.eval()
        with torch.no_grad():
            assert torch.allclose(stacked[m], model(x), rtol=TOLERANCE, atol=1e-5), m
        for key, value in model.state_dict().items():
            assert torch.allclose(snapshot[key][m].double(), value.double(), rtol=TOLERANCE, atol=1e-6), (m, key)
    assert snapshot["3.num_batches_tracked"].tolist() == [4, 4, 4]
