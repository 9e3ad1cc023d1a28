"""Image data sets read through torchvision's own classes from tiny files in the real formats: shapes,
labels, class names, uint8 storage with per-channel standardization on the device, label noise and
random labels, image folders, and the one-line errors (a missing set, a set too large for memory)."""
from __future__ import annotations

import json
import re
import struct

import numpy as np
import pytest
import torch

from conftest import invoke, succeeded, tiny_config, user_error, write_yaml
from dlcli.analysis.lr_find import lr_range_test
from dlcli.components import memory
from dlcli.components.data import load_dataset
from dlcli.components.memory import model_memory_problem
from dlcli.config.load import experiment_from_dict
from dlcli.config.schema import DataConfig
from dlcli.engine.batches import device_stats, model_inputs
from dlcli.engine.loop import train
from dlcli.errors import UserError
from image_files import (CIFAR10_NAMES, trust_files, write_cifar10, write_image_set, write_mnist,  # noqa: F401
                         write_png_folder, write_svhn)

pytestmark = pytest.mark.usefixtures("one_thread", "trust_files")

SETS = {  # data.name: (image shape, the first class names torchvision gives)
    "cifar10": ((3, 32, 32), tuple(CIFAR10_NAMES[:2])),
    "cifar100": ((3, 32, 32), ("class0", "class1")),
    "mnist": ((1, 28, 28), ("0 - zero", "1 - one")),
    "fashion_mnist": ((1, 28, 28), ("T-shirt/top", "Trouser")),
    "kmnist": ((1, 28, 28), ("o", "ki")),
    "svhn": ((3, 32, 32), ("0", "1")),
}


def image_config(root, name: str = "cifar10", **data) -> dict:
    """A tiny mlp on an image set under `root`, as a config mapping."""
    return tiny_config(data={"name": name, "root": str(root), **data}, model={"name": "mlp", "hidden": [16]},
                       optim={"name": "adam", "lr": 0.003, "batch_size": 25})


@pytest.mark.parametrize("name", list(SETS))
def test_each_format_loads_through_torchvision_as_uint8_channels_first(tmp_path, name):
    shape, first_names = SETS[name]
    written = write_image_set(tmp_path, name)
    dataset = load_dataset(DataConfig(name=name, root=str(tmp_path), standardize=False), seed=0)
    assert dataset.x_train.dtype == dataset.x_test.dtype == np.uint8
    assert dataset.input_shape == shape and dataset.kind == "image"
    for key in ("x_train", "y_train", "x_test", "y_test"):  # the official test split, pixels in place
        assert np.array_equal(getattr(dataset, key), written[key]), key
    assert dataset.class_names[:2] == first_names
    assert dataset.num_classes == len(dataset.class_names) == (100 if name == "cifar100" else 10)
    mean, std = dataset.normalize  # without standardize: pixels to [0, 1]
    assert mean.shape == std.shape == (1, shape[0], 1, 1)
    inputs = model_inputs(torch.as_tensor(dataset.x_train), device_stats(dataset, torch.device("cpu")))
    assert inputs.dtype == torch.float32 and 0 <= inputs.min() and inputs.max() <= 1
    assert torch.allclose(inputs * 255, torch.as_tensor(written["x_train"]).float(), atol=1e-4)


def test_standardized_images_stay_uint8_and_normalize_to_zero_mean_unit_std_per_channel(tmp_path):
    write_cifar10(tmp_path)
    dataset = load_dataset(DataConfig(name="cifar10", root=str(tmp_path), n_train=60), seed=0)
    assert dataset.x_train.dtype == np.uint8 and len(dataset.x_train) == 60
    batch = model_inputs(torch.as_tensor(dataset.x_train), device_stats(dataset, torch.device("cpu")))
    per_channel = batch.transpose(0, 1).reshape(3, -1)
    assert torch.allclose(per_channel.mean(1), torch.zeros(3), atol=1e-4)
    assert torch.allclose(per_channel.std(1, correction=0), torch.ones(3), atol=1e-4)
    test = model_inputs(torch.as_tensor(dataset.x_test), device_stats(dataset, torch.device("cpu")))
    assert not torch.allclose(test.transpose(0, 1).reshape(3, -1).mean(1), torch.zeros(3), atol=1e-4)  # train stats


def test_a_missing_set_is_one_line_naming_the_folder_and_the_download_flag(tmp_path):
    empty = tmp_path / "empty"
    result = invoke("train", write_yaml(tmp_path, image_config(empty, "cifar100")), "--out", tmp_path / "out")
    (line,) = user_error(result, tmp_path / "out")
    assert str(empty) in line and "data.download: true" in line


@pytest.mark.parametrize("name", ["cifar10", "mnist"])
def test_a_failed_download_is_one_line_and_leaves_no_folder_behind(tmp_path, monkeypatch, name):
    import importlib

    def offline(*args, **kwargs):
        raise OSError("no route to host")

    module = importlib.import_module(f"torchvision.datasets.{'cifar' if name == 'cifar10' else name}")
    monkeypatch.setattr(module, "download_and_extract_archive", offline)
    (tmp_path / "sets" / "mine").mkdir(parents=True)  # the user's own folder stays
    with pytest.raises(UserError, match=rf"data.download: could not download {name} into .*no route to host"):
        load_dataset(DataConfig(name=name, root=str(tmp_path / "sets"), download=True), seed=0)
    assert [path.name for path in (tmp_path / "sets").rglob("*")] == ["mine"]


def test_a_relative_root_starts_at_the_config_files_folder(tmp_path):
    write_mnist(tmp_path / "sets")
    config = write_yaml(tmp_path, image_config("sets", "mnist", n_train=20, n_test=10))
    out = tmp_path / "out"
    succeeded(invoke("train", config, "--out", out))
    (run,) = (out / "tiny").iterdir()
    assert f"root: {tmp_path / 'sets'}" in (run / "config.yaml").read_text()


def test_without_a_root_the_sets_are_read_from_the_per_user_cache(tmp_path, monkeypatch):
    written = write_svhn(tmp_path / "dlcli" / "data")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert np.array_equal(load_dataset(DataConfig(name="svhn"), seed=0).y_test, written["y_test"])
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(UserError, match=f"svhn not found .*in {tmp_path / 'home' / '.cache' / 'dlcli' / 'data'} "):
        load_dataset(DataConfig(name="svhn"), seed=0)


def test_label_noise_flips_exactly_that_fraction_of_image_labels(tmp_path):
    written = write_cifar10(tmp_path)
    noisy = load_dataset(DataConfig(name="cifar10", root=str(tmp_path), label_noise=0.2), seed=0)
    assert np.count_nonzero(noisy.y_train != written["y_train"]) == 20
    assert np.array_equal(noisy.y_test, written["y_test"])  # the test labels stay true


def test_random_labels_put_the_test_error_of_a_model_that_fits_them_at_chance(tmp_path):
    write_cifar10(tmp_path, n_per_batch=20, n_test=300)
    results = {}
    for random in (False, True):
        config = image_config(tmp_path, random_labels=random, n_test=300)
        config["optim"] = {"name": "adam", "lr": 0.003, "batch_size": "full"}
        config["model"] = {"name": "mlp", "hidden": [64]}
        config["train"] = {"epochs": 60}
        results[random] = train(experiment_from_dict(config), tmp_path / "out").summary
    assert results[False]["test_error"] < 0.3  # the true labels are learnable ...
    assert results[True]["train_error"] < 0.1  # ... and random ones are memorized,
    assert results[True]["test_error"] > 0.75  # which says nothing of the test set: chance is 0.9


def test_random_labels_are_uniform_and_exclude_label_noise(tmp_path):
    write_cifar10(tmp_path, n_per_batch=200, n_test=10)
    dataset = load_dataset(DataConfig(name="cifar10", root=str(tmp_path), random_labels=True), seed=0)
    counts = np.bincount(dataset.y_train, minlength=10)
    assert counts.min() > 60 and counts.max() < 140  # about 100 each of 1000
    kept = np.count_nonzero(dataset.y_train == load_dataset(DataConfig(name="cifar10", root=str(tmp_path)), 0).y_train)
    assert 50 < kept < 160  # about 1/10 keep their true class, unlike label_noise: 1.0
    result = invoke("train", write_yaml(tmp_path, image_config(tmp_path, random_labels=True, label_noise=0.5)),
                    "--out", tmp_path / "out")
    assert "data.label_noise" in user_error(result, tmp_path / "out")[0]


def test_an_image_folder_with_train_and_test_folders_reads_every_png_resized(tmp_path):
    write_png_folder(tmp_path / "train", ("cat", "dog", "fox"), per_class=4)
    write_png_folder(tmp_path / "test", ("cat", "dog", "fox"), per_class=2, seed=5)
    dataset = load_dataset(DataConfig(name="image_folder", root=str(tmp_path), image_size=8, standardize=False), 0)
    assert dataset.x_train.shape == (12, 3, 8, 8) and dataset.x_test.shape == (6, 3, 8, 8)
    assert dataset.x_train.dtype == np.uint8 and dataset.class_names == ("cat", "dog", "fox")
    assert dataset.y_train.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    brightness = dataset.x_train.reshape(12, -1).mean(1)  # later classes were written brighter
    assert brightness[:4].max() < brightness[4:8].min() and brightness[4:8].max() < brightness[8:].min()


def test_one_image_folder_is_split_by_class_with_the_data_seed(tmp_path):
    write_png_folder(tmp_path / "pictures", ("a", "b"), per_class=10)
    config = lambda seed: DataConfig(name="image_folder", root=str(tmp_path / "pictures"), image_size=6,  # noqa: E731
                                     params={"test_fraction": 0.2, "grayscale": True}, seed=seed)
    first, again, other = (load_dataset(config(seed), 0) for seed in (0, 0, 1))
    assert first.x_train.shape == (16, 1, 6, 6) and first.x_test.shape == (4, 1, 6, 6)
    assert sorted(first.y_test.tolist()) == [0, 0, 1, 1]  # stratified
    assert np.array_equal(first.x_test, again.x_test) and not np.array_equal(first.x_test, other.x_test)


def test_a_train_folder_without_a_test_folder_is_refused_not_read_as_a_class(tmp_path):
    write_png_folder(tmp_path / "train", ("a", "b"), per_class=2)
    write_png_folder(tmp_path / "val", ("a", "b"), per_class=2)
    with pytest.raises(UserError, match=r"data.root: .* has train/ but no test/ \(it has val/\); allowed: train/ "
                                        r"and test/ folders"):
        load_dataset(DataConfig(name="image_folder", root=str(tmp_path)), 0)


def test_image_folder_problems_are_one_line_each(tmp_path):
    write_png_folder(tmp_path / "train", ("a", "b"), per_class=2)
    write_png_folder(tmp_path / "test", ("a", "c"), per_class=2)
    with pytest.raises(UserError, match=r"data.root: .*test has the classes a, c but .*train has a, b"):
        load_dataset(DataConfig(name="image_folder", root=str(tmp_path)), 0)
    with pytest.raises(UserError, match="data.root: image_folder reads your images from a folder"):
        load_dataset(DataConfig(name="image_folder"), 0)
    (tmp_path / "train" / "a" / "broken.png").write_text("not an image")
    with pytest.raises(UserError, match=r"cannot read .*broken.png as an image"):
        load_dataset(DataConfig(name="image_folder", root=str(tmp_path)), 0)


def corrupt_label(raw, value: int) -> None:
    labels = raw / "train-labels-idx1-ubyte"
    payload = bytearray(labels.read_bytes())
    payload[8 + 3] = value  # the fourth label, after the 8-byte header
    labels.write_bytes(bytes(payload))


def set_magic(raw, magic: int) -> None:
    images = raw / "train-images-idx3-ubyte"
    images.write_bytes(struct.pack(">I", magic) + images.read_bytes()[4:])


@pytest.mark.parametrize("corruption, expected", [
    (lambda raw: corrupt_label(raw, 12), r"mnist gives train label 12 \(sample 3, 1 such labels\); allowed: 0 to 9"),
    (lambda raw: set_magic(raw, 0x1234), r"cannot read mnist from .*ubyte: a file is not in the format torchvision"),
    (lambda raw: set_magic(raw, 0x0903), r"cannot read mnist from .*ubyte: .*dtype torch.uint8"),  # int8 pixels
], ids=["a label beyond the classes", "an unknown idx magic number", "signed pixels"])
def test_corrupt_idx_files_are_one_line_naming_the_root_and_nothing_is_written(tmp_path, corruption, expected):
    write_mnist(tmp_path / "sets")
    corruption(tmp_path / "sets" / "MNIST" / "raw")
    config = write_yaml(tmp_path, image_config(tmp_path / "sets", "mnist"))
    (line,) = user_error(invoke("train", config, "--out", tmp_path / "out"), tmp_path / "out")
    assert "data.root: " in line and str(tmp_path / "sets") in line and re.search(expected, line), line


def test_a_set_too_large_for_the_memory_is_refused_before_it_is_read(tmp_path, monkeypatch):
    write_cifar10(tmp_path)
    monkeypatch.setattr(memory, "available_bytes", lambda device: 10_000_000)  # 10 MB free: CIFAR needs 368 MB
    with pytest.raises(UserError, match="reading cifar10 needs about 351.6 MiB.*streaming from disk is not"):
        load_dataset(DataConfig(name="cifar10", root=str(tmp_path)), 0)
    assert len(load_dataset(DataConfig(name="cifar10", root=str(tmp_path)), 0, force=True).x_train) == 100


def test_images_that_fit_the_device_as_uint8_but_not_as_float32_pass_the_memory_check(monkeypatch):
    experiment = experiment_from_dict(tiny_config(optim={"name": "sgd", "lr": 0.1, "batch_size": 100}))
    shape, sizes = (3, 32, 32), [50_000, 10_000]  # CIFAR-10's
    image_bytes = sum(sizes) * 3072
    monkeypatch.setattr(memory, "available_bytes", lambda device: 2 * image_bytes)  # 1/2 of it as float32
    cpu = torch.device("cpu")
    assert "needs about" in model_memory_problem(experiment, shape, 10, sizes, cpu)
    assert model_memory_problem(experiment, shape, 10, sizes, cpu, input_bytes=1) is None


def test_train_and_evaluate_a_cifar_format_set_end_to_end(tmp_path):
    write_cifar10(tmp_path / "sets")
    config = image_config(tmp_path / "sets", augment={"crop": 4, "flip": True})
    config["train"] = {"epochs": 2, "val_fraction": 0.2}
    out = tmp_path / "out"
    succeeded(invoke("train", write_yaml(tmp_path, config), "--out", out))
    (run,) = (out / "tiny").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["n_train"] == 80
    succeeded(invoke("evaluate", run))
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["samples"] == 30 and evaluation["classes"] == CIFAR10_NAMES
    assert evaluation["error"] == pytest.approx(summary["test_error"], abs=1e-6)


def test_the_lr_range_test_reads_uint8_images(tmp_path):
    write_mnist(tmp_path)
    result = lr_range_test(experiment_from_dict(image_config(tmp_path, "mnist")), 1e-4, 1.0, steps=12)
    assert len(result.rows) >= 10 and all(np.isfinite(row["loss"]) for row in result.rows)
