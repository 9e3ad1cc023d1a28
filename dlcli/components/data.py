"""A run's data: the registry's data set, resampled, cut to size, with label noise, sorted,
standardized, and a validation set held out, as the config says.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from dlcli.components.dataset import channel_stats
from dlcli.components.datasets import DATASETS, DEFAULT_GENERATED, MNIST1D_LENGTH, Dataset
from dlcli.components.image_datasets import IMAGE_DATASETS, data_root, stored_bytes
from dlcli.components.memory import data_memory_problem, stored_data_problem
from dlcli.components.validation import dataset_problems, raise_problems, standardized_problem
from dlcli.config.schema import DataConfig
from dlcli.errors import UserError


def load_dataset(config: DataConfig, seed: int, force: bool = False) -> Dataset:
    """Build the configured data set: load or generate, resample, cut to size, add label noise, sort,
    standardize. `data.seed`, when set, replaces the experiment's seed for all of it. `force`: generate
    it even when it looks too large for the free memory."""
    data_seed = seed if config.seed is None else config.seed
    rng = np.random.default_rng(data_seed)
    dataset = _checked(config, rng, force)
    if config.resample.method != "none":
        dataset = _resample(dataset, config, data_seed)
        rng = np.random.default_rng([data_seed, 4, config.resample.index])  # fresh label noise per draw
    dataset = _cut(dataset, config)
    if config.label_noise > 0 and dataset.task == "classification":  # on regression data prepare says why not
        dataset = replace(dataset, y_train=flip_labels(dataset.y_train, dataset.num_classes, config.label_noise, rng))
    if config.random_labels and dataset.task == "classification":
        dataset = replace(dataset, y_train=rng.integers(0, dataset.num_classes, size=len(dataset.y_train)))
    if config.sort_by_label:
        order = np.argsort(dataset.y_train, kind="stable")
        dataset = replace(dataset, x_train=dataset.x_train[order], y_train=dataset.y_train[order])
    if config.standardize:
        dataset = standardize(dataset, *feature_stats(dataset.x_train))
        raise_problems([standardized_problem(dataset, config.name)])
    return dataset


def _checked(config: DataConfig, rng: np.random.Generator, force: bool = False) -> Dataset:
    """The registry's data set, its size checked against the memory before it is generated, and its
    shapes, sizes and values after (files are checked as they are read, in `datasets`)."""
    numbers, stored = _generated_numbers(config), stored_bytes(config)
    if numbers is not None:
        raise_problems([None if force else data_memory_problem(config.name, numbers)])
    if stored is not None:
        raise_problems([None if force else stored_data_problem(config.name, stored)])
    with np.errstate(over="ignore", invalid="ignore"):  # values beyond float32 are reported just below
        dataset = DATASETS[config.name](config, rng)
    where = data_key(config)
    raise_problems(dataset_problems(dataset, config.name, where))
    return dataset


def data_key(config: DataConfig) -> str:
    """The key (and path) a data set's problems are reported under: the file or folder it was read from."""
    if "path" in config.params:
        return f"data.params.path: {config.params['path']}"
    if config.name in IMAGE_DATASETS:
        return f"data.root: {data_root(config)}"
    return "data.params"


def _generated_numbers(config: DataConfig) -> int | None:
    """How many numbers generating this data set draws (None: it is read, not generated), so that its
    size is checked against the memory before any is drawn."""
    p = config.params
    samples = (config.n_train or DEFAULT_GENERATED) + (config.n_test or DEFAULT_GENERATED)
    draws = {
        "gaussians": lambda: samples * (p["dim"] + 1) + p["classes"] * p["dim"],
        "sine": lambda: samples * (p["dim"] + 1),
        "moons": lambda: samples * 3,
        "mnist1d": lambda: p["num_samples"] * MNIST1D_LENGTH * 4,  # templates, padding and noise on the way
    }
    return draws[config.name]() if config.name in draws else None


def _resample(dataset: Dataset, config: DataConfig, data_seed: int) -> Dataset:
    """Another training set, the test set unchanged: a fresh draw from the generator, slice `index` of
    `count` disjoint slices of the training pool, or a bootstrap resample of it."""
    plan = config.resample
    if plan.method == "fresh":
        params = config.params
        if config.name == "mnist1d":  # its generator has a seed of its own
            params = {**params, "seed": (params["seed"] + plan.index + 1) % 2**32}  # NumPy's seeds are 32-bit
        other = DATASETS[config.name](config.model_copy(update={"params": params}),
                                      np.random.default_rng([data_seed, 2, plan.index]))
        return replace(dataset, x_train=other.x_train, y_train=other.y_train)
    n = len(dataset.x_train)
    if plan.method == "disjoint":
        if plan.count > n:
            raise UserError(f"data.resample.count: {plan.count} slices of {n} training samples leave some empty")
        chosen = np.array_split(np.random.default_rng([data_seed, 3]).permutation(n), plan.count)[plan.index]
    else:
        chosen = np.random.default_rng([data_seed, 3, plan.index]).integers(0, n, size=n)
    return replace(dataset, x_train=dataset.x_train[chosen], y_train=dataset.y_train[chosen])


def hold_out(dataset: Dataset, fraction: float, seed: int) -> Dataset:
    """Move a seeded random round(fraction·n) of the training samples into a validation set;
    the rest keep their order."""
    if fraction <= 0:
        return dataset
    n = len(dataset.x_train)
    chosen = np.random.default_rng([seed, 1]).permutation(n)[: max(1, round(fraction * n))]
    validation = np.zeros(n, dtype=bool)
    validation[chosen] = True
    if validation.all():
        raise UserError(f"train.val_fraction: {fraction} leaves no training samples out of {n}")
    return replace(dataset, x_train=dataset.x_train[~validation], y_train=dataset.y_train[~validation],
                   x_val=dataset.x_train[validation], y_val=dataset.y_train[validation])


def feature_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std of the training inputs; constant features keep std 1. uint8 images:
    per channel (`channel_stats`)."""
    if x.dtype == np.uint8:
        return channel_stats(x)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


def standardize(dataset: Dataset, mean: np.ndarray, std: np.ndarray) -> Dataset:
    """Inputs z-scored with these statistics; uint8 images keep their pixels and are normalized on the
    device, batch by batch (`Dataset.normalize`)."""
    if dataset.normalize is not None:
        return replace(dataset, normalize=(mean, std))
    scale = lambda x: ((x - mean) / std).astype(np.float32)  # noqa: E731
    return replace(dataset, x_train=scale(dataset.x_train), x_test=scale(dataset.x_test))


def flip_labels(y: np.ndarray, num_classes: int | None, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Replace the labels of round(fraction·n) random samples with a uniformly drawn *other* class."""
    flipped = y.copy()
    chosen = rng.choice(len(y), size=round(fraction * len(y)), replace=False)
    offsets = rng.integers(1, num_classes, size=len(chosen))  # never 0: the new class always differs
    flipped[chosen] = (y[chosen] + offsets) % num_classes
    return flipped


def _cut(dataset: Dataset, config: DataConfig) -> Dataset:
    problems = []
    for key, x, n in (("n_train", dataset.x_train, config.n_train), ("n_test", dataset.x_test, config.n_test)):
        if n is not None and n > len(x):
            problems.append(f"data.{key}: {n} asked for, but {config.name} has only {len(x)} samples")
    if problems:
        raise UserError(problems)
    n_train, n_test = config.n_train, config.n_test
    return replace(
        dataset,
        x_train=dataset.x_train[:n_train], y_train=dataset.y_train[:n_train],
        x_test=dataset.x_test[:n_test], y_test=dataset.y_test[:n_test],
    )


