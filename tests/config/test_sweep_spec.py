"""Sweep specs: values (YAML, range, log), grid × zip × seeds expansion, the YAML sweep section."""
from __future__ import annotations

import itertools
import json
import math
import re
from fractions import Fraction
from pathlib import Path

import pytest

from conftest import invoke, line_with, succeeded, tiny_config, user_error, write_yaml
from dlcli.config.sweep import load_sweep, parse_values
from dlcli.errors import UserError



# ---- value parsing -------------------------------------------------------------------------------


def test_comma_separated_yaml_values():
    assert parse_values("1,8,32,full") == [1, 8, 32, "full"]
    assert [type(v) for v in parse_values("1,8,32,full")] == [int, int, int, str]
    assert parse_values("0.5, 2") == [0.5, 2]


def test_yaml_lists_are_single_values():
    assert parse_values("[64,64],[128,128]") == [[64, 64], [128, 128]]
    assert parse_values("[8],[4, 4],[2,2,2]") == [[8], [4, 4], [2, 2, 2]]


@pytest.mark.parametrize("start, stop", [(0, 5), (2, 7), (-3, 2), (5, 5), (6, 3)])
def test_range_with_two_arguments(start, stop):
    assert parse_values(f"range({start},{stop})") == list(range(start, stop))


@pytest.mark.parametrize("start, stop, step", [(0, 10, 3), (1, 6, 2), (0, 10, 5), (3, 4, 10)])
def test_range_with_a_step(start, stop, step):
    assert parse_values(f"range({start},{stop},{step})") == list(range(start, stop, step))


@pytest.mark.parametrize("start, stop, step", [("0", "1", "0.25"), ("0.1", "0.4", "0.1"), ("0.2", "0.8", "0.2"),
                                               ("0.7", "1.0", "0.1"), ("0", "0.3", "0.1")])
def test_range_with_a_float_step_excludes_the_stop(start, stop, step):
    # range's stop is exclusive, whatever the rounding of the step: count the values in exact arithmetic.
    a, b, s = Fraction(start), Fraction(stop), Fraction(step)
    expected = []
    while a + len(expected) * s < b:
        expected.append(float(a + len(expected) * s))
    values = parse_values(f"range({start},{stop},{step})")
    assert len(values) == len(expected), values
    assert values == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("low, high, count", [(0.01, 1, 5), (0.001, 10, 9), (1, 1000, 4), (0.5, 8, 2), (10, 0.1, 3)])
def test_log_spacing(low, high, count):
    values = parse_values(f"log({low},{high},{count})")
    assert len(values) == count
    assert values[0] == pytest.approx(low, rel=1e-5)
    assert values[-1] == pytest.approx(high, rel=1e-5)
    ratios = [b / a for a, b in zip(values, values[1:])]
    expected_ratio = (high / low) ** (1 / (count - 1))
    assert ratios == pytest.approx([expected_ratio] * (count - 1), rel=1e-5)


def test_log_with_one_value_is_the_low_end():
    assert parse_values("log(0.3,3,1)") == pytest.approx([0.3])


def test_log_accepts_scientific_notation():
    # 1e-3 is a number to anyone writing a learning-rate sweep.
    assert parse_values("log(1e-3,1,4)") == pytest.approx([0.001, 0.01, 0.1, 1.0], rel=1e-5)


def test_generators_mix_with_plain_values():
    values = parse_values("1,range(2,4),log(10,1000,3),full")
    assert values[:3] == [1, 2, 3] and values[-1] == "full"
    assert values[3:6] == pytest.approx([10, 100, 1000], rel=1e-5)


@pytest.mark.parametrize("piece", ["range(1)", "range(1,2,3,4)", "range(0,5,0)", "range(0,5,-1)", "range(a,b)",
                                   "log(0,1,3)", "log(0.1,-1,3)", "log(0.1,1,0)", "log(0.1,1,2.5)", "log(1,2)",
                                   "log(x,1,3)", "range(true,3)"])
def test_bad_generator_arguments_are_user_errors(piece):
    with pytest.raises(UserError) as raised:
        parse_values(piece)
    assert any(piece.split("(")[0] in problem for problem in raised.value.problems), raised.value.problems


def test_bad_generator_on_the_command_line_exits_2(tmp_path):
    config = write_yaml(tmp_path, tiny_config())
    out = tmp_path / "out"
    lines = user_error(invoke("sweep", config, "--grid", "optim.lr=log(0,1,3)", "--out", out), out)
    line_with(lines, "--grid", "optim.lr", "log(0,1,3)")


# ---- expansion -----------------------------------------------------------------------------------


def test_grid_axes_multiply(tmp_path):
    axes = {"optim.lr": [0.05, 0.1, 0.2], "optim.batch_size": [8, "full"], "model.hidden": [[8], [4, 4]]}
    config = write_yaml(tmp_path, tiny_config())
    sweep = load_sweep(config, grid=[f"{key}={','.join(json.dumps(v) if isinstance(v, list) else str(v) for v in values)}"
                                     for key, values in axes.items()])
    assert len(sweep.points) == len(sweep.experiments) == math.prod(len(v) for v in axes.values()) == 12
    expected = [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]
    assert sorted(map(json.dumps, sweep.points)) == sorted(map(json.dumps, expected))
    for point, experiment in zip(sweep.points, sweep.experiments):
        assert experiment.optim.lr == point["optim.lr"]
        assert experiment.optim.batch_size == point["optim.batch_size"]
        assert experiment.model.hidden == point["model.hidden"]


def test_zip_axes_vary_together(tmp_path):
    config = write_yaml(tmp_path, tiny_config())
    sweep = load_sweep(config, zipped=["optim.lr=0.05,0.1,0.2", "optim.batch_size=8,16,32"])
    assert len(sweep.points) == 3
    assert [(e.optim.lr, e.optim.batch_size) for e in sweep.experiments] == [(0.05, 8), (0.1, 16), (0.2, 32)]


def test_zip_times_grid_times_seeds(tmp_path):
    config = write_yaml(tmp_path, tiny_config())
    zipped = {"optim.lr": [0.05, 0.1], "train.epochs": [1, 2]}
    grid = {"optim.batch_size": [8, 16, 32]}
    seeds = 2
    sweep = load_sweep(config, grid=["optim.batch_size=8,16,32"], zipped=["optim.lr=0.05,0.1", "train.epochs=1,2"],
                       seeds=seeds)
    assert len(sweep.points) == len(grid["optim.batch_size"]) * len(zipped["optim.lr"]) * seeds == 12
    pairs = {(e.optim.lr, e.train.epochs) for e in sweep.experiments}
    assert pairs == set(zip(*zipped.values()))  # never 0.05 with 2 epochs
    combos = [(e.optim.batch_size, e.optim.lr, e.train.epochs, e.seed) for e in sweep.experiments]
    assert len(set(combos)) == 12


def test_seeds_give_seeds_0_to_n_minus_1_per_point(tmp_path):
    config = write_yaml(tmp_path, tiny_config(seed=7))
    sweep = load_sweep(config, grid=["optim.lr=0.05,0.1,0.2"], seeds=4)
    assert len(sweep.points) == 3 * 4
    by_lr: dict[float, list[int]] = {}
    for experiment in sweep.experiments:
        by_lr.setdefault(experiment.optim.lr, []).append(experiment.seed)
    assert {lr: sorted(seeds) for lr, seeds in by_lr.items()} == {lr: [0, 1, 2, 3] for lr in (0.05, 0.1, 0.2)}


def test_unequal_zip_lengths_are_rejected(tmp_path):
    config = write_yaml(tmp_path, tiny_config())
    with pytest.raises(UserError) as raised:
        load_sweep(config, zipped=["optim.lr=0.1,0.2", "optim.batch_size=8,16,32"])
    line_with(raised.value.problems, "optim.lr", "optim.batch_size")
    out = tmp_path / "out"
    lines = user_error(invoke("sweep", config, "--zip", "optim.lr=0.1,0.2", "--zip", "optim.batch_size=8,16,32",
                              "--out", out), out)
    line = line_with(lines, "optim.lr", "optim.batch_size")
    assert "2" in line and "3" in line, line


def yaml_sweep_config(folder: Path) -> Path:
    config = tiny_config()
    config["sweep"] = {"grid": {"optim.lr": [0.05, 0.1]},
                       "zip": {"optim.batch_size": "16,32", "model.hidden": [[8], [4, 4]]},
                       "seeds": 2}
    return write_yaml(folder, config, "swept.yaml")


def test_yaml_sweep_section_is_read(tmp_path):
    sweep = load_sweep(yaml_sweep_config(tmp_path))
    assert len(sweep.points) == 2 * 2 * 2
    combos = {(e.optim.lr, e.optim.batch_size, tuple(e.model.hidden), e.seed) for e in sweep.experiments}
    expected = {(lr, bs, tuple(h), s) for lr in (0.05, 0.1) for bs, h in [(16, [8]), (32, [4, 4])] for s in (0, 1)}
    assert combos == expected


def test_command_line_adds_axes_to_the_yaml_sweep(tmp_path):
    sweep = load_sweep(yaml_sweep_config(tmp_path), grid=["train.epochs=1,2,3"])
    assert len(sweep.points) == 2 * 2 * 2 * 3
    assert {e.train.epochs for e in sweep.experiments} == {1, 2, 3}
    assert {e.optim.lr for e in sweep.experiments} == {0.05, 0.1}


def test_command_line_axis_replaces_the_yaml_axis_of_the_same_key(tmp_path):
    sweep = load_sweep(yaml_sweep_config(tmp_path), grid=["optim.lr=0.01,0.02,0.03"], seeds=3)
    assert len(sweep.points) == 3 * 2 * 3
    assert {e.optim.lr for e in sweep.experiments} == {0.01, 0.02, 0.03}
    assert {e.seed for e in sweep.experiments} == {0, 1, 2}


def test_a_command_line_axis_replaces_the_yaml_axis_of_the_same_key_of_the_other_kind(tmp_path):
    """--zip over the file's grid key (the linear scaling rule over a batch × lr grid), --grid over its zip key."""
    zipped = load_sweep(yaml_sweep_config(tmp_path), zipped=["optim.lr=0.01,0.02", "model.hidden=[8],[16]"])
    assert sorted({(e.optim.lr, e.optim.batch_size, tuple(e.model.hidden)) for e in zipped.experiments}) == \
        [(0.01, 16, (8,)), (0.02, 32, (16,))]
    gridded = load_sweep(yaml_sweep_config(tmp_path), grid=["optim.batch_size=8,16,64"], zipped=["model.hidden=[8]"])
    assert len(gridded.points) == 2 * 3 * 2  # lr × batch size × seeds
    with pytest.raises(UserError, match="optim.lr: swept both as a grid and a zip axis"):
        load_sweep(yaml_sweep_config(tmp_path), grid=["optim.lr=0.1,0.2"], zipped=["optim.lr=0.1,0.2"])


def test_dry_run_counts_yaml_and_command_line_axes(tmp_path):
    out = tmp_path / "out"
    stdout = succeeded(invoke("sweep", yaml_sweep_config(tmp_path), "--grid", "train.epochs=1,2", "--out", out,
                              "--dry-run"))
    assert re.search(rf"\b{2 * 2 * 2 * 2} runs\b", stdout), stdout
    assert not out.exists()


def test_a_sweep_section_problem_is_one_line_per_key(tmp_path):
    """An axis pydantic rejects under each of its allowed types, and a misspelled key, one line each."""
    config = tiny_config()
    config["sweep"] = {"trails": 3, "grid": {"optim.lr": {"a": 1}}}
    out = tmp_path / "out"
    lines = user_error(invoke("sweep", write_yaml(tmp_path, config), "--out", out), out)
    assert sorted(line.split(": ", 2)[2] for line in lines) == [
        "sweep.grid.optim.lr: expected a list of values, or text such as 0.1,0.2 or loguniform(1e-4,1)",
        "sweep.trails: unknown key (did you mean trials?)"]


@pytest.mark.parametrize("grid, says", [
    (["optim.lr=range(0,1e400)"], "range(0,1e400): arguments must be finite numbers"),
    (["optim.lr=range(0,nan)"], "range(0,nan): arguments must be finite numbers"),
    (["train.epochs=range(1,1e12)"], "range(1,1e12): 999,999,999,999 values; allowed: at most 10,000 per axis"),
    (["optim.lr=log(0.1,1,1e9)"], "1,000,000,000 values; allowed: at most 10,000 per axis"),
    (["optim.lr=range(1,1000)", "train.epochs=range(1,1000)", "seed=range(0,1000)"],
     "the sweep has 998,001,000 points; allowed: at most 100,000"),
])
def test_a_grid_too_large_to_list_is_refused_before_it_is_built(tmp_path, grid, says):
    """A generator's values are listed, and every point checked, before anything runs: unbounded ones are
    refused in one line instead of filling the memory."""
    out = tmp_path / "out"
    arguments = [argument for item in grid for argument in ("--grid", item)]
    (line,) = user_error(invoke("sweep", write_yaml(tmp_path, tiny_config()), *arguments, "--out", out, "--dry-run"),
                         out)
    assert says in line, line


@pytest.mark.parametrize("option", ["--grid", "--zip"])
def test_a_key_given_twice_on_the_command_line_is_refused_not_the_first_dropped(tmp_path, option):
    out = tmp_path / "out"
    (line,) = user_error(invoke("sweep", write_yaml(tmp_path, tiny_config()), option, "optim.lr=0.1,0.3", option,
                                "optim.lr=0.2", "--out", out, "--dry-run"), out)
    assert f"{option} optim.lr: given twice" in line, line
