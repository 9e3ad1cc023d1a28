"""`dlcli loss`: the lecture's worked cross-entropy example, computed by the tool itself."""
from __future__ import annotations

import math
import re

from typer.testing import CliRunner

from dlcli.cli import app


def numbers_in_row(stdout: str, label: str) -> list[float]:
    line = next(line for line in stdout.splitlines() if label in line)
    return [float(value) if value != "inf" else math.inf for value in re.findall(r"(?<![\d.,])(inf|\d+\.\d{3})", line)]


def test_the_lecture_example_by_default():
    result = CliRunner().invoke(app, ["loss"])
    assert result.exit_code == 0, result.output
    assert "CH4=1" in result.stdout
    entropy, kl, cross, reverse = numbers_in_row(result.stdout, "0.2,0.3,0.1,0.15,0.25")
    assert cross == round(-math.log(0.1), 3) == 2.303 and kl == cross and entropy == 0.0
    assert reverse == math.inf  # H(q, p) with a one-hot p: q puts mass where p has none
    assert numbers_in_row(result.stdout, "0.02,0.1,0.8,0.05,0.03")[2] == round(-math.log(0.8), 3) == 0.223


def test_soft_targets_split_into_entropy_plus_kl_and_are_not_symmetric():
    p, q = [0.7, 0.2, 0.1], [0.6, 0.3, 0.1]
    result = CliRunner().invoke(app, ["loss", "--target", "0.7,0.2,0.1", "--prediction", "0.6,0.3,0.1"])
    assert result.exit_code == 0, result.output
    entropy, kl, cross, reverse = numbers_in_row(result.stdout, "0.6,0.3,0.1")
    assert entropy == round(-sum(a * math.log(a) for a in p), 3)
    assert cross == round(-sum(a * math.log(b) for a, b in zip(p, q)), 3)
    assert abs(cross - (entropy + kl)) <= 0.0015  # each shown to 3 decimals
    assert reverse == round(-sum(b * math.log(a) for a, b in zip(p, q)), 3) != cross


def test_bad_distributions_are_user_errors():
    for args in (["--target", "1,1"], ["--target", "0.5,x"], ["--target", "0.5,0.5", "--prediction", "1,0,0"]):
        result = CliRunner().invoke(app, ["loss", *args])
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert "error:" in result.stderr


def test_each_bad_input_says_what_is_wrong_with_it():
    for args, says in ((["--target", "nan,1"], "--target nan,1: probabilities must be finite numbers from 0 to 1"),
                       (["--prediction", "0.5,nan"], "must be finite"),
                       (["--target", "-0.1,1.1"], "--target -0.1,1.1: probabilities must be ≥ 0 (one is -0.1)"),
                       (["--target", "0.5,0.5", "--classes", "a,b,c"], "--classes a,b,c: 3 names for the 2 classes")):
        result = CliRunner().invoke(app, ["loss", *args])
        assert result.exit_code == 2 and says in result.stderr, (args, result.output)


def test_a_perfect_prediction_costs_zero_not_minus_zero():
    result = CliRunner().invoke(app, ["loss", "--target", "1,0", "--prediction", "1,0"])
    assert result.exit_code == 0 and "-0.000" not in result.stdout
    assert numbers_in_row(result.stdout, "│ 1,0") == [0.0, 0.0, 0.0, 0.0]


def test_a_target_of_another_length_than_the_default_predictions_says_to_give_them():
    result = CliRunner().invoke(app, ["loss", "--target", "0.3,0.7"])
    assert result.exit_code == 2
    assert "5 values for 2 classes (the lecture's default prediction: give --prediction" in result.stderr
