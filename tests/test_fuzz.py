"""Fuzzing the command line with Hypothesis: configs generated from the schema with wrong types,
out-of-range values, unknown keys and odd nesting, and small malformed CSV and .npz files, each through
`dlcli train` with a tiny budget. Whatever the input: exit 0, 1 (diverged) or 2 (the user's mistake),
never a traceback, and no run folder after an exit 2.

The suite runs a fixed, small set of examples (derandomized: the same every time). A longer, random hunt
by hand:

    DLCLI_FUZZ_EXAMPLES=2000 python -m pytest tests/test_fuzz.py -p no:cacheprovider --hypothesis-show-statistics

(the statistics count the exit statuses: how many inputs trained, how many were refused).

`train.epochs` is the one budget kept small (at most MAX_EPOCHS): a valid huge value trains for as long
as it asks (the plan itself is lazy: tests/components/test_schedules.py).
"""
from __future__ import annotations

import csv
import io
import os
import tempfile
import typing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conftest import WIDE, tiny_config
from dlcli.cli import app
from dlcli.config.data_params import DATA_PARAMS
from dlcli.config.problems import dotted_keys
from dlcli.config.schema import Experiment

LONG = "DLCLI_FUZZ_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("DLCLI_FUZZ_EXAMPLES", "60"))  # per test; the suite's four take about 10 s
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG, database=None, print_blob=LONG,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])
MAX_EPOCHS = 3

SECTIONS = sorted({key.rsplit(".", 1)[0] for key in dotted_keys(Experiment) if "." in key}) + ["data.params"]


def literals(annotation: Any) -> set:
    """Every Literal value inside an annotation (the allowed names of a key)."""
    if typing.get_origin(annotation) is typing.Literal:
        return set(typing.get_args(annotation))
    return {value for argument in typing.get_args(annotation) for value in literals(argument)}


def fields(model, prefix: str = "") -> dict[str, Any]:
    """Every key of a config model, dotted, with its pydantic field."""
    found = {}
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and hasattr(field.annotation, "model_fields"):
            found |= fields(field.annotation, f"{prefix}{name}.")
        else:
            found[prefix + name] = field
    return found


FIELDS = fields(Experiment) | {key: field for params in DATA_PARAMS.values()
                               for key, field in fields(params, "data.params.").items()}
NAMES = sorted({value for field in FIELDS.values() for value in literals(field.annotation)}, key=str)
GENERATED_SETS = ["gaussians", "sine", "moons", "digits", "breast_cancer", "mnist1d"]

# ---- values -----------------------------------------------------------------------------------------------

numbers = st.one_of(
    st.integers(-3, 8),
    st.sampled_from([16, 64, 2**31, 2**32, 2**63 - 1, 2**63, 2**64, 10**20, -(2**63) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-2, 2),
)
scalars = st.one_of(numbers, st.booleans(), st.none(), st.text(max_size=6), st.sampled_from(NAMES),
                    st.sampled_from(["full", "auto", "cpu", "cuda", "cuda:7", "mps", "range(1,3)", "log(0.1,1,3)"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=5), inner, max_size=2)),
                      max_leaves=4)


def plausible(key: str) -> st.SearchStrategy:
    """A value of the key's own kind, often a valid one: an allowed name, a small number, a flag."""
    field = FIELDS[key]
    names = sorted(literals(field.annotation), key=str)
    if names:
        return st.sampled_from(names)
    default = field.default
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.integers(0, 6)
    if isinstance(default, float):
        return st.sampled_from([0.0, 0.01, 0.3, 0.5, 0.9, 1.0, 2.0])
    if isinstance(default, list):
        return st.lists(st.integers(1, 8), max_size=3)
    return st.one_of(st.none(), st.integers(1, 6), st.sampled_from([0.5, "full"]))


def put(config: dict, key: str, value: Any) -> None:
    """Set a dotted key, turning whatever stands in the way into a mapping."""
    *path, last = key.split(".")
    node = config
    for part in path:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[last] = value


def drop(config: dict, key: str) -> None:
    *path, last = key.split(".")
    node = config
    for part in path:
        node = node.get(part)
        if not isinstance(node, dict):
            return
    node.pop(last, None)


@st.composite
def mutations(draw, config: dict) -> dict:
    """A few random changes: a key set to a value of its kind or to anything, another data set, an
    unknown key, a key removed, a section replaced by a value, or a value buried under extra nesting."""
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["plausible"] * 4 + ["any", "any", "dataset", "unknown", "drop", "section",
                                                           "nest"]))
        key = draw(st.sampled_from(sorted(FIELDS)))
        if kind == "plausible":
            put(config, key, draw(plausible(key)))
        elif kind == "any":
            put(config, key, draw(values))
        elif kind == "dataset":  # its own default parameters, a small part of it
            config["data"] = {"name": draw(st.sampled_from(GENERATED_SETS)), "n_train": 40, "n_test": 40}
        elif kind == "unknown":
            put(config, f"{draw(st.sampled_from(SECTIONS))}.{draw(st.text(min_size=1, max_size=6))}", draw(values))
        elif kind == "drop":
            drop(config, key)
        elif kind == "section":
            put(config, draw(st.sampled_from(SECTIONS)), draw(scalars))
        else:
            put(config, key, {draw(st.text(max_size=4)): draw(values)})
    return config


def small_budget(config: dict) -> dict:
    """Keep a valid run short: few epochs, and no torch.compile (tens of seconds to start)."""
    train = config.get("train")
    if isinstance(train, dict):
        epochs = train.get("epochs")
        if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > MAX_EPOCHS:
            train["epochs"] = MAX_EPOCHS
        if train.get("compile") is True:
            train["compile"] = False
    return config


# ---- data files: a valid table or archive with a few defects ------------------------------------------------

CSV_DEFECTS = ["nan", "inf", "huge", "empty", "text", "ragged", "one class", "no label", "no rows", "one row",
               "repeated header", "garbage", "quote"]
NPZ_DEFECTS = ["1-D x", "2-D y", "0-D x", "short y", "other width", "nan", "inf", "no test", "no features",
               "missing", "text x", "text y", "complex", "one class", "bytes", "npy", "4-D x", "bool x"]


@st.composite
def valid_arrays(draw, rows: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    x = draw(hnp.arrays(np.float64, (rows, width), elements=st.floats(-100, 100)))
    y = np.array(draw(st.permutations([row % 2 for row in range(rows)])), dtype=np.int64)  # both classes
    return x, y


@st.composite
def csv_texts(draw) -> str:
    """A CSV of numeric columns a, b and a two-class label, with up to two defects."""
    rows = draw(st.integers(2, 12))
    x, y = draw(valid_arrays(rows, 2))
    table = [["a", "b", "label"], *[[*map(repr, row), str(label)] for row, label in zip(x.tolist(), y.tolist())]]
    for defect in draw(st.lists(st.sampled_from(CSV_DEFECTS), max_size=2)):
        row, column = draw(st.integers(1, len(table))), draw(st.integers(0, 2))
        cell = {"nan": "nan", "inf": "-inf", "huge": "1e39", "empty": "", "text": "x", "quote": '"1,2"'}.get(defect)
        if cell is not None and row < len(table) and column < len(table[row]):
            table[row][column] = cell
        elif defect == "ragged" and row < len(table):
            table[row] = table[row][: draw(st.integers(0, 4))] + ["7"] * draw(st.integers(0, 2))
        elif defect == "one class":
            table = [table[0]] + [[*line[:2], "1"] for line in table[1:]]
        elif defect == "no label":
            table = [line[:2] for line in table]
        elif defect in ("no rows", "one row"):
            table = table[: 1 if defect == "no rows" else 2]
        elif defect == "repeated header":
            table[0] = ["a", "a", "label"]
        elif defect == "garbage":
            return draw(st.text(max_size=40))
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(table)
    return buffer.getvalue()


@st.composite
def npz_contents(draw) -> dict[str, np.ndarray] | bytes | np.ndarray:
    """x, y, x_test, y_test of two classes, with up to two defects: wrong shapes, kinds or values,
    arrays missing, or a file that is not an archive."""
    (x, y), (x_test, y_test) = draw(valid_arrays(draw(st.integers(2, 12)), 3)), draw(valid_arrays(4, 3))
    found = {"x": x, "y": y, "x_test": x_test, "y_test": y_test}
    for defect in draw(st.lists(st.sampled_from(NPZ_DEFECTS), max_size=2)):
        name = draw(st.sampled_from(sorted(found)))
        if defect in ("bytes", "npy"):
            return draw(st.binary(max_size=64)) if defect == "bytes" else x
        changed = {
            "1-D x": lambda: {"x": x[:, 0]}, "2-D y": lambda: {"y": np.stack([y, y], 1)},
            "0-D x": lambda: {"x": x[0, 0]},
            "short y": lambda: {"y": y[:-1]}, "other width": lambda: {"x_test": x_test[:, :2]},
            "nan": lambda: {"x": np.where(x > 50, np.nan, x)}, "inf": lambda: {"x_test": np.full_like(x_test, np.inf)},
            "no test": lambda: {"x_test": x_test[:0], "y_test": y_test[:0]}, "no features": lambda: {"x": x[:, :0]},
            "text x": lambda: {"x": x.astype("<U3")}, "text y": lambda: {"y": y.astype("<U2")},
            "complex": lambda: {"x": x.astype(np.complex64)}, "one class": lambda: {"y": y * 0, "y_test": y_test * 0},
            "4-D x": lambda: {"x": x.reshape(len(x), 3, 1, 1), "x_test": x_test.reshape(4, 3, 1, 1)},
            "bool x": lambda: {"x": x > 0, "x_test": x_test > 0},
        }
        if defect == "missing":
            found.pop(name, None)
        else:
            found |= changed[defect]()
    return found


data_keys = st.fixed_dictionaries({}, optional={
    "n_train": st.sampled_from([1, 2, 5, 10**6]), "n_test": st.sampled_from([1, 3]),
    "label_noise": st.sampled_from([0.0, 0.5]), "standardize": st.booleans(), "sort_by_label": st.booleans(),
    "resample": st.sampled_from([{"method": "bootstrap"}, {"method": "disjoint", "count": 3, "index": 2}]),
})
train_keys = st.fixed_dictionaries({"epochs": st.integers(0, 2), "val_fraction": st.sampled_from([0.0, 0.3, 0.9])})


def write_data(folder: Path, kind: str, content) -> Path:
    path = folder / f"data.{kind}"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, dict):
        np.savez(path, **content)
    elif isinstance(content, np.ndarray):
        with open(path, "wb") as file:  # a .npy inside a file named .npz
            np.save(file, content)
    else:
        path.write_text(content)
    return path


# ---- the property ------------------------------------------------------------------------------------------


def check_train(folder: Path, config: Any) -> None:
    """dlcli train ends in 0, 1 or 2, without a traceback; an exit 2 explains itself and writes nothing."""
    from typer.testing import CliRunner

    path, out = folder / "experiment.yaml", folder / "out"
    path.write_text(yaml.safe_dump(config) if not isinstance(config, str) else config)
    result = CliRunner().invoke(app, ["train", str(path), "--out", str(out)], env=WIDE)
    output = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (repr(result.exception), output)
    assert "Traceback" not in output, output
    assert result.exit_code in (0, 1, 2), (result.exit_code, output)
    event(f"exit {result.exit_code}")  # pytest --hypothesis-show-statistics: how many inputs trained
    if result.exit_code == 2:
        assert not out.exists(), sorted(map(str, out.rglob("*")))
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert lines and all(line.startswith("error: ") for line in lines), result.stderr


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    yield


@FUZZ
@given(data=st.data())
def test_random_configs_from_the_schema(data):
    config = data.draw(mutations(tiny_config()))
    with tempfile.TemporaryDirectory() as folder:
        check_train(Path(folder), small_budget(config))


@FUZZ
@given(text=st.text(max_size=60))
def test_random_yaml_text(text):
    with tempfile.TemporaryDirectory() as folder:
        check_train(Path(folder), text)


@FUZZ
@given(content=csv_texts(), params=st.fixed_dictionaries({}, optional={
    "target": st.sampled_from(["label", "a", "zz", None]), "task": st.sampled_from(["auto", "classification",
                                                                                   "regression", "both"]),
    "test_fraction": st.sampled_from([0.2, 0.5, 0.99, 1.5])}), same_test=st.booleans(), data=st.data())
def test_random_csv_files(content, params, same_test, data):
    with tempfile.TemporaryDirectory() as folder:
        path = write_data(Path(folder), "csv", content)
        params = {"path": str(path), **params, **({"test_path": str(path)} if same_test else {})}
        config = tiny_config(data={"name": "csv", "params": params, **data.draw(data_keys)},
                             train=data.draw(train_keys))
        check_train(Path(folder), config)


@FUZZ
@given(content=npz_contents(), task=st.sampled_from(["auto", "classification", "regression"]), data=st.data())
def test_random_npz_files(content, task, data):
    with tempfile.TemporaryDirectory() as folder:
        path = write_data(Path(folder), "npz", content)
        config = tiny_config(data={"name": "npz", "params": {"path": str(path), "task": task}, **data.draw(data_keys)},
                             loss=data.draw(st.sampled_from(["cross_entropy", "mse", "bce"])),
                             model={"name": data.draw(st.sampled_from(["mlp", "cnn", "linear"])), "hidden": [4]},
                             train=data.draw(train_keys))
        check_train(Path(folder), config)

