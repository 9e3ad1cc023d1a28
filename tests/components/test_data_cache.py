"""Generated data sets made once and read back from the user's cache folder in later processes."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import tiny_config
from dlcli.components import datasets
from dlcli.components.data import load_dataset
from dlcli.config.load import experiment_from_dict

PARAMS = {"num_samples": 400, "train_split": 0.75, "seed": 7}


def load_mnist1d():
    datasets._mnist1d_arrays.cache_clear()  # as a new process would find it
    config = experiment_from_dict(tiny_config(data={"name": "mnist1d", "params": PARAMS})).data
    return load_dataset(config, seed=0)


def cached_files(cache) -> list:
    return sorted((cache / "dlcli" / "data" / "generated").glob("mnist1d-*.npz"))


def forbid_generating(monkeypatch):
    def generate(args):
        raise AssertionError("MNIST-1D generated again")
    monkeypatch.setattr("mnist1d.data.make_dataset", generate)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    yield tmp_path / "cache"
    datasets._mnist1d_arrays.cache_clear()


def assert_same_data(a, b) -> None:
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_mnist1d_is_generated_once_and_read_back_the_same(cache, monkeypatch):
    made = load_mnist1d()
    assert len(cached_files(cache)) == 1 and len(made.x_train) == 300 and len(made.x_test) == 100
    forbid_generating(monkeypatch)
    assert_same_data(made, load_mnist1d())


def test_other_parameters_are_another_file(cache, monkeypatch):
    load_mnist1d()
    monkeypatch.setitem(PARAMS, "seed", 8)
    other = load_mnist1d()
    assert len(cached_files(cache)) == 2 and len(other.x_train) == 300


def test_an_unreadable_cache_file_is_made_again(cache, monkeypatch):
    made = load_mnist1d()
    (path,) = cached_files(cache)
    path.write_bytes(path.read_bytes()[:100])  # cut short, as by a full disk
    assert_same_data(made, load_mnist1d())
    forbid_generating(monkeypatch)
    assert_same_data(made, load_mnist1d())  # the file was written again, whole


def test_a_cache_folder_that_cannot_be_written_leaves_the_data_to_the_process(tmp_path, monkeypatch):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    try:
        assert len(load_mnist1d().x_train) == 300
    finally:
        datasets._mnist1d_arrays.cache_clear()
