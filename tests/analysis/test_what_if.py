"""`dlcli compare --patience`: early stopping replayed on logged curves, without retraining."""
from __future__ import annotations

import io
import json

import pandas as pd
from typer.testing import CliRunner

from conftest import tiny_config
from dlcli.cli import app
from dlcli.config.load import experiment_from_dict
from dlcli.layout import read_metrics
from dlcli.engine.loop import train


def replay(rows: list[dict], patience: int, metric: str) -> tuple[int | None, int]:
    """Stop epoch and restored epoch, by the definition: stop once `patience` epochs passed since the best."""
    best = rows[0]
    for row in rows:
        if row[metric] < best[metric]:
            best = row
        if row["epoch"] - best["epoch"] >= patience:
            return int(row["epoch"]), int(best["epoch"])
    return None, int(best["epoch"])


def test_what_if_matches_a_replay_and_a_real_early_stopped_run(tmp_path):
    overfit = tiny_config(train={"epochs": 40, "val_fraction": 0.3},
                          model={"name": "mlp", "hidden": [64, 64]},
                          optim={"name": "adam", "lr": 0.01, "batch_size": "full"},
                          data={"name": "gaussians", "n_train": 60, "n_test": 500, "label_noise": 0.3,
                                "params": {"classes": 2, "dim": 10, "separation": 2.0, "sigma": 1.0}})
    full = train(experiment_from_dict(overfit), out_root=tmp_path / "long")
    rows = read_metrics(full.run_dir)
    stop, restored = replay(rows, 3, "val_loss")
    assert stop is not None and stop < 40  # the setup overfits, so patience 3 stops early

    result = CliRunner().invoke(app, ["compare", str(full.run_dir), "--patience", "3", "--format", "csv"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(io.StringIO(result.stdout))
    assert table.loc[0, "stopped_at"] == stop and table.loc[0, "restored_epoch"] == restored
    assert table.loc[0, "test_error_restored"] == next(r["test_error"] for r in rows if r["epoch"] == restored)
    assert table.loc[0, "epochs_saved"] == 40 - stop

    stopped_config = {**overfit, "regularization": {"early_stopping": {"patience": 3}}}
    real = train(experiment_from_dict(stopped_config), out_root=tmp_path / "stopped")
    summary = json.loads((real.run_dir / "summary.json").read_text())
    assert summary["status"] == "early_stopped"
    assert (summary["epochs_run"], summary["restored_epoch"]) == (stop, restored)


def test_what_if_refuses_the_test_set_and_missing_columns(tmp_path):
    run = train(experiment_from_dict(tiny_config()), out_root=tmp_path)  # no validation set
    for args, word in ((["--stop-metric", "test_loss"], "test"), ([], "val_loss")):
        result = CliRunner().invoke(app, ["compare", str(run.run_dir), "--patience", "2", *args])
        assert result.exit_code == 2 and word in result.stderr
