"""Bias-variance: the decompositions on tensors we build, the effects on real runs, and the command."""
from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from conftest import text, tiny_config
from dlcli.analysis.bias_variance import run_study
from dlcli.analysis.decompositions import cross_entropy, squared_error, zero_one
from dlcli.sweep.study import load_study
from dlcli.cli import app
from dlcli.components.data import load_dataset

runner = CliRunner()
WIDE = {"COLUMNS": "300"}
CSV_COLUMNS = ["decomposition", "risk", "bias2", "variance", "variance_sampling", "variance_optimization", "noise",
               "bayes_error", "trials", "seeds", "split", "n_test"]

pytestmark = pytest.mark.usefixtures("one_thread")


def write_yaml(folder: Path, config: dict, name: str = "experiment.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(config))
    return path


def sine_config(name: str = "bv", n_train: int = 20, n_test: int = 200, noise: float = 0.3, hidden=(2,),
                epochs: int = 200) -> dict:
    return {"name": name, "seed": 0, "device": "cpu",
            "data": {"name": "sine", "n_train": n_train, "n_test": n_test, "params": {"dim": 1, "noise": noise}},
            "model": {"name": "mlp", "hidden": list(hidden), "activation": "tanh"}, "loss": "mse",
            "optim": {"name": "adam", "lr": 0.02, "batch_size": "full"}, "train": {"epochs": epochs}}


def mean_of_runs(sweep_result, key: str, grid_key: str | None = None, grid_value=None) -> float:
    """The mean of a metric the training loop itself logged (summary.json), over a grid point's runs."""
    values = [json.loads((sweep_result.sweep_dir / row["run_id"] / "summary.json").read_text())[key]
              for row in sweep_result.rows if grid_key is None or row[grid_key] == grid_value]
    return sum(values) / len(values)


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


# ---- the decompositions on tensors built here ----------------------------------------------------


@pytest.mark.parametrize("seeds", [1, 3])
@pytest.mark.parametrize("vectors", [False, True])
def test_squared_error_adds_up_exactly(seeds, vectors):
    generator = torch.Generator().manual_seed(seeds)
    shape = (4, seeds, 30, 3) if vectors else (4, seeds, 30)
    predictions = torch.randn(shape, generator=generator)
    targets = torch.randn(shape[2:], generator=generator)
    clean = targets + 0.1 * torch.randn(shape[2:], generator=generator)
    for clean_targets in (None, clean):
        parts = squared_error(predictions, targets, clean_targets)
        noise = parts["noise"] or 0.0
        assert parts["risk"] == pytest.approx(parts["bias2"] + parts["variance"] + noise, abs=1e-6)
        assert (parts["noise"] is None) == (clean_targets is None)
        if seeds > 1:
            assert parts["variance_sampling"] + parts["variance_optimization"] == pytest.approx(parts["variance"],
                                                                                                 abs=1e-6)
        else:  # one seed per training set: the two sources cannot be told apart
            assert parts["variance_sampling"] is None and parts["variance_optimization"] is None


def test_squared_error_matches_numpy_with_the_finite_sample_corrections():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(5, 3, 40))  # K training sets, S seeds, N points
    y = rng.normal(size=40)
    parts = squared_error(torch.as_tensor(f), torch.as_tensor(y))
    assert parts["risk"] == pytest.approx(np.mean((f - y) ** 2), rel=1e-12)
    # optimization: the unbiased variance over seeds, averaged over training sets and points
    optimization = np.var(f, axis=1, ddof=1).mean()
    # sampling: the unbiased variance over training sets of the seed average, less the seeds' share
    sampling = np.var(f.mean(axis=1), axis=0, ddof=1).mean() - optimization / 3
    assert parts["variance_optimization"] == pytest.approx(optimization, rel=1e-12)
    assert parts["variance_sampling"] == pytest.approx(sampling, rel=1e-12)
    # one seed: Yang et al.'s N/(N−1) correction is the unbiased variance across the N models
    single = squared_error(torch.as_tensor(f[:, :1]), torch.as_tensor(y))
    assert single["variance"] == pytest.approx(np.var(f[:, 0], axis=0, ddof=1).mean(), rel=1e-12)


def test_squared_error_estimates_known_variance_components_without_bias():
    # f = truth + offset + a_k (training set, variance 1) + b_ks (seed, variance 0.5): with only K = 3 and
    # S = 2 the plain (N-denominator) variances would be off by a third and a half; the corrected ones are
    # unbiased, and 20000 test points average their scatter down to about 1 %.
    generator = torch.Generator().manual_seed(1)
    k, s, n, offset = 3, 2, 20000, 0.3
    truth = torch.randn(n, generator=generator)
    a = torch.randn(k, 1, n, generator=generator)
    b = math.sqrt(0.5) * torch.randn(k, s, n, generator=generator)
    y = truth + 0.5 * torch.randn(n, generator=generator)  # noise variance 0.25
    parts = squared_error(truth + offset + a + b, y, truth)
    assert parts["variance_sampling"] == pytest.approx(1.0, rel=0.06)
    assert parts["variance_optimization"] == pytest.approx(0.5, rel=0.06)
    assert parts["noise"] == pytest.approx(0.25, rel=0.03)
    assert parts["bias2"] == pytest.approx(offset**2, abs=0.05)


def test_cross_entropy_matches_the_geometric_mean_formula_on_a_tiny_example():
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(3), size=(2, 2, 2))  # K = 2, S = 2, N = 2 points, C = 3 classes
    labels = np.array([0, 2])
    # the normalized geometric mean, by hand, over all four models, and over each training set's seeds
    bar = np.prod(p, axis=(0, 1)) ** (1 / 4)
    bar /= bar.sum(-1, keepdims=True)
    per_set = np.prod(p, axis=1) ** (1 / 2)
    per_set /= per_set.sum(-1, keepdims=True)
    kl = lambda q, r: (q * np.log(q / r)).sum(-1)  # noqa: E731
    expected = {
        "risk": np.mean([-np.log(p[k, s, i, labels[i]]) for k in range(2) for s in range(2) for i in range(2)]),
        "bias2": np.mean([-np.log(bar[i, labels[i]]) for i in range(2)]),
        "variance": np.mean([kl(bar[i], p[k, s, i]) for k in range(2) for s in range(2) for i in range(2)]),
        "variance_sampling": np.mean([kl(bar[i], per_set[k, i]) for k in range(2) for i in range(2)]),
        "variance_optimization": np.mean([kl(per_set[k, i], p[k, s, i])
                                          for k in range(2) for s in range(2) for i in range(2)]),
    }
    parts = cross_entropy(torch.as_tensor(np.log(p)), torch.as_tensor(labels))
    for key, value in expected.items():
        assert parts[key] == pytest.approx(value, rel=1e-9), key
    assert parts["risk"] == pytest.approx(parts["bias2"] + parts["variance"], abs=1e-6)
    assert parts["variance_sampling"] + parts["variance_optimization"] == pytest.approx(parts["variance"], abs=1e-6)


def test_cross_entropy_adds_up_exactly_on_random_models():
    generator = torch.Generator().manual_seed(3)
    log_p = torch.log_softmax(3 * torch.randn(6, 4, 100, 10, generator=generator), -1)
    labels = torch.randint(0, 10, (100,), generator=generator)
    parts = cross_entropy(log_p, labels)
    assert parts["risk"] == pytest.approx(parts["bias2"] + parts["variance"], abs=1e-6)
    assert parts["variance_sampling"] + parts["variance_optimization"] == pytest.approx(parts["variance"], abs=1e-6)
    assert min(parts["variance_sampling"], parts["variance_optimization"]) > 0  # KL ≥ 0
    same = cross_entropy(log_p[:1, :1].expand(6, 4, -1, -1), labels)  # identical models: no variance
    assert same["variance"] == pytest.approx(0, abs=1e-6) and same["risk"] == pytest.approx(same["bias2"])


def test_zero_one_is_domingos_main_prediction_decomposition():
    # 3 models (one training set each), 4 points, labels 0 1 1 2
    predicted = torch.tensor([[[0, 1, 0, 1]], [[0, 0, 0, 2]], [[1, 1, 1, 2]]])
    labels = torch.tensor([0, 1, 1, 2])
    parts = zero_one(predicted, labels, num_classes=3)
    # errors per point 1 + 1 + 2 + 1 of 12; majority votes 0, 1, 0, 2: wrong at the third point only;
    # disagreements with the vote 1 + 1 + 1 + 1 of 12
    assert parts["risk"] == pytest.approx(5 / 12)
    assert parts["bias2"] == pytest.approx(1 / 4)
    assert parts["variance"] == pytest.approx(4 / 12)
    # not additive: at the third point the model that disagrees with the wrong vote is right
    assert parts["risk"] < parts["bias2"] + parts["variance"]


# ---- effects on real runs ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sine_widths(tmp_path_factory):
    """A tiny and a large MLP on sine with 20 training samples: 4 training sets × 2 seeds each."""
    folder = tmp_path_factory.mktemp("sine_widths")
    config = write_yaml(folder, sine_config())
    study = load_study(config, trials=4, seeds=2, grid=["model.hidden=[2],[128,128]"])
    return run_study(study, folder / "out")


def test_bias_falls_and_variance_rises_as_the_mlp_grows(sine_widths):
    assert not sine_widths.incomplete
    tiny, large = [row for row in sine_widths.rows if row["decomposition"] == "mse"]
    assert (tiny["model.hidden"], large["model.hidden"]) == ([2], [128, 128])
    # [2] cannot bend enough for a whole period of the sine; [128, 128] fits the 20 noisy samples
    assert large["bias2"] < tiny["bias2"] / 3, (tiny, large)
    assert large["variance"] > 1.5 * tiny["variance"], (tiny, large)
    # the large model's variance comes from the training set, hardly from the seed
    assert large["variance_sampling"] > 3 * large["variance_optimization"], large


def test_risk_is_the_mean_test_loss_the_runs_logged(sine_widths):
    # Two paths: the training loop's own test loss of each run, and the reloaded models' outputs.
    for row in sine_widths.rows:
        logged = mean_of_runs(sine_widths.sweep, "test_loss", "model.hidden", row["model.hidden"])
        assert row["risk"] == pytest.approx(logged, rel=1e-4)
        assert row["risk"] == pytest.approx(row["bias2"] + row["variance"] + row["noise"], abs=1e-6)


def test_every_model_shares_one_test_set_and_trains_on_its_own_draw(tmp_path):
    experiments = load_study(write_yaml(tmp_path, sine_config()), trials=4, seeds=2).sweep.experiments
    datasets = [load_dataset(e.data.model_copy(update={"standardize": False}), e.seed) for e in experiments]
    assert {e.seed for e in experiments} == {0, 1} and {e.data.seed for e in experiments} == {0}
    for dataset in datasets[1:]:
        assert np.array_equal(dataset.x_test, datasets[0].x_test) and np.array_equal(dataset.y_test, datasets[0].y_test)
    training_sets = {e.data.resample.index: d.x_train.tobytes() for e, d in zip(experiments, datasets)}
    assert len(set(training_sets.values())) == 4  # 4 fresh draws, each shared by its 2 seeds


def test_estimated_noise_matches_the_generators_noise(tmp_path):
    # The estimate is the mean of (y − sin(πx₁))² = σ²·χ²₁ over the n test points: its standard error is
    # σ²·√(2/n), 1 % for n = 20000; we allow 4 standard errors. The models barely matter: 1 epoch.
    sigma, n = 0.5, 20000
    config = write_yaml(tmp_path, sine_config(name="noise", n_test=n, noise=sigma, epochs=1))
    result = run_study(load_study(config, trials=2), tmp_path / "out")
    (row,) = result.rows
    assert row["bayes_error"] == pytest.approx(sigma**2)
    assert abs(row["noise"] - sigma**2) < 4 * sigma**2 * math.sqrt(2 / n), row["noise"]


def test_a_classifier_gets_all_three_decompositions(tmp_path):
    config = tiny_config(name="classes", train={"epochs": 3})
    config["data"]["n_train"] = 60
    result = run_study(load_study(write_yaml(tmp_path, config), trials=3, seeds=2), tmp_path / "out")
    rows = {row["decomposition"]: row for row in result.rows}
    assert set(rows) == {"mse", "cross_entropy", "zero_one"}
    assert rows["cross_entropy"]["risk"] == pytest.approx(mean_of_runs(result.sweep, "test_loss"), rel=1e-4)
    assert rows["zero_one"]["risk"] == pytest.approx(mean_of_runs(result.sweep, "test_error"), abs=1e-9)
    # two Gaussians, means 2 apart, σ = 1: Bayes error Φ(−1)
    assert rows["zero_one"]["bayes_error"] == pytest.approx(0.5 * math.erfc(1 / math.sqrt(2)))
    for name in ("mse", "cross_entropy"):
        row = rows[name]
        assert row["risk"] == pytest.approx(row["bias2"] + row["variance"], abs=1e-6)
        assert row["variance_sampling"] + row["variance_optimization"] == pytest.approx(row["variance"], abs=1e-6)


def test_fixed_data_is_cut_into_disjoint_training_sets_or_resampled(tmp_path):
    config = write_yaml(tmp_path, {"name": "fixed", "seed": 5, "data": {"name": "breast_cancer"},
                                   "model": {"name": "linear"}, "loss": "bce"})
    study = load_study(config, trials=3)
    assert study.draw == "disjoint"
    assert {e.data.resample.method for e in study.sweep.experiments} == {"disjoint"}
    assert {e.data.seed for e in study.sweep.experiments} == {5}  # the config's seed picks the test set
    datasets = [load_dataset(e.data.model_copy(update={"standardize": False}), e.seed)
                for e in study.sweep.experiments]
    rows = [set(map(bytes, d.x_train)) for d in datasets]
    assert all(not (rows[i] & rows[j]) for i in range(3) for j in range(i + 1, 3))
    assert all(np.array_equal(d.y_test, datasets[0].y_test) for d in datasets)
    assert load_study(config, trials=3, split="bootstrap").draw == "bootstrap"


# ---- the command ---------------------------------------------------------------------------------


def invoke(*args):
    return runner.invoke(app, [str(arg) for arg in args], env=WIDE)


def run_times(sweep_dir: Path) -> dict[str, int]:
    return {path.name: (path / "summary.json").stat().st_mtime_ns for path in sweep_dir.iterdir() if path.is_dir()}


def test_the_command_end_to_end_and_resumed(tmp_path):
    config = write_yaml(tmp_path, sine_config(name="cli", hidden=(4,), epochs=3))
    out, figure = tmp_path / "out", tmp_path / "bv.png"
    args = ["bias-variance", config, "--trials", "2", "--seeds", "2", "--grid", "model.hidden=[2],[4]", "--out", out]
    first = invoke(*args, "--plot", figure)
    assert first.exit_code == 0, first.output
    stdout = text(first.stdout)
    assert "bias²" in stdout and "sampling" in stdout and "optimization" in stdout, stdout
    columns, rows = read_csv(out / "cli" / "bias_variance.csv")
    assert columns == ["model.hidden", *CSV_COLUMNS]
    assert [(json.loads(row["model.hidden"]), row["decomposition"]) for row in rows] == [([2], "mse"), ([4], "mse")]
    assert all(row["trials"] == "2" and row["seeds"] == "2" and row["split"] == "fresh" for row in rows)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = run_times(out / "cli")
    assert len(runs) == 2 * 2 * 2  # grid points × training sets × seeds

    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert "8 already done" in text(again.stdout)
    assert run_times(out / "cli") == runs  # no run trained again
    assert read_csv(out / "cli" / "bias_variance.csv") == (columns, rows)


@pytest.mark.parametrize("extra, message", [
    (["--trials", "1"], "--trials"),
    (["--trials", "3", "--split", "halves"], "--split"),
    (["--trials", "3", "--grid", "seed=1,2"], "seed"),
    (["--trials", "3", "--set", "data.resample.method=none"], "data.resample"),
    (["--trials", "2", "--split", "disjoint"], "--split disjoint: cuts a fixed data set's training samples into 2 "
                                               "slices; sine is generated"),
])
def test_bad_requests_exit_2_and_write_nothing(tmp_path, extra, message):
    config = write_yaml(tmp_path, sine_config(name="bad", epochs=1))
    out = tmp_path / "out"
    result = invoke("bias-variance", config, *extra, "--out", out)
    assert result.exit_code == 2, result.output
    lines = [line for line in text(result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], lines
    assert "Traceback" not in result.output and not out.exists()


def test_fresh_draws_of_a_fixed_data_set_exit_2(tmp_path):
    config = write_yaml(tmp_path, {"name": "fixed", "data": {"name": "digits"}, "model": {"name": "linear"}})
    out = tmp_path / "out"
    result = invoke("bias-variance", config, "--trials", "2", "--split", "fresh", "--out", out)
    assert result.exit_code == 2, result.output
    assert "fresh" in text(result.stderr) and "digits" in text(result.stderr)
    assert not out.exists()


def test_help_has_an_example():
    result = invoke("bias-variance", "--help")
    assert result.exit_code == 0, result.output
    assert re.search(r"Example:\s+dlcli bias-variance configs/\S+\.yaml", text(result.stdout)), result.stdout


def test_compare_on_a_study_groups_its_training_sets_and_seeds_as_replicates(sine_widths):
    """The training set's index repeats a grid point, as a seed does: one row per width, its mean over
    the K × S runs equal to the study's risk."""
    import io

    import pandas as pd

    result = invoke("compare", sine_widths.sweep.sweep_dir, "--columns", "test_loss", "--format", "csv")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(io.StringIO(result.stdout))
    assert "data.resample.index" not in table.columns and sorted(table["n"]) == [8, 8]
    risks = {str(row["model.hidden"]): row["risk"] for row in sine_widths.rows if row["decomposition"] == "mse"}
    for _, row in table.iterrows():
        assert row["test_loss"] == pytest.approx(risks[row["model.hidden"]], rel=1e-4)


def test_the_tables_keep_every_number_and_header_whole_in_80_columns(tmp_path):
    """In a process of its own: the terminal's width is read once, when the console is made."""
    config = write_yaml(tmp_path, sine_config(name="narrow", hidden=(4,), epochs=2))
    result = subprocess.run([sys.executable, "-m", "dlcli", "bias-variance", str(config), "--trials", "2", "--seeds",
                             "2", "--grid", "model.hidden=[2],[16,16]", "--grid", "optim.lr=0.01,0.02", "--out",
                             str(tmp_path / "out")], capture_output=True, text=True, env={**os.environ, "COLUMNS": "80"})
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line[:1] in "┏┃┡│└"]  # the tables'
    rows = [line for line in lines if line.startswith("│")]
    assert all(len(line) <= 80 for line in lines) and "…" not in "".join(rows)
    numbers = [re.findall(r"\d\.\d{4}", row) for row in rows]
    assert [len(found) for found in numbers if found][:4] == [6] * 4  # risk, bias², variance, its parts, noise: whole
