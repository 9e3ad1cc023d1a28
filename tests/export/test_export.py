"""dlcli export: TensorBoard event folders and an MLflow store hold the runs' CSV numbers at their
epochs, the swept keys as hyperparameters, and a second export adds nothing."""
from __future__ import annotations

import math
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import invoke, read_csv_rows, succeeded, text, tiny_config, write_yaml

LRS = [0.05, 0.2, 1000000.0]  # the last diverges
SEEDS = 2
SCALAR_COLUMNS = {"train/loss": "train_loss", "train/error": "train_error", "test/loss": "test_loss",
                  "test/error": "test_error", "val/loss": "val_loss", "val/error": "val_error", "lr": "lr",
                  "weight_norm": "weight_norm"}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """3 learning rates × 2 seeds, a validation split: (sweep folder, runs.csv rows)."""
    folder = tmp_path_factory.mktemp("export")
    config = write_yaml(folder, tiny_config(name="grid", train={"epochs": 3, "val_fraction": 0.2}))
    succeeded(invoke("sweep", config, "--grid", f"optim.lr={','.join(map(str, LRS))}", "--seeds", SEEDS,
                     "--out", folder / "out"))
    _, rows = read_csv_rows(folder / "out" / "grid" / "runs.csv")
    assert len(rows) == len(LRS) * SEEDS and sum(row["status"] == "diverged" for row in rows) == SEEDS
    return folder / "out" / "grid", rows


def csv_metrics(run_dir) -> pd.DataFrame:
    return pd.read_csv(run_dir / "metrics.csv")


def same(stored: float, written: float, float32: bool) -> bool:
    expected = float(np.float32(written)) if float32 else written
    return (math.isnan(stored) and math.isnan(expected)) or stored == expected


def test_tensorboard_holds_every_csv_value_at_its_epoch_and_the_swept_keys(sweep, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    sweep_dir, rows = sweep
    for _ in range(2):  # the second export rewrites each run's folder
        stdout = succeeded(invoke("export", sweep_dir, "--to", "tensorboard", tmp_path / "tb"))
    assert f"tensorboard --logdir {tmp_path / 'tb'}" in " ".join(stdout.split())
    folders = sorted((tmp_path / "tb" / "grid").iterdir())
    assert [folder.name for folder in folders] == sorted(row["run_id"] for row in rows)
    for folder in folders:
        assert len(list(folder.glob("*tfevents*"))) == 1, list(folder.iterdir())  # one event file: nothing duplicated
        assert (folder / "dlcli-source.txt").read_text() == f"{sweep_dir.resolve() / folder.name}\n"
        events = EventAccumulator(str(folder))
        events.Reload()
        metrics = csv_metrics(sweep_dir / folder.name)
        assert set(events.Tags()["scalars"]) == set(SCALAR_COLUMNS)
        for tag, column in SCALAR_COLUMNS.items():
            scalars = events.Scalars(tag)
            assert [scalar.step for scalar in scalars] == metrics["epoch"].tolist()
            assert all(same(scalar.value, value, float32=True) for scalar, value in zip(scalars, metrics[column])), tag
        content = events.PluginTagToContent("hparams")[metadata.SESSION_START_INFO_TAG]
        hparams = metadata.parse_session_start_info_plugin_data(content).hparams
        assert set(hparams) == {"optim.lr", "seed"}  # the swept keys, nothing constant
        row = next(row for row in rows if row["run_id"] == folder.name)
        assert hparams["optim.lr"].number_value == float(row["optim.lr"])


def test_where_selects_the_runs_exported(sweep, tmp_path):
    sweep_dir, rows = sweep
    succeeded(invoke("export", sweep_dir, "--to", "tensorboard", tmp_path / "tb", "--where", "status==diverged"))
    assert {folder.name for folder in (tmp_path / "tb" / "grid").iterdir()} == \
        {row["run_id"] for row in rows if row["status"] == "diverged"}


def test_a_run_still_writing_its_last_row_exports_its_whole_rows(sweep, tmp_path, tracking):
    """A running run's metrics.csv may end in half a row (being written, or cut by a kill): it is left
    out, never exported as a number nor failing the export."""
    import mlflow
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sweep_dir, rows = sweep
    run_dir = tmp_path / "runs" / "grid" / rows[0]["run_id"]
    shutil.copytree(sweep_dir / rows[0]["run_id"], run_dir)
    whole = csv_metrics(run_dir)
    with open(run_dir / "metrics.csv", "a", encoding="utf-8") as file:
        file.write(f"{len(whole)},99,0.05,0.2e")
    succeeded(invoke("export", run_dir, "--to", "tensorboard", tmp_path / "tb"))
    events = EventAccumulator(str(tmp_path / "tb" / "grid" / run_dir.name))
    events.Reload()
    assert [scalar.step for scalar in events.Scalars("train/loss")] == whole["epoch"].tolist()
    succeeded(invoke("export", run_dir, "--to", "mlflow", tracking))
    (run_id,) = mlflow.search_runs(experiment_names=["grid"])["run_id"]
    history = mlflow.tracking.MlflowClient(tracking).get_metric_history(run_id, "train/loss")
    assert sorted(metric.step for metric in history) == whole["epoch"].tolist()


@pytest.fixture
def tracking(tmp_path):
    """A local sqlite store; mlflow's default tracking URI put back afterwards."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(previous)


def test_mlflow_holds_one_run_per_run_with_the_csv_metrics_and_a_second_export_adds_nothing(sweep, tracking):
    import mlflow
    from mlflow.tracking import MlflowClient

    sweep_dir, rows = sweep
    first = " ".join(succeeded(invoke("export", sweep_dir, "--to", "mlflow", tracking)).split())
    assert f"{len(rows)} runs exported" in first and f"mlflow ui --backend-store-uri {tracking}" in first
    second = " ".join(succeeded(invoke("export", sweep_dir, "--to", "mlflow", tracking)).split())
    assert "0 runs exported" in second and f"{len(rows)} unchanged" in second
    found = mlflow.search_runs(experiment_names=["grid"])
    assert sorted(found["tags.dlcli.run_id"]) == sorted(row["run_id"] for row in rows)  # one row per run
    client = MlflowClient(tracking)
    for _, run in found.iterrows():
        row = next(row for row in rows if row["run_id"] == run["tags.dlcli.run_id"])
        metrics = csv_metrics(sweep_dir / row["run_id"])
        assert run["tags.dlcli.status"] == row["status"]
        assert run["status"] == ("FAILED" if row["status"] == "diverged" else "FINISHED")
        assert float(run["params.optim.lr"]) == float(row["optim.lr"])
        assert run["params.data.name"] == "gaussians"
        for name, column in SCALAR_COLUMNS.items():
            history = sorted(client.get_metric_history(run["run_id"], name), key=lambda metric: metric.step)
            assert [metric.step for metric in history] == metrics["epoch"].tolist()
            assert all(same(metric.value, value, float32=False) for metric, value in zip(history, metrics[column]))
        artifacts = {artifact.path for artifact in client.list_artifacts(run["run_id"])}
        assert {"metrics.csv", "summary.json", "config.yaml"} <= artifacts


@pytest.mark.parametrize("target, module, extra", [("tensorboard", "torch.utils.tensorboard", "dlcli[tensorboard]"),
                                                   ("mlflow", "mlflow.tracking", "dlcli[mlflow]")])
def test_a_missing_extra_is_named_in_one_line(sweep, tmp_path, monkeypatch, target, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # importing it raises ImportError
    result = invoke("export", sweep[0], "--to", target, f"sqlite:///{tmp_path}/m.db" if target == "mlflow" else tmp_path)
    assert result.exit_code == 2, result.output
    lines = text(result.stderr).strip().splitlines()
    assert len(lines) == 1 and extra in lines[0]


def test_bad_input_is_one_line_and_exit_2(sweep, tmp_path):
    (tmp_path / "file").write_text("")
    for args in (["--to", "wandb", tmp_path / "x"], ["--to", "tensorboard", tmp_path / "file"],
                 ["--to", "tensorboard", tmp_path / "file" / "tb"],  # a folder that cannot be made
                 ["--to", "mlflow", "nosuchscheme://store"],
                 ["--to", "tensorboard", tmp_path / "tb", "--where", "optim.lr>1e9"]):
        result = invoke("export", sweep[0], *args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output and len(text(result.stderr).strip().splitlines()) == 1


def test_a_run_measuring_the_validation_split_alone_exports_what_it_measured(tmp_path):
    """`train.eval_splits: val`: train and test scalars at the last epoch only, val at every epoch."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = write_yaml(tmp_path, tiny_config(name="lean", train={"epochs": 3, "val_fraction": 0.2,
                                                                   "eval_splits": "val"}))
    succeeded(invoke("train", config, "--out", tmp_path / "out"))
    succeeded(invoke("export", tmp_path / "out" / "lean", "--to", "tensorboard", tmp_path / "tb"))
    (folder,) = (tmp_path / "tb" / "lean").iterdir()
    events = EventAccumulator(str(folder))
    events.Reload()
    assert [scalar.step for scalar in events.Scalars("val/error")] == [0, 1, 2, 3]
    assert [scalar.step for scalar in events.Scalars("test/error")] == [3]
    assert [scalar.step for scalar in events.Scalars("train/loss")] == [3]


def test_a_search_exports_its_trials_numbered_the_chosen_one_tagged_and_pruned_ones_finished(tmp_path, tracking):
    """MLflow: every trial tagged with its number, `dlcli.chosen` true on the trial chosen on validation
    alone (again after more trials move the choice), pruned trials FINISHED, not left RUNNING;
    TensorBoard: the hparams table lists the validation metrics the search chose on."""
    import mlflow
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    config = tiny_config(name="search", train={"epochs": 3, "val_fraction": 0.25})
    search = ["sweep", write_yaml(tmp_path, config), "--method", "random", "--prune", "asha", "--grid",
              "optim.lr=loguniform(1e-3,1)", "--out", tmp_path / "out"]
    sweep_dir = tmp_path / "out" / "search"
    chosen = []
    for trials in (3, 9):
        succeeded(invoke(*search, "--trials", trials))
        rows = read_csv_rows(sweep_dir / "runs.csv")[1]
        done = [row for row in rows if row["status"] == "completed"]
        chosen.append(min(done, key=lambda row: (float(row["val_error"]), int(row["trial"])))["trial"])
        succeeded(invoke("export", sweep_dir, "--to", "mlflow", tracking))
        found = mlflow.search_runs(experiment_names=["search"])
        assert sorted(found["tags.dlcli.trial"], key=int) == [row["trial"] for row in rows]
        assert found.loc[found["tags.dlcli.chosen"] == "true", "tags.dlcli.trial"].tolist() == [chosen[-1]]
        pruned = found[found["tags.dlcli.status"] == "pruned"]
        assert set(pruned["status"]) <= {"FINISHED"} and "RUNNING" not in set(found["status"])
    assert chosen[0] != chosen[1] and len(pruned) > 0  # the premise: more trials moved the choice, and pruned some
    succeeded(invoke("export", sweep_dir, "--to", "tensorboard", tmp_path / "tb"))
    events = EventAccumulator(str(next((tmp_path / "tb" / "search").iterdir())))
    events.Reload()
    content = events.PluginTagToContent("hparams")[metadata.EXPERIMENT_TAG]
    shown = {info.name.tag for info in metadata.parse_experiment_plugin_data(content).metric_infos}
    assert {"val/error", "val/loss", "test/error"} <= shown


def test_the_same_sweep_under_two_roots_exports_as_two_and_a_moved_one_replaces_its_own(sweep, tmp_path, tracking):
    """Same sweep name and run ids in a/ and b/ (as a stacked sweep and its --no-vectorize twin): neither
    export replaces the other's runs; exporting again changes nothing; a folder moved keeps its runs."""
    import shutil

    from mlflow.tracking import MlflowClient

    sweep_dir, rows = sweep
    for root in ("a", "b"):
        shutil.copytree(sweep_dir, tmp_path / root / "grid")
    folders = [tmp_path / "a" / "grid", tmp_path / "b" / "grid"]
    for _ in range(2):
        succeeded(invoke("export", *folders, "--to", "tensorboard", tmp_path / "tb"))
        output = " ".join(succeeded(invoke("export", *folders, "--to", "mlflow", tracking)).split())
    assert f"0 runs exported, 0 replaced, {2 * len(rows)} unchanged" in output
    events = sorted((tmp_path / "tb" / "grid").iterdir())
    assert len(events) == 2 * len(rows)
    sources = {(folder / "dlcli-source.txt").read_text().strip() for folder in events}
    assert sources == {str(folder / row["run_id"]) for folder in folders for row in rows}
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name("grid").experiment_id
    assert sorted(run.data.tags["dlcli.path"] for run in client.search_runs([experiment])) == sorted(sources)

    shutil.move(tmp_path / "b", tmp_path / "c")  # a folder moved: its exports follow it
    moved = [folders[0], tmp_path / "c" / "grid"]
    succeeded(invoke("export", *moved, "--to", "tensorboard", tmp_path / "tb"))
    output = " ".join(succeeded(invoke("export", *moved, "--to", "mlflow", tracking)).split())
    assert f"0 runs exported, 0 replaced, {2 * len(rows)} unchanged" in output
    assert len(list((tmp_path / "tb" / "grid").iterdir())) == 2 * len(rows)
    paths = sorted(run.data.tags["dlcli.path"] for run in client.search_runs([experiment]))
    assert paths == sorted(str(folder / row["run_id"]) for folder in moved for row in rows)
