"""Checks of a data set before anything is written: shapes, values, classes and sizes.

Data files are the user's: an .npz with a 1-D x or too few labels, a CSV with an empty cell or a single
class used to fail deep in training with a traceback, or to train "successfully" on nothing, often after
the run folder was made. Each check here returns (or raises, as `UserError`) one line per problem that
names the key, the file and what is allowed. `datasets` checks each file as it reads it;
`data.load_dataset` checks whatever data set it built (generated ones too) before it is used.
"""
from __future__ import annotations

import math

import numpy as np

from dlcli.errors import UserError

NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float: what becomes float32 inputs
LABEL_KINDS = "biufUS"  # numbers or text: what can name a class
SHOWN = 3  # offending columns named in one line


def raise_problems(problems: list[str | None]) -> None:
    """Raise the problems found (None: a check that found none) as one `UserError`."""
    found = [problem for problem in problems if problem is not None]
    if found:
        raise UserError(found)


# ---- .npz arrays ----------------------------------------------------------------------------------


def npz_problems(arrays: dict[str, np.ndarray], task: str, where: str) -> list[str]:
    """x, y, x_test, y_test as read from an .npz (`where`: its key and path): numeric inputs of at least
    two dimensions (samples × features) with the same features in train and test, one label per sample
    (1-D), samples in both splits, and finite values."""
    problems = _kind_problems(arrays, task, where)
    problems += _dimension_problems(arrays, where)
    if problems:
        return problems  # the checks below need the right kinds and dimensions
    x, y, x_test, y_test = (arrays[name] for name in ("x", "y", "x_test", "y_test"))
    for inputs, labels in (("x", "y"), ("x_test", "y_test")):
        if len(arrays[inputs]) != len(arrays[labels]):
            problems.append(f"{where}: {inputs} has {len(arrays[inputs])} samples but {labels} has "
                            f"{len(arrays[labels])} labels; allowed: one label per sample")
        if len(arrays[inputs]) == 0:
            problems.append(f"{where}: {inputs} has no samples; allowed: at least 1")
    if x.shape[1:] != x_test.shape[1:]:
        problems.append(f"{where}: x_test has samples of shape {x_test.shape[1:]} but x has {x.shape[1:]}; "
                        "allowed: the same features in train and test")
    if math.prod(x.shape[1:]) == 0:
        problems.append(f"{where}: x has no features (shape {x.shape}); allowed: at least 1")
    for name, array in arrays.items():
        if array.dtype.kind == "f":
            problems += _array_nonfinite(name, array, where)
    return problems


def _kind_problems(arrays: dict[str, np.ndarray], task: str, where: str) -> list[str]:
    problems = []
    for name, array in arrays.items():
        if name.startswith("y") and task != "regression":
            kinds, allowed = LABEL_KINDS, "numbers or text (class names)"
        else:
            kinds, allowed = NUMERIC_KINDS, "numbers" + (" (data.params.task: regression)" if name[0] == "y" else "")
        if array.dtype.kind not in kinds:
            problems.append(f"{where}: {name} holds {array.dtype} values; allowed: {allowed}")
    return problems


def _dimension_problems(arrays: dict[str, np.ndarray], where: str) -> list[str]:
    problems = []
    for name, array in arrays.items():
        if name.startswith("x") and array.ndim < 2:
            hint = f" (one feature: reshape to ({len(array)}, 1))" if array.ndim == 1 else ""
            problems.append(f"{where}: {name} has shape {array.shape}; allowed: samples × features, at least "
                            f"2-D{hint}")
        if name.startswith("y") and array.ndim != 1:
            problems.append(f"{where}: {name} has shape {array.shape}; allowed: one label or target per sample, "
                            "1-D")
    return problems


def _array_nonfinite(name: str, array: np.ndarray, where: str) -> list[str]:
    if array.size == 0:
        return []
    bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1) if array.ndim > 1 else ~np.isfinite(array)
    if not bad.any():
        return []
    row = int(np.argmax(bad))
    count = int(np.count_nonzero(~np.isfinite(array)))
    return [f"{where}: {name} has {_values(count, 'NaN or infinite')}, the first in row {row} ({name}[{row}]); "
            "allowed: finite numbers (float32: |x| < 3.4e38)"]


# ---- CSV tables ------------------------------------------------------------------------------------


def table_problems(frame, target: str, where: str) -> list[str]:
    """One CSV file (`where`: its key and path): data rows, at least one numeric feature column
    besides the target, every feature finite (as float32) and every target cell filled."""
    import pandas as pd

    if len(frame) == 0:
        return [f"{where}: no data rows below the header; allowed: at least 1"]
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        return [f"{where}: no feature columns besides the target {target!r}; allowed: at least 1"]
    problems = []
    bad = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if bad:
        problems.append(f"{where}: non-numeric feature columns: {', '.join(bad)}")
    else:
        problems += _columns_nonfinite(list(map(str, features.columns)), features.to_numpy(np.float32), where)
    missing = frame[target].isna().to_numpy()
    if missing.any():
        problems.append(f"{where}: the target column {target!r} has {_values(int(missing.sum()), 'empty')}, "
                        f"the first in row {int(np.argmax(missing)) + 1} below the header; allowed: a label "
                        "or number in every row")
    return problems


def _columns_nonfinite(columns: list[str], x: np.ndarray, where: str) -> list[str]:
    bad = ~np.isfinite(x)
    counts = bad.sum(axis=0)
    offending = [j for j in range(len(columns)) if counts[j]]
    if not offending:
        return []
    named = [f"{columns[j]!r} ({_values(int(counts[j]))}, the first in row {int(np.argmax(bad[:, j])) + 1})"
             for j in offending[:SHOWN]]
    more = f" and {len(offending) - SHOWN} more" if len(offending) > SHOWN else ""
    plural = "s" if len(offending) > 1 else ""
    return [f"{where}: empty, NaN or infinite values in column{plural} {', '.join(named)}{more}, rows "
            "counted below the header; allowed: finite numbers (float32: |x| < 3.4e38)"]


def columns_problem(columns: list[str], test_columns: list[str], path: str, test_path: str) -> str | None:
    """A separate test file needs the training file's columns, in the same order."""
    if list(map(str, columns)) == list(map(str, test_columns)):
        return None
    return (f"data.params.test_path: {test_path} has columns {', '.join(map(str, test_columns))}; allowed: "
            f"the columns of data.params.path {path} in the same order ({', '.join(map(str, columns))})")


def _values(count: int, what: str = "") -> str:
    """'1 value', '3 empty values'."""
    return f"{count} {what + ' ' if what else ''}value{'s' if count != 1 else ''}"


# ---- any data set, once built -----------------------------------------------------------------------


def class_problem(class_names: tuple[str, ...], where: str) -> str | None:
    """Classification needs at least two classes: with one, every model is perfect."""
    if len(class_names) >= 2:
        return None
    found = f"a single class ({class_names[0]!r})" if class_names else "no classes"
    return (f"{where}: the target has {found}; classification needs at least two (a numeric target can be "
            "learnt as data.params.task: regression)")


def split_problem(rows: int, test_rows: int, where: str) -> str | None:
    """A random train/test split of `rows` must leave samples for training."""
    if rows - test_rows >= 1:
        return None
    return (f"data.params.test_fraction: holding out {test_rows} of the {rows} data rows of {where} as the test set "
            "leaves none for training; allowed: at least 2 rows, or a smaller test_fraction")


def dataset_problems(dataset, name: str, where: str) -> list[str]:
    """Any data set as built (`where`: the key that chose it): samples in both splits, one label per
    sample, the same features in train and test, and finite values."""
    problems = []
    for split in ("train", "test"):
        x, y = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
        if len(x) == 0:
            problems.append(f"{where}: {name} gives no {split} samples; allowed: at least 1")
        if len(x) != len(y):
            problems.append(f"{where}: {name} gives {len(x)} {split} samples but {len(y)} labels")
        if x.dtype.kind == "f":  # uint8 images are finite by their type
            problems += _array_nonfinite(f"x_{split}", x, f"{where}: {name}")
        if y.dtype.kind == "f":
            problems += _array_nonfinite(f"y_{split}", y, f"{where}: {name}")
    if dataset.x_train.shape[1:] != dataset.x_test.shape[1:]:
        problems.append(f"{where}: {name} gives test samples of shape {dataset.x_test.shape[1:]} but training "
                        f"samples of shape {dataset.x_train.shape[1:]}")
    if dataset.task == "classification":
        problems += [_label_range_problem(getattr(dataset, f"y_{split}"), dataset.num_classes, split, name, where)
                     for split in ("train", "test")]
    return [problem for problem in problems if problem is not None]


def _label_range_problem(y: np.ndarray, classes: int, split: str, name: str, where: str) -> str | None:
    """Class indices outside 0…classes−1 (a corrupt label file) would stop training mid-epoch."""
    outside = (y < 0) | (y >= classes)
    if len(y) == 0 or not outside.any():
        return None
    first = int(np.flatnonzero(outside)[0])
    return (f"{where}: {name} gives {split} label {y[first]} (sample {first}, {int(outside.sum())} such labels); "
            f"allowed: 0 to {classes - 1}, one per class")


def standardized_problem(dataset, name: str) -> str | None:
    """Finite inputs can overflow float32 when standardized (a sum of huge values)."""
    if all(x.dtype.kind != "f" or np.isfinite(x).all() for x in (dataset.x_train, dataset.x_test)):
        return None
    return (f"data.standardize: standardizing the inputs of {name} overflows float32 (values near 3.4e38); "
            "allowed: smaller values, or data.standardize: false")
