"""Optimization against theory: update noise by batch size, batch-size and lr schedules against their
formulas, batch order on sorted data, batch size × lr, the LR range test, per-update curves, bad schedules."""
from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import CONFIGS, text, tiny_config, write_yaml
from dlcli.cli import app
from dlcli.analysis.compare import load_runs, read_curves
from dlcli.analysis.curves import update_noise
from dlcli.config.load import experiment_from_dict, load_experiment
from dlcli.errors import UserError
from dlcli.analysis.lr_find import SMOOTHING, lr_find
from dlcli.layout import read_metrics
from dlcli.sweep.runner import run_sweep
from dlcli.components.schedules import batch_size_at, lr_at, plan
from dlcli.config.sweep import load_sweep
from dlcli.engine.loop import train

runner = CliRunner()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- helpers -------------------------------------------------------------------------------------


def invoke(*args):
    return runner.invoke(app, [str(arg) for arg in args])


def read_steps(run_dir: Path) -> list[dict[str, float]]:
    with open(Path(run_dir) / "steps.csv", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        assert reader.fieldnames == ["step", "epoch", "batch_size", "lr", "batch_loss", "seconds"]
        return [{key: float(value) for key, value in row.items()} for row in reader]


def user_error_lines(result) -> list[str]:
    """Exit 2, no traceback, one or more problems on stderr."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = [line for line in text(result.stderr).splitlines() if line.strip()]
    assert lines, "no message on stderr"
    return lines


def experiment(optim: dict, epochs: int, n: int = 100, log_steps: bool = True, **sections):
    data = {"name": "gaussians", "n_train": n, "n_test": 100,
            "params": {"classes": 2, "dim": 2, "separation": 2.0, "sigma": 1.0}}
    return experiment_from_dict(tiny_config(
        data=data, optim={"name": "sgd", "lr": 0.1, "batch_size": 32, **optim},
        train={"epochs": epochs, "log_steps": log_steps}, **sections))


def expected_batch_sizes(spec, epochs: int, n: int) -> list[int]:
    """The per-epoch batch size, written out from the schema's documentation."""
    sizes = []
    for epoch in range(1, epochs + 1):
        if isinstance(spec, dict):  # start · factor^⌊(epoch − 1) / every⌋, capped at max (and at n)
            size = spec["start"] * spec.get("factor", 2) ** ((epoch - 1) // spec.get("every", 1))
            size = min(size, spec.get("max") or n)
        elif isinstance(spec, list):  # one per epoch, the last one holding for the remaining epochs
            size = spec[min(epoch, len(spec)) - 1]
        else:
            size = spec
        sizes.append(n if size == "full" else min(int(size), n))
    return sizes


# ---- per-update loss noise: SGD > mini-batch > GD -------------------------------------------------


@pytest.fixture(scope="module")
def gd_vs_sgd(tmp_path_factory):
    """The gd_vs_sgd sweep (full/1.0, 32/0.3, 1/0.03) on 500 MNIST-1D samples for 5 epochs, steps logged."""
    sweep = load_sweep(CONFIGS / "gd_vs_sgd.yaml", overrides=["data.n_train=500", "train.epochs=5", "device=cpu"])
    assert [point["optim.batch_size"] for point in sweep.points] == ["full", 32, 1]
    assert all(e.train.log_steps for e in sweep.experiments)
    result = run_sweep(sweep, tmp_path_factory.mktemp("gd_vs_sgd"))
    assert [row["status"] for row in result.rows] == ["completed"] * 3
    frame = load_runs([result.sweep_dir])
    by_size = {row["optim.batch_size"]: Path(row["path"]) for _, row in frame.iterrows()}
    run_ids = {row["optim.batch_size"]: row["run_id"] for _, row in frame.iterrows()}
    return result.sweep_dir, by_size, run_ids


def _diff_std(losses: np.ndarray) -> float:
    return float(np.std(np.diff(losses), ddof=1))


def _rolling_residual_variance(losses: np.ndarray, window: int = 3) -> float:
    """Variance of the batch loss around its centred moving average."""
    half = window // 2
    residuals = [losses[i] - losses[i - half: i + half + 1].mean() for i in range(half, len(losses) - half)]
    return float(np.var(residuals))


def test_per_update_loss_is_noisier_for_smaller_batches(gd_vs_sgd):
    _, by_size, _ = gd_vs_sgd
    n, epochs = 500, 5
    losses = {}
    for size, run_dir in by_size.items():
        rows = read_steps(run_dir)
        width = n if size == "full" else size
        assert len(rows) == epochs * math.ceil(n / width)  # one row per update
        losses[size] = np.array([row["batch_loss"] for row in rows])
        assert np.isfinite(losses[size]).all()
    diff = {size: _diff_std(values) for size, values in losses.items()}
    rolling = {size: _rolling_residual_variance(values) for size, values in losses.items()}
    # SGD's single-sample losses jump around; 32 samples average most of that out; GD moves smoothly
    assert diff[1] > 2 * diff[32] > 0, diff
    assert diff[32] > 2 * diff["full"] > 0, diff
    assert rolling[1] > 2 * rolling[32] > 0, rolling
    assert rolling[32] > 2 * rolling["full"], rolling


def test_update_noise_orders_the_runs_like_the_steps(gd_vs_sgd):
    sweep_dir, by_size, run_ids = gd_vs_sgd
    steps = read_curves(load_runs([sweep_dir]), "steps.csv")
    noise = update_noise(steps).set_index("run_id")
    assert set(noise.index) == set(run_ids.values())
    by = {size: noise.loc[run_id] for size, run_id in run_ids.items()}
    assert by[1]["loss_noise"] > by[32]["loss_noise"] > by["full"]["loss_noise"]
    assert [by[size]["updates"] for size in ("full", 32, 1)] == [5, 5 * 16, 5 * 500]
    for size, run_dir in by_size.items():  # the same quantity, measured here from the file
        own = _diff_std(np.array([row["batch_loss"] for row in read_steps(run_dir)]))
        assert by[size]["loss_noise"] == pytest.approx(own, rel=1e-9)


# ---- update counts follow the batch-size schedule ----------------------------------------------------


@pytest.mark.parametrize("spec, epochs, n, order", [
    ([10, 25, "full"], 4, 100, "shuffle"),
    ({"start": 8, "factor": 2, "every": 2, "max": 32}, 7, 100, "sequential"),
    ([30, 40], 3, 100, "shuffle"),
])
def test_steps_and_batch_sizes_follow_the_batch_schedule(tmp_path, spec, epochs, n, order):
    sizes = expected_batch_sizes(spec, epochs, n)
    per_epoch = [math.ceil(n / size) for size in sizes]
    exp = experiment({"batch_size": spec, "batch_order": order}, epochs, n)
    assert [batch_size_at(exp.optim, epoch, n) for epoch in range(1, epochs + 1)] == sizes
    run_plan = plan(exp.optim, epochs, n)
    assert list(run_plan.batch_sizes) == sizes and list(run_plan.steps_per_epoch) == per_epoch
    assert run_plan.total_steps == sum(per_epoch)

    result = train(exp, out_root=tmp_path)
    assert result.status == "completed"
    rows = read_steps(result.run_dir)
    assert len(rows) == sum(per_epoch) == result.summary["steps"]
    assert [int(row["step"]) for row in rows] == list(range(1, len(rows) + 1))
    for epoch, (size, count) in enumerate(zip(sizes, per_epoch), start=1):
        batch_sizes = [int(row["batch_size"]) for row in rows if row["epoch"] == epoch]
        # every batch has the epoch's size except the last, which keeps the remainder
        assert batch_sizes == [size] * (count - 1) + [n - (count - 1) * size], (epoch, batch_sizes)
        assert sum(batch_sizes) == n
    metrics = read_metrics(result.run_dir)
    assert [row["epoch"] for row in metrics] == list(range(epochs + 1))
    assert [int(row["step"]) for row in metrics] == [sum(per_epoch[:e]) for e in range(epochs + 1)]


def test_list_schedule_on_100_samples_makes_the_documented_number_of_updates(tmp_path):
    exp = experiment({"batch_size": [10, 25, "full"]}, 4, 100)
    result = train(exp, out_root=tmp_path)
    assert result.summary["steps"] == 10 + 4 + 1 + 1
    assert [int(row["step"]) for row in read_metrics(result.run_dir)] == [0, 10, 14, 15, 16]


def test_factor_schedule_sizes_grow_and_cap():
    exp = experiment({"batch_size": {"start": 8, "factor": 2, "every": 2, "max": 32}}, 8, 1000)
    assert [batch_size_at(exp.optim, e, 1000) for e in range(1, 9)] == [8, 8, 16, 16, 32, 32, 32, 32]
    uncapped = experiment({"batch_size": {"start": 8, "factor": 3, "every": 1}}, 5, 100)
    assert [batch_size_at(uncapped.optim, e, 100) for e in range(1, 6)] == [8, 24, 72, 100, 100]  # capped at n


# ---- learning-rate schedules against their formulas ------------------------------------------------


def cosine(t: int, total: int, base: float, low: float) -> float:
    return low + (base - low) * (1 + math.cos(math.pi * t / (total - 1))) / 2


def triangle(t: int, base: float, peak: float, half: int) -> float:
    """Smith's triangle written as a position within the period: up for `half` updates, down for `half`."""
    position = t % (2 * half)
    return base + (peak - base) * (1 - abs(position - half) / half)


def _check_lrs(exp, tmp_path, expected) -> list[dict]:
    """lr_at and the lr column of a real steps.csv against `expected(t, epoch)` (t 0-based)."""
    n = exp.data.n_train
    run_plan = plan(exp.optim, exp.train.epochs, n)
    epochs_of = [e for e, count in enumerate(run_plan.steps_per_epoch, start=1) for _ in range(count)]
    for t, epoch in enumerate(epochs_of):
        assert lr_at(exp.optim, run_plan, t) == pytest.approx(expected(t, epoch), rel=1e-12, abs=1e-15), t
    result = train(exp, out_root=tmp_path)
    assert result.status == "completed"
    rows = read_steps(result.run_dir)
    assert len(rows) == len(epochs_of)
    for row in rows:
        t = int(row["step"]) - 1
        assert int(row["epoch"]) == epochs_of[t]
        assert row["lr"] == pytest.approx(expected(t, epochs_of[t]), rel=1e-12, abs=1e-15), row
    # metrics.csv's lr is the lr of each epoch's last update
    metrics = read_metrics(result.run_dir)
    for row in metrics[1:]:
        last = int(row["step"]) - 1
        assert row["lr"] == pytest.approx(expected(last, epochs_of[last]), rel=1e-12, abs=1e-15)
    return rows


def test_constant_lr(tmp_path):
    exp = experiment({"lr": 0.07, "batch_size": 25}, 3)
    rows = _check_lrs(exp, tmp_path, lambda t, epoch: 0.07)
    assert len(rows) == 12


def test_step_decay_is_base_times_factor_to_the_epoch_bucket(tmp_path):
    base, factor, every = 0.2, 0.5, 2
    exp = experiment({"lr": base, "batch_size": 25,
                      "schedule": {"name": "step", "factor": factor, "every": every}}, 6)
    rows = _check_lrs(exp, tmp_path, lambda t, epoch: base * factor ** ((epoch - 1) // every))
    by_epoch = {int(row["epoch"]): row["lr"] for row in rows}
    assert by_epoch[1] == by_epoch[2] == pytest.approx(0.2)
    assert by_epoch[3] == by_epoch[4] == pytest.approx(0.1)
    assert by_epoch[5] == by_epoch[6] == pytest.approx(0.05)


def test_cosine_goes_from_base_to_min_over_all_updates(tmp_path):
    base, low, epochs = 0.3, 0.01, 5
    total = 5 * 4  # batch 25 on 100 samples
    exp = experiment({"lr": base, "batch_size": 25, "schedule": {"name": "cosine", "min_lr": low}}, epochs)
    rows = _check_lrs(exp, tmp_path, lambda t, epoch: cosine(t, total, base, low))
    assert rows[0]["lr"] == pytest.approx(base, rel=1e-12)
    assert rows[-1]["lr"] == pytest.approx(low, rel=1e-12)
    middle = (total - 1) / 2  # halfway, the average of the two
    assert cosine(int(middle), total, base, low) > (base + low) / 2 > cosine(int(middle) + 1, total, base, low)
    lrs = [row["lr"] for row in rows]
    assert all(a > b for a, b in zip(lrs, lrs[1:]))


def test_triangular_cycles_between_base_and_max(tmp_path):
    base, peak, half = 0.01, 0.1, 3
    exp = experiment({"lr": base, "batch_size": 10,
                      "schedule": {"name": "triangular", "max_lr": peak, "step_size": half}}, 4)
    rows = _check_lrs(exp, tmp_path, lambda t, epoch: triangle(t, base, peak, half))
    lrs = [row["lr"] for row in rows]
    assert len(lrs) == 40  # 40 updates: more than six full cycles of 6
    for cycle in range(6):
        assert lrs[2 * half * cycle] == pytest.approx(base, rel=1e-12)  # bottom of each cycle
        assert lrs[2 * half * cycle + half] == pytest.approx(peak, rel=1e-12)  # top
        assert lrs[2 * half * cycle + 1] == pytest.approx(base + (peak - base) / half, rel=1e-12)
    assert min(lrs) == pytest.approx(base) and max(lrs) == pytest.approx(peak)


def test_a_run_diverging_under_a_schedule_names_the_lr_that_blew_up(tmp_path):
    """optim.lr is the schedule's base: the message names the last update's lr (steps.csv's) beside it."""
    config = tiny_config(optim={"name": "sgd", "lr": 0.1, "batch_size": 25,
                                "schedule": {"name": "triangular", "max_lr": 1e6, "step_size": 20}},
                         train={"epochs": 10, "log_steps": True})
    result = train(experiment_from_dict(config), out_root=tmp_path)
    assert result.status == "diverged"
    with open(result.run_dir / "steps.csv", encoding="utf-8") as file:
        last_lr = float(list(csv.DictReader(file))[-1]["lr"])
    assert last_lr > 1000
    assert f"(optim.lr = 0.1, the last update's lr {last_lr:.6g})" in result.summary["message"]


def test_warmup_with_constant_rises_linearly_to_exactly_the_base_lr(tmp_path):
    base, warmup_epochs = 0.2, 2
    warmup = warmup_epochs * 4  # updates in the first two epochs (batch 25 on 100)
    exp = experiment({"lr": base, "batch_size": 25, "schedule": {"name": "constant", "warmup_epochs": warmup_epochs}}, 4)
    rows = _check_lrs(exp, tmp_path, lambda t, epoch: base * (t + 1) / warmup if t < warmup else base)
    assert rows[0]["lr"] == pytest.approx(base / warmup, rel=1e-12)
    assert rows[warmup - 1]["lr"] == base  # the last warmup update: the base lr, exactly
    assert all(row["lr"] == base for row in rows[warmup:])
    assert all(int(row["epoch"]) <= warmup_epochs for row in rows[:warmup])
    assert int(rows[warmup]["epoch"]) == warmup_epochs + 1


def test_warmup_with_cosine_scales_the_cosine_during_the_warmup_epochs(tmp_path):
    base, low, epochs = 0.4, 0.0, 6
    total, warmup = epochs * 4, 4  # one warmup epoch of 4 updates
    exp = experiment({"lr": base, "batch_size": 25,
                      "schedule": {"name": "cosine", "min_lr": low, "warmup_epochs": 1}}, epochs)

    def expected(t, epoch):
        scheduled = cosine(t, total, base, low)
        return scheduled * (t + 1) / warmup if t < warmup else scheduled

    rows = _check_lrs(exp, tmp_path, expected)
    lrs = [row["lr"] for row in rows]
    assert lrs[0] == pytest.approx(cosine(0, total, base, low) / warmup) == pytest.approx(base / warmup)
    assert all(a < b for a, b in zip(lrs[:warmup], lrs[1:warmup]))  # rising during the warmup
    assert all(a > b for a, b in zip(lrs[warmup - 1:], lrs[warmup:]))  # then the cosine's decay
    assert lrs[-1] == pytest.approx(low, abs=1e-15)


@pytest.mark.parametrize("spec", [[25, 50, "full"], 50])
def test_linear_scaling_rule_multiplies_the_lr_by_batch_over_base(tmp_path, spec):
    lr, base_batch = 0.1, 25
    exp = experiment({"lr": lr, "batch_size": spec, "lr_scaling": {"rule": "linear", "base_batch_size": base_batch}}, 3)
    sizes = expected_batch_sizes(spec, 3, 100)
    rows = _check_lrs(exp, tmp_path, lambda t, epoch: lr * sizes[epoch - 1] / base_batch)
    by_epoch = {int(row["epoch"]): row["lr"] for row in rows}
    if isinstance(spec, list):
        assert by_epoch == pytest.approx({1: 0.1, 2: 0.2, 3: 0.4})  # 25 → 50 → 100 samples
    else:
        assert list(by_epoch.values()) == pytest.approx([0.2, 0.2, 0.2])
    unscaled = experiment({"lr": lr, "batch_size": spec}, 3)  # rule none: the lr as written
    run_plan = plan(unscaled.optim, 3, 100)
    assert {lr_at(unscaled.optim, run_plan, t) for t in range(run_plan.total_steps)} == {lr}


def test_linear_scaling_composes_with_step_decay():
    lr, base_batch = 0.1, 10
    exp = experiment({"lr": lr, "batch_size": [20, 40],
                      "schedule": {"name": "step", "factor": 0.5, "every": 1},
                      "lr_scaling": {"rule": "linear", "base_batch_size": base_batch}}, 3)
    run_plan = plan(exp.optim, 3, 100)
    starts = [0, 5, 8]  # 5 updates of 20, then 3 of 40, then 3 of 40
    got = [lr_at(exp.optim, run_plan, t) for t in starts]
    assert got == pytest.approx([0.1 * 20 / 10, 0.1 * 40 / 10 * 0.5, 0.1 * 40 / 10 * 0.25])


# ---- batch order on data sorted by class -----------------------------------------------------------------


def test_sequential_batches_on_sorted_data_train_worse_than_shuffle_and_stride(tmp_path):
    errors = {}
    for order in ("shuffle", "sequential", "stride"):
        exp = load_experiment(CONFIGS / "batch_order.yaml", [f"optim.batch_order={order}", "device=cpu"])
        assert exp.data.sort_by_label and exp.optim.batch_size == 32
        result = train(exp, out_root=tmp_path / order)
        assert result.status == "completed"
        errors[order] = result.summary["train_error"]
    # every sequential epoch ends on batches of the last classes only
    assert errors["sequential"] > errors["shuffle"] + 0.1, errors
    assert errors["sequential"] > errors["stride"] + 0.1, errors


def test_sort_by_label_orders_the_training_set_by_class():
    from dlcli.components.data import load_dataset

    exp = load_experiment(CONFIGS / "batch_order.yaml", ["data.n_train=300", "device=cpu"])
    unsorted = load_experiment(CONFIGS / "batch_order.yaml", ["data.n_train=300", "data.sort_by_label=false"])
    sorted_data, plain = load_dataset(exp.data, exp.seed), load_dataset(unsorted.data, unsorted.seed)
    assert (np.diff(sorted_data.y_train) >= 0).all()
    assert not (np.diff(plain.y_train) >= 0).all()
    assert sorted(sorted_data.y_train.tolist()) == sorted(plain.y_train.tolist())


# ---- batch size × learning rate ----------------------------------------------------------------------------


def test_large_lr_diverges_with_batch_1_but_not_with_full_batch(tmp_path):
    sweep = load_sweep(CONFIGS / "batch_lr_grid.yaml", grid=["optim.batch_size=1,full", "optim.lr=0.01,0.1,1,10"],
                       overrides=["data.n_train=300", "train.epochs=3", "device=cpu"])
    assert len(sweep.points) == 8
    result = run_sweep(sweep, tmp_path)
    runs = {(row["optim.batch_size"], row["optim.lr"]): row for row in result.rows}
    assert set(runs) == {(b, lr) for b in (1, "full") for lr in (0.01, 0.1, 1, 10)}
    assert all(row["status"] in ("completed", "diverged") for row in runs.values())

    # at lr 10, one-sample steps blow up (or end far worse); the full-batch run does not diverge
    small, full = runs[(1, 10)], runs[("full", 10)]
    assert full["status"] == "completed"
    assert math.isfinite(full["train_loss"])
    assert small["status"] == "diverged" or small["train_error"] > full["train_error"] + 0.2, (small, full)

    def best_lr(batch):
        completed = {lr: row["train_error"] for (b, lr), row in runs.items() if b == batch and row["status"] == "completed"}
        assert completed, batch
        return min(completed, key=completed.get)

    assert best_lr("full") >= best_lr(1), (best_lr("full"), best_lr(1))
    # the heavier the noise the smaller the lr it tolerates: B=1 diverges at an lr the full batch handles
    first_diverged_small = min(lr for (b, lr), row in runs.items() if b == 1 and row["status"] == "diverged")
    assert runs[("full", first_diverged_small)]["status"] == "completed"


# ---- the LR range test -------------------------------------------------------------------------------------


def test_lr_find_suggests_an_lr_that_trains_better_than_a_hundredth_of_it(tmp_path):
    out, low, high, steps = tmp_path / "out", 1e-6, 10.0, 100
    result = invoke("lr-find", CONFIGS / "quickstart.yaml", "--steps", steps, "--min", low, "--max", high,
                    "--set", "data.n_train=1000", "--set", "device=cpu", "--out", out)
    assert result.exit_code == 0, (result.output, result.stderr)
    (run_dir,) = (out / "quickstart").glob("lr_find-*")
    with open(run_dir / "lr_find.csv", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        rows = [{key: float(value) for key, value in row.items()} for row in reader]
    assert set(rows[0]) >= {"step", "lr", "loss"}
    summary = json.loads((run_dir / "lr_find.json").read_text(encoding="utf-8"))
    lrs = [row["lr"] for row in rows]
    assert 10 <= len(rows) <= steps and summary["steps"] == len(rows)
    assert all(a < b for a, b in zip(lrs, lrs[1:]))  # strictly increasing
    for row in rows:  # exponential: min·(max/min)^(k/(steps−1)) for update k (0-based)
        k = int(row["step"]) - 1
        assert row["lr"] == pytest.approx(low * (high / low) ** (k / (steps - 1)), rel=1e-9)
    assert all(math.isfinite(row["loss"]) for row in rows)

    average = 0.0  # smoothed_loss: the bias-corrected exponential moving average of the batch loss
    for k, row in enumerate(rows):
        average = SMOOTHING * average + (1 - SMOOTHING) * row["loss"]
        assert row["smoothed_loss"] == pytest.approx(average / (1 - SMOOTHING ** (k + 1)), rel=1e-9)

    suggested = summary["suggested_lr"]
    assert isinstance(suggested, float) and low < suggested < high
    (at,) = [i for i, lr in enumerate(lrs) if lr == pytest.approx(suggested, rel=1e-12)]  # one of the lrs tried
    smoothed = [row["smoothed_loss"] for row in rows]
    lowest = min(range(len(rows)), key=smoothed.__getitem__)
    assert at <= lowest  # before the minimum of the smoothed loss ...
    assert smoothed[at + 1] < smoothed[at - 1]  # ... where it is falling
    printed = re.search(r"suggested lr:\s*([0-9.eE+-]+)", text(result.stdout))
    assert printed, result.stdout
    assert float(printed.group(1)) == pytest.approx(suggested, rel=5e-3)

    def short_run(lr, name):
        exp = load_experiment(CONFIGS / "quickstart.yaml",
                              [f"optim.lr={lr!r}", "data.n_train=1000", "train.epochs=3", "device=cpu"])
        return train(exp, out_root=tmp_path / name)

    good, slow = short_run(suggested, "good"), short_run(suggested / 100, "slow")
    assert good.status == "completed", good.summary["message"]
    curve = read_metrics(good.run_dir)
    assert all(math.isfinite(row["train_loss"]) for row in curve)
    assert curve[-1]["train_error"] < curve[0]["train_error"] - 0.1  # it learns in three epochs
    assert curve[-1]["train_loss"] < curve[0]["train_loss"]
    assert (good.summary["train_error"] < slow.summary["train_error"]
            or good.summary["test_error"] < slow.summary["test_error"]), (good.summary, slow.summary)


def test_lr_find_ranges_optim_lr_and_scales_each_update_as_training_does(tmp_path):
    """With optim.lr_scaling (batch 16, base 64: × 1/4) the test ranges optim.lr: the curve over 4× the lrs
    is the unscaled curve, loss for loss, and the suggestion is 4× as large, to go into optim.lr as it is."""
    config = tiny_config(optim={"name": "sgd", "lr": 0.1, "batch_size": 16})
    unscaled = lr_find(experiment_from_dict(config), tmp_path / "plain", 1e-3, 10.0, steps=60)
    config["optim"]["lr_scaling"] = {"rule": "linear", "base_batch_size": 64}
    scaled = lr_find(experiment_from_dict(config), tmp_path / "scaled", 4e-3, 40.0, steps=60)
    assert [row["loss"] for row in scaled.rows] == [row["loss"] for row in unscaled.rows]
    assert [row["lr"] for row in scaled.rows] == [4 * row["lr"] for row in unscaled.rows]
    assert scaled.suggested_lr == 4 * unscaled.suggested_lr
    assert json.loads((scaled.run_dir / "lr_find.json").read_text())["lr_scale"] == 0.25


def test_lr_find_says_to_raise_max_when_the_loss_is_lowest_at_the_last_lr(tmp_path):
    """Up to --max 0.3 the loss only falls: its 'lowest' lr is the last one tried, no minimum."""
    config = write_yaml(tmp_path, tiny_config())
    result = invoke("lr-find", config, "--min", 1e-4, "--max", 0.3, "--steps", 30, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "raise --max to see where it blows up" in " ".join(text(result.stdout).split())
    assert "raise --max" not in " ".join(text(invoke("lr-find", config, "--steps", 60, "--out",
                                                      tmp_path / "out").stdout).split())


def test_lr_find_with_too_few_steps_says_to_raise_them_when_the_loss_did_not_blow_up(tmp_path):
    result = invoke("lr-find", CONFIGS / "quickstart.yaml", "--steps", 3, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "no suggestion: too few steps: raise --steps (a suggestion needs 10)" in " ".join(result.stdout.split())


@pytest.mark.parametrize("low, high", [(1.0, 1.0), (2.0, 1.0), (0.0, 1.0), (1.0, math.inf)])
def test_lr_find_needs_min_below_max(tmp_path, low, high):
    out = tmp_path / "out"
    result = invoke("lr-find", CONFIGS / "quickstart.yaml", "--min", low, "--max", high, "--steps", 10, "--out", out)
    lines = user_error_lines(result)
    assert any("--min" in line for line in lines), lines
    assert not out.exists() or not any(out.rglob("*"))


# ---- per-update curves in compare ----------------------------------------------------------------


@pytest.mark.parametrize("axis", ["step", "seconds"])
def test_compare_curves_against_updates_or_seconds_writes_a_png(gd_vs_sgd, tmp_path, axis):
    sweep_dir, by_size, _ = gd_vs_sgd
    figure = tmp_path / f"updates_{axis}.png"
    result = invoke("compare", sweep_dir, "--curves", "--x", axis, "--plot", figure)
    assert result.exit_code == 0, (result.output, result.stderr)
    assert figure.read_bytes()[:8] == PNG_SIGNATURE
    assert figure.stat().st_size > 1000
    output = text(result.stdout)
    # a row per run, showing its update count: epochs · ceil(n / B)
    for updates in (5 * 500, 5 * math.ceil(500 / 32), 5):
        assert len(re.findall(rf"│\s*{updates}\s*│", output)) == 1, (updates, output)


def test_compare_curves_with_an_unknown_axis_is_a_user_error(gd_vs_sgd, tmp_path):
    sweep_dir, _, _ = gd_vs_sgd
    figure = tmp_path / "bogus.png"
    lines = user_error_lines(invoke("compare", sweep_dir, "--curves", "--x", "bogus", "--plot", figure))
    assert any("--x" in line and "bogus" in line for line in lines), lines
    assert not figure.exists()


def test_compare_curves_by_step_without_steps_csv_names_log_steps(tmp_path):
    first = train(experiment({}, 2, log_steps=False), out_root=tmp_path / "runs")
    second = train(experiment({"lr": 0.05}, 2, log_steps=False), out_root=tmp_path / "runs")
    assert not (first.run_dir / "steps.csv").exists() and not (second.run_dir / "steps.csv").exists()
    figure = tmp_path / "f.png"
    lines = user_error_lines(invoke("compare", tmp_path / "runs", "--curves", "--x", "step", "--plot", figure))
    assert any("train.log_steps" in line for line in lines), lines
    assert not figure.exists()
    # per epoch the same runs still compare
    assert invoke("compare", tmp_path / "runs", "--curves").exit_code == 0


# ---- bad schedules are user errors --------------------------------------------------------------------


BAD_OPTIM = [
    ({"schedule": {"name": "triangular"}}, "optim.schedule.max_lr"),
    ({"lr": 0.1, "schedule": {"name": "triangular", "max_lr": 0.1}}, "optim.schedule.max_lr"),
    ({"lr": 0.1, "schedule": {"name": "triangular", "max_lr": 0.05}}, "optim.schedule.max_lr"),
    ({"batch_size": {"start": 0}}, "optim.batch_size"),
    ({"batch_size": {"start": 8, "factor": 0.5}}, "optim.batch_size"),
    ({"schedule": {"name": "exponential"}}, "optim.schedule.name"),
    ({"batch_size": []}, "optim.batch_size"),
    ({"batch_size": [16, 0]}, "optim.batch_size"),
]


@pytest.mark.parametrize("optim, key", BAD_OPTIM)
def test_bad_schedule_is_a_user_error(tmp_path, write_config, optim, key):
    config = tiny_config(optim={"name": "sgd", "lr": 0.1, "batch_size": 32, **optim})
    with pytest.raises(UserError) as caught:
        experiment_from_dict(config)
    assert any(key in problem for problem in caught.value.problems), caught.value.problems
    out = tmp_path / "out"
    lines = user_error_lines(invoke("train", write_config(config), "--out", out))
    assert any(key in line for line in lines), lines
    assert not out.exists() or not any(out.rglob("*"))


def test_the_good_versions_of_those_schedules_are_accepted():
    """The same keys with valid values load, so the errors above are about the values."""
    for optim in ({"schedule": {"name": "triangular", "max_lr": 0.2}}, {"batch_size": {"start": 1}},
                  {"schedule": {"name": "cosine"}}, {"batch_size": [16, "full"]}):
        experiment_from_dict(tiny_config(optim={"name": "sgd", "lr": 0.1, "batch_size": 32, **optim}))
