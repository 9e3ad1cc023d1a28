"""Checkpoints and resume: a run killed mid-run and continued equals, bit for bit on the CPU, the run
that was never stopped (metrics.csv apart from `seconds`, summary.json, model.pt)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch

from conftest import (assert_same_sweep, invoke, kill_when_stopped, metrics_without_seconds, succeeded, text,
                      tiny_config, write_yaml)
from dlcli.components.checkpoints import read_checkpoint
from dlcli.config.load import experiment_from_dict
from dlcli.engine.checkpoint import CheckpointClock
from dlcli.engine.loop import resume, train
from dlcli.layout import Status

def long_config(**sections) -> dict:
    """Long enough that every run reaches its stopping point: 12 epochs, a checkpoint every 3."""
    config = tiny_config(name="long", train={"epochs": 12, "checkpoint_every": 3}, **sections)
    config["data"]["n_train"] = 400
    return config


def assert_same_run(expected: Path, actual: Path) -> None:
    assert metrics_without_seconds(actual) == metrics_without_seconds(expected)
    summaries = [json.loads((run / "summary.json").read_text()) for run in (expected, actual)]
    for summary in summaries:
        for volatile in ("started", "seconds", "run_id"):
            summary.pop(volatile)
    assert summaries[1] == summaries[0]
    weights = [torch.load(run / "model.pt", weights_only=True) for run in (expected, actual)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])


# ---- a real process killed with SIGKILL -------------------------------------------------------


def test_train_killed_mid_run_resumes_to_the_uninterrupted_run(tmp_path):
    config = write_yaml(tmp_path, long_config(model={"name": "mlp", "hidden": [16], "dropout": 0.2}))
    kill_when_stopped([sys.executable, "-m", "dlcli", "train", str(config), "--out", str(tmp_path / "killed")],
                      tmp_path)
    (run_dir,) = (tmp_path / "killed" / "long").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "running"  # killed without a word
    checkpoint = read_checkpoint(run_dir)
    assert checkpoint["epoch"] % 3 == 0 and len(metrics_without_seconds(run_dir)) > checkpoint["epoch"] + 1

    output = succeeded(invoke("train", "--resume", run_dir))
    assert "completed" in output
    assert not (run_dir / "checkpoint.pt").exists()  # a finished run is never continued
    reference = train(experiment_from_dict(long_config(model={"name": "mlp", "hidden": [16], "dropout": 0.2})),
                      tmp_path / "reference")
    assert_same_run(reference.run_dir, run_dir)
    again = invoke("train", "--resume", run_dir)
    assert again.exit_code == 2 and "nothing to resume" in text(again.stderr)


@pytest.mark.parametrize("workers", [1, 2])
def test_stacked_sweep_killed_mid_run_resumes_to_the_uninterrupted_sweep(tmp_path, workers):
    config = write_yaml(tmp_path, long_config(optim={"name": "sgd", "lr": 0.05, "batch_size": 16}))
    grid = ["--grid", "optim.lr=0.02,0.05", "--grid", "optim.batch_size=16,20", "--workers", str(workers)]
    out = tmp_path / "out"
    kill_when_stopped([sys.executable, "-m", "dlcli", "sweep", str(config), *grid, "--out", str(out)], tmp_path,
                      stopped=workers)
    checkpointed = [run for run in (out / "long").iterdir() if (run / "checkpoint.pt").is_file()]
    assert checkpointed  # killed after a checkpoint, with an epoch logged past it

    output = succeeded(invoke("sweep", config, *grid, "--out", out))
    assert "continue from their checkpoints" in output
    succeeded(invoke("sweep", config, *grid, "--out", tmp_path / "reference"))
    assert_same_sweep(tmp_path / "reference" / "long", out / "long")
    assert not list((out / "long").glob("*/checkpoint.pt"))


# ---- interrupted in-process: every per-model stream continues exactly ---------------------------------


VARIANTS = {
    "momentum and dropout": {"model": {"name": "mlp", "hidden": [16], "dropout": 0.3},
                             "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "batch_size": 16}},
    "adam, cosine schedule": {"optim": {"name": "adam", "lr": 0.01, "batch_size": 16,
                                        "schedule": {"name": "cosine"}}},
    "adamw, growing batches": {"optim": {"name": "adamw", "lr": 0.01, "batch_size": {"start": 8, "factor": 2}},
                               "regularization": {"weight_decay": 0.01}},
    "augmentation and steps.csv": {"data": {"name": "gaussians", "n_train": 100, "n_test": 100,
                                            "augment": {"noise_std": 0.3}}, "train": {"epochs": 8, "log_steps": True}},
    "batch norm (running statistics)": {"model": {"name": "mlp", "hidden": [16], "norm": "batch", "dropout": 0.2}},
    "l1 and l2": {"regularization": {"l1": 0.001, "l2": 0.01}},
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_an_interrupted_run_resumes_bit_for_bit(tmp_path, variant):
    config = tiny_config(**{"train": {"epochs": 8}, **VARIANTS[variant]})
    config["train"]["checkpoint_every"] = 2
    experiment = experiment_from_dict(config)

    def interrupt(row):
        if row["epoch"] == 5:
            raise KeyboardInterrupt

    stopped = train(experiment, tmp_path / "stopped", on_epoch=interrupt)
    assert stopped.status == Status.INTERRUPTED and read_checkpoint(stopped.run_dir)["epoch"] == 4
    resumed = resume(stopped.run_dir)
    assert resumed.status == Status.COMPLETED
    assert_same_run(train(experiment, tmp_path / "whole").run_dir, resumed.run_dir)
    if (stopped.run_dir / "steps.csv").exists():
        whole = next((tmp_path / "whole").rglob("steps.csv")).read_text().splitlines()
        steps = (resumed.run_dir / "steps.csv").read_text().splitlines()
        assert [line.rsplit(",", 1)[0] for line in steps] == [line.rsplit(",", 1)[0] for line in whole]


def test_early_stopping_resumes_with_its_best_epoch(tmp_path):
    config = tiny_config(model={"name": "mlp", "hidden": [64]}, optim={"name": "sgd", "lr": 0.5, "batch_size": 8},
                         regularization={"early_stopping": {"patience": 4}},
                         train={"epochs": 60, "val_fraction": 0.3, "checkpoint_every": 1})
    config["data"]["params"]["separation"] = 0.5  # noisy classes: validation loss turns up early
    experiment = experiment_from_dict(config)
    whole = train(experiment, tmp_path / "whole")
    assert whole.status == Status.EARLY_STOPPED and whole.summary["epochs_run"] >= 6

    def interrupt(row):
        if row["epoch"] == whole.summary["epochs_run"] - 1:
            raise KeyboardInterrupt

    stopped = train(experiment, tmp_path / "stopped", on_epoch=interrupt)
    resumed = resume(stopped.run_dir)
    assert resumed.status == Status.EARLY_STOPPED
    assert resumed.summary["restored_epoch"] == whole.summary["restored_epoch"]
    assert_same_run(whole.run_dir, resumed.run_dir)


def test_a_truncated_checkpoint_trains_again_from_epoch_0_and_says_so(tmp_path):
    config = tiny_config(train={"epochs": 6, "checkpoint_every": 2})
    experiment = experiment_from_dict(config)

    def interrupt(row):
        if row["epoch"] == 3:
            raise KeyboardInterrupt

    stopped = train(experiment, tmp_path / "stopped", on_epoch=interrupt)
    checkpoint = stopped.run_dir / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    result = invoke("train", "--resume", stopped.run_dir)
    assert result.exit_code == 0, result.output
    assert "no usable checkpoint" in text(result.stdout) and "from epoch 0" in text(result.stdout)
    assert_same_run(train(experiment, tmp_path / "whole").run_dir, stopped.run_dir)


def test_rows_cut_short_by_the_kill_are_dropped_and_logged_again(tmp_path):
    """A process killed (or a disk filled) in the middle of appending leaves half a row at the end of
    metrics.csv and steps.csv: the resumed run reads whole rows only and equals the uninterrupted one."""
    experiment = experiment_from_dict(tiny_config(train={"epochs": 6, "checkpoint_every": 2, "log_steps": True}))

    def interrupt(row):
        if row["epoch"] == 3:
            raise KeyboardInterrupt

    stopped = train(experiment, tmp_path / "stopped", on_epoch=interrupt)
    for name, cut in (("metrics.csv", "4,16,0.1,0.6e"), ("steps.csv", "17")):
        with open(stopped.run_dir / name, "a", encoding="utf-8") as file:
            file.write(cut)
    assert resume(stopped.run_dir).status == Status.COMPLETED
    whole = train(experiment, tmp_path / "whole").run_dir
    assert_same_run(whole, stopped.run_dir)
    steps = [(run / "steps.csv").read_text().splitlines() for run in (whole, stopped.run_dir)]
    assert [line.rsplit(",", 1)[0] for line in steps[1]] == [line.rsplit(",", 1)[0] for line in steps[0]]


def test_resume_refuses_a_live_run_and_a_folder_that_is_not_a_run(tmp_path):
    stopped = train(experiment_from_dict(tiny_config()), tmp_path / "runs")
    summary = json.loads((stopped.run_dir / "summary.json").read_text())
    import socket

    summary |= {"status": "running", "pid": os.getpid(), "host": socket.gethostname()}
    (stopped.run_dir / "summary.json").write_text(json.dumps(summary))
    live = invoke("train", "--resume", stopped.run_dir)
    assert live.exit_code == 2 and "still training" in text(live.stderr)
    folder = invoke("train", "--resume", tmp_path)
    assert folder.exit_code == 2 and "not a run directory" in text(folder.stderr)
    both = invoke("train", "config.yaml", "--resume", stopped.run_dir)
    assert both.exit_code == 2 and "--resume" in text(both.stderr)


# ---- when checkpoints are written ---------------------------------------------------------------


def test_checkpoint_every_n_epochs_never_at_epoch_0_or_the_last():
    clock = CheckpointClock(3, epochs=10)
    assert [epoch for epoch in range(11) if clock.due(epoch)] == [3, 6, 9]
    assert not any(CheckpointClock(0, epochs=10).due(epoch) for epoch in range(11))


def test_auto_checkpoints_take_at_most_their_share_of_the_time(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("dlcli.engine.checkpoint.time.perf_counter", lambda: now[0])
    clock = CheckpointClock("auto", epochs=1000)
    assert clock.due(1)  # the first one measures what a checkpoint costs
    clock.cost, clock.since = 0.5, now[0]  # a write of 0.5 s: the next after 10 s of training (5%)
    now[0] += 9.9
    assert not clock.due(2)
    now[0] += 0.2
    assert clock.due(3)


def test_auto_checkpoints_leave_out_the_time_a_unit_waits_for_the_others(monkeypatch):
    """In a search's lockstep a unit pauses while the others train: that is not its training time."""
    now = [100.0]
    monkeypatch.setattr("dlcli.engine.checkpoint.time.perf_counter", lambda: now[0])
    clock = CheckpointClock("auto", epochs=1000)
    clock.cost, clock.since = 0.5, now[0]  # the next after 10 s of training
    for _ in range(3):
        now[0] += 3.0  # an epoch of this unit
        with clock.paused():
            now[0] += 30.0  # the other units' epochs
    assert not clock.due(4)
    now[0] += 1.0
    assert clock.due(5)


def test_the_checkpoint_loads_with_weights_only_and_goes_when_the_run_finishes(tmp_path):
    experiment = experiment_from_dict(tiny_config(train={"epochs": 4, "checkpoint_every": 1}))

    def interrupt(row):
        if row["epoch"] == 3:
            raise KeyboardInterrupt

    stopped = train(experiment, tmp_path, on_epoch=interrupt)
    payload = torch.load(stopped.run_dir / "checkpoint.pt", weights_only=True)
    assert payload["epoch"] == 2 and set(payload) >= {"step", "seconds", "engine", "log"}
    assert resume(stopped.run_dir).status == Status.COMPLETED
    assert not (stopped.run_dir / "checkpoint.pt").exists()
