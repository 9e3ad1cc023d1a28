"""Searches with worker processes (`--workers`) or Ray actors (`--backend ray`): the same trials, rungs,
numbers and files as in one process; Ctrl-C or SIGTERM stops every worker with the runs in flight
interrupted, and the rerun continues to the results of an uninterrupted search."""
from __future__ import annotations

import contextlib
import json
import os
import select
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


@pytest.mark.parametrize("threads", [1, 2], ids=["forked workers", "spawned workers"])
def test_a_search_on_two_workers_equals_one_in_process(tmp_path, threads):
    """Workers of one torch thread are forked (on Linux, CUDA unused here), of more spawned."""
    import torch

    from dlcli.sweep.unit_workers import start_method

    forkable = sys.platform.startswith("linux") and not torch.cuda.is_initialized()
    assert start_method(threads) == ("fork" if threads == 1 and forkable else "spawn")
    config = write_yaml(tmp_path, searchable(epochs=4, threads=threads))
    search = ["sweep", config, "--method", "random", "--trials", "9", *LR_SPACE, *WIDTHS, "--prune", "asha"]
    spread = succeeded(invoke(*search, "--workers", "2", "--out", tmp_path / "workers"))
    assert "on 2 worker processes" in spread
    succeeded(invoke(*search, "--out", tmp_path / "one"))
    rows = trials_of(tmp_path / "workers" / "tiny")
    assert {row["status"] for row in rows} == {"completed", "pruned"}  # rungs decided across the workers
    assert_same_sweep(tmp_path / "one" / "tiny", tmp_path / "workers" / "tiny")


# Sampler seed 2 leaves the three trials that pass the first rung in one worker: they are regrouped.
REGROUPED = ["--method", "random", "--trials", "9", *LR_SPACE, *WIDTHS, "--prune", "asha", "--seed", "2"]


def test_survivors_left_in_one_worker_move_to_new_units_and_train_to_the_same_numbers(tmp_path):
    config = write_yaml(tmp_path, searchable(epochs=4))
    spread = succeeded(invoke("sweep", config, *REGROUPED, "--workers", "2", "--out", tmp_path / "workers"))
    assert "after epoch 1: 3 runs regrouped into 3 units, spread evenly over the 2 worker processes" in spread
    succeeded(invoke("sweep", config, *REGROUPED, "--out", tmp_path / "one"))
    assert_same_sweep(tmp_path / "one" / "tiny", tmp_path / "workers" / "tiny")
    moved = [row for row in trials_of(tmp_path / "workers" / "tiny") if int(row["epochs_run"]) > 1]
    for row in moved:  # the worker that continued each one, as for a resumed run
        environment = json.loads((tmp_path / "workers" / "tiny" / row["run_id"] / "environment.json").read_text())
        assert len(environment["resumed"]) == 1


def test_an_interrupt_as_survivors_move_leaves_them_to_continue_from_the_rung(tmp_path, monkeypatch):
    """Ctrl-C after the units handed their survivors over, before new units took them: the search stops,
    the moved runs end as interrupted with their checkpoints of the rung, their trials untold, and the same command
    continues them to an uninterrupted search's results."""
    from dlcli.components.checkpoints import checkpoint_epoch
    from dlcli.sweep.unit_workers import Rebalance

    def interrupted(self, units):
        raise KeyboardInterrupt

    config, out = write_yaml(tmp_path, searchable(epochs=4)), tmp_path / "out"
    monkeypatch.setattr(Rebalance, "start", interrupted)
    stopped = invoke("sweep", config, *REGROUPED, "--workers", "2", "--out", out)
    assert stopped.exit_code == 130 and "search interrupted" in stopped.output
    states = study_states(out / "tiny")
    moved = [row for row in trials_of(out / "tiny") if states[int(row["trial"])] == "RUNNING"]
    assert len(moved) == 3 and {checkpoint_epoch(out / "tiny" / row["run_id"]) for row in moved} == {1}
    assert {(row["status"], row["epochs_run"]) for row in moved} == {("interrupted", "1")}

    monkeypatch.undo()
    succeeded(invoke("sweep", config, *REGROUPED, "--workers", "2", "--out", out))
    succeeded(invoke("sweep", config, *REGROUPED, "--out", tmp_path / "reference"))
    assert_same_sweep(tmp_path / "reference" / "tiny", out / "tiny")


def test_rebalance_moves_survivors_only_when_that_evens_out_the_workers(tmp_path):
    from types import SimpleNamespace

    from dlcli.components.prepare import prepare
    from dlcli.config.load import experiment_from_dict
    from dlcli.sweep.unit_workers import Rebalance, spread

    notes = []
    points = {tmp_path / f"run{k}": prepare(experiment_from_dict({**searchable(epochs=4), "seed": k}))
              for k in range(4)}
    pool = SimpleNamespace(workers=2, kind="worker processes", on_note=notes.append)
    rebalance = Rebalance(pool, points, vectorize=True, force=False, tags=None)
    first, second = SimpleNamespace(worker=0), SimpleNamespace(worker=1)
    runs = list(points)

    units = rebalance.plan(1, [(first, runs[:2]), (first, runs[2:]), (second, [])])  # all four on the first
    assert sorted(run for unit in units for run in unit) == runs
    assert sorted(map(len, units)) == [2, 2] and sorted(spread([1.0] * len(units), 2)) == [0, 1]
    assert notes == ["after epoch 1: 4 runs regrouped into 2 units, spread evenly over the 2 worker processes"]
    assert rebalance.plan(1, [(first, runs[:2]), (second, runs[2:])]) is None  # even already
    assert rebalance.plan(1, [(first, runs[:2]), (second, runs[2:3])]) is None  # 2 to 1: as even as 3 can be
    assert sorted(map(len, rebalance.plan(1, [(first, runs[:3]), (second, runs[3:])]))) == [2, 2]  # 3 to 1
    assert rebalance.plan(4, [(first, runs), (second, [])]) is None  # the last epoch: nothing left to train


def test_a_search_on_ray_actors_equals_one_in_process(tmp_path):
    """Each stack in a Ray actor of a local Ray instance: the files come back, the same as a search's
    in one process; runs regrouped at a rung take their folders to the actor that continues them."""
    import ray

    config = write_yaml(tmp_path, searchable(epochs=4))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        on_ray = succeeded(invoke("sweep", config, *REGROUPED, "--backend", "ray", "--out", tmp_path / "ray"))
    finally:
        ray.shutdown()
    assert "4 units on 2 Ray actors" in on_ray  # one per CPU of the cluster
    assert "3 runs regrouped into 3 units, spread evenly over the 2 Ray actors" in on_ray
    succeeded(invoke("sweep", config, *REGROUPED, "--out", tmp_path / "one"))
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


def test_a_search_killed_with_kill_9_takes_its_workers_with_it_and_the_rerun_continues(tmp_path):
    """kill -9 of the search's process alone: its workers (forked, holding a copy of the folder's lock)
    end with it, so the same command runs at once and continues to an uninterrupted search's results."""
    path, out = slow_search(tmp_path)
    search = [*SLOW, "--workers", "2"]
    command = [sys.executable, "-m", "dlcli", "sweep", str(path), *search, "--out", str(out)]
    process, workers = start_stopping(command, tmp_path, stopped=2)
    try:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        for pid in workers:
            assert ended(pid), f"worker process {pid} outlived the search killed with kill -9"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    succeeded(invoke("sweep", path, *search, "--out", out))
    succeeded(invoke("sweep", path, *SLOW, "--out", tmp_path / "reference"))
    assert_same_sweep(tmp_path / "reference" / "tiny", out / "tiny")


def ended(pid: int) -> bool:
    """Whether process `pid` ends: an event (its pidfd becomes readable), waited for generously."""
    try:
        descriptor = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([descriptor], [], [], 600)[0])
    finally:
        os.close(descriptor)
