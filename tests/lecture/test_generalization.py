"""Generalization against theory: random-features double descent, exact least squares and ridge,
regularization on an overfitting setup, early stopping with restore, the validation split,
augmentation of training batches only, and the logged weight norm."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from conftest import text, tiny_config
from dlcli.cli import app
from dlcli.analysis.compare import axis_value, interpolation_threshold, load_runs
from dlcli.config.load import experiment_from_dict
from dlcli.components.data import hold_out, load_dataset
from dlcli.errors import UserError
from dlcli.analysis.evaluate import evaluate_run
from dlcli.engine.augment import augment_stream, make_augment, shift
from dlcli.components.models import build_model
from dlcli.layout import read_metrics, read_summary
from dlcli.engine.loop import train

runner = CliRunner()

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- helpers -------------------------------------------------------------------------------------


def invoke(*args):
    return runner.invoke(app, [str(arg) for arg in args])


def single_run_dir(out: Path, name: str) -> Path:
    runs = [path for path in (out / name).iterdir() if path.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def header_of(run_dir: Path) -> list[str]:
    with open(run_dir / "metrics.csv", encoding="utf-8") as file:
        return next(csv.reader(file))


def saved_state(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True)


def rows_without_seconds(rows: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{key: value for key, value in row.items() if key != "seconds"} for row in rows]


# ---- random-features double descent --------------------------------------------------------------

N_TRAIN_DD = 200  # mnist1d num_samples 1000 with train_split 0.2
FEATURE_GRID = [20, 50, 100, 150, 180, 200, 220, 250, 400, 800]


def rff_config(features: int, l2: float = 0.0, name: str = "rff") -> dict:
    """A reduced configs/double_descent_rff.yaml: 200 training and 800 test MNIST-1D signals."""
    config = tiny_config(
        name=name,
        data={"name": "mnist1d", "params": {"num_samples": 1000, "train_split": 0.2}},
        model={"name": "random_features", "features": features},
        loss="mse",
        optim={"name": "lstsq"},
        train={"epochs": 1},
    )
    if l2:
        config["regularization"] = {"l2": l2}
    return config


@pytest.fixture(scope="module")
def double_descent(one_thread, tmp_path_factory):
    out = tmp_path_factory.mktemp("double_descent")
    summaries = {}
    for features in FEATURE_GRID:
        result = train(experiment_from_dict(rff_config(features)), out_root=out)
        assert result.status == "completed"
        summaries[features] = result.summary
    return out, summaries


def test_random_features_test_mse_peaks_at_the_interpolation_threshold(double_descent):
    _, summaries = double_descent
    assert {s["n_train"] for s in summaries.values()} == {N_TRAIN_DD}
    test_mse = {n_features: s["test_loss"] for n_features, s in summaries.items()}
    peak = max(test_mse, key=test_mse.get)
    assert 0.8 * N_TRAIN_DD <= peak <= 1.2 * N_TRAIN_DD, test_mse
    assert test_mse[peak] >= 10 * min(test_mse.values()), test_mse
    # the second descent: past the threshold the test error falls again, monotonically on this grid
    beyond = [test_mse[n_features] for n_features in FEATURE_GRID if n_features >= peak]
    assert all(a > b for a, b in zip(beyond, beyond[1:])), beyond


def test_random_features_interpolate_exactly_from_n_features_on(double_descent):
    _, summaries = double_descent
    for n_features, summary in summaries.items():
        if n_features >= N_TRAIN_DD:  # N + 1 columns (with the bias) >= n rows: the system is solvable
            assert summary["train_loss"] < 1e-6, (n_features, summary["train_loss"])
        else:  # fewer unknowns than equations: generic targets are not fitted
            assert summary["train_loss"] > 1e-2, (n_features, summary["train_loss"])


def test_interpolation_threshold_of_the_sweep_is_n(double_descent):
    out, _ = double_descent
    frame = load_runs([out])
    assert len(frame) == len(FEATURE_GRID)
    assert interpolation_threshold(frame, "model.features") == N_TRAIN_DD


def test_axis_value_reads_numbers_and_first_list_entries():
    assert axis_value(200) == 200.0
    assert axis_value(0.5) == 0.5
    assert axis_value("[64, 32]") == 64.0
    assert axis_value("full") is None
    assert axis_value(True) is None
    assert axis_value(float("nan")) is None


# ---- least squares: exact minimum-norm solution and ridge ----------------------------------------


def _design_and_targets(run_dir: Path, config: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """[φ(x), 1] from the saved fixed features and the standardized training inputs, one-hot targets."""
    experiment = experiment_from_dict(config)
    dataset = load_dataset(experiment.data, experiment.seed)
    state = saved_state(run_dir)
    x = dataset.x_train.reshape(len(dataset.x_train), -1).astype(np.float64)
    w = state["1.weight"].numpy().astype(np.float64)
    features = np.maximum(x @ w.T, 0.0)
    design = np.hstack([features, np.ones((len(x), 1))])
    targets = np.eye(dataset.num_classes)[dataset.y_train]
    return design, targets, state


def _head(state: dict) -> np.ndarray:
    """The read-out as one matrix: rows are the feature weights, the last row the bias."""
    return np.vstack([state["2.weight"].numpy().T, state["2.bias"].numpy()[None, :]]).astype(np.float64)


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("features", [100, 400])
def test_lstsq_is_the_minimum_norm_least_squares_solution(tmp_path, features):
    config = rff_config(features)
    result = train(experiment_from_dict(config), out_root=tmp_path)
    design, targets, state = _design_and_targets(result.run_dir, config)
    assert design.shape == (N_TRAIN_DD, features + 1)
    expected = np.linalg.pinv(design) @ targets  # the minimum-norm minimizer of ||A w − Y||
    got = _head(state)
    assert _relative(got, expected) < 1e-5, _relative(got, expected)
    if features + 1 > N_TRAIN_DD:
        # underdetermined: it interpolates, and among all interpolants it is the one in A's row space
        # (an interpolant plus a null-space direction would fit as well but be longer)
        np.testing.assert_allclose(design @ got, targets, atol=1e-4)
        projection = design.T @ np.linalg.pinv(design.T)  # onto the row space of A
        assert _relative(projection @ got, got) < 1e-4
        null = np.linalg.svd(design)[2][-1]  # a null-space direction
        assert np.linalg.norm(design @ null) < 1e-8
        assert np.linalg.norm(got + null[:, None]) > np.linalg.norm(got)
    else:  # overdetermined: the normal equations AᵀA w = AᵀY hold
        residual = design.T @ (design @ got - targets)
        assert np.abs(residual).max() < 1e-3 * np.abs(design.T @ targets).max()
    # the logged training MSE is (1/n)Σ||A w − y||² of that solution
    mse = float(((design @ expected - targets) ** 2).sum(1).mean())
    assert read_metrics(result.run_dir)[-1]["train_loss"] == pytest.approx(mse, rel=1e-3, abs=1e-6)


@pytest.mark.parametrize("features, l2", [(400, 0.01), (100, 0.1)])
def test_lstsq_with_l2_is_ridge_regression_with_the_documented_scaling(tmp_path, features, l2):
    config = rff_config(features, l2=l2)
    result = train(experiment_from_dict(config), out_root=tmp_path)
    design, targets, state = _design_and_targets(result.run_dir, config)
    n, columns = design.shape
    # minimize (1/n)||A W − Y||² + (l2/2)||W||² over weights and bias:
    # gradient (2/n)Aᵀ(A W − Y) + l2 W = 0  ⇔  (AᵀA + (n·l2/2) I) W = AᵀY
    ridge = np.linalg.solve(design.T @ design + n * l2 / 2 * np.eye(columns), design.T @ targets)
    got = _head(state)
    assert _relative(got, ridge) < 1e-5, _relative(got, ridge)
    # the penalty mattered: the ridge solution is clearly shorter than the least-squares one
    plain = np.linalg.pinv(design) @ targets
    assert np.linalg.norm(ridge) < 0.9 * np.linalg.norm(plain)
    assert _relative(got, plain) > 0.05
    mse = float(((design @ ridge - targets) ** 2).sum(1).mean())
    assert read_metrics(result.run_dir)[-1]["train_loss"] == pytest.approx(mse, rel=1e-3)


# ---- regularization on an overfitting setup ------------------------------------------------------


def overfit_config(regularization: dict | None = None, dropout: float = 0.0, name: str = "overfit") -> dict:
    """Two moons, 60 training samples (60 more held out) with 20% of their labels flipped, clean test
    labels, a wide MLP and 100 full-batch Adam steps: it fits the flipped labels."""
    config = tiny_config(
        name=name,
        data={"name": "moons", "n_train": 120, "n_test": 1000, "label_noise": 0.2, "params": {"noise": 0.2}},
        model={"name": "mlp", "hidden": [128, 128], "dropout": dropout},
        optim={"name": "adam", "lr": 0.01, "batch_size": "full"},
        train={"epochs": 100, "val_fraction": 0.5},
    )
    if regularization is not None:
        config["regularization"] = regularization
    return config


VARIANTS = {
    "none": overfit_config(),
    "l2": overfit_config({"l2": 0.03}),
    "dropout": overfit_config(dropout=0.5),
    "early_stopping": overfit_config({"early_stopping": {"patience": 20}}),
    "l1": overfit_config({"l1": 0.001}),
}


@pytest.fixture(scope="module")
def regularized(one_thread, tmp_path_factory):
    out = tmp_path_factory.mktemp("regularization")
    return {label: train(experiment_from_dict(config), out_root=out / label) for label, config in VARIANTS.items()}


def test_the_unregularized_wide_mlp_overfits(regularized):
    base = regularized["none"].summary
    assert base["status"] == "completed"
    assert base["n_train"] == 60 and base["n_test"] == 1000
    # with 12 of 60 labels flipped, a train error under 0.1 means it fitted most of the flipped ones
    assert base["train_error"] < 0.1
    assert base["gap"] > 0.1


@pytest.mark.parametrize("label", ["l2", "dropout", "early_stopping"])
def test_regularization_lowers_test_error_or_gap(regularized, label):
    base, summary = regularized["none"].summary, regularized[label].summary
    assert summary["n_train"] == base["n_train"] and summary["n_test"] == base["n_test"]
    assert summary["status"] == ("early_stopped" if label == "early_stopping" else "completed")
    margin = 0.02  # about two standard errors of a test error on 1000 samples
    lower_test = summary["test_error"] <= base["test_error"] - margin
    lower_gap = summary["gap"] <= base["gap"] - margin
    assert lower_test or lower_gap, (label, summary["test_error"], summary["gap"], base["test_error"], base["gap"])


def _small_fraction(state: dict[str, torch.Tensor], threshold: float = 1e-3) -> float:
    values = torch.cat([value.flatten() for value in state.values() if value.is_floating_point()])
    return float((values.abs() < threshold).double().mean())


def test_l1_raises_sparsity(regularized):
    base, l1 = regularized["none"], regularized["l1"]
    assert l1.status == "completed"
    assert l1.summary["sparsity"] > base.summary["sparsity"] + 0.1
    for result in (base, l1):  # sparsity is the fraction of saved weights with |w| < 1e-3
        assert result.summary["sparsity"] == pytest.approx(_small_fraction(saved_state(result.run_dir)), abs=1e-9)
        assert read_summary(result.run_dir)["sparsity"] == result.summary["sparsity"]


# ---- early stopping ------------------------------------------------------------------------------


def _best_row(rows: list[dict[str, float]], metric: str) -> dict[str, float]:
    best = min(row[metric] for row in rows)
    return next(row for row in rows if row[metric] == best)  # the first epoch reaching the minimum


@pytest.mark.parametrize("metric", ["val_loss", "val_error"])
def test_early_stopping_restores_the_best_epoch_through_the_cli(write_config, tmp_path, metric):
    patience = 10
    config = overfit_config({"early_stopping": {"patience": patience, "metric": metric}}, name="stopping")
    out = tmp_path / "out"
    result = invoke("train", write_config(config), "--out", out)
    assert result.exit_code == 0, result.output
    run_dir = single_run_dir(out, "stopping")
    summary = read_summary(run_dir)
    rows = read_metrics(run_dir)
    assert summary["status"] == "early_stopped"
    best = _best_row(rows, metric)
    last = rows[-1]
    assert last["epoch"] < 100  # it stopped before the configured epochs ...
    assert last["epoch"] - best["epoch"] == patience  # ... exactly `patience` epochs after the best
    assert all(row[metric] >= best[metric] for row in rows)
    assert summary["restored_epoch"] == best["epoch"]
    assert f"train and test: epoch {int(best['epoch'])}'s" in " ".join(text(result.stdout).split())
    for key in ("test_loss", "test_error", "train_loss", "train_error", "val_loss", "val_error", "weight_norm"):
        assert summary[key] == pytest.approx(best[key], abs=1e-9), key

    evaluated = invoke("evaluate", run_dir)
    assert evaluated.exit_code == 0, evaluated.output
    evaluation = json.loads((run_dir / "evaluation.json").read_text(encoding="utf-8"))
    assert evaluation["loss"] == pytest.approx(best["test_loss"], abs=1e-6)
    assert evaluation["error"] == pytest.approx(best["test_error"], abs=1e-6)
    # and not the last epoch's: the two differ clearly
    assert abs(last["test_loss"] - best["test_loss"]) > 1e-3


def test_early_stopping_without_restore_keeps_the_last_weights(tmp_path):
    config = overfit_config({"early_stopping": {"patience": 10, "restore_best": False}})
    result = train(experiment_from_dict(config), out_root=tmp_path)
    assert result.status == "early_stopped"
    rows = read_metrics(result.run_dir)
    best, last = _best_row(rows, "val_loss"), rows[-1]
    assert last["epoch"] - best["epoch"] == 10
    assert result.summary["restored_epoch"] is None
    evaluation = evaluate_run(result.run_dir)
    assert evaluation["loss"] == pytest.approx(last["test_loss"], abs=1e-6)
    assert abs(last["test_loss"] - best["test_loss"]) > 1e-3


def test_patience_without_a_validation_set_is_a_user_error(write_config, tmp_path):
    config = tiny_config(regularization={"early_stopping": {"patience": 3}})
    out = tmp_path / "out"
    result = invoke("train", write_config(config), "--out", out)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "regularization.early_stopping.patience" in result.stderr
    assert "val_fraction" in result.stderr
    assert not out.exists() or not any(out.rglob("*"))


# ---- the validation split ------------------------------------------------------------------------


def _rows_of(x: np.ndarray, y: np.ndarray) -> list[tuple]:
    return [tuple(features.tolist()) + (int(label),) for features, label in zip(x, y)]


def test_val_fraction_splits_the_training_set_into_disjoint_parts(tmp_path, write_config):
    config = tiny_config(train={"epochs": 3, "val_fraction": 0.25})
    experiment = experiment_from_dict(config)
    original = load_dataset(experiment.data, experiment.seed)
    split = hold_out(original, 0.25, experiment.seed)
    assert len(original.x_train) == 100
    assert len(split.x_train) == 75 and len(split.x_val) == 25
    whole = _rows_of(original.x_train, original.y_train)
    kept, held = _rows_of(split.x_train, split.y_train), _rows_of(split.x_val, split.y_val)
    assert len(set(whole)) == 100  # continuous features: every sample is distinct
    assert not set(kept) & set(held)
    assert sorted(kept + held) == sorted(whole)
    positions = [whole.index(row) for row in kept]
    assert positions == sorted(positions)  # the training samples keep their order
    np.testing.assert_array_equal(split.x_test, original.x_test)  # the test set is untouched

    out = tmp_path / "out"
    assert invoke("train", write_config(config), "--out", out).exit_code == 0
    run_dir = single_run_dir(out, "tiny")
    header = header_of(run_dir)
    assert header[header.index("test_error") + 1: header.index("test_error") + 3] == ["val_loss", "val_error"]
    assert read_summary(run_dir)["n_train"] == 75
    last = read_metrics(run_dir)[-1]

    evaluated = invoke("evaluate", run_dir, "--split", "val")
    assert evaluated.exit_code == 0, evaluated.output
    evaluation = json.loads((run_dir / "evaluation.json").read_text(encoding="utf-8"))
    assert evaluation["split"] == "val" and evaluation["samples"] == 25
    assert evaluation["loss"] == pytest.approx(last["val_loss"], abs=1e-6)
    assert evaluation["error"] == pytest.approx(last["val_error"], abs=1e-6)

    # the same numbers from the saved weights on the held-out samples found above
    model = build_model(experiment.model, split.input_shape, 2)
    model.load_state_dict(saved_state(run_dir))
    model.eval()
    with torch.no_grad():
        logits = model(torch.as_tensor(split.x_val))
    y_val = torch.as_tensor(split.y_val)
    assert F.cross_entropy(logits, y_val).item() == pytest.approx(last["val_loss"], abs=1e-5)
    assert (logits.argmax(1) != y_val).double().mean().item() == pytest.approx(last["val_error"], abs=1e-9)


def test_no_val_columns_without_a_validation_set(tmp_path):
    result = train(experiment_from_dict(tiny_config(train={"epochs": 1})), out_root=tmp_path)
    assert "val_loss" not in header_of(result.run_dir) and "val_error" not in header_of(result.run_dir)
    with pytest.raises(UserError):
        evaluate_run(result.run_dir, split="val")


# ---- augmentation --------------------------------------------------------------------------------


def test_noise_augmentation_touches_training_batches_only(tmp_path, monkeypatch):
    import dlcli.engine.loop as train_module
    import dlcli.engine.records as records

    noise_std = 0.5
    base = tiny_config(train={"epochs": 3, "val_fraction": 0.2})
    augmented_config = json.loads(json.dumps(base))
    augmented_config["data"]["augment"] = {"noise_std": noise_std}
    experiment = experiment_from_dict(augmented_config)
    expected = hold_out(load_dataset(experiment.data, experiment.seed), 0.2, experiment.seed)

    measured_splits, batches = [], []
    original_measure, original_make_augment = records.measure, train_module.make_augment

    def recording_measure(model, split, *args, **kwargs):
        measured_splits.append({key: value.clone() for key, value in split.items()})
        return original_measure(model, split, *args, **kwargs)

    def recording_make_augment(*args, **kwargs):
        augment = original_make_augment(*args, **kwargs)
        if augment is None:
            return None

        def wrapped(batch):
            before = batch.clone()
            after = augment(batch)
            batches.append((before, after.clone()))
            return after

        return wrapped

    monkeypatch.setattr(records, "measure", recording_measure)
    monkeypatch.setattr(train_module, "make_augment", recording_make_augment)
    plain = train(experiment_from_dict(base), out_root=tmp_path / "plain")
    assert not batches  # no augmentation configured: none applied
    measured_splits.clear()
    augmented = train(experiment, out_root=tmp_path / "augmented")

    # evaluation data: exactly the data set's splits at every epoch (model dimension first: one model)
    assert len(measured_splits) == 4
    for split in measured_splits:
        for name in ("train", "test", "val"):
            assert len(split[f"x_{name}"]) == 1
            np.testing.assert_array_equal(split[f"x_{name}"][0].numpy(), getattr(expected, f"x_{name}"))
            np.testing.assert_array_equal(split[f"y_{name}"][0].numpy(), getattr(expected, f"y_{name}"))

    # training batches: rows of the training set plus Gaussian noise of the configured std
    assert batches
    train_rows = {tuple(row.tolist()) for row in expected.x_train}
    assert all(tuple(row.tolist()) in train_rows for before, _ in batches for row in before)
    assert sum(len(before) for before, _ in batches) == 3 * len(expected.x_train)  # every batch, every epoch
    noise = torch.cat([(after - before).flatten() for before, after in batches])
    assert abs(noise.mean().item()) < 0.1
    assert noise.std().item() == pytest.approx(noise_std, rel=0.15)

    plain_rows, augmented_rows = read_metrics(plain.run_dir), read_metrics(augmented.run_dir)
    assert rows_without_seconds(plain_rows[:1]) == rows_without_seconds(augmented_rows[:1])  # same init
    assert all(a["train_loss"] != b["train_loss"] for a, b in zip(plain_rows[1:], augmented_rows[1:]))
    plain_state, augmented_state = saved_state(plain.run_dir), saved_state(augmented.run_dir)
    assert any(not torch.equal(plain_state[key], augmented_state[key]) for key in plain_state)


def _roll_offsets(batch: torch.Tensor, out: torch.Tensor, most: int, dims: tuple[int, ...]) -> list:
    """For each sample, the one offset (per dim) whose torch.roll gives the output row."""
    import itertools

    found = []
    for before, after in zip(batch, out):
        matches = [offsets for offsets in itertools.product(range(-most, most + 1), repeat=len(dims))
                   if torch.equal(torch.roll(before, offsets, dims), after)]
        assert len(matches) == 1, matches
        found.append(matches[0])
    return found


def _zero_filled(row: torch.Tensor, offset: int) -> torch.Tensor:
    """out[j] = in[j − offset] where that index exists, 0 where a new value enters."""
    shifted = torch.zeros_like(row)
    if offset >= 0:
        shifted[offset:] = row[: len(row) - offset]
    else:
        shifted[:offset] = row[-offset:]
    return shifted


def test_circular_shift_is_a_per_sample_roll():
    most = 3
    batch = torch.randn(200, 40, generator=torch.Generator().manual_seed(1))
    out = shift(batch.clone(), -1, most, "circular", torch.Generator().manual_seed(2))
    offsets = [o for (o,) in _roll_offsets(batch, out, most, (-1,))]
    assert set(offsets) == set(range(-most, most + 1))  # every offset in [−most, most] occurs, no other


def test_circular_shift_along_image_rows_rolls_each_image():
    most = 2
    batch = torch.randn(60, 6, 5, generator=torch.Generator().manual_seed(3))
    out = shift(batch.clone(), -2, most, "circular", torch.Generator().manual_seed(4))
    offsets = [o for (o,) in _roll_offsets(batch, out, most, (0,))]
    assert set(offsets) == set(range(-most, most + 1))


def test_pad_shift_fills_what_enters_with_zeros():
    most = 3
    batch = torch.rand(200, 40, generator=torch.Generator().manual_seed(5)) + 1.0  # no zeros of its own
    out = shift(batch.clone(), -1, most, "pad", torch.Generator().manual_seed(6))
    offsets = []
    for before, after in zip(batch, out):
        matches = [k for k in range(-most, most + 1) if torch.equal(_zero_filled(before, k), after)]
        assert len(matches) == 1, matches
        offsets.append(matches[0])
        assert int((after == 0).sum()) == abs(matches[0])  # exactly what entered is zero
    assert set(offsets) == set(range(-most, most + 1))


def test_augmented_images_are_rolled_on_both_axes_and_sequences_on_their_axis():
    config = experiment_from_dict(tiny_config(data={"name": "digits", "augment": {"shift": 1}})).data.augment
    images = torch.randn(80, 8, 8, generator=torch.Generator().manual_seed(7))
    augment = make_augment(config, "image", augment_stream(config, torch.device("cpu"), seed=0))
    offsets = _roll_offsets(images, augment(images.clone()), 1, (0, 1))
    assert {o[0] for o in offsets} == {-1, 0, 1} and {o[1] for o in offsets} == {-1, 0, 1}
    signals = torch.randn(80, 40, generator=torch.Generator().manual_seed(8))
    augment = make_augment(config, "sequence", augment_stream(config, torch.device("cpu"), seed=0))
    assert {o for (o,) in _roll_offsets(signals, augment(signals.clone()), 1, (-1,))} == {-1, 0, 1}
    unaugmented = config.model_copy(update={"shift": 0})
    assert augment_stream(unaugmented, torch.device("cpu"), 0) is None
    assert make_augment(unaugmented, "image", augment_stream(unaugmented, torch.device("cpu"), 0)) is None


def test_shift_on_a_tabular_data_set_is_a_user_error(write_config, tmp_path):
    config = tiny_config()
    config["data"]["augment"] = {"shift": 2}
    with pytest.raises(UserError) as raised:
        train(experiment_from_dict(config), out_root=tmp_path / "api")
    assert any("data.augment.shift" in problem for problem in raised.value.problems)
    assert not (tmp_path / "api").exists() or not any((tmp_path / "api").rglob("*"))
    out = tmp_path / "out"
    result = invoke("train", write_config(config), "--out", out)
    assert result.exit_code == 2, result.output
    assert "data.augment.shift" in result.stderr
    assert not out.exists() or not any(out.rglob("*"))


# ---- the weight norm -----------------------------------------------------------------------------


def _parameter_norm(state: dict[str, torch.Tensor], parameter_names: list[str]) -> float:
    return math.sqrt(sum(float((state[name].double() ** 2).sum()) for name in parameter_names))


@pytest.mark.parametrize("model", [
    {"name": "mlp", "hidden": [16, 8]},
    {"name": "mlp", "hidden": [16], "norm": "batch", "dropout": 0.3},  # buffers are not parameters
])
def test_weight_norm_is_the_l2_norm_of_all_parameters(tmp_path, model):
    config = tiny_config(model=model, train={"epochs": 3})
    experiment = experiment_from_dict(config)
    result = train(experiment, out_root=tmp_path)
    rows = read_metrics(result.run_dir)
    dataset = load_dataset(experiment.data, experiment.seed)
    torch.manual_seed(experiment.seed)  # the initial weights depend on the seed alone
    initial = build_model(experiment.model, dataset.input_shape, dataset.num_classes)
    names = [name for name, _ in initial.named_parameters()]
    state = saved_state(result.run_dir)
    assert set(names) <= set(state)
    expected_last = _parameter_norm(state, names)
    assert rows[-1]["weight_norm"] == pytest.approx(expected_last, rel=1e-4)
    assert result.summary["weight_norm"] == pytest.approx(expected_last, rel=1e-4)
    expected_first = _parameter_norm(initial.state_dict(), names)
    assert rows[0]["weight_norm"] == pytest.approx(expected_first, rel=1e-4)
    assert abs(expected_last - expected_first) > 1e-3 * expected_first  # training moved the weights


@pytest.mark.parametrize("augment", [{"noise_std": 0.5}, {"shift": 2}])
def test_lstsq_refuses_augmentation_it_would_ignore(tmp_path, augment):
    config = rff_config(100)
    config["data"]["augment"] = augment
    key = next(iter(augment))
    with pytest.raises(UserError, match=rf"data.augment.{key}: not available with lstsq"):
        experiment_from_dict(config)
