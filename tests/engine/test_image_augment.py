"""Random crops and flips of images on the device: what each does to a batch, that they change training
batches only (evaluation sees the plain normalized images), that each model of a stack draws its own,
the same as alone, and that a vectorized sweep with them gives the one-by-one numbers."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import assert_same_sweep, invoke, succeeded, tiny_config, user_error, write_yaml
from dlcli.components import schedules
from dlcli.components.prepare import prepare
from dlcli.config.load import experiment_from_dict
from dlcli.config.schema import Augment
from dlcli.engine.augment import augment_stream, make_augment
from dlcli.engine.batches import input_stats, model_inputs, stack_data
from dlcli.engine.epoch import Member, measure, train_epoch
from dlcli.engine.grouping import build_models
from image_files import trust_files, write_cifar10  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread", "trust_files")


def augmented(config: Augment, batch: torch.Tensor, seed: int = 0) -> torch.Tensor:
    augment = make_augment(config, "image", augment_stream(config, batch.device, seed))
    return augment(batch.clone())


@pytest.mark.parametrize("flip", [False, True])
def test_a_crop_is_a_window_of_the_zero_padded_image_mirrored_or_not(flip):
    batch = torch.rand(64, 3, 8, 8) + 1  # no zeros of its own
    out = augmented(Augment(crop=2, flip=flip), batch)
    padded = F.pad(batch, (2, 2, 2, 2))
    mirrored = 0
    for image, source in zip(out, padded):
        windows = [source[:, i:i + 8, j:j + 8] for i in range(5) for j in range(5)]
        plain = any(torch.equal(image, window) for window in windows)
        flipped = not plain and any(torch.equal(image, window.flip(-1)) for window in windows)
        assert plain or (flip and flipped)
        mirrored += flipped
    assert 16 < mirrored < 48 if flip else mirrored == 0
    moved = sum(not torch.equal(image, source) for image, source in zip(out, batch))
    assert moved > 48  # 24 of the 25 windows move the image, and a mirror changes it


def test_a_flip_mirrors_about_half_of_the_images_left_to_right():
    batch = torch.rand(400, 1, 5, 7)
    out = augmented(Augment(flip=True), batch)
    mirrored = [torch.equal(image, source.flip(-1)) for image, source in zip(out, batch)]
    assert all(m or torch.equal(image, source) for m, image, source in zip(mirrored, out, batch))
    assert 150 < sum(mirrored) < 250


def unit(tmp_path, seeds: list[int], augment: dict) -> tuple:
    """Prepared runs on one tiny CIFAR-format set (the same data for every seed), their models, members
    and data on the device, trained in one full batch in order: a model's batch is its whole training set."""
    write_cifar10(tmp_path)
    points = []
    for seed in seeds:
        config = tiny_config(seed=seed, data={"name": "cifar10", "root": str(tmp_path), "seed": 0, "augment": augment},
                             model={"name": "mlp", "hidden": [8]},
                             optim={"name": "sgd", "lr": 0.1, "batch_size": "full", "batch_order": "sequential"},
                             train={"epochs": 1, "val_fraction": 0.2})
        points.append(prepare(experiment_from_dict(config)))
    members = []
    for point in points:
        stream = augment_stream(point.experiment.data.augment, point.device, point.experiment.seed)
        members.append(Member(point.experiment, torch.Generator().manual_seed(point.experiment.seed),
                              make_augment(point.experiment.data.augment, "image", stream), augment_stream=stream))
    return Recording(build_models(points)), members, stack_data([point.dataset for point in points], points[0].device)


class Recording:
    """The unit's models, remembering the inputs they were trained and measured on."""

    def __init__(self, models):
        self.models, self.trained_on, self.measured_on = models, [], []

    def __getattr__(self, name):
        return getattr(self.models, name)

    def data_loss(self, loss_fn, inputs, targets):
        self.trained_on.append(inputs.detach().clone())
        return self.models.data_loss(loss_fn, inputs, targets)

    def outputs(self, x):
        self.measured_on.append(x.clone())
        return self.models.outputs(x)


def one_epoch(models: Recording, members: list[Member], data: dict) -> None:
    lead = members[0].experiment
    train_epoch(models, data, members, schedules.plan(lead.optim, 1, data["x_train"].shape[1]), 1)
    measure(models, data, lead.loss, None)


def test_crops_and_flips_change_training_batches_only_and_each_model_draws_its_own(tmp_path):
    models, members, data = unit(tmp_path, [0, 1], {"crop": 4, "flip": True})
    one_epoch(models, members, data)
    plain = {split: model_inputs(data[f"x_{split}"], input_stats(data)) for split in ("train", "test", "val")}
    (batch,) = models.trained_on  # [2 models, 80 images, 3, 32, 32]
    assert batch.shape == plain["train"].shape and batch.dtype == torch.float32
    for m in range(2):
        changed = [not torch.equal(batch[m, i], plain["train"][m, i]) for i in range(80)]
        assert sum(changed) > 60, m  # (1 − 1/81 · 1/2) of the images move or mirror
    assert not torch.equal(batch[0], batch[1])  # the same images, each model its own draws
    measured = torch.cat(models.measured_on, dim=1)  # train, test, val, as stored: nothing augmented
    assert torch.equal(measured, torch.cat([plain["train"], plain["test"], plain["val"]], dim=1))


def test_a_model_draws_the_same_crops_and_flips_in_a_stack_as_alone(tmp_path):
    stacked, members, data = unit(tmp_path, [3, 7], {"crop": 2, "flip": True})
    one_epoch(stacked, members, data)
    alone, members, data = unit(tmp_path, [7], {"crop": 2, "flip": True})
    one_epoch(alone, members, data)
    assert torch.equal(stacked.trained_on[0][1], alone.trained_on[0][0])


def test_without_augmentation_the_training_batch_is_the_normalized_images(tmp_path):
    models, members, data = unit(tmp_path, [0], {})
    one_epoch(models, members, data)
    assert torch.equal(models.trained_on[0], model_inputs(data["x_train"], input_stats(data)))


def test_a_vectorized_sweep_with_crops_and_flips_gives_the_one_by_one_numbers(tmp_path):
    """Points that differ in seed and in augmentation share one stack (augmentation is per model)."""
    write_cifar10(tmp_path / "sets")
    config = tiny_config(data={"name": "cifar10", "root": str(tmp_path / "sets"), "augment": {"flip": True}},
                         model={"name": "mlp", "hidden": [8]}, optim={"name": "sgd", "lr": 0.05, "batch_size": 20},
                         train={"epochs": 2})
    path = write_yaml(tmp_path, config)
    grid = ["--seeds", "2", "--grid", "data.augment.crop=0,4"]
    stacked = succeeded(invoke("sweep", path, "--out", tmp_path / "stacked", *grid))
    succeeded(invoke("sweep", path, "--out", tmp_path / "alone", *grid, "--no-vectorize"))
    assert "vectorized: 4 points train as 1 stacked model" in stacked
    assert_same_sweep(tmp_path / "alone" / "tiny", tmp_path / "stacked" / "tiny")


@pytest.mark.parametrize(("name", "augment", "expected"), [
    ("gaussians", {"crop": 2}, "data.augment.crop: applies to images; gaussians holds tabular data"),
    ("gaussians", {"flip": True}, "data.augment.flip: applies to images; gaussians holds tabular data"),
    ("cifar10", {"crop": 40}, "data.augment.crop: 40 pixels of padding is more than the side of the images"),
])
def test_crops_and_flips_of_what_is_not_an_image_are_refused(tmp_path, name, augment, expected):
    write_cifar10(tmp_path / "sets")
    data = tiny_config()["data"] if name == "gaussians" else {"name": name, "root": str(tmp_path / "sets")}
    config = write_yaml(tmp_path, tiny_config(data={**data, "augment": augment}))
    lines = user_error(invoke("train", config, "--out", tmp_path / "out"), tmp_path / "out")
    assert any(expected in line for line in lines), lines
