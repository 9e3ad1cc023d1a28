"""What measuring costs: `train.eval_every` measures every N-th epoch (0 and the last always),
`train.eval_train_subset` scores the training set on a fixed subset, and `train.eval_splits: val`
measures only the validation split before the last epoch. None of them changes the training."""
from __future__ import annotations

import csv
import math

import pandas as pd
import torch

from conftest import assert_same_sweep, invoke, succeeded, tiny_config, write_yaml
from dlcli.config.load import experiment_from_dict
from dlcli.engine.loop import resume, train
from dlcli.layout import Status


def metrics(run_dir) -> pd.DataFrame:
    return pd.read_csv(run_dir / "metrics.csv").drop(columns="seconds")


def weights(run_dir) -> dict:
    return torch.load(run_dir / "model.pt", weights_only=True)


def config_with(**train) -> dict:
    config = tiny_config(model={"name": "mlp", "hidden": [16], "dropout": 0.2},
                         optim={"name": "sgd", "lr": 0.1, "momentum": 0.9, "batch_size": 16},
                         train={"epochs": 7, **train})
    config["data"]["n_train"] = 200
    return config


def test_eval_every_logs_the_measured_epochs_and_trains_the_same_model(tmp_path):
    every = train(experiment_from_dict(config_with()), tmp_path / "every")
    sparse = train(experiment_from_dict(config_with(eval_every=3)), tmp_path / "sparse")
    logged = metrics(sparse.run_dir)
    assert logged["epoch"].tolist() == [0, 3, 6, 7]  # every third, and the last
    assert logged["step"].tolist() == [0, 39, 78, 91]  # 13 updates an epoch: training went on between
    full = metrics(every.run_dir).set_index("epoch").loc[[0, 3, 6, 7]].reset_index()
    pd.testing.assert_frame_equal(logged, full)  # measuring draws no random numbers: the same path
    assert all(torch.equal(weights(sparse.run_dir)[key], value) for key, value in weights(every.run_dir).items())
    assert sparse.summary["epochs_run"] == 7 and sparse.summary["test_error"] == every.summary["test_error"]


def test_eval_train_subset_scores_a_fixed_subset_and_the_last_epoch_all_of_it(tmp_path):
    whole = train(experiment_from_dict(config_with()), tmp_path / "whole")
    subset = train(experiment_from_dict(config_with(eval_train_subset=40)), tmp_path / "subset")
    measured, reference = metrics(subset.run_dir), metrics(whole.run_dir)
    for column in ("test_loss", "test_error", "weight_norm"):
        assert measured[column].tolist() == reference[column].tolist()
    errors = measured["train_error"].iloc[:-1]
    assert all(math.isclose(error * 40, round(error * 40), abs_tol=1e-6) for error in errors)  # k of 40
    assert errors.tolist() != reference["train_error"].iloc[:-1].tolist()  # a subset, not the whole set
    assert measured.iloc[-1].equals(reference.iloc[-1])  # the final train error is exact
    assert subset.summary["train_error"] == whole.summary["train_error"]


def test_eval_splits_val_measures_the_validation_split_until_the_last_epoch(tmp_path):
    whole = train(experiment_from_dict(config_with(val_fraction=0.25)), tmp_path / "whole")
    lean = train(experiment_from_dict(config_with(val_fraction=0.25, eval_splits="val")), tmp_path / "lean")
    measured, reference = metrics(lean.run_dir), metrics(whole.run_dir)
    unmeasured = ["train_loss", "train_error", "test_loss", "test_error"]
    assert measured[unmeasured].iloc[:-1].isna().all().all()  # empty cells before the last epoch
    kept = [column for column in measured.columns if column not in unmeasured]
    pd.testing.assert_frame_equal(measured[kept], reference[kept])  # the same training, the same val curve
    assert measured.iloc[-1].equals(reference.iloc[-1])  # the last epoch measures every split
    for key in ("train_error", "test_error", "val_error", "gap"):
        assert lean.summary[key] == whole.summary[key]
    # the only epoch whose test error is known
    assert (lean.summary["best_epoch"], lean.summary["best_test_error"]) == (7, lean.summary["test_error"])


def test_a_run_stopped_early_measures_every_split_at_the_epoch_it_stops_on(tmp_path):
    """eval_splits: val with early stopping: the stopping epoch is the run's last, so it measures train and
    test there, as the last epoch does; the stacked runs that go on keep measuring validation alone."""
    stopping = {"early_stopping": {"patience": 1, "restore_best": False, "metric": "val_error"}}
    whole_config = config_with(val_fraction=0.25, epochs=30)
    whole_config["regularization"] = stopping
    whole = train(experiment_from_dict(whole_config), tmp_path / "whole")
    lean_config = config_with(val_fraction=0.25, epochs=30, eval_splits="val")
    lean_config["regularization"] = stopping
    lean = train(experiment_from_dict(lean_config), tmp_path / "lean")
    assert lean.summary["status"] == Status.EARLY_STOPPED and lean.summary["epochs_run"] < 30  # the premise
    measured, reference = metrics(lean.run_dir), metrics(whole.run_dir)
    assert measured.iloc[-1].equals(reference.iloc[-1])  # every split at the stopping epoch, as measured always
    for key in ("train_error", "test_error", "gap"):
        assert lean.summary[key] == whole.summary[key] is not None
    assert measured["test_error"].iloc[1:-1].isna().all()

    config = write_yaml(tmp_path, lean_config)
    grid = ["--grid", "optim.lr=0.01,0.1", "--grid", "seed=0,1"]
    succeeded(invoke("sweep", config, *grid, "--out", tmp_path / "stacked"))
    succeeded(invoke("sweep", config, *grid, "--no-vectorize", "--out", tmp_path / "alone"))
    assert_same_sweep(tmp_path / "alone" / "tiny", tmp_path / "stacked" / "tiny")
    runs = pd.read_csv(tmp_path / "stacked" / "tiny" / "runs.csv")
    assert runs["epochs_run"].nunique() > 1 and runs["test_error"].notna().all()  # they stopped apart, each measured


def test_eval_splits_val_needs_a_validation_split_and_the_last_weights(tmp_path):
    for train_keys, expected in (({}, "train.val_fraction > 0"),
                                 ({"val_fraction": 0.25}, "restore_best")):
        config = config_with(eval_splits="val", **train_keys)
        if train_keys:
            config["regularization"] = {"early_stopping": {"patience": 2}}
        result = invoke("train", write_yaml(tmp_path, config), "--out", tmp_path / "out")
        assert result.exit_code == 2 and "train.eval_splits" in result.output and expected in result.output
        assert not (tmp_path / "out").exists()


def test_a_stacked_sweep_measures_what_one_by_one_runs_measure(tmp_path):
    config = write_yaml(tmp_path, config_with(eval_every=2, eval_train_subset=50))
    grid = ["--grid", "optim.lr=0.05,0.1", "--grid", "seed=0,1"]
    stacked = succeeded(invoke("sweep", config, *grid, "--out", tmp_path / "stacked"))
    assert "vectorized: 4 points train as 1 stacked model" in stacked
    succeeded(invoke("sweep", config, *grid, "--no-vectorize", "--out", tmp_path / "alone"))
    assert_same_sweep(tmp_path / "alone" / "tiny", tmp_path / "stacked" / "tiny")


def test_a_run_that_diverges_between_measured_epochs_ends_there(tmp_path):
    config = config_with(eval_every=4)
    config["optim"] = {"name": "sgd", "lr": 1e6, "momentum": 0.9, "batch_size": 16}
    config["model"] = {"name": "mlp", "hidden": [64, 64]}
    result = train(experiment_from_dict(config), tmp_path)
    assert result.status == Status.DIVERGED
    diverged_in = int(result.summary["message"].split("in epoch ")[1].split()[0])
    assert 1 <= diverged_in <= 3  # not a measured epoch: the batch losses caught it
    assert metrics(result.run_dir)["epoch"].tolist() == [0]  # the epochs measured before are kept


def test_a_run_measured_every_third_epoch_resumes_to_the_uninterrupted_run(tmp_path):
    experiment = experiment_from_dict(config_with(eval_every=3, checkpoint_every=2))

    def interrupt(row):
        if row["epoch"] == 6:
            raise KeyboardInterrupt

    stopped = train(experiment, tmp_path / "stopped", on_epoch=interrupt)
    assert stopped.status == Status.INTERRUPTED  # its checkpoint is from epoch 4, a measured epoch is 3
    resumed = resume(stopped.run_dir)
    whole = train(experiment, tmp_path / "whole")
    assert resumed.status == Status.COMPLETED
    pd.testing.assert_frame_equal(metrics(resumed.run_dir), metrics(whole.run_dir))
    assert all(torch.equal(weights(resumed.run_dir)[key], value) for key, value in weights(whole.run_dir).items())


def test_compare_draws_curves_measured_every_few_epochs(tmp_path):
    config = write_yaml(tmp_path, config_with(eval_every=3))
    succeeded(invoke("sweep", config, "--grid", "optim.lr=0.05,0.1", "--out", tmp_path / "out"))
    figure = tmp_path / "curves.png"
    output = succeeded(invoke("compare", tmp_path / "out" / "tiny", "--curves", "--format", "csv"))
    rows = list(csv.DictReader(output.splitlines()))
    assert sorted({int(row["epoch"]) for row in rows}) == [0, 3, 6, 7]
    succeeded(invoke("compare", tmp_path / "out" / "tiny", "--curves", "--plot", figure))
    assert figure.stat().st_size > 0
