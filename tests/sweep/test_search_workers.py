"""Searches with worker processes (`--workers`) or Ray actors (`--backend ray`): the same trials, rungs,
numbers and files as in one process; Ctrl-C or SIGTERM stops every worker with the runs in flight
interrupted, and the rerun continues to the results of an uninterrupted search."""
from __future__ import annotations

import json
import os
import signal
import sys

import pytest

from conftest import (assert_same_sweep, invoke, start_stopping, stop_two_workers, stop_with, succeeded, tiny_config,
                      write_yaml)
from test_search import LR_SPACE, study_states, trials_of

WIDTHS = ["--grid", "model.hidden=choice([8],[12])"]


def searchable(epochs: int, **train) -> dict:
    config = tiny_config(name="tiny")
    config["data"]["n_train"] = 200
    config["train"] = {"epochs": epochs, "val_fraction": 0.25, **train}
    return config


def test_a_search_on_two_workers_equals_one_in_process(tmp_path):
    config = write_yaml(tmp_path, searchable(epochs=4))
    search = ["sweep", config, "--method", "random", "--trials", "9", *LR_SPACE, *WIDTHS, "--prune", "asha"]
    spread = succeeded(invoke(*search, "--workers", "2", "--out", tmp_path / "workers"))
    assert "on 2 worker processes" in spread
    succeeded(invoke(*search, "--out", tmp_path / "one"))
    rows = trials_of(tmp_path / "workers" / "tiny")
    assert {row["status"] for row in rows} == {"completed", "pruned"}  # rungs decided across the workers
    assert_same_sweep(tmp_path / "one" / "tiny", tmp_path / "workers" / "tiny")


def test_a_search_on_ray_actors_equals_one_in_process(tmp_path):
    """Each stack in a Ray actor of a local Ray instance: the files come back, the same as a search's
    in one process."""
    import ray

    config = write_yaml(tmp_path, searchable(epochs=4))
    search = ["sweep", config, "--method", "random", "--trials", "9", *LR_SPACE, *WIDTHS, "--prune", "asha"]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        on_ray = succeeded(invoke(*search, "--backend", "ray", "--out", tmp_path / "ray"))
    finally:
        ray.shutdown()
    assert "on 2 Ray actors" in on_ray  # one per CPU of the cluster
    succeeded(invoke(*search, "--out", tmp_path / "one"))
    assert_same_sweep(tmp_path / "one" / "tiny", tmp_path / "ray" / "tiny")


SLOW = ["--method", "random", "--trials", "4", *LR_SPACE, *WIDTHS]  # 2 stacks, 8 epochs of 38 steps


def slow_search(folder) -> tuple:
    """A config whose epochs are long enough to stop mid-search, checkpointed every epoch; its path,
    and the search's output root."""
    config = searchable(epochs=8, checkpoint_every=1)
    config["data"]["n_train"] = 400
    config["optim"]["batch_size"] = 8
    return write_yaml(folder, config), folder / "out"


@pytest.mark.parametrize("how", ["SIGTERM to the search", "Ctrl-C to its process group"])
def test_a_signal_stops_a_search_and_its_workers_and_the_rerun_continues(tmp_path, how):
    path, out = slow_search(tmp_path)
    search = [*SLOW, "--workers", "2"]
    assert "search interrupted" in stop_two_workers([path, *search, "--out", out], tmp_path, how)
    rows = trials_of(out / "tiny")
    summaries = [out / "tiny" / row["run_id"] / "summary.json" for row in rows]
    statuses = [json.loads(path.read_text())["status"] for path in summaries if path.exists()]
    assert len(statuses) >= 2 and set(statuses) == {"interrupted"}  # the stopped units' runs, and any started
    assert sorted(row["status"] for row in rows if row["status"] != "pending") == statuses  # runs.csv says so
    assert set(study_states(out / "tiny").values()) == {"RUNNING"}  # nothing told: every trial continues

    succeeded(invoke("sweep", path, *search, "--out", out))
    succeeded(invoke("sweep", path, *search, "--out", tmp_path / "reference"))
    assert_same_sweep(tmp_path / "reference" / "tiny", out / "tiny")


def test_ctrl_c_stops_a_search_on_ray_and_the_rerun_trains_its_trials_again(tmp_path):
    """Both Ray actors mid-epoch: Ctrl-C stops the actors; what they had not sent back is lost, so no
    trial is told or kept, and the same command trains them all to an uninterrupted search's results."""
    path, out = slow_search(tmp_path)
    search = [*SLOW, "--backend", "ray"]
    command = [sys.executable, "-m", "dlcli", "sweep", str(path), *search, "--out", str(out)]
    process, _ = start_stopping(command, tmp_path, stopped=2)  # the hook stops each actor after a checkpoint
    assert "search interrupted" in stop_with(process, "Ctrl-C", tmp_path)
    assert set(study_states(out / "tiny").values()) == {"RUNNING"}
    assert not [row for row in trials_of(out / "tiny") if (out / "tiny" / row["run_id"]).exists()]

    succeeded(invoke("sweep", path, *search, "--out", out))
    succeeded(invoke("sweep", path, *SLOW, "--out", tmp_path / "reference"))  # in one process
    assert_same_sweep(tmp_path / "reference" / "tiny", out / "tiny")


def test_workers_killed_mid_epoch_stop_the_search_and_their_trials_continue_when_run_again(tmp_path):
    """kill -9 of the workers (as the kernel's out-of-memory killer does): the search stops, saying so;
    no trial is told as failed, and the same command continues every one to an uninterrupted search's
    results."""
    path, out = slow_search(tmp_path)
    search = [*SLOW, "--workers", "2"]
    command = [sys.executable, "-m", "dlcli", "sweep", str(path), *search, "--out", str(out)]
    process, workers = start_stopping(command, tmp_path, stopped=2)
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    assert process.wait() == 130
    output = (tmp_path / "stopped.log").read_text()
    assert f"worker process {workers[0]} died" in output or f"worker process {workers[1]} died" in output
    assert set(study_states(out / "tiny").values()) == {"RUNNING"}

    succeeded(invoke("sweep", path, *search, "--out", out))
    succeeded(invoke("sweep", path, *SLOW, "--out", tmp_path / "reference"))
    assert_same_sweep(tmp_path / "reference" / "tiny", out / "tiny")
