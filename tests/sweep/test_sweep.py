"""Sweeps: value parsing, expansion, dry runs, runs.csv, resume after a real kill, workers, Ray."""
from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import (WIDE, assert_same_sweep, invoke, line_with, read_csv_rows, run_dirs,
                      succeeded, text, tiny_config, user_error, without, write_yaml)
from dlcli.config.load import load_experiment

RUN_FILES = {"config.yaml", "metrics.csv", "summary.json", "model.pt"}
RESULT_COLUMNS = ["train_loss", "train_error", "test_loss", "test_error", "gap", "best_test_error",
                  "best_epoch", "epochs_run", "seconds", "message"]


# ---- dry run and bad points ----------------------------------------------------------------------


def test_dry_run_writes_nothing_and_counts_the_runs(tmp_path):
    config = write_yaml(tmp_path, tiny_config())
    out = tmp_path / "out"
    stdout = succeeded(invoke("sweep", config, "--grid", "optim.lr=0.05,0.1,0.2", "--grid", "optim.batch_size=8,full",
                              "--seeds", "2", "--out", out, "--dry-run"))
    assert re.search(rf"\b{3 * 2 * 2} runs\b", stdout), stdout
    assert not out.exists()


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_bad_point_is_caught_before_anything_runs(tmp_path, dry_run):
    config = write_yaml(tmp_path, tiny_config())
    out = tmp_path / "out"
    batch_sizes, lrs = [0, 8], [0.1, 0.2]
    bad = [i + 1 for i, (bs, _) in enumerate(itertools.product(batch_sizes, lrs)) if bs == 0]
    args = ["sweep", config, "--grid", "optim.batch_size=0,8", "--grid", "optim.lr=0.1,0.2", "--out", out]
    lines = user_error(invoke(*args, *(["--dry-run"] if dry_run else [])), out)
    assert len(lines) == 1, lines
    line_with(lines, "optim.batch_size", "points " + ", ".join(map(str, bad)))


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_repeated_point_is_refused_by_the_dry_run_as_by_the_sweep(tmp_path, dry_run):
    """0.1 and 0.10 are one experiment (one run folder): the dry run said every point was valid."""
    config = write_yaml(tmp_path, tiny_config())
    out = tmp_path / "out"
    args = ["sweep", config, "--grid", "optim.lr=0.1,0.2,0.10", "--out", out, *(["--dry-run"] if dry_run else [])]
    lines = user_error(invoke(*args), out)
    assert len(lines) == 1, lines
    line_with(lines, "points 1 and 3 are the same experiment", "optim.lr")


def test_a_large_error_reads_in_scientific_notation_in_the_sweep_lines_and_the_heatmap(tmp_path):
    """A regression on targets of order 1e4 has a test MSE near 1e8: `4.38e+07`, not `43785296.0000`."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 2))
    (tmp_path / "big.csv").write_text("a,b,y\n" + "".join(f"{a},{b},{1e4 * a}\n" for a, b in x))
    config = write_yaml(tmp_path, tiny_config(
        data={"name": "csv", "params": {"path": str(tmp_path / "big.csv"), "target": "y", "task": "regression"}},
        model={"name": "linear"}, loss="mse", train={"epochs": 1}))
    out = tmp_path / "out"
    lines = succeeded(invoke("sweep", config, "--grid", "optim.lr=0.01,0.02", "--out", out)).splitlines()
    _, rows = read_csv_rows(out / "tiny" / "runs.csv")
    errors = [float(row["test_error"]) for row in rows]
    assert min(errors) > 1e6
    for error in errors:
        line_with(lines, "test error", f"{error:.2e}")
    heatmap = succeeded(invoke("compare", out / "tiny", "--pivot", "optim.lr,seed"))
    assert all(f"{error:.2e}" in heatmap for error in errors), heatmap


def test_an_unknown_key_is_caught_at_every_point(tmp_path):
    config = write_yaml(tmp_path, tiny_config())
    out = tmp_path / "out"
    lines = user_error(invoke("sweep", config, "--grid", "optim.lrr=0.1,0.2", "--out", out, "--dry-run"), out)
    line_with(lines, "optim.lrr", "every point")


def test_a_point_that_fails_on_its_data_is_caught_before_anything_runs(tmp_path):
    # bce needs two classes: only the 3-class point (the second) is wrong, and only the data tells.
    config = write_yaml(tmp_path, tiny_config(loss="bce"))
    out = tmp_path / "out"
    lines = user_error(invoke("sweep", config, "--grid", "data.params.classes=2,3", "--out", out), out)
    line_with(lines, "bce", "point 2")


def test_unknown_backend_exits_2(tmp_path):
    config = write_yaml(tmp_path, tiny_config())
    out = tmp_path / "out"
    lines = user_error(invoke("sweep", config, "--grid", "optim.lr=0.1,0.2", "--backend", "nope", "--out", out), out)
    line_with(lines, "--backend", "nope")


def test_ray_backend_without_ray_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed: `import ray` fails
    config = write_yaml(tmp_path, tiny_config())
    out = tmp_path / "out"
    lines = user_error(invoke("sweep", config, "--backend", "ray", "--out", out), out)
    line_with(lines, "--backend ray", "pip install 'dlcli[ray]'")


# ---- a sweep: every point an ordinary run, runs.csv ----------------------------------------------

BASE_GRID = ["--grid", "optim.lr=1000000.0,0.1", "--grid", "model.hidden=[8],[8,8]", "--seeds", "2"]
BASE_POINTS = [{"optim.lr": lr, "model.hidden": hidden, "seed": seed}
               for lr, hidden, seed in itertools.product([1000000.0, 0.1], [[8], [8, 8]], [0, 1])]


@pytest.fixture(scope="module")
def base_config(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("base_config")
    return write_yaml(folder, tiny_config(train={"epochs": 2}), "tiny.yaml")


@pytest.fixture(scope="module")
def base_sweep(base_config, tmp_path_factory):
    """The reference sweep, local backend, one worker: (sweep dir, result)."""
    out = tmp_path_factory.mktemp("base") / "out"
    result = invoke("sweep", base_config, *BASE_GRID, "--out", out)
    return out / "tiny", result


def test_a_sweep_with_a_diverged_point_finishes_with_exit_0(base_sweep):
    sweep_dir, result = base_sweep
    stdout = succeeded(result)
    _, rows = read_csv_rows(sweep_dir / "runs.csv")
    assert len(rows) == len(BASE_POINTS)
    statuses = [row["status"] for row in rows]
    diverged = [row for row in rows if float(row["optim.lr"]) == 1e6]
    assert diverged and all(row["status"] == "diverged" and row["message"] for row in diverged), statuses
    # the points after the diverged ones ran to the end
    assert [row["status"] for row in rows if float(row["optim.lr"]) == 0.1] == ["completed"] * 4, statuses
    assert f"{len(BASE_POINTS)} runs" in stdout


def test_every_point_is_an_ordinary_run(base_sweep, base_config):
    sweep_dir, _ = base_sweep
    _, rows = read_csv_rows(sweep_dir / "runs.csv")
    assert run_dirs(sweep_dir) == {row["run_id"] for row in rows}
    for row, point in zip(rows, BASE_POINTS):
        run_dir = sweep_dir / row["run_id"]
        assert RUN_FILES <= {p.name for p in run_dir.iterdir()}, run_dir
        experiment = load_experiment(run_dir / "config.yaml")
        assert experiment.optim.lr == point["optim.lr"]
        assert experiment.model.hidden == point["model.hidden"]
        assert experiment.seed == point["seed"]
        assert experiment.train.epochs == 2 and experiment.data.n_train == 100
        epochs = [int(r["epoch"]) for r in read_csv_rows(run_dir / "metrics.csv")[1]]
        assert epochs == list(range(len(epochs))) and epochs
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == row["status"]
        assert summary["epochs_run"] == epochs[-1]


def test_sweep_yaml_records_the_spec(base_sweep, base_config):
    sweep_dir, _ = base_sweep
    spec = yaml.safe_load((sweep_dir / "sweep.yaml").read_text())
    assert spec["points"] == len(BASE_POINTS)
    assert spec["seeds"] == 2
    assert spec["grid"]["model.hidden"] == [[8], [8, 8]]
    assert [float(v) for v in spec["grid"]["optim.lr"]] == [1e6, 0.1]
    assert Path(spec["config"]).name == base_config.name


def test_runs_csv_columns_and_points(base_sweep):
    sweep_dir, _ = base_sweep
    columns, rows = read_csv_rows(sweep_dir / "runs.csv")
    assert columns == ["run_id", "status", "seed", "optim.lr", "model.hidden", *RESULT_COLUMNS]
    assert len({row["run_id"] for row in rows}) == len(rows) == len(BASE_POINTS)
    for row, point in zip(rows, BASE_POINTS):  # in point order
        assert float(row["optim.lr"]) == point["optim.lr"]
        assert json.loads(row["model.hidden"]) == point["model.hidden"]
        assert int(row["seed"]) == point["seed"]


def test_runs_csv_metrics_are_the_runs_summaries(base_sweep):
    sweep_dir, _ = base_sweep
    _, rows = read_csv_rows(sweep_dir / "runs.csv")
    for row in rows:
        summary = json.loads((sweep_dir / row["run_id"] / "summary.json").read_text())
        assert row["status"] == summary["status"]
        for column in RESULT_COLUMNS:
            expected = summary[column]
            if expected is None:
                assert row[column] == "", (column, row)
            elif column == "message":
                assert row[column] == expected
            else:
                assert float(row[column]) == pytest.approx(expected, rel=1e-12, abs=1e-15), (column, row)
        train_error, test_error = float(row["train_error"]), float(row["test_error"])
        assert float(row["gap"]) == pytest.approx(test_error - train_error, abs=1e-12)
        metrics = read_csv_rows(sweep_dir / row["run_id"] / "metrics.csv")[1]
        assert float(row["best_test_error"]) == pytest.approx(min(float(m["test_error"]) for m in metrics), abs=1e-12)
        assert int(row["epochs_run"]) == int(metrics[-1]["epoch"])
        assert test_error == pytest.approx(float(metrics[-1]["test_error"]), abs=1e-12)


def test_a_finished_sweep_run_again_trains_nothing(base_sweep, base_config, tmp_path):
    sweep_dir, _ = base_sweep
    out = tmp_path / "out"
    shutil.copytree(sweep_dir, out / "tiny")
    before = {run_id: (out / "tiny" / run_id / "summary.json").stat().st_mtime_ns for run_id in run_dirs(out / "tiny")}
    stdout = succeeded(invoke("sweep", base_config, *BASE_GRID, "--out", out))
    assert f"{len(BASE_POINTS)} already done" in stdout, stdout  # diverged points are results too
    after = {run_id: (out / "tiny" / run_id / "summary.json").stat().st_mtime_ns for run_id in run_dirs(out / "tiny")}
    assert after == before
    assert read_csv_rows(out / "tiny" / "runs.csv") == read_csv_rows(sweep_dir / "runs.csv")


def test_two_workers_give_the_same_sweep(base_sweep, base_config, tmp_path):
    sweep_dir, _ = base_sweep
    out = tmp_path / "out"
    succeeded(invoke("sweep", base_config, *BASE_GRID, "--workers", "2", "--out", out))
    assert_same_sweep(sweep_dir, out / "tiny")


# ---- Ray -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_sweep(base_config, tmp_path_factory):
    """The base sweep again, each point a task of a local Ray instance started once for this module."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        out = tmp_path_factory.mktemp("ray") / "out"
        result = invoke("sweep", base_config, *BASE_GRID, "--backend", "ray", "--out", out)
    finally:
        ray.shutdown()
    return out / "tiny", result


def test_ray_backend_gives_the_same_sweep(ray_sweep, base_sweep):
    sweep_dir, result = ray_sweep
    succeeded(result)
    assert_same_sweep(base_sweep[0], sweep_dir)


def test_ray_run_directories_have_the_usual_permissions(ray_sweep, base_sweep):
    sweep_dir, result = ray_sweep
    succeeded(result)
    for run_id in run_dirs(base_sweep[0]):
        local_mode = (base_sweep[0] / run_id).stat().st_mode & 0o777
        ray_mode = (sweep_dir / run_id).stat().st_mode & 0o777
        assert ray_mode == local_mode, f"{run_id}: {ray_mode:o} with Ray, {local_mode:o} locally"
        for path in (base_sweep[0] / run_id).iterdir():
            local_mode = path.stat().st_mode & 0o777
            ray_mode = (sweep_dir / run_id / path.name).stat().st_mode & 0o777
            assert ray_mode == local_mode, f"{run_id}/{path.name}: {ray_mode:o} with Ray, {local_mode:o} locally"


# ---- resume after a real kill --------------------------------------------------------------------

SLOW_POINTS = 3 * 2
SLOW_GRIDS = {  # one by one: six units; vectorized: three stacks of two (one per batch size)
    "one_by_one": ["--grid", "optim.lr=0.02,0.05,0.1", "--seeds", "2", "--no-vectorize"],
    "vectorized": ["--grid", "optim.batch_size=8,9,10", "--grid", "optim.lr=0.02,0.05"],
}


def slow_config(folder: Path) -> Path:
    """Each run takes a few tenths of a second: 2000 samples in batches of 8, 4 epochs."""
    config = tiny_config(name="slow", optim={"name": "sgd", "lr": 0.05, "batch_size": 8}, train={"epochs": 4})
    config["data"]["n_train"] = 2000
    return write_yaml(folder, config, "slow.yaml")


def finished_on_disk(sweep_dir: Path) -> dict[str, bytes]:
    """summary.json of every run directory whose run ended (completed or diverged)."""
    found = {}
    for run_id in run_dirs(sweep_dir):
        try:
            payload = (sweep_dir / run_id / "summary.json").read_bytes()
        except FileNotFoundError:
            continue
        if json.loads(payload)["status"] in ("completed", "diverged") and (sweep_dir / run_id / "metrics.csv").is_file():
            found[run_id] = payload
    return found


# Runs the sweep command, and once two runs have completed, stops the next run in the middle (after
# one of its epochs is on disk) and says so by creating the file named first: the test kills it there.
# No clock: the test waits for that file, and the sweep cannot finish before it is killed.
STOP_MID_RUN = """
import sys, time
from pathlib import Path
from dlcli.components import run_log
from dlcli.sweep import runner

ready, completed = Path(sys.argv[1]), []
write_runs_csv, record = runner.write_runs_csv, run_log.RunLog.record

def counting(sweep_dir, rows, keys):
    write_runs_csv(sweep_dir, rows, keys)
    completed[:] = [row for row in rows if row["status"] == "completed"]

def stopping(self, row, state):
    record(self, row, state)
    if len(completed) >= 2 and row is not None and row["epoch"] >= 1:
        ready.touch()
        while True:
            time.sleep(1)

runner.write_runs_csv, run_log.RunLog.record = counting, stopping
from dlcli.cli import main
sys.argv = ["dlcli", *sys.argv[2:]]
main()
"""


@pytest.mark.parametrize("mode", SLOW_GRIDS)
def test_resume_after_a_kill(tmp_path, mode):
    grid = SLOW_GRIDS[mode]
    config = slow_config(tmp_path)
    out = tmp_path / "out"
    runs_csv = out / "slow" / "runs.csv"
    arguments = ["sweep", str(config), *grid, "--out", str(out)]
    env = {**os.environ, **WIDE}
    ready = tmp_path / "stopped-mid-run"
    with open(tmp_path / "first.log", "wb") as log:
        process = subprocess.Popen([sys.executable, "-c", STOP_MID_RUN, str(ready), *arguments], stdout=log,
                                   stderr=subprocess.STDOUT, cwd=tmp_path, env=env)
        try:
            while not ready.exists():  # an event, not a deadline: however busy the machine is
                assert process.poll() is None, (tmp_path / "first.log").read_text()
                time.sleep(0.02)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
    assert process.returncode == -signal.SIGKILL
    killed_mid_run = [run_id for run_id in run_dirs(out / "slow")
                      if json.loads((out / "slow" / run_id / "summary.json").read_text())["status"] == "running"]
    assert killed_mid_run  # a run folder left behind with some epochs: the resume must redo it

    columns, rows = read_csv_rows(runs_csv)  # still a whole file
    assert columns[:3] == ["run_id", "status", "seed"] and len(rows) == SLOW_POINTS
    completed_before = [row["run_id"] for row in rows if row["status"] == "completed"]
    assert 2 <= len(completed_before) < SLOW_POINTS
    finished = finished_on_disk(out / "slow")
    assert set(completed_before) <= set(finished)
    mtimes = {run_id: (out / "slow" / run_id / "summary.json").stat().st_mtime_ns for run_id in finished}

    command = [sys.executable, "-m", "dlcli", *arguments]
    second = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Traceback" not in second.stderr
    assert f"({len(finished)} already done" in text(second.stdout), second.stdout
    for run_id, payload in finished.items():  # not retrained: the same summary (its 'started'), untouched
        assert (out / "slow" / run_id / "summary.json").read_bytes() == payload, run_id
        assert (out / "slow" / run_id / "summary.json").stat().st_mtime_ns == mtimes[run_id], run_id

    reference = tmp_path / "reference"
    succeeded(invoke("sweep", config, *grid, "--out", reference))
    resumed_columns, resumed = read_csv_rows(runs_csv)
    reference_columns, uninterrupted = read_csv_rows(reference / "slow" / "runs.csv")
    assert resumed_columns == reference_columns
    assert [row["run_id"] for row in resumed] == [row["run_id"] for row in uninterrupted]
    assert len(set(row["run_id"] for row in resumed)) == SLOW_POINTS
    assert [row["run_id"] for row in resumed][: len(rows)] == [row["run_id"] for row in rows]
    assert without(resumed, "seconds") == without(uninterrupted, "seconds")
    assert all(row["status"] == "completed" for row in resumed)
    assert run_dirs(out / "slow") == {row["run_id"] for row in resumed}
