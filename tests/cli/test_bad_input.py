"""Bad input through the command line: data files with wrong shapes or values, configs past what torch or
the machine allows, and an output folder that cannot be written. Each gives one line per problem that
names the key or file and what is allowed, exit 2, no traceback, and nothing written."""
from __future__ import annotations

import errno
import os

import numpy as np
import pandas as pd
from pathlib import Path

import pytest

from conftest import invoke, line_with, read_csv_rows, succeeded, tiny_config, user_error, write_yaml

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 3)).astype(np.float32)
Y = RNG.integers(0, 2, size=40)


def npz_config(tmp_path, **arrays) -> dict:
    path = tmp_path / "data.npz"
    np.savez(path, **{"x": X, "y": Y, "x_test": X, "y_test": Y, **arrays})
    return tiny_config(data={"name": "npz", "params": {"path": str(path)}})


def csv_config(tmp_path, frame: pd.DataFrame, **params) -> dict:
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return tiny_config(data={"name": "csv", "params": {"path": str(path), **params}})


def table(label=None) -> pd.DataFrame:
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["label"] = Y if label is None else label
    return frame


def one_problem(tmp_path, config: dict, *args) -> str:
    """Train: exit 2, nothing under --out, exactly one problem line; return it."""
    out = tmp_path / "out"
    lines = user_error(invoke("train", write_yaml(tmp_path, config), "--out", out, *args), out)
    assert len(lines) == 1, lines
    return lines[0]


# ---- the table of reproduced failures ----------------------------------------------------------------


def test_a_model_too_large_for_memory_is_refused_before_it_is_built(tmp_path):
    config = tiny_config(model={"name": "mlp", "hidden": [100_000_000]})
    config["data"]["n_train"] = 10_000  # evaluating 8192 samples at once: terabytes on any machine
    line = one_problem(tmp_path, config)
    assert "model.hidden" in line and "500,000,002 parameters" in line and "--force" in line, line


@pytest.mark.parametrize("n_train, batch_size, expected", [
    (17, 16, "a batch of 16 leaves a last batch of 1 of the 17 training samples"),
    (20, 1, "a batch of 1 is one sample"),
])
def test_batch_norm_with_a_batch_of_one_sample_is_refused_before_training(tmp_path, n_train, batch_size, expected):
    """PyTorch's batch norm stops mid-epoch on a batch of one (no variance to normalize by)."""
    config = tiny_config(model={"name": "mlp", "hidden": [8], "norm": "batch"})
    config["data"]["n_train"], config["optim"]["batch_size"] = n_train, batch_size
    line = one_problem(tmp_path, config)
    assert f"optim.batch_size: {expected}, which the model's batch norm cannot normalize" in line, line
    config["optim"]["batch_size"] = 2 * batch_size if batch_size > 1 else 2  # leaves 1, or none
    config["data"]["n_train"] = n_train + 1 if batch_size > 1 else n_train
    succeeded(invoke("train", write_yaml(tmp_path, config), "--out", tmp_path / "out"))


@pytest.mark.parametrize("key", ["seed", "data.seed"])
def test_a_seed_beyond_64_bits_is_refused(tmp_path, key):
    config = tiny_config()
    if key == "seed":
        config["seed"] = 99999999999999999999
    else:
        config["data"]["seed"] = 99999999999999999999
    line = one_problem(tmp_path, config)
    assert f"{key}: " in line and "less than 9223372036854775808" in line, line


def test_a_billion_epochs_cost_nothing_before_training(tmp_path):
    # The plan is lazy: a dry run estimates at once, and training starts at once (early stopping ends it).
    config = write_yaml(tmp_path, tiny_config(train={"epochs": 1_000_000_000, "val_fraction": 0.2}))
    out = tmp_path / "out"
    assert "runs" in succeeded(invoke("sweep", config, "--out", out, "--dry-run"))
    stopping = {"early_stopping": {"patience": 1, "metric": "val_error"}}
    config = write_yaml(tmp_path, tiny_config(train={"epochs": 1_000_000_000, "val_fraction": 0.2},
                                              regularization=stopping))
    succeeded(invoke("train", config, "--out", out))
    (run_dir,) = (out / "tiny").iterdir()
    epochs = [int(row["epoch"]) for row in read_csv_rows(run_dir / "metrics.csv")[1]]
    assert 1 <= epochs[-1] < 1000, epochs


def test_npz_test_features_differ_from_training_features(tmp_path):
    line = one_problem(tmp_path, npz_config(tmp_path, x_test=X[:, :2]))
    line_with([line], "data.params.path", "data.npz", "x_test has samples of shape (2,) but x has (3,)",
              "the same features")


def test_npz_with_fewer_labels_than_samples(tmp_path):
    line = one_problem(tmp_path, npz_config(tmp_path, y=Y[:30]))
    line_with([line], "data.params.path", "data.npz", "x has 40 samples but y has 30 labels", "one label per sample")


def test_npz_with_one_dimensional_inputs(tmp_path):
    line = one_problem(tmp_path, npz_config(tmp_path, x=X[:, 0], x_test=X[:, :1]))
    line_with([line], "data.params.path", "data.npz", "x has shape (40,)", "samples × features",
              "reshape to (40, 1)")


def test_npz_with_two_dimensional_labels(tmp_path):
    line = one_problem(tmp_path, npz_config(tmp_path, y=np.stack([Y, Y], axis=1)))
    line_with([line], "data.params.path", "data.npz", "y has shape (40, 2)", "1-D")


def test_npz_with_nan_inputs_names_the_array_and_row(tmp_path):
    x = X.copy()
    x[5, 1] = np.nan
    x[9, 0] = np.inf
    line = one_problem(tmp_path, npz_config(tmp_path, x=x))
    line_with([line], "data.params.path", "data.npz", "x has 2 NaN or infinite values", "x[5]", "finite numbers")


def test_csv_with_infinite_or_empty_features_names_the_column_and_row(tmp_path):
    frame = table()
    frame["b"] = frame["b"].astype(object)
    frame.loc[7, "b"] = np.inf
    frame.loc[3, "c"] = None  # an empty cell
    line = one_problem(tmp_path, csv_config(tmp_path, frame))
    line_with([line], "data.params.path", "data.csv", "columns 'b' (1 value, the first in row 8)",
              "'c' (1 value, the first in row 4)", "finite numbers")


def test_csv_with_a_single_class(tmp_path):
    line = one_problem(tmp_path, csv_config(tmp_path, table(label=1)))
    line_with([line], "data.params.path", "data.csv", "single class ('1')", "at least two")


# ---- more bad data --------------------------------------------------------------------------------


def test_csv_test_file_with_other_columns(tmp_path):
    test_path = tmp_path / "test.csv"
    table()[["a", "c", "b", "label"]].to_csv(test_path, index=False)
    line = one_problem(tmp_path, csv_config(tmp_path, table(), test_path=str(test_path)))
    line_with([line], "data.params.test_path", "test.csv", "has columns a, c, b, label", "in the same order")


def test_csv_with_an_empty_target_cell(tmp_path):
    frame = table().astype({"label": object})
    frame.loc[2, "label"] = None
    line = one_problem(tmp_path, csv_config(tmp_path, frame))
    line_with([line], "data.params.path", "target column 'label' has 1 empty value", "row 3")


def test_csv_with_one_row_leaves_nothing_to_train_on(tmp_path):
    line = one_problem(tmp_path, csv_config(tmp_path, table().iloc[:1], task="regression"))
    line_with([line], "data.params.test_fraction", "data.csv", "leaves none for training")


def test_csv_with_a_text_target_as_regression(tmp_path):
    line = one_problem(tmp_path, csv_config(tmp_path, table(label=["yes", "no"] * 20), task="regression"))
    line_with([line], "data.params.task", "numeric target", "'label'")


def test_npy_file_given_as_npz(tmp_path):
    path = tmp_path / "single.npy"
    np.save(path, X)
    config = tiny_config(data={"name": "npz", "params": {"path": str(path)}})
    line_with([one_problem(tmp_path, config)], "data.params.path", "single.npy", "np.savez")


def test_npz_with_no_test_samples(tmp_path):
    line = one_problem(tmp_path, npz_config(tmp_path, x_test=X[:0], y_test=Y[:0]))
    line_with([line], "data.params.path", "x_test has no samples")


def test_validation_fraction_that_leaves_no_training_samples(tmp_path):
    config = tiny_config(train={"epochs": 1, "val_fraction": 0.6})
    config["data"]["n_train"] = 1
    line_with([one_problem(tmp_path, config)], "train.val_fraction", "no training samples")


# ---- found by tests/test_fuzz.py -----------------------------------------------------------------------


def test_a_shift_longer_than_the_signal(tmp_path):
    config = tiny_config(data={"name": "digits", "n_train": 40, "n_test": 40, "augment": {"shift": 2**63 - 1}})
    line_with([one_problem(tmp_path, config)], "data.augment.shift", "inputs of digits (8)", "allowed: 0 to 8")


def test_generated_values_beyond_float32(tmp_path):
    config = tiny_config(data={"name": "sine", "n_train": 20, "n_test": 20, "params": {"noise": 1e300}}, loss="mse")
    out = tmp_path / "out"
    lines = user_error(invoke("train", write_yaml(tmp_path, config), "--out", out), out)
    assert all(line.startswith("error: ") for line in lines), lines  # no warning from NumPy's cast either
    line_with(lines, "data.params: sine: y_train has 20 NaN or infinite values", "float32")


def test_a_key_with_a_line_break_stays_on_one_line(tmp_path):
    config = tiny_config()
    config["optim"]["l\nr"] = 0.1
    line_with([one_problem(tmp_path, config)], "optim.l\\nr: unknown key")


def test_a_data_set_name_that_is_a_list(tmp_path):
    config = tiny_config()
    config["data"]["name"] = []
    line_with([one_problem(tmp_path, config)], "data.name")


def test_batch_larger_than_the_training_set_is_still_clamped(tmp_path):
    config = tiny_config(optim={"name": "sgd", "lr": 0.1, "batch_size": 10_000})
    succeeded(invoke("train", write_yaml(tmp_path, config), "--out", tmp_path / "out"))


# ---- --force ----------------------------------------------------------------------------------------


def test_force_trains_a_model_the_memory_check_refuses(tmp_path, monkeypatch):
    import dlcli.components.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda device: 1000)  # a machine with 1000 bytes free
    line = one_problem(tmp_path, npz_config(tmp_path))
    line_with([line], "model.hidden", "cpu has 1000 bytes free", "--force")
    out = tmp_path / "out"
    succeeded(invoke("train", write_yaml(tmp_path, npz_config(tmp_path)), "--out", out, "--force"))
    assert len(list((out / "tiny").iterdir())) == 1


def test_sweep_force_trains_points_the_memory_check_refuses(tmp_path, monkeypatch):
    import dlcli.components.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda device: 1000)
    config, out = write_yaml(tmp_path, npz_config(tmp_path)), tmp_path / "out"
    lines = user_error(invoke("sweep", config, "--grid", "optim.lr=0.1,0.2", "--out", out), out)
    assert len(lines) == 1, lines
    line_with(lines, "model.hidden", "every point", "--force")
    succeeded(invoke("sweep", config, "--grid", "optim.lr=0.1,0.2", "--out", out, "--force"))
    assert {row["status"] for row in read_csv_rows(out / "tiny" / "runs.csv")[1]} == {"completed"}


def test_bias_variance_force_trains_runs_the_memory_check_refuses(tmp_path, monkeypatch):
    import dlcli.components.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda device: 1000)
    config, out = write_yaml(tmp_path, tiny_config(train={"epochs": 1})), tmp_path / "out"
    lines = user_error(invoke("bias-variance", config, "--trials", "2", "--out", out), out)
    line_with(lines, "1000 bytes free", "--force")
    succeeded(invoke("bias-variance", config, "--trials", "2", "--out", out, "--force"))
    assert (out / "tiny" / "bias_variance.csv").is_file()


# ---- an output folder that cannot be written ------------------------------------------------------------


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_read_only_output_folder(tmp_path, monkeypatch, command):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    # root may write into any folder whatever its mode: ask the operating system as another user would
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if Path(path) == folder else access(path, mode))
    try:
        out = folder / "results"
        lines = user_error(invoke(command, write_yaml(tmp_path, tiny_config()), "--out", out), out)
        line_with(lines, "--out", "not writable")
    finally:
        folder.chmod(0o700)


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_a_full_disk_leaves_nothing_behind(tmp_path, monkeypatch, command):
    monkeypatch.setattr(os, "fsync", no_space)  # every durable write fails, after its temporary file exists
    out = tmp_path / "out"
    lines = user_error(invoke(command, write_yaml(tmp_path, tiny_config()), "--out", out), out)
    assert len(lines) == 1, lines
    line_with(lines, "--out", "No space left on device", "unfinished runs were removed")


def test_a_full_disk_during_a_search_is_one_line_and_leaves_nothing_behind(tmp_path, monkeypatch):
    """The disk fills as the search's first batch, trained in lockstep, writes its weights."""
    real_fsync = os.fsync

    def full_for_weights(descriptor):
        if ".model.pt." in os.readlink(f"/proc/self/fd/{descriptor}"):  # its temporary file
            no_space()
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", full_for_weights)
    out = tmp_path / "out"
    config = write_yaml(tmp_path, tiny_config(train={"epochs": 2, "val_fraction": 0.2}))
    lines = user_error(invoke("sweep", config, "--grid", "optim.lr=loguniform(0.01,1)", "--method", "random",
                              "--trials", "3", "--out", out), out)
    assert len(lines) == 1, lines
    line_with(lines, "--out", "No space left on device", "unfinished runs were removed")


def test_a_disk_that_fills_during_training_keeps_earlier_runs_only(tmp_path, monkeypatch):
    from dlcli.layout import CsvLog

    out, config = tmp_path / "out", write_yaml(tmp_path, tiny_config())
    succeeded(invoke("train", config, "--out", out))
    earlier = set((out / "tiny").iterdir())
    appended = CsvLog.append_many

    def fills_up(log, rows):
        if log.path.name == "metrics.csv" and rows[0]["epoch"] >= 2:
            no_space()
        appended(log, rows)

    monkeypatch.setattr(CsvLog, "append_many", fills_up)
    result = invoke("train", config, "--out", out)
    assert result.exit_code == 2, result.output
    line_with(result.stderr.splitlines(), "--out", "No space left on device")
    assert set((out / "tiny").iterdir()) == earlier
    assert not [path for path in out.rglob("*") if path.name.endswith(".tmp")]


def test_a_disk_that_fills_during_a_sweep_keeps_the_points_it_finished(tmp_path, monkeypatch):
    from dlcli.layout import finished_summary

    out, config = tmp_path / "out", write_yaml(tmp_path, tiny_config())
    args = ["sweep", config, "--grid", "optim.lr=0.1,0.2", "--no-vectorize", "--out", out]
    real_fsync = os.fsync

    def full_after_one_run(descriptor):
        if any(finished_summary(path) for path in (out / "tiny").iterdir() if path.is_dir()):
            no_space()
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", full_after_one_run)
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    line_with(result.stderr.splitlines(), "--out", "No space left on device")
    runs = [path for path in (out / "tiny").iterdir() if path.is_dir()]
    assert len(runs) == 1 and finished_summary(runs[0])["status"] == "completed", runs
    monkeypatch.setattr(os, "fsync", real_fsync)  # space again: the same command finishes the sweep
    assert "1 already done, skipped" in succeeded(invoke(*args))
    assert {row["status"] for row in read_csv_rows(out / "tiny" / "runs.csv")[1]} == {"completed"}


def test_resume_on_a_full_disk_is_one_line_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    from dlcli.config.load import experiment_from_dict
    from dlcli.engine.loop import train

    def interrupt(row):
        if row["epoch"] == 3:
            raise KeyboardInterrupt

    stopped = train(experiment_from_dict(tiny_config(train={"epochs": 6, "checkpoint_every": 2})), tmp_path,
                    on_epoch=interrupt)
    checkpoint = (stopped.run_dir / "checkpoint.pt").read_bytes()
    monkeypatch.setattr(os, "fsync", no_space)
    result = invoke("train", "--resume", stopped.run_dir)
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "No space left on device" in lines[0] and "resume again" in lines[0], lines
    assert (stopped.run_dir / "checkpoint.pt").read_bytes() == checkpoint


@pytest.mark.parametrize("args, expected", [
    (["sweep", "c.yaml", "--trials", "0"], "error: Invalid value for '--trials': Input should be greater than or equal "
                                           "to 1 (dlcli sweep -h for help)"),
    (["train", "c.yaml", "--bogus"], "error: No such option: --bogus (Possible options: --out) (dlcli train -h for help)"),
    (["bogus"], "error: No such command 'bogus'. (dlcli -h for help)"),
])
def test_a_usage_error_is_one_line_too(args, expected):
    result = invoke(*args)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert result.stderr.splitlines() == [expected]


@pytest.mark.parametrize("assignment", ["optim.lr=.inf", "regularization.l2=.inf", "optim.momentum=-.inf"])
def test_an_infinite_number_is_refused_as_nan_is(tmp_path, assignment):
    line = one_problem(tmp_path, tiny_config(), "--set", assignment)
    assert line.endswith(f"--set {assignment.split('=')[0]}: Input should be a finite number, got "
                         f"{'-' if '-' in assignment else ''}inf"), line


def test_a_key_given_twice_in_a_config_file_is_refused_with_its_line(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("name: twice\ndata: {name: gaussians}\nmodel: {name: mlp, hidden: [8]}\n"
                    "optim:\n  name: sgd\n  lr: 0.1\n  lr: 0.2\ntrain: {epochs: 1}\n")
    out = tmp_path / "out"
    (line,) = user_error(invoke("train", path, "--out", out), out)
    assert line == f"error: {path}: line 7, column 3: YAML syntax error: the key lr is given twice in one mapping " \
                   "(once allowed)"


def test_the_sweep_section_set_with_set_says_which_options_set_it(tmp_path):
    config = write_yaml(tmp_path, tiny_config())
    out = tmp_path / "out"
    (line,) = user_error(invoke("sweep", config, "--grid", "optim.lr=0.1,0.2", "--set", "sweep.seeds=2", "--out", out),
                         out)
    assert "--set sweep.seeds: the sweep section is set in the file or by dlcli sweep's options (--grid, --zip, " \
           "--seeds" in line, line


def test_a_problem_with_a_value_from_set_names_set_not_the_file(tmp_path):
    """Found only once the data are loaded, as schema errors name it."""
    config = tiny_config(model={"name": "mlp", "hidden": [8], "norm": "batch"})
    line = one_problem(tmp_path, config, "--set", "optim.batch_size=1")
    assert line.startswith("error: --set optim.batch_size: a batch of 1 is one sample"), line
    line = one_problem(tmp_path, config, "--set", "data.augment.crop=2")
    assert line.startswith("error: --set data.augment.crop: applies to images"), line


def test_a_bad_device_option_is_named_once(tmp_path):
    line = one_problem(tmp_path, tiny_config(), "--device", "bogus")
    assert line.endswith("error: --device: must be auto, cpu, mps, cuda or cuda:N, got 'bogus'"), line


@pytest.mark.parametrize("assignment, says", [
    ("optim={lr: 0.1, lr: 0.2}", "the key lr is given twice in one mapping (once allowed)"),
    ("optim.lr=[1", "did not find expected ',' or ']'"),
])
def test_a_set_value_yaml_cannot_read_as_given_says_why(tmp_path, assignment, says):
    line = one_problem(tmp_path, tiny_config(), "--set", assignment)
    assert line.endswith(f"--set {assignment}: {says}"), line
