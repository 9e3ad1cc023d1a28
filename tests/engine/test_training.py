"""Training against theory: gradient-descent steps by hand, update counts, the Bayes error, run states."""
from __future__ import annotations

import csv
import json
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import CONFIGS, tiny_config
from dlcli.config.load import experiment_from_dict, load_experiment
from dlcli.components.data import load_dataset
from dlcli.components.models import build_model
from dlcli.layout import read_metrics, read_summary
from dlcli.engine.loop import train


def _phi(x: float) -> float:
    """The standard normal CDF."""
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


# ---- one full-batch step, by hand ----------------------------------------------------------------

LR = 0.5


def _full_batch_experiment(regularization: dict | None = None, model: dict | None = None):
    sections = {
        "optim": {"name": "sgd", "lr": LR, "batch_size": "full"},
        "model": model or {"name": "mlp", "hidden": [8]},
        "train": {"epochs": 1},
    }
    if regularization is not None:
        sections["regularization"] = regularization
    return experiment_from_dict(tiny_config(**sections))


def _manual_start(experiment):
    """The run's initial model (seeded as documented) and the data-loss gradient on the whole training set."""
    dataset = load_dataset(experiment.data, experiment.seed)
    torch.manual_seed(experiment.seed)
    model = build_model(experiment.model, dataset.input_shape, dataset.num_classes)
    x, y = torch.as_tensor(dataset.x_train), torch.as_tensor(dataset.y_train)
    logits = model(x)
    data_loss = -F.log_softmax(logits, dim=-1)[torch.arange(len(y)), y].mean()  # mean of −log ŷ[y]
    names = [name for name, _ in model.named_parameters()]
    grads = torch.autograd.grad(data_loss, [p for _, p in model.named_parameters()])
    weights = {name: p.detach().clone() for name, p in model.named_parameters()}
    return weights, dict(zip(names, grads)), data_loss.item(), len(y)


def _trained_weights(experiment, tmp_path):
    result = train(experiment, out_root=tmp_path)
    assert result.status == "completed"
    rows = read_metrics(result.run_dir)
    saved = torch.load(result.run_dir / "model.pt", weights_only=True)
    return saved, rows


def _assert_weights(saved: dict, expected: dict, atol: float = 1e-6):
    assert set(expected) <= set(saved)
    for name, value in expected.items():
        torch.testing.assert_close(saved[name], value, rtol=0, atol=atol, msg=name)


def test_full_batch_is_one_gradient_descent_step_per_epoch(tmp_path):
    experiment = _full_batch_experiment()
    w, g, initial_loss, n = _manual_start(experiment)
    saved, rows = _trained_weights(experiment, tmp_path)
    assert n == 100
    assert [row["step"] for row in rows] == [0, 1]  # one update in the epoch
    assert abs(rows[0]["train_loss"] - initial_loss) < 1e-5  # the same initial model as the run
    expected = {name: w[name] - LR * g[name] for name in w}  # W ← W − α ∇(mean loss)
    _assert_weights(saved, expected)
    # the step moved the weights measurably, so the comparison is not trivially met by the start
    assert max((expected[k] - w[k]).abs().max().item() for k in w) > 1e-3


def test_l2_in_the_loss_is_w_minus_lr_grad_minus_lr_lambda_w(tmp_path):
    lam = 0.2
    experiment = _full_batch_experiment({"l2": lam})
    w, g, _, _ = _manual_start(experiment)
    saved, _ = _trained_weights(experiment, tmp_path)
    _assert_weights(saved, {name: w[name] - LR * g[name] - LR * lam * w[name] for name in w})
    # and it differs from the unregularized step by α·λ·w
    assert max((LR * lam * w[k]).abs().max().item() for k in w) > 1e-2


def test_decoupled_weight_decay_is_w_minus_lr_grad_minus_lr_decay_w_for_sgd(tmp_path):
    decay = 0.2
    experiment = _full_batch_experiment({"weight_decay": decay})
    w, g, _, _ = _manual_start(experiment)
    saved, _ = _trained_weights(experiment, tmp_path)
    _assert_weights(saved, {name: w[name] - LR * g[name] - LR * decay * w[name] for name in w})


def test_l1_in_the_loss_is_w_minus_lr_times_grad_plus_lambda_sign_w(tmp_path):
    lam = 0.05
    experiment = _full_batch_experiment({"l1": lam})
    w, g, _, _ = _manual_start(experiment)
    saved, _ = _trained_weights(experiment, tmp_path)
    _assert_weights(saved, {name: w[name] - LR * (g[name] + lam * torch.sign(w[name])) for name in w})


# ---- the step column -----------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size, per_epoch", [("full", 1), (1, 100), (32, 4)])
def test_step_column_counts_updates(tmp_path, batch_size, per_epoch):
    experiment = experiment_from_dict(tiny_config(
        optim={"name": "sgd", "lr": 0.05, "batch_size": batch_size}, train={"epochs": 3}))
    result = train(experiment, out_root=tmp_path)
    rows = read_metrics(result.run_dir)
    assert result.summary["n_train"] == 100
    assert [row["epoch"] for row in rows] == [0, 1, 2, 3]
    assert [row["step"] for row in rows] == [0, per_epoch, 2 * per_epoch, 3 * per_epoch]
    assert result.summary["steps"] == 3 * per_epoch


# ---- the Bayes error -----------------------------------------------------------------------------


def test_linear_model_on_gaussians_reaches_the_bayes_error(tmp_path):
    experiment = load_experiment(CONFIGS / "gaussians.yaml", ["train.epochs=2", "device=cpu"])
    assert experiment.data.n_train == 20_000 and experiment.data.n_test == 20_000
    assert experiment.model.name == "linear"
    result = train(experiment, out_root=tmp_path)
    bayes = _phi(-1.0)  # Φ(−d/(2σ)) with d = 2, σ = 1: ≈ 0.1587
    assert abs(result.summary["bayes_error"] - bayes) < 1e-12
    # The test error's sampling std is sqrt(0.16·0.84/20000) ≈ 0.0026; 0.01 is about 4 of them.
    assert abs(result.summary["test_error"] - bayes) < 0.01


# ---- determinism ---------------------------------------------------------------------------------


def _metrics_without_seconds(run_dir) -> list[list[str]]:
    with open(run_dir / "metrics.csv", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    column = rows[0].index("seconds")
    return [row[:column] + row[column + 1:] for row in rows]


def test_same_seed_same_metrics_different_seed_different_metrics(tmp_path):
    config = tiny_config(model={"name": "mlp", "hidden": [8], "dropout": 0.2}, train={"epochs": 3})
    first = train(experiment_from_dict(config), out_root=tmp_path / "a")
    second = train(experiment_from_dict(config), out_root=tmp_path / "b")
    other = train(experiment_from_dict({**config, "seed": 1}), out_root=tmp_path / "c")
    a, b, c = (_metrics_without_seconds(r.run_dir) for r in (first, second, other))
    assert len(a) == 5  # header + epochs 0..3
    assert a == b
    assert a[0] == c[0] and len(c) == len(a)
    column = a[0].index("train_loss")
    assert all(x[column] != y[column] for x, y in zip(a[1:], c[1:]))


# ---- how a run ends ------------------------------------------------------------------------------


def test_divergence_stops_the_run_and_keeps_finite_epochs(tmp_path):
    experiment = experiment_from_dict(tiny_config(
        optim={"name": "sgd", "lr": 1e6, "batch_size": 32}, train={"epochs": 10}))
    result = train(experiment, out_root=tmp_path)
    assert result.status == "diverged"
    assert result.summary["message"]
    rows = read_metrics(result.run_dir)
    assert rows and rows[0]["epoch"] == 0 and len(rows) < 11
    assert [row["epoch"] for row in rows] == list(range(len(rows)))
    assert all(math.isfinite(value) for row in rows for value in row.values())
    summary = json.loads((result.run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "diverged" and summary["message"] == result.summary["message"]
    assert summary["epochs_run"] == rows[-1]["epoch"]
    model = torch.load(result.run_dir / "model.pt", weights_only=True)
    assert model and all(torch.isfinite(value).all() for value in model.values())


def test_keyboard_interrupt_keeps_completed_epochs(tmp_path):
    def on_epoch(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    experiment = experiment_from_dict(tiny_config(train={"epochs": 6}))
    result = train(experiment, out_root=tmp_path, on_epoch=on_epoch)
    assert result.status == "interrupted"
    assert [row["epoch"] for row in read_metrics(result.run_dir)] == [0, 1, 2]
    summary = read_summary(result.run_dir)
    assert summary["status"] == "interrupted"
    assert summary["epochs_run"] == 2
    assert (result.run_dir / "model.pt").is_file()
