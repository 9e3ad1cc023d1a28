"""Search spaces in the sweep grammar: distributions next to values, on the command line and in YAML;
a grid expands a choice and refuses a sampled distribution; a search needs a validation split."""
from __future__ import annotations

import sys

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from conftest import invoke, line_with, read_csv_rows, succeeded, tiny_config, user_error, write_yaml
from dlcli.config.search import load_search
from dlcli.config.search_space import Choice, Uniform
from dlcli.config.sweep import parse_values
from dlcli.errors import UserError


def searchable(**sections) -> dict:
    config = tiny_config(**sections)
    config["train"] = {"epochs": 2, "val_fraction": 0.25}
    return config


def test_distributions_parse_next_to_values():
    assert parse_values("loguniform(1e-4,1)") == [Uniform(0.0001, 1, log=True)]
    assert parse_values("uniform(0, 0.5)") == [Uniform(0, 0.5)]
    assert parse_values("intuniform(2,9)") == [Uniform(2, 9, integer=True)]
    assert parse_values("choice(16,32,64)") == [Choice((16, 32, 64))]
    assert parse_values("choice([64],[256,256])") == [Choice(([64], [256, 256]))]
    assert parse_values("choice(full,8)") == [Choice(("full", 8))]
    assert parse_values("0.1,log(0.01,1,3)") == [0.1, 0.01, 0.1, 1.0]  # the generators are untouched


@pytest.mark.parametrize("text, says", [("loguniform(0,1)", "low > 0"), ("uniform(1,0)", "below high"),
                                        ("intuniform(1.5,3)", "whole numbers"), ("uniform(1)", "uniform(low, high)"),
                                        ("choice()", "at least one value"), ("uniform(a,1)", "numbers"),
                                        ("uniform(1e-3,.inf)", "finite"), ("loguniform(1e-3,1e400)", "finite"),
                                        (f"intuniform(1,{2**62})", "within ±2^53")])
def test_a_bad_distribution_says_what_is_allowed(text, says):
    with pytest.raises(UserError) as error:
        parse_values(text)
    assert says in str(error.value) and text in str(error.value)


@given(st.floats(-1e6, 1e6), st.floats(1e-9, 1e6), st.floats(0, 1))
def test_a_sample_as_the_config_gets_it_stays_within_the_bounds_and_near_the_draw(low, width, where):
    """Rounded for config files to 6 significant digits, more for a range narrow for its size."""
    assume(low + width > low)
    distribution = Uniform(low, low + width)
    drawn = low + where * width
    value = distribution.value(drawn)
    assert distribution.low <= value <= distribution.high
    assert abs(value - drawn) <= 5e-5 * width + 1e-12 * abs(drawn)


def test_samples_of_a_narrow_range_stay_distinct():
    narrow = Uniform(0.1000001, 0.1000004)
    assert [narrow.value(v) for v in (0.1000001, 0.10000025, 0.1000004)] == [0.1000001, 0.10000025, 0.1000004]
    assert Uniform(0.003, 1, log=True).value(0.0316227766) == 0.0316228  # 6 digits where the range is wide


def test_a_grid_expands_a_choice_and_refuses_a_sampled_distribution(tmp_path):
    config = write_yaml(tmp_path, searchable())
    out = tmp_path / "out"
    stdout = succeeded(invoke("sweep", config, "--grid", "optim.batch_size=choice(8,16,32)", "--out", out, "--dry-run"))
    assert "3 runs" in stdout
    lines = user_error(invoke("sweep", config, "--grid", "optim.lr=loguniform(1e-3,1)", "--out", out), out)
    line_with(lines, "optim.lr", "loguniform", "--method")


def test_a_grid_names_every_sampled_axis_it_cannot_list(tmp_path):
    config = write_yaml(tmp_path, searchable())
    out = tmp_path / "out"
    lines = user_error(invoke("sweep", config, "--grid", "optim.lr=loguniform(1e-3,1)", "--grid",
                              "model.dropout=uniform(0,0.5)", "--out", out), out)
    assert len(lines) == 2, lines
    line_with(lines, "optim.lr", "loguniform", "is sampled, not listed")
    line_with(lines, "model.dropout", "uniform", "is sampled, not listed")


def test_search_options_on_a_grid_are_refused(tmp_path):
    config = write_yaml(tmp_path, searchable())
    out = tmp_path / "out"
    lines = user_error(invoke("sweep", config, "--grid", "optim.lr=0.1,0.2", "--trials", "4", "--out", out), out)
    line_with(lines, "--trials", "grid")


def test_a_search_without_a_validation_split_is_one_line_that_says_why(tmp_path):
    config = write_yaml(tmp_path, tiny_config())
    out = tmp_path / "out"
    lines = user_error(invoke("sweep", config, "--method", "random", "--trials", "2",
                              "--grid", "optim.lr=loguniform(1e-3,1)", "--out", out), out)
    assert len(lines) == 1, lines
    line_with(lines, "train.val_fraction", "validation")


def test_the_space_is_checked_at_its_bounds_and_choices_before_anything_runs(tmp_path):
    config = write_yaml(tmp_path, searchable())
    out = tmp_path / "out"
    lines = user_error(invoke("sweep", config, "--method", "tpe", "--grid", "optim.batch_size=choice(8,0)",
                              "--grid", "optim.lr=loguniform(1e-3,1)", "--out", out), out)
    line_with(lines, "optim.batch_size")


@pytest.mark.parametrize("min_epochs", ["2", "5"])
def test_halving_with_no_rung_before_the_last_epoch_says_so_and_trains_every_trial_to_the_end(tmp_path, min_epochs):
    config = write_yaml(tmp_path, searchable())  # 2 epochs: halving has a rung at epoch 1 alone
    out = tmp_path / "out"
    options = ["--method", "random", "--trials", "3", "--prune", "asha", "--min-epochs", min_epochs,
               "--grid", "optim.lr=loguniform(1e-3,1)", "--out", out]
    line_with(succeeded(invoke("sweep", config, *options, "--dry-run")).splitlines(),
              f"--min-epochs {min_epochs}", "train.epochs: 2", "no rung")
    stdout = succeeded(invoke("sweep", config, *options))
    line_with(stdout.splitlines(), f"--min-epochs {min_epochs}", "no rung", "every trial trains to the end")
    rows = read_csv_rows(out / "tiny" / "runs.csv")[1]
    assert [(row["status"], row["epochs_run"]) for row in rows] == [("completed", "2")] * 3
    options[options.index(min_epochs)] = "1"
    stdout = succeeded(invoke("sweep", config, *options[:-1], tmp_path / "rung"))
    assert "no rung" not in stdout  # with --min-epochs 1 halving has its rung at epoch 1


def test_epochs_are_searched_without_halving_which_spends_them(tmp_path):
    config = write_yaml(tmp_path, searchable())
    out = tmp_path / "out"
    options = ["--method", "random", "--trials", "4", "--grid", "train.epochs=choice(1,3)", "--out", out]
    lines = user_error(invoke("sweep", config, *options, "--prune", "asha"), out)
    assert len(lines) == 1, lines
    line_with(lines, "train.epochs", "successive halving", "--prune none")
    stdout = succeeded(invoke("sweep", config, *options))
    rows = read_csv_rows(out / "tiny" / "runs.csv")[1]
    total = sum(int(row["train.epochs"]) for row in {row["run_id"]: row for row in rows}.values())
    assert {row["train.epochs"] for row in rows} == {"1", "3"}  # the premise: both were sampled
    line_with(stdout.splitlines(), f"epochs trained: {total} of {total} without pruning")


def test_the_yaml_sweep_section_holds_the_space_and_the_settings(tmp_path):
    config = searchable()
    config["sweep"] = {"grid": {"optim.lr": "loguniform(1e-3, 1)", "model.hidden": [[4], [8, 8]]},
                       "method": "qmc", "trials": 5, "prune": "asha", "eta": 2}
    search = load_search(write_yaml(tmp_path, config), ["optim.momentum=uniform(0,0.9)"], trials=7)
    assert search.space == {"optim.lr": Uniform(0.001, 1, log=True), "model.hidden": Choice(([4], [8, 8])),
                            "optim.momentum": Uniform(0, 0.9)}
    settings = search.settings
    assert (settings.method, settings.trials, settings.prune, settings.eta) == ("qmc", 7, "asha", 2)
    assert settings.rungs(20) == [1, 2, 4, 8, 16]
    assert search.point({"optim.lr": 0.0123456789, "model.hidden": "[8, 8]", "optim.momentum": 0.5}) == \
        {"optim.lr": 0.0123457, "model.hidden": [8, 8], "optim.momentum": 0.5}


def test_a_search_without_optuna_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # as if Optuna were not installed
    config = write_yaml(tmp_path, searchable())
    out = tmp_path / "out"
    lines = user_error(invoke("sweep", config, "--method", "random", "--grid", "optim.lr=uniform(0.1,1)",
                              "--out", out), out)
    line_with(lines, "Optuna", "pip install 'dlcli[search]'")


def test_a_search_dry_run_shows_the_space_and_writes_nothing(tmp_path):
    config = write_yaml(tmp_path, searchable())
    out = tmp_path / "out"
    stdout = succeeded(invoke("sweep", config, "--method", "qmc", "--trials", "5", "--prune", "asha",
                              "--grid", "optim.lr=loguniform(1e-3,1)", "--grid", "model.hidden=[4],[8]",
                              "--out", out, "--dry-run"))
    line_with(stdout.splitlines(), "optim.lr", "loguniform(0.001,1)")
    line_with(stdout.splitlines(), "model.hidden", "choice([4],[8])")
    line_with(stdout.splitlines(), "5 trials (qmc", "val_error", "halving at epochs 1")
    assert not out.exists()
