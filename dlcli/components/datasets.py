"""Data sets, from a registry: generated (known Bayes error), shipped with packages, or read from files
(images through torchvision: dlcli.components.image_datasets).

Everything here is NumPy: a `Dataset` holds arrays; the training loop moves them to the device once.
Generators draw train and test from the same distribution with the config's seed.
"""
from __future__ import annotations

import functools
import math
import zipfile
from typing import Callable

import numpy as np

from dlcli.components.data_cache import cached_arrays
from dlcli.components.dataset import Dataset, Kind  # Dataset's home; imported from here as well
from dlcli.components.image_datasets import IMAGE_DATASETS
from dlcli.components.validation import (class_problem, columns_problem, npz_problems, raise_problems,
                                        split_problem, table_problems)
from dlcli.config.schema import DataConfig
from dlcli.errors import UserError


# ---- generated data: train and test drawn fresh from the generator -------------------------------

DEFAULT_GENERATED = 1000  # samples per split when n_train / n_test is null
MNIST1D_LENGTH = 40  # MNIST-1D's signals


def _sizes(config: DataConfig) -> tuple[int, int]:
    return config.n_train or DEFAULT_GENERATED, config.n_test or DEFAULT_GENERATED


def gaussians(config: DataConfig, rng: np.random.Generator) -> Dataset:
    """K isotropic Gaussians with means on a line, `separation` apart, equal priors."""
    p = config.params
    k, dim, separation, sigma = p["classes"], p["dim"], p["separation"], p["sigma"]
    means = np.zeros((k, dim))
    means[:, 0] = (np.arange(k) - (k - 1) / 2) * separation

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, k, size=n)
        return (means[y] + sigma * rng.standard_normal((n, dim))).astype(np.float32), y.astype(np.int64)

    n_train, n_test = _sizes(config)
    (x_train, y_train), (x_test, y_test) = draw(n_train), draw(n_test)
    return Dataset(x_train, y_train, x_test, y_test, "classification", k, "tabular",
                   bayes_error=gaussians_bayes_error(k, separation, sigma))


def gaussians_bayes_error(classes: int, separation: float, sigma: float) -> float:
    """Bayes error of K equal-prior Gaussians on a line: end classes err on one side, inner on two.

    Each side contributes Φ(−d/(2σ)), so the mean error is 2(K−1)/K · Φ(−d/(2σ)); K = 2 gives Φ(−d/(2σ)).
    """
    one_side = 0.5 * math.erfc(separation / (2 * sigma) / math.sqrt(2))  # Φ(−d/(2σ))
    return 2 * (classes - 1) / classes * one_side


def sine(config: DataConfig, rng: np.random.Generator) -> Dataset:
    """y = sin(π x₁) + N(0, noise²), x uniform on [−1, 1]^dim; Bayes error (MSE) = noise²."""
    dim, noise = config.params["dim"], config.params["noise"]

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.uniform(-1, 1, size=(n, dim))
        y = np.sin(np.pi * x[:, 0]) + noise * rng.standard_normal(n)
        return x.astype(np.float32), y.astype(np.float32)

    n_train, n_test = _sizes(config)
    (x_train, y_train), (x_test, y_test) = draw(n_train), draw(n_test)
    return Dataset(x_train, y_train, x_test, y_test, "regression", None, "tabular", bayes_error=_squared(noise))


def _squared(noise: float) -> float:
    try:
        return noise**2
    except OverflowError:  # a noise beyond 1e154: the targets are not finite either, which is reported
        return math.inf


def moons(config: DataConfig, rng: np.random.Generator) -> Dataset:
    from sklearn.datasets import make_moons

    n_train, n_test = _sizes(config)
    seeds = rng.integers(0, 2**31 - 1, size=2)
    x_train, y_train = make_moons(n_train, noise=config.params["noise"], random_state=int(seeds[0]))
    x_test, y_test = make_moons(n_test, noise=config.params["noise"], random_state=int(seeds[1]))
    return Dataset(x_train.astype(np.float32), y_train.astype(np.int64), x_test.astype(np.float32),
                   y_test.astype(np.int64), "classification", 2, "tabular")


# ---- fixed data: a seeded, stratified split ------------------------------------------------------


def digits(config: DataConfig, rng: np.random.Generator) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float32)  # (1797, 8, 8): a cnn reads it as an image
    return _stratified_split(x, bunch.target, config, rng, "image", tuple(str(name) for name in bunch.target_names))


def breast_cancer(config: DataConfig, rng: np.random.Generator) -> Dataset:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    return _stratified_split(bunch.data.astype(np.float32), bunch.target, config, rng, "tabular",
                  tuple(str(name) for name in bunch.target_names))


def _stratified_split(x, y, config: DataConfig, rng, kind: Kind, class_names=None) -> Dataset:
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=config.params["test_fraction"], stratify=y,
        random_state=int(rng.integers(0, 2**31 - 1)),
    )
    classes = int(y.max()) + 1
    return Dataset(x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64), "classification",
                   classes, kind, class_names=class_names)


def mnist1d(config: DataConfig, rng: np.random.Generator) -> Dataset:
    p = config.params
    arrays = _mnist1d_arrays(p["num_samples"], p["train_split"], p["seed"])
    x_train, y_train, x_test, y_test = (array.copy() for array in arrays)
    return Dataset(x_train, y_train, x_test, y_test, "classification", 10, "sequence",
                   class_names=tuple(str(digit) for digit in range(10)))


@functools.lru_cache(maxsize=4)
def _mnist1d_arrays(num_samples: int, train_split: float, seed: int):
    """MNIST-1D, generated offline once (about 3.5 s for 5000 samples) and kept in the user's cache
    folder (dlcli.components.data_cache); cached for the process as well."""
    params = {"num_samples": num_samples, "train_split": train_split, "seed": seed}
    data = cached_arrays("mnist1d", params, lambda: _make_mnist1d(**params))
    return data["x"], data["y"], data["x_test"], data["y_test"]


def _make_mnist1d(num_samples: int, train_split: float, seed: int) -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = num_samples, train_split, seed
    state = np.random.get_state()  # the generator seeds NumPy's global RNG; leave it as it was
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(state)
    return {"x": data["x"].astype(np.float32), "y": data["y"].astype(np.int64),
            "x_test": data["x_test"].astype(np.float32), "y_test": data["y_test"].astype(np.int64)}


# ---- files ---------------------------------------------------------------------------------------


def csv(config: DataConfig, rng: np.random.Generator) -> Dataset:
    import pandas as pd

    p = config.params
    frames, target = _checked_tables(p)
    y_all = pd.concat([part[target] for part in frames])
    task = _task(p["task"], y_all.to_numpy())
    if task == "regression" and not pd.api.types.is_numeric_dtype(y_all):
        raise UserError(f"data.params.task: regression needs a numeric target, and column {target!r} of "
                        f"{p['path']} holds text; allowed: classification or auto")
    names = _class_names(y_all, task)
    if names is not None:
        raise_problems([class_problem(names, f"data.params.path: {p['path']}")])
    encode = _label_encoder(y_all, task)
    xs = [part.drop(columns=[target]).to_numpy(np.float32) for part in frames]
    ys = [encode(part[target]) for part in frames]
    if len(frames) == 2:
        return _from_arrays(xs[0], ys[0], xs[1], ys[1], task, names)
    return _random_split(xs[0], ys[0], p["test_fraction"], rng, task, names, p["path"])


def _checked_tables(p: dict) -> tuple[list, str]:
    """The CSV file (and the separate test file) and the target column, every file checked."""
    frame = _read_csv(p["path"], "data.params.path")
    target = p["target"] or frame.columns[-1]
    if target not in frame.columns:
        raise UserError(f"data.params.target: no column {target!r} in {p['path']} "
                        f"(columns: {', '.join(map(str, frame.columns))})")
    frames, keys = [frame], ["path"]
    if p["test_path"] is not None:
        frames.append(_read_csv(p["test_path"], "data.params.test_path"))
        keys.append("test_path")
        raise_problems([columns_problem(list(frame.columns), list(frames[1].columns), p["path"], p["test_path"])])
    raise_problems([problem for key, part in zip(keys, frames)
                    for problem in table_problems(part, target, f"data.params.{key}: {p[key]}")])
    return frames, target


def npz(config: DataConfig, rng: np.random.Generator) -> Dataset:
    path = config.params["path"]
    x, y, x_test, y_test = _read_npz(path)
    where = f"data.params.path: {path}"
    raise_problems(npz_problems({"x": x, "y": y, "x_test": x_test, "y_test": y_test}, config.params["task"], where))
    task = _task(config.params["task"], np.concatenate([y, y_test]))
    if task == "classification":
        classes, encoded = np.unique(np.concatenate([y, y_test]), return_inverse=True)
        raise_problems([class_problem(tuple(map(str, classes)), where)])
        y, y_test = encoded[: len(y)], encoded[len(y):]
        return _from_arrays(x.astype(np.float32), y, x_test.astype(np.float32), y_test, task,
                            tuple(str(c) for c in classes))
    return _from_arrays(x.astype(np.float32), y, x_test.astype(np.float32), y_test, task, None)


def _read_npz(path: str) -> tuple[np.ndarray, ...]:
    """x, y, x_test, y_test from an .npz archive, or a `UserError` saying why not."""
    try:
        arrays = np.load(path, allow_pickle=False)
        if not isinstance(arrays, np.lib.npyio.NpzFile):
            raise ValueError("it holds one array, not named arrays (write it with np.savez)")
        with arrays:
            missing = [key for key in ("x", "y", "x_test", "y_test") if key not in arrays]
            if missing:
                raise UserError(f"data.params.path: {path} lacks arrays {', '.join(missing)} "
                                "(needs x, y, x_test, y_test)")
            return tuple(arrays[key] for key in ("x", "y", "x_test", "y_test"))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise UserError(f"data.params.path: cannot read {path} as .npz: {error}".splitlines()[0]) from None


def _read_csv(path: str, key: str):
    import pandas as pd

    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as error:
        raise UserError(f"{key}: cannot read {path} as CSV: {error}".splitlines()[0]) from None


def _task(requested: str, y: np.ndarray) -> str:
    if requested != "auto":
        return requested
    return "regression" if np.issubdtype(y.dtype, np.floating) else "classification"


def _label_encoder(y_all, task: str) -> Callable:
    if task == "regression":
        return lambda column: column.to_numpy(np.float32)
    classes = sorted(y_all.unique().tolist(), key=str)
    index = {label: i for i, label in enumerate(classes)}
    return lambda column: column.map(index).to_numpy(np.int64)


def _class_names(y_all, task: str) -> tuple[str, ...] | None:
    return tuple(str(c) for c in sorted(y_all.unique().tolist(), key=str)) if task == "classification" else None


def _from_arrays(x, y, x_test, y_test, task, class_names) -> Dataset:
    if task == "classification":
        return Dataset(x, y.astype(np.int64), x_test, y_test.astype(np.int64), task, len(class_names),
                       _kind(x), class_names=class_names)
    return Dataset(x, y.astype(np.float32), x_test, y_test.astype(np.float32), task, None, _kind(x))


def _random_split(x, y, test_fraction, rng, task, class_names, path: str) -> Dataset:
    order = rng.permutation(len(x))
    n_test = max(1, round(test_fraction * len(x)))
    raise_problems([split_problem(len(x), n_test, path)])
    test, train = order[:n_test], order[n_test:]
    return _from_arrays(x[train], y[train], x[test], y[test], task, class_names)


def _kind(x: np.ndarray) -> Kind:
    return {2: "tabular", 3: "image"}.get(x.ndim, "sequence")


DATASETS: dict[str, Callable[[DataConfig, np.random.Generator], Dataset]] = {
    "gaussians": gaussians,
    "sine": sine,
    "moons": moons,
    "digits": digits,
    "breast_cancer": breast_cancer,
    "mnist1d": mnist1d,
    "csv": csv,
    "npz": npz,
    **IMAGE_DATASETS,  # torchvision's image sets and image_folder (dlcli.components.image_datasets)
}
