"""Ctrl-C and SIGTERM during a sweep with worker processes: every worker stops, the runs in flight are
recorded as interrupted with their checkpoints, no process is left behind, and running the same
command again resumes to the results of an uninterrupted sweep."""
from __future__ import annotations

import csv

import pytest

from conftest import assert_same_sweep, invoke, stop_two_workers, succeeded, tiny_config, write_yaml


@pytest.mark.parametrize("how", ["SIGTERM to the sweep", "Ctrl-C to its process group"])
def test_a_signal_stops_every_worker_and_the_rerun_resumes(tmp_path, how):
    config = tiny_config(name="long", optim={"name": "sgd", "lr": 0.05, "batch_size": 16},
                         train={"epochs": 12, "checkpoint_every": 3})
    config["data"]["n_train"] = 400
    path = write_yaml(tmp_path, config)
    grid = ["--grid", "optim.lr=0.02,0.05", "--grid", "optim.batch_size=16,20", "--workers", "2"]
    out = tmp_path / "out"
    assert "interrupted" in stop_two_workers([path, *grid, "--out", out], tmp_path, how)

    with open(out / "long" / "runs.csv", newline="") as file:
        statuses = [row["status"] for row in csv.DictReader(file)]
    assert statuses.count("interrupted") == 4  # two stacks of two, each stopped mid-run
    output = succeeded(invoke("sweep", path, *grid, "--out", out))
    assert "4 points continue from their checkpoints" in output
    succeeded(invoke("sweep", path, *grid, "--out", tmp_path / "reference"))
    assert_same_sweep(tmp_path / "reference" / "long", out / "long")
