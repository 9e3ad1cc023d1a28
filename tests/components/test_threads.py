"""train.threads: `auto` shares the CPUs but one between the workers, an explicit count wins, bad values are
one-line errors, and a run really trains with the count chosen (then gives the caller's count back)."""
from __future__ import annotations

import json
import os

import pytest
import torch

from conftest import CONFIGS, invoke, metrics_without_seconds, succeeded, tiny_config, user_error, write_yaml
from dlcli.components.threads import choose_threads, threads_for, use_threads
from dlcli.config.flat import config_hash
from dlcli.config.load import experiment_from_dict, load_experiment
from dlcli.engine.loop import resume, train
from dlcli.layout import Status


@pytest.fixture(autouse=True)
def torch_threads_restored():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def machine(monkeypatch):
    """A machine of `cpus` CPUs (`allowed` of them ours) with a 1-minute load average of `load`."""

    def make(cpus: int, load: float = 0.0, allowed: int | None = None) -> None:
        monkeypatch.setattr(os, "cpu_count", lambda: cpus)
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(allowed or cpus)), raising=False)
        monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load), raising=False)

    return make


@pytest.mark.parametrize("workers, expected", [(1, 7), (2, 3), (3, 2), (7, 1), (16, 1)])
def test_auto_shares_the_affinity_set_but_one_cpu_between_the_workers(machine, workers, expected):
    machine(cpus=16, allowed=8)
    assert choose_threads("auto", workers) == expected


def test_auto_without_an_affinity_set_counts_the_cpus(machine, monkeypatch):
    machine(cpus=6)
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert choose_threads("auto") == 5
    assert choose_threads("auto", workers=4) == 1


@pytest.mark.parametrize("load", [0.0, 1.0, 7.5])
def test_auto_is_the_same_whatever_the_load(machine, load):
    """The count decides a CNN's last bits: it must not change from one run to the next."""
    machine(cpus=2, load=load)
    assert choose_threads("auto") == 1
    machine(cpus=8, load=load)
    assert choose_threads("auto", workers=2) == 3


def test_an_explicit_count_wins(machine):
    machine(cpus=2, load=3.0)
    assert choose_threads(3) == 3
    assert choose_threads(5, workers=4) == 5


@pytest.mark.parametrize("requested", [0, -1, "two", True, 1.5, None])
def test_a_bad_count_is_refused(requested):
    with pytest.raises(ValueError):
        choose_threads(requested)


def test_use_threads_sets_torch_and_returns_the_count_before():
    torch.set_num_threads(2)
    assert use_threads(1) == 2
    assert torch.get_num_threads() == 1


def test_threads_for_gives_the_count_before_back():
    torch.set_num_threads(2)
    with threads_for(1) as threads:
        assert threads == torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_train_threads_does_not_change_the_run_id():
    hashes = {config_hash(experiment_from_dict(tiny_config(train={"epochs": 1, "threads": threads})))
              for threads in ("auto", 1, 2)}
    assert len(hashes) == 1


@pytest.mark.parametrize("value", [0, -2, "many", True, 1.5, [2]])
def test_a_bad_train_threads_is_one_line_naming_the_key(tmp_path, value):
    out = tmp_path / "out"
    config = tiny_config(train={"epochs": 1, "threads": value})
    lines = user_error(invoke("train", write_yaml(tmp_path, config), "--out", out), out)
    assert len(lines) == 1 and "train.threads" in lines[0] and "auto" in lines[0], lines


def threads_seen(experiment, out) -> set[int]:
    """torch's thread counts while `train` runs `experiment` (read from each epoch's callback)."""
    seen = set()
    train(experiment, out, on_epoch=lambda row: seen.add(torch.get_num_threads()))
    return seen


@pytest.mark.parametrize("threads", [1, 2])
def test_train_runs_with_the_count_asked_for_and_gives_the_callers_back(tmp_path, threads):
    torch.set_num_threads(3)
    assert threads_seen(experiment_from_dict(tiny_config(train={"epochs": 2, "threads": threads})),
                        tmp_path) == {threads}
    assert torch.get_num_threads() == 3


@pytest.mark.parametrize("cpus, expected", [(2, 1), (4, 3)])
def test_train_auto_runs_with_the_count_chosen(tmp_path, machine, cpus, expected):
    machine(cpus=cpus)
    assert threads_seen(experiment_from_dict(tiny_config(train={"epochs": 2})), tmp_path) == {expected}


def test_dlcli_train_records_its_thread_count(tmp_path):
    config = write_yaml(tmp_path, tiny_config(train={"epochs": 1}))
    succeeded(invoke("train", config, "--out", tmp_path / "out", "--set", "train.threads=2"))
    environment = json.loads(next((tmp_path / "out").rglob("environment.json")).read_text())
    assert environment["torch_threads"] == 2


def test_resume_runs_with_the_runs_count(tmp_path):
    def stop_at_epoch_2(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    experiment = experiment_from_dict(tiny_config(train={"epochs": 4, "threads": 1, "checkpoint_every": 1}))
    stopped = train(experiment, tmp_path, on_epoch=stop_at_epoch_2)
    assert stopped.status == Status.INTERRUPTED
    torch.set_num_threads(2)
    seen = set()
    result = resume(stopped.run_dir, on_epoch=lambda row: seen.add(torch.get_num_threads()))
    assert result.status == Status.COMPLETED and seen == {1}
    assert torch.get_num_threads() == 2


def test_the_quickstart_computes_the_same_with_1_and_2_threads(tmp_path):
    runs = [train(load_experiment(CONFIGS / "quickstart.yaml", [f"train.threads={threads}", "train.epochs=2",
                                                                 "device=cpu"]), tmp_path / str(threads))
            for threads in (1, 2)]
    assert metrics_without_seconds(runs[0].run_dir) == metrics_without_seconds(runs[1].run_dir)
    assert len({run.run_dir.name.rsplit("-", 1)[1] for run in runs}) == 1  # the same run id


def test_a_model_alone_computes_the_same_with_1_and_2_threads(tmp_path):
    """A single model's products are what each model's are in a stack, whatever the thread count: with
    several threads, the BLAS splits a lone small product (here: batches of 10) across them
    and sums in another order, unless it runs on one thread, as each model of a stack does."""
    settings = ["train.epochs=2", "device=cpu", "optim.batch_size=10"]
    runs = [train(load_experiment(CONFIGS / "quickstart.yaml", [f"train.threads={threads}", *settings]),
                  tmp_path / str(threads)) for threads in (1, 2)]
    assert metrics_without_seconds(runs[0].run_dir) == metrics_without_seconds(runs[1].run_dir)

