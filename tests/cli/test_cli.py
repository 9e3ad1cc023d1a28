"""The command line: bad input (exit 2, every problem, nothing written), train, evaluate and help."""
from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from conftest import REPO, assert_no_traceback, line_with, succeeded, text, tiny_config, write_yaml
from dlcli.cli import app
from dlcli.config.load import load_experiment

runner = CliRunner()
METRIC_COLUMNS = {"epoch", "step", "lr", "train_loss", "train_error", "test_loss", "test_error", "seconds"}


# ---- helpers -------------------------------------------------------------------------------------


def invoke(*args):
    return runner.invoke(app, [str(arg) for arg in args])


def assert_nothing_written(out: Path) -> None:
    assert not out.exists() or not any(out.iterdir()), sorted(map(str, out.rglob("*")))


def user_error(result, out: Path | None = None) -> list[str]:
    """Check exit 2, no traceback, problems on stderr (nothing on stdout), nothing written; return the lines."""
    assert_no_traceback(result)
    assert result.exit_code == 2, (result.exit_code, result.output)
    if out is not None:
        assert_nothing_written(out)
    assert text(result.stdout).strip() == "", result.stdout
    lines = [line for line in text(result.stderr).splitlines() if line.strip()]
    assert lines, "no message on stderr"
    return lines


def train_bad(write_config, tmp_path, config, *extra) -> tuple[Path, list[str]]:
    path = write_config(config)
    out = tmp_path / "out"
    return path, user_error(invoke("train", path, "--out", out, *extra), out)


def read_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def final_row(run_dir: Path) -> dict[str, float]:
    return {key: float(value) for key, value in read_rows(run_dir)[-1].items()}


def single_run_dir(out: Path, name: str) -> Path:
    runs = [path for path in (out / name).iterdir() if path.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def with_section(section: str, **changes) -> dict:
    config = tiny_config()
    config[section] = {**config[section], **changes}
    return config


# ---- unknown keys --------------------------------------------------------------------------------


def test_unknown_key_suggests_the_close_one(write_config, tmp_path):
    path, lines = train_bad(write_config, tmp_path, with_section("optim", lrr=0.1))
    assert len(lines) == 1, lines
    line_with(lines, str(path), "optim.lrr", "did you mean optim.lr")


def test_unknown_top_level_key_lists_the_sections(write_config, tmp_path):
    config = tiny_config()
    config["flavour"] = "vanilla"
    path, lines = train_bad(write_config, tmp_path, config)
    assert len(lines) == 1, lines
    line = line_with(lines, str(path), "flavour")
    for section in ("data", "model", "loss", "optim", "regularization", "train"):
        assert section in line, line


def test_misplaced_key_suggests_where_it_belongs(write_config, tmp_path):
    config = tiny_config()
    config["epochs"] = 5
    path, lines = train_bad(write_config, tmp_path, config)
    line_with(lines, str(path), "epochs", "train.epochs")


def test_unknown_data_params_key_suggests_the_close_one(write_config, tmp_path):
    config = tiny_config()
    config["data"]["params"]["sigam"] = 0.5
    path, lines = train_bad(write_config, tmp_path, config)
    assert len(lines) == 1, lines
    line_with(lines, str(path), "data.params.sigam", "data.params.sigma")


# ---- wrong types and out-of-range values ---------------------------------------------------------

BAD_VALUES = [
    # (section, key, value, fragments the message must hold besides the file and the dotted key)
    ("optim", "lr", "abc", ["'abc'", "number"]),
    ("train", "epochs", 2.5, ["2.5", "integer"]),
    ("train", "epochs", True, ["bool"]),
    ("model", "hidden", "wide", ["'wide'", "list"]),
    ("optim", "lr", 0, ["greater than 0"]),
    ("optim", "lr", -0.5, ["-0.5", "greater than 0"]),
    ("optim", "batch_size", 0, ["0", "1"]),
    ("optim", "batch_size", -3, ["-3", "1"]),
    ("optim", "batch_size", "half", ["'half'", "full"]),
    ("model", "dropout", 1, ["less than 1"]),
    ("model", "dropout", -0.1, ["-0.1", "greater than or equal to 0"]),
    ("data", "label_noise", 1.5, ["1.5", "less than or equal to 1"]),
    ("data", "label_noise", -0.1, ["-0.1", "greater than or equal to 0"]),
]


@pytest.mark.parametrize("section, key, value, fragments", BAD_VALUES,
                         ids=[f"{s}.{k}={v!r}" for s, k, v, _ in BAD_VALUES])
def test_bad_value_is_rejected_with_what_is_allowed(write_config, tmp_path, section, key, value, fragments):
    path, lines = train_bad(write_config, tmp_path, with_section(section, **{key: value}))
    assert len(lines) == 1, lines
    line_with(lines, str(path), f"{section}.{key}", *fragments)


def test_a_boolean_is_named_as_such_and_the_expected_kind_given(write_config, tmp_path):
    path, lines = train_bad(write_config, tmp_path, with_section("train", epochs=True))
    line = line_with(lines, str(path), "train.epochs")
    assert re.search(r"number|integer", line), line


# ---- unknown names -------------------------------------------------------------------------------


def _registry(name: str) -> list[str]:
    from dlcli.components.datasets import DATASETS
    from dlcli.components.losses import LOSSES
    from dlcli.components.models import ACTIVATIONS, MODELS
    from dlcli.components.optimizers import OPTIMIZERS

    return list({"model.name": MODELS, "data.name": DATASETS, "loss": LOSSES, "optim.name": OPTIMIZERS,
                 "model.activation": ACTIVATIONS}[name])


@pytest.mark.parametrize("key", ["model.name", "data.name", "loss", "optim.name", "model.activation"])
def test_unknown_name_lists_the_allowed_names(write_config, tmp_path, key):
    config = tiny_config()
    if "." in key:
        section, leaf = key.split(".")
        config[section] = {**config[section], leaf: "nonesuch"}
    else:
        config[key] = "nonesuch"
    path, lines = train_bad(write_config, tmp_path, config)
    assert len(lines) == 1, lines
    line = line_with(lines, str(path), key, "nonesuch")
    allowed = _registry(key)
    assert allowed
    for name in allowed:
        assert re.search(rf"\b{re.escape(name)}\b", line), (name, line)


# ---- files ---------------------------------------------------------------------------------------


def test_missing_config_file(tmp_path):
    path = tmp_path / "nowhere.yaml"
    out = tmp_path / "out"
    lines = user_error(invoke("train", path, "--out", out), out)
    line = line_with(lines, str(path))
    assert re.search(r"not found|does not exist|no such", line, re.I), line


def test_missing_data_file_names_data_params_path(write_config, tmp_path):
    config = tiny_config(data={"name": "csv", "params": {"path": "absent/table.csv"}})
    path, lines = train_bad(write_config, tmp_path, config)
    assert len(lines) == 1, lines
    line_with(lines, str(path), "data.params.path", "table.csv")


def test_problem_text_is_printed_literally(write_config, tmp_path):
    # File names may hold square brackets; the message must show the path as it is.
    config = tiny_config(data={"name": "csv", "params": {"path": "runs[v2]/table.csv"}})
    path, lines = train_bad(write_config, tmp_path, config)
    line_with(lines, str(path), "data.params.path", "runs[v2]/table.csv")


def test_yaml_syntax_error_gives_the_line(write_config, tmp_path):
    path, lines = train_bad(write_config, tmp_path, "name: tiny\noptim:\n  lr: 0.1\n   batch_size: 32\n")
    assert len(lines) == 1, lines
    line_with(lines, str(path), "line 4")


def test_empty_file(write_config, tmp_path):
    path, lines = train_bad(write_config, tmp_path, "")
    assert len(lines) == 1, lines
    line_with(lines, str(path), "empty")


def test_a_file_that_is_only_a_list(write_config, tmp_path):
    path, lines = train_bad(write_config, tmp_path, "- 1\n- 2\n")
    assert len(lines) == 1, lines
    line_with(lines, str(path), "mapping", "list")


def test_python_yaml_tags_are_refused_and_never_run(write_config, tmp_path):
    marker = tmp_path / "marker"
    path, lines = train_bad(write_config, tmp_path,
                            f'name: !!python/object/apply:os.system ["touch {marker}"]\n')
    assert not marker.exists()
    assert len(lines) == 1, lines
    line_with(lines, str(path), "python/object/apply:os.system")


# ---- losses that do not fit the data -------------------------------------------------------------


def test_cross_entropy_on_regression_data(write_config, tmp_path):
    config = tiny_config(data={"name": "sine", "n_train": 20, "n_test": 20})
    path, lines = train_bad(write_config, tmp_path, config)
    assert len(lines) == 1, lines
    line_with(lines, str(path), "loss", "cross_entropy", "mse")


def test_bce_on_three_classes(write_config, tmp_path):
    config = tiny_config(loss="bce", data={"name": "gaussians", "n_train": 30, "n_test": 30,
                                           "params": {"classes": 3}})
    path, lines = train_bad(write_config, tmp_path, config)
    assert len(lines) == 1, lines
    line_with(lines, str(path), "loss", "bce", "3", "cross_entropy")


def test_bce_on_mnist1d(write_config, tmp_path):
    config = tiny_config(loss="bce", data={"name": "mnist1d"})
    path, lines = train_bad(write_config, tmp_path, config)
    assert len(lines) == 1, lines
    line_with(lines, str(path), "loss", "bce", "10")


# ---- cross checks --------------------------------------------------------------------------------


def test_momentum_with_adam_is_rejected(write_config, tmp_path):
    path, lines = train_bad(write_config, tmp_path, with_section("optim", name="adam", momentum=0.9))
    assert len(lines) == 1, lines
    line_with(lines, str(path), "optim.momentum", "sgd")


def test_an_unavailable_device_is_a_user_error(write_config, tmp_path):
    path, lines = train_bad(write_config, tmp_path, tiny_config(), "--device", "tpu")
    assert len(lines) == 1, lines
    line_with(lines, "device", "tpu", "cpu")


# ---- several problems at once --------------------------------------------------------------------


def test_all_problems_in_one_file_are_reported_in_one_run(write_config, tmp_path):
    config = tiny_config()
    config["optim"] = {"name": "sgd", "lrr": 0.1, "batch_size": 0}
    config["train"] = {"epochs": 2.5}
    config["model"] = {"name": "resnet"}
    config["data"] = {**config["data"], "label_noise": 1.5}
    config["epochs"] = 3
    path, lines = train_bad(write_config, tmp_path, config)
    assert len(lines) == 6, lines
    assert all(str(path) in line for line in lines), lines
    for key in ("optim.lrr", "optim.batch_size", "train.epochs", "model.name", "data.label_noise", "epochs"):
        line_with(lines, str(path), f"{key}:")


def test_problems_from_the_file_and_from_set_come_together(write_config, tmp_path):
    path, lines = train_bad(write_config, tmp_path, with_section("optim", lrr=0.1), "--set", "model.dropout=2")
    assert len(lines) == 2, lines
    line_with(lines, str(path), "optim.lrr")
    line = line_with(lines, "--set", "model.dropout")
    assert str(path) not in line


# ---- --set ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("item, fragments", [
    ("optim.lr", ["--set", "optim.lr", "="]),
    ("optim.lrr=0.1", ["--set", "optim.lrr", "optim.lr"]),
    ("nonsense.key=1", ["--set", "nonsense"]),
    ("model.hidden=[4,", ["--set", "model.hidden"]),
    ("loss.smoothing=0.1", ["--set", "loss.smoothing"]),
])
def test_bad_set_is_rejected(write_config, tmp_path, item, fragments):
    path, lines = train_bad(write_config, tmp_path, tiny_config(), "--set", item)
    assert len(lines) == 1, lines
    line_with(lines, *fragments)


def test_set_value_is_yaml_and_shows_in_print_config(write_config, tmp_path):
    out = tmp_path / "out"
    result = invoke("train", write_config(tiny_config()), "--out", out,
                    "--set", "model.hidden=[4,4]", "--set", "optim.batch_size=full", "--print-config")
    assert_no_traceback(result)
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(text(result.stdout))
    assert printed["model"]["hidden"] == [4, 4]
    assert printed["optim"]["batch_size"] == "full"
    assert_nothing_written(out)


# ---- --print-config ------------------------------------------------------------------------------


def test_print_config_prints_every_section_with_defaults(write_config, tmp_path):
    from dlcli.config.data_params import GaussiansParams
    from dlcli.config.schema import Experiment

    out = tmp_path / "out"
    sparse = {"name": "sparse", "data": {"name": "gaussians", "n_train": 50}, "optim": {"lr": 0.05}}
    path = write_config(sparse)
    result = invoke("train", path, "--out", out, "--print-config")
    assert_no_traceback(result)
    assert result.exit_code == 0, result.output
    assert_nothing_written(out)
    printed = yaml.safe_load(text(result.stdout))
    assert isinstance(printed, dict)
    defaults = Experiment().model_dump(mode="json")
    assert set(printed) == set(defaults)
    for section in ("data", "model", "optim", "regularization", "train"):
        assert set(printed[section]) == set(defaults[section]), section
    assert printed["name"] == "sparse"
    assert printed["optim"]["lr"] == 0.05
    assert printed["data"]["n_train"] == 50
    for section in ("model", "regularization", "train"):
        assert printed[section] == defaults[section], section
    assert printed["optim"]["momentum"] == defaults["optim"]["momentum"]
    assert printed["data"]["params"] == GaussiansParams().model_dump(mode="json")
    assert printed["loss"] == defaults["loss"] and printed["seed"] == defaults["seed"]
    # what it prints is a config: it validates to the same experiment
    reprinted = tmp_path / "reprinted.yaml"
    reprinted.write_text(text(result.stdout))
    assert load_experiment(reprinted) == load_experiment(path)


def test_print_config_output_is_valid_yaml_for_long_values(write_config, tmp_path):
    # A resolved data path can be longer than a terminal line; the printed YAML must still load.
    folder = tmp_path / ("d" * 90)
    folder.mkdir()
    (folder / "table.csv").write_text("a,b,label\n0,1,x\n1,0,y\n1,1,x\n0,0,y\n")
    config = tiny_config(data={"name": "csv", "params": {"path": f"{folder.name}/table.csv", "target": "label"}})
    out = tmp_path / "out"
    result = invoke("train", write_config(config), "--out", out, "--print-config")
    assert_no_traceback(result)
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(text(result.stdout))
    assert printed["data"]["params"]["path"] == str((folder / "table.csv").resolve())


# ---- train ---------------------------------------------------------------------------------------

TINY_EPOCHS = 3


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny gaussians run through the CLI: (config path, output root, run dir, result)."""
    folder = tmp_path_factory.mktemp("tiny_run")
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config(train={"epochs": TINY_EPOCHS})))
    out = folder / "out"
    result = invoke("train", path, "--out", out)
    assert_no_traceback(result)
    assert result.exit_code == 0, result.output
    return path, out, single_run_dir(out, "tiny"), result


def test_train_prints_the_run_directory(tiny_run):
    _, out, run_dir, result = tiny_run
    assert run_dir.parent == out / "tiny"
    assert str(run_dir) in text(result.stdout)
    assert {p.name for p in run_dir.iterdir()} >= {"config.yaml", "metrics.csv", "summary.json", "model.pt"}


def test_train_saves_the_resolved_config(tiny_run):
    path, _, run_dir, _ = tiny_run
    assert load_experiment(run_dir / "config.yaml") == load_experiment(path)


def test_train_logs_every_epoch_starting_at_zero(tiny_run):
    _, _, run_dir, _ = tiny_run
    rows = read_rows(run_dir)
    assert METRIC_COLUMNS <= set(rows[0]), rows[0].keys()
    assert [int(row["epoch"]) for row in rows] == list(range(TINY_EPOCHS + 1))
    batches = math.ceil(100 / 32)  # n_train 100, batch_size 32, the last batch keeps the remainder
    assert [int(row["step"]) for row in rows] == [epoch * batches for epoch in range(TINY_EPOCHS + 1)]
    assert all(float(row["lr"]) == 0.1 for row in rows)
    for row in rows:
        for key in ("train_loss", "test_loss"):
            assert math.isfinite(float(row[key])) and float(row[key]) >= 0
        for key in ("train_error", "test_error"):
            error = float(row[key])
            assert 0 <= error <= 1 and round(error * 100) == pytest.approx(error * 100, abs=1e-6)  # k / 100
    seconds = [float(row["seconds"]) for row in rows]
    assert seconds == sorted(seconds) and seconds[0] >= 0


def test_train_summary(tiny_run):
    _, _, run_dir, _ = tiny_run
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = [{key: float(value) for key, value in row.items()} for row in read_rows(run_dir)]
    assert summary["status"] == "completed"
    assert summary["epochs_run"] == TINY_EPOCHS
    assert summary["parameters"] == 2 * 8 + 8 + 8 * 2 + 2 == 42  # mlp 2-8-2
    assert summary["device"] == os.environ.get("DLCLI_TEST_DEVICE", "cpu")  # the device the run was given
    assert summary["torch_version"] == torch.__version__
    # two unit-variance Gaussians 2 apart: Bayes error Φ(−1)
    assert summary["bayes_error"] == pytest.approx(0.5 * math.erfc(1 / math.sqrt(2)), rel=1e-9)
    last = rows[-1]
    for key in ("train_loss", "train_error", "test_loss", "test_error"):
        assert summary[key] == pytest.approx(last[key], rel=1e-12, abs=1e-12), key
    best = min(row["test_error"] for row in rows)
    assert summary["best_test_error"] == pytest.approx(best, abs=1e-12)
    assert rows[summary["best_epoch"]]["epoch"] == summary["best_epoch"]
    assert rows[summary["best_epoch"]]["test_error"] == pytest.approx(best, abs=1e-12)


def test_train_saves_weights_that_load_safely(tiny_run):
    _, _, run_dir, _ = tiny_run
    state = torch.load(run_dir / "model.pt", weights_only=True)
    assert all(isinstance(value, torch.Tensor) for value in state.values())
    assert sorted(tuple(value.shape) for value in state.values()) == sorted([(8, 2), (8,), (2, 8), (2,)])
    assert sum(value.numel() for value in state.values()) == 42


def test_train_reports_divergence_with_exit_1(write_config, tmp_path):
    out = tmp_path / "out"
    result = invoke("train", write_config(with_section("optim", lr=1e6)), "--out", out)
    assert_no_traceback(result)
    assert result.exit_code == 1, result.output
    run_dir = single_run_dir(out, "tiny")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "diverged"
    assert summary["message"]
    rows = read_rows(run_dir)
    assert all(math.isfinite(float(row[key])) for row in rows for key in METRIC_COLUMNS)
    assert summary["epochs_run"] == int(rows[-1]["epoch"]) < TINY_EPOCHS


def test_train_into_an_output_root_that_is_a_file_is_a_user_error(write_config, tmp_path):
    out = tmp_path / "out"
    out.write_text("not a folder\n")
    result = invoke("train", write_config(tiny_config()), "--out", out)
    assert_no_traceback(result)
    assert result.exit_code == 2, result.output
    assert str(out) in text(result.stderr)
    assert out.read_text() == "not a folder\n"


# ---- evaluate ------------------------------------------------------------------------------------


def evaluation_of(run_dir: Path, *args) -> dict:
    result = invoke("evaluate", run_dir, *args)
    assert_no_traceback(result)
    assert result.exit_code == 0, result.output
    return json.loads((run_dir / "evaluation.json").read_text())


def check_classification_tables(evaluation: dict, n: int) -> None:
    confusion = evaluation["confusion"]
    assert len(confusion) == len(evaluation["classes"]) == 2
    assert sum(map(sum, confusion)) == n
    diagonal = sum(confusion[i][i] for i in range(len(confusion)))
    assert diagonal / n == pytest.approx(1 - evaluation["error"], abs=1e-6)
    assert sum(row["support"] for row in evaluation["per_class"]) == n
    assert [row["support"] for row in evaluation["per_class"]] == [sum(row) for row in confusion]
    assert 0 <= evaluation["ece"] <= 1


def test_evaluate_matches_the_final_test_metrics(tiny_run):
    _, _, run_dir, _ = tiny_run
    evaluation = evaluation_of(run_dir)
    last = final_row(run_dir)
    assert evaluation["samples"] == 100
    assert evaluation["loss"] == pytest.approx(last["test_loss"], abs=1e-6)
    assert evaluation["error"] == pytest.approx(last["test_error"], abs=1e-6)
    check_classification_tables(evaluation, 100)


def test_evaluate_train_split_matches_the_final_train_metrics(tiny_run):
    _, _, run_dir, _ = tiny_run
    evaluation = evaluation_of(run_dir, "--split", "train")
    last = final_row(run_dir)
    assert evaluation["samples"] == 100
    assert evaluation["loss"] == pytest.approx(last["train_loss"], abs=1e-6)
    assert evaluation["error"] == pytest.approx(last["train_error"], abs=1e-6)
    check_classification_tables(evaluation, 100)


def test_evaluate_on_other_data(tiny_run):
    _, _, run_dir, _ = tiny_run
    evaluation = evaluation_of(run_dir, "--set", "data.n_test=50")
    assert evaluation["samples"] == 50
    check_classification_tables(evaluation, 50)


def _fingerprint(folder: Path) -> dict:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


@pytest.mark.parametrize("args, fragments", [
    (["--set", "optim.lr=1"], ["--set", "optim.lr"]),
    (["--split", "validation"], ["validation", "test", "train"]),
])
def test_evaluate_rejects_bad_arguments(tiny_run, args, fragments):
    _, _, run_dir, _ = tiny_run
    before = _fingerprint(run_dir)
    lines = user_error(invoke("evaluate", run_dir, *args))
    line_with(lines, *fragments)
    assert _fingerprint(run_dir) == before


def test_evaluate_rejects_a_folder_that_is_not_a_run(tmp_path):
    folder = tmp_path / "not_a_run"
    folder.mkdir()
    lines = user_error(invoke("evaluate", folder), folder)
    line_with(lines, str(folder))


def test_evaluate_a_regression_run(write_config, tmp_path):
    config = tiny_config(data={"name": "sine", "n_train": 60, "n_test": 40, "params": {"noise": 0.1}}, loss="mse",
                         optim={"name": "adam", "lr": 0.01, "batch_size": 32}, train={"epochs": 2})
    out = tmp_path / "out"
    result = invoke("train", write_config(config), "--out", out)
    assert_no_traceback(result)
    assert result.exit_code == 0, result.output
    run_dir = single_run_dir(out, "tiny")
    evaluation = evaluation_of(run_dir)
    last = final_row(run_dir)
    assert evaluation["samples"] == 40
    assert evaluation["loss"] == pytest.approx(last["test_loss"], abs=1e-6)
    assert evaluation["error"] == pytest.approx(last["test_error"], abs=1e-6)
    assert evaluation["bayes_error"] == pytest.approx(0.1**2)
    for key in ("per_class", "confusion", "classes"):
        assert key not in evaluation, key


# ---- help ----------------------------------------------------------------------------------------


def test_main_help_lists_the_commands():
    result = invoke("--help")
    assert_no_traceback(result)
    assert result.exit_code == 0, result.output
    for command in ("train", "evaluate"):
        assert re.search(rf"^\W*{command}\b", text(result.stdout), re.M), result.stdout


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_command_help_has_an_example(command):
    result = invoke(command, "--help")
    assert_no_traceback(result)
    assert result.exit_code == 0, result.output
    assert re.search(rf"Example:\s+dlcli {command}\b", text(result.stdout)), result.stdout


def test_python_dash_m_dlcli_help():
    completed = subprocess.run([sys.executable, "-m", "dlcli", "--help"], capture_output=True, text=True,
                               cwd=REPO)
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr
    assert "train" in completed.stdout and "evaluate" in completed.stdout


def test_train_on_a_config_with_a_sweep_section_says_it_trains_the_base_config_once(tmp_path):
    config = tiny_config()
    config["sweep"] = {"grid": {"optim.lr": [0.1, 0.2]}}
    path = write_yaml(tmp_path, config)
    stdout = succeeded(invoke("train", path, "--out", tmp_path / "out"))
    assert f"{path} has a sweep: section; this trains its base config once (dlcli sweep {path} runs the sweep)" \
        in " ".join(stdout.split())
    assert len(list((tmp_path / "out" / "tiny").iterdir())) == 1
