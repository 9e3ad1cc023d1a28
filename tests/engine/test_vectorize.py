"""Vectorized sweeps: a stack of models gives each model the numbers it gets alone.

Every knob a stack varies per model is swept twice, stacked and one by one, and the two sweeps must
agree run by run (1e-5 relative; on the CPU dense models agree exactly, and conv nets, whose grouped
convolutions sum in another order, within CONV_TOLERANCE). The stacked optimizers are checked against
torch.optim in a plain loop, and dropout's masks for independence across models.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from conftest import assert_no_traceback, assert_same_sweep, read_csv_rows, run_dirs, text, tiny_config
from dlcli.cli import app
from dlcli.config.load import experiment_from_dict
from dlcli.engine.grouping import group_key, plan_units, unit_cost
from dlcli.engine.stack import ModelStack
from dlcli.engine.stacked_layers import dropout_thresholds
from dlcli.components.prepare import prepare, prepare_all

runner = CliRunner()
WIDE = {"COLUMNS": "300"}
ON_CPU = os.environ.get("DLCLI_TEST_DEVICE", "cpu") == "cpu"
NUMBERS = ("train_loss", "train_error", "test_loss", "test_error", "weight_norm")
# Relative: a grouped convolution is not bit-identical to M convolutions; on a GPU cuDNN convolves
# in TF32 by default (tests/engine/test_stacked_convs.py).
CONV_TOLERANCE = 1e-4 if ON_CPU else 1e-2

pytestmark = pytest.mark.usefixtures("one_thread")


def sweep(config: Path, out: Path, *args: str) -> str:
    result = runner.invoke(app, ["sweep", str(config), "--out", str(out), *args], env=WIDE)
    assert_no_traceback(result)
    assert result.exit_code == 0, result.output
    return text(result.stdout)


def assert_same_numbers(expected: Path, actual: Path, rel: float = 1e-5) -> None:
    """The same runs with the same files, every metric of every epoch within `rel`."""
    _, expected_rows = read_csv_rows(expected / "runs.csv")
    _, actual_rows = read_csv_rows(actual / "runs.csv")
    assert [row["run_id"] for row in actual_rows] == [row["run_id"] for row in expected_rows]
    assert [row["status"] for row in actual_rows] == [row["status"] for row in expected_rows]
    for run_id in run_dirs(expected):
        a, b = expected / run_id, actual / run_id
        assert {p.name for p in b.iterdir()} == {p.name for p in a.iterdir()}, run_id
        _, rows_a = read_csv_rows(a / "metrics.csv")
        _, rows_b = read_csv_rows(b / "metrics.csv")
        assert len(rows_a) == len(rows_b), run_id
        for row_a, row_b in zip(rows_a, rows_b):
            for key in NUMBERS:
                assert float(row_b[key]) == pytest.approx(float(row_a[key]), rel=rel, abs=1e-7), (run_id, key)


@pytest.fixture
def config_file(write_config):
    return lambda **sections: write_config(tiny_config(**sections))


def both_ways(config: Path, tmp_path: Path, *grid: str) -> tuple[Path, Path, str]:
    """The same sweep stacked and one by one; returns both sweep folders and the stacked output."""
    stacked_output = sweep(config, tmp_path / "stacked", *grid)
    sweep(config, tmp_path / "alone", *grid, "--no-vectorize")
    return tmp_path / "alone" / "tiny", tmp_path / "stacked" / "tiny", stacked_output


MLP = {"name": "mlp", "hidden": [16, 16]}
KNOBS = {  # each knob a stack holds per model: the grid that varies it, and the sections it needs
    "seed": (["--seeds", "3"], {}),
    "lr": (["--grid", "optim.lr=0.02,0.1,0.3"], {}),
    "momentum": (["--grid", "optim.momentum=0,0.5,0.9"], {}),
    "weight_decay_sgd": (["--grid", "regularization.weight_decay=0,0.01,0.1"], {}),
    "weight_decay_adamw": (["--grid", "regularization.weight_decay=0,0.1,1"],
                           {"optim": {"name": "adamw", "lr": 0.01, "batch_size": 32}}),
    "adam_lr": (["--grid", "optim.lr=0.001,0.01"], {"optim": {"name": "adam", "lr": 0.01, "batch_size": 32}}),
    "l1": (["--grid", "regularization.l1=0,0.001,0.01"], {}),
    "l2": (["--grid", "regularization.l2=0,0.01,0.1"], {}),
    "dropout_rate": (["--grid", "model.dropout=0.1,0.3,0.5", "--seeds", "2"], {"model": {**MLP}}),
    "label_noise_draw": (["--grid", "data.label_noise=0.1,0.3", "--seeds", "2"], {}),
    "training_set_draw": (["--grid", "data.resample.index=0,1,2"],
                          {"data": {"name": "gaussians", "n_train": 60, "n_test": 100,
                                    "resample": {"method": "bootstrap"},
                                    "params": {"classes": 2, "dim": 2, "separation": 2.0, "sigma": 1.0}}}),
    "data_seed": (["--grid", "data.seed=1,2,3"], {}),
    "schedule": (["--grid", "optim.schedule.name=constant,cosine", "--grid", "optim.schedule.warmup_epochs=0,1"], {}),
    "regression_one_output": (["--seeds", "2", "--grid", "optim.lr=0.01,0.05"],  # a product of one output column
                              {"data": {"name": "sine", "n_train": 100, "n_test": 200, "params": {"dim": 1}},
                               "loss": "mse", "model": {"name": "mlp", "hidden": [16, 16], "activation": "tanh"}}),
    "cnn": (["--seeds", "2", "--grid", "optim.lr=0.05,0.1"],
            {"data": {"name": "digits"}, "model": {"name": "cnn", "hidden": [4, 8], "norm": "layer"},
             "train": {"epochs": 2}}),
}


@pytest.mark.parametrize("knob", KNOBS)
def test_each_per_model_knob_gives_the_numbers_of_one_by_one(config_file, tmp_path, knob):
    grid, sections = KNOBS[knob]
    config = config_file(**{"model": {**MLP}, **sections})
    alone, stacked, output = both_ways(config, tmp_path, *grid)
    assert "vectorized:" in output and "stacked model" in output
    if knob == "cnn":
        assert_same_numbers(alone, stacked, rel=CONV_TOLERANCE)
    elif ON_CPU:
        assert_same_sweep(alone, stacked)  # exactly: each model takes the same steps in a stack as alone
    else:
        assert_same_numbers(alone, stacked)
    _, rows = read_csv_rows(stacked / "runs.csv")
    assert len({row["train_loss"] for row in rows}) == len(rows)  # the knob (or draw) changed every run


def test_dropout_rate_differs_per_model_and_masks_are_independent():
    """Two models with the same weights and inputs: each drops its own rate of units, independently."""
    base = tiny_config(model={"name": "mlp", "hidden": [2000], "dropout": 0.1})
    experiments = [experiment_from_dict({**base, "seed": 0, "model": {**base["model"], "dropout": rate}})
                   for rate in (0.1, 0.5)] + [experiment_from_dict({**base, "seed": 1,
                                                                    "model": {**base["model"], "dropout": 0.5}})]
    models = [prepare(experiment).model for experiment in experiments]
    for model in models[1:]:
        model.load_state_dict(models[0].state_dict())
    stack = ModelStack(models, experiments)
    stack.start_epoch([[0.1]] * 3)  # training mode: dropout on
    inputs = torch.randn(1, 50, 2).expand(3, 50, 2).to(stack.device)
    hidden = stack.layers[2](stack, stack.layers[1](stack, stack.layers[0](stack, inputs)))  # Linear, ReLU
    dropped = stack.layers[3](stack, hidden)
    alive = hidden > 0
    kept = [(dropped[m][alive[m]] != 0).float().mean().item() for m in range(3)]
    assert kept[0] == pytest.approx(0.9, abs=0.02)
    assert kept[1] == pytest.approx(0.5, abs=0.02) and kept[2] == pytest.approx(0.5, abs=0.02)
    masks = (dropped != 0)[:, alive[0]].float()
    agreement = (masks[1] == masks[2]).float().mean().item()
    assert agreement == pytest.approx(0.5, abs=0.03)  # independent fair coins agree half the time
    kept_units = alive[1] & (dropped[1] != 0)
    assert torch.allclose(dropped[1][kept_units], 2 * hidden[1][kept_units])  # kept units scaled by 1/(1 − p)
    stack.outputs(inputs)  # evaluation switches dropout off
    assert torch.equal(stack.layers[3](stack, hidden), hidden)


def test_dropout_is_unbiased_at_rates_rounded_to_sixteen_bits():
    """Masks come from 16-bit draws: a rate is rounded to a multiple of 2⁻¹⁶ and kept units are scaled by
    1/(1 − the rounded rate), so E[multiplier] = 1 at every rate; a rate that rounds to 0 keeps every unit."""
    thresholds, scales = dropout_thresholds(torch.tensor([0.0, 0.5, 0.3, 1 - 1e-7], dtype=torch.float64))
    assert thresholds.tolist()[:2] == [-2 ** 15, 0] and scales.tolist()[:2] == [1.0, 2.0]
    assert scales[2].item() == pytest.approx(1 / 0.7, rel=1e-4)  # 0.3 rounded: within 2⁻¹⁷ of it
    assert thresholds[3].item() == 2 ** 15 - 1 and scales[3].item() == 2 ** 16  # the last level: 1 in 65 536
    base = tiny_config(model={"name": "mlp", "hidden": [4000], "dropout": 0.1})
    rates = (1e-6, 0.3, 0.9)  # 1e-6 is 0.07 of a level: rounds to 0
    experiments = [experiment_from_dict({**base, "model": {**base["model"], "dropout": rate}}) for rate in rates]
    stack = ModelStack([prepare(experiment).model for experiment in experiments], experiments)
    stack.start_epoch([[0.1]] * 3)
    ones = torch.ones(3, 50, 4000, device=stack.device)
    dropped = stack.layers[3](stack, ones)
    assert torch.equal(dropped[0], ones[0])
    for m, rate in enumerate(rates[1:], start=1):
        kept = (dropped[m] != 0).float().mean().item()
        spread = math.sqrt(rate * (1 - rate) / ones[m].numel())  # of the kept fraction, one standard deviation
        assert kept == pytest.approx(1 - rate, abs=4 * spread)
        assert dropped[m].mean().item() == pytest.approx(1.0, abs=4 * spread / (1 - rate))


@pytest.mark.parametrize("optimizer, extra", [
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.5, "decay": 0.05}),
    ("adam", {"decay": 0.01}),
    ("adamw", {"decay": 0.1}),
    ("sgd", {"l1": 0.01, "l2": 0.1}),
])
def test_stacked_optimizers_follow_torch_optim(optimizer, extra):
    """The stack's SGD/Adam/AdamW, decay and penalties against torch.optim in a plain PyTorch loop."""
    lrs = (0.05, 0.01) if optimizer == "sgd" else (0.01, 0.003)
    experiments = []
    for seed, lr in zip((0, 1), lrs):
        config = tiny_config(seed=seed, model={"name": "mlp", "hidden": [16]},
                             optim={"name": optimizer, "lr": lr, "batch_size": 20,
                                    **({"momentum": extra["momentum"]} if "momentum" in extra else {})},
                             regularization={"weight_decay": extra.get("decay", 0.0), "l1": extra.get("l1", 0.0),
                                             "l2": extra.get("l2", 0.0)},
                             train={"epochs": 4})
        experiments.append(experiment_from_dict(config))
    stacked = stacked_final_losses(experiments)
    for experiment, value in zip(experiments, stacked):
        assert value == pytest.approx(plain_final_loss(experiment), rel=1e-5)


def stacked_final_losses(experiments) -> list[float]:
    from dlcli.components.schedules import plan
    from dlcli.engine.batches import stack_data
    from dlcli.engine.epoch import Member, measure, train_epoch

    prepared = [prepare(experiment) for experiment in experiments]
    stack = ModelStack([point.model for point in prepared], experiments)
    data = stack_data([point.dataset for point in prepared], prepared[0].device)
    run_plan = plan(experiments[0].optim, experiments[0].train.epochs, data["x_train"].shape[1])
    members = [Member(experiment, torch.Generator().manual_seed(experiment.seed), None) for experiment in experiments]
    for epoch in range(1, experiments[0].train.epochs + 1):
        train_epoch(stack, data, members, run_plan, epoch)
    return [values["train_loss"] for values in measure(stack, data, "cross_entropy", None)]


def plain_final_loss(experiment) -> float:
    """The textbook loop: nn.Module, torch.optim, and decoupled decay w ← w(1 − lr·λ) after the gradient,
    before the step (AdamW does it itself)."""
    prepared = prepare(experiment)
    model, config = prepared.model, experiment.optim
    regularization = experiment.regularization
    x = torch.as_tensor(prepared.dataset.x_train, device=prepared.device)
    y = torch.as_tensor(prepared.dataset.y_train, device=prepared.device)
    if config.name == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    elif config.name == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=regularization.weight_decay)
    generator = torch.Generator().manual_seed(experiment.seed)
    for _ in range(experiment.train.epochs):
        for indices in torch.randperm(len(x), generator=generator).to(x.device).split(config.batch_size):
            loss = torch.nn.functional.cross_entropy(model(x[indices]), y[indices])
            for parameter in model.parameters():
                loss = loss + 0.5 * regularization.l2 * parameter.pow(2).sum() + regularization.l1 * parameter.abs().sum()
            optimizer.zero_grad()
            loss.backward()
            if config.name != "adamw" and regularization.weight_decay:
                with torch.no_grad():
                    for parameter in model.parameters():
                        parameter.mul_(1 - config.lr * regularization.weight_decay)
            optimizer.step()
    with torch.no_grad():
        return torch.nn.functional.cross_entropy(model(x), y).item()


def test_diverged_and_early_stopped_models_leave_the_stack_and_keep_their_epochs(config_file, tmp_path):
    config = config_file(model={**MLP}, train={"epochs": 8, "val_fraction": 0.3},
                         regularization={"early_stopping": {"patience": 1}})
    alone, stacked, _ = both_ways(config, tmp_path, "--grid", "optim.lr=0.05,1e4,1", "--seeds", "2")
    if ON_CPU:
        assert_same_sweep(alone, stacked)
    else:
        assert_same_numbers(alone, stacked)
    _, rows = read_csv_rows(stacked / "runs.csv")
    statuses = {row["status"] for row in rows}
    assert "diverged" in statuses and statuses & {"early_stopped", "completed"}
    for row in rows:
        _, metrics = read_csv_rows(stacked / row["run_id"] / "metrics.csv")
        assert int(row["epochs_run"]) == len(metrics) - 1 or row["status"] == "diverged"
        assert all(math.isfinite(float(metric["train_loss"])) for metric in metrics)


def test_what_has_no_stacked_form_falls_back_to_one_by_one_said_once(write_config, tmp_path):
    config = write_config(tiny_config(model={"name": "linear"}, loss="mse", train={"epochs": 1}))
    output = sweep(config, tmp_path / "out", "--grid", "optim.name=sgd,lstsq", "--grid", "regularization.l2=0,0.1")
    lines = output.splitlines()
    said = [line for line in lines if "train one by one:" in line]
    assert len(said) == 1 and "2 points" in said[0] and "optim.name: lstsq" in said[0]
    assert sum("vectorized: 2 points" in line for line in lines) == 1
    _, rows = read_csv_rows(tmp_path / "out" / "tiny" / "runs.csv")
    assert len(rows) == 4 and all(row["status"] == "completed" for row in rows)
    quiet = sweep(config, tmp_path / "again", "--grid", "optim.lr=0.05,0.1", "--no-vectorize")
    assert "vectorized" not in quiet and "train one by one" not in quiet


def test_points_group_by_shape_and_only_by_shape():
    base = tiny_config()
    def key(**changes):
        return group_key(experiment_from_dict({**base, **changes}))

    assert key(seed=3) == key() == key(optim={**base["optim"], "lr": 0.7, "momentum": 0.5})
    assert key(regularization={"l1": 0.1, "l2": 0.2, "weight_decay": 0.3}) == key()
    assert key(optim={**base["optim"], "batch_size": 16}) != key()
    assert key(model={"name": "mlp", "hidden": [9]}) != key()
    assert key(model={"name": "mlp", "hidden": [8], "dropout": 0.2}) == key(model={"name": "mlp", "hidden": [8],
                                                                                    "dropout": 0.4})
    assert key(model={"name": "mlp", "hidden": [8], "dropout": 0.2}) != key()  # a Dropout layer or none
    assert key(train={"epochs": 4}) != key()
    prepared = prepare_all([experiment_from_dict({**base, "seed": seed}) for seed in range(130)], "test")
    units, _ = plan_units(prepared, vectorize=True)
    assert sorted(len(unit) for unit in units) == [2, 64, 64]  # at most 64 models in a stack
    assert sorted(index for unit in units for index in unit) == list(range(130))
    assert plan_units(prepared, vectorize=False)[0] == [[index] for index in range(130)]


def test_work_is_ordered_by_a_cost_that_grows_with_width_models_and_epochs():
    base = tiny_config()
    def cost(count=1, hidden=(8,), epochs=3):
        experiment = experiment_from_dict({**base, "model": {"name": "mlp", "hidden": list(hidden)},
                                           "train": {"epochs": epochs}})
        return unit_cost([experiment] * count)

    assert cost(hidden=(300, 300)) > cost(hidden=(230, 230)) > cost(hidden=(16, 16)) > cost(hidden=(4, 4))
    assert cost(count=3) == 3 * cost() and cost(epochs=6) == 2 * cost()


def test_a_single_run_is_a_stack_of_one_with_the_same_numbers(write_config, tmp_path):
    """`dlcli train` of one point gives what that point gives inside a vectorized sweep."""
    config = write_config(tiny_config(model={**MLP, "dropout": 0.2}))
    sweep(config, tmp_path / "sweep", "--seeds", "3")
    result = runner.invoke(app, ["train", str(config), "--set", "seed=2", "--out", str(tmp_path / "single")],
                           env=WIDE)
    assert result.exit_code == 0, result.output
    single = next((tmp_path / "single" / "tiny").iterdir())
    summary = json.loads((single / "summary.json").read_text())
    _, metrics = read_csv_rows(single / "metrics.csv")
    stacked_dir = tmp_path / "sweep" / "tiny" / summary["config_hash"]
    _, stacked_metrics = read_csv_rows(stacked_dir / "metrics.csv")
    for row, stacked_row in zip(metrics, stacked_metrics, strict=True):
        for key in NUMBERS:
            assert float(row[key]) == pytest.approx(float(stacked_row[key]), rel=1e-5)
    weights = torch.load(single / "model.pt", weights_only=True)
    stacked_weights = torch.load(stacked_dir / "model.pt", weights_only=True)
    assert all(torch.allclose(weights[k], stacked_weights[k], rtol=1e-5, atol=1e-7) for k in weights)
