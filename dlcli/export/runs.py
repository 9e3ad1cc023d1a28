"""What both exporters read from a run folder: its per-epoch metrics under their exported names, its
flattened config, the keys that differ between the runs exported, and a search trial's number and
whether it is the chosen one."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from dlcli import layout
from dlcli.analysis import compare
from dlcli.analysis.filters import where as keep_where
from dlcli.analysis.search import is_search, search_table

# metrics.csv column -> the scalar's name in TensorBoard and MLflow (train/test/val side by side)
SCALARS = {"train_loss": "train/loss", "train_error": "train/error", "test_loss": "test/loss",
           "test_error": "test/error", "val_loss": "val/loss", "val_error": "val/error", "lr": "lr",
           "weight_norm": "weight_norm"}
FINAL_METRICS = ["train/error", "test/error", "train/loss", "test/loss"]  # the hparams table's columns
VAL_METRICS = ["val/error", "val/loss"]  # added to them where a run measured a validation split


def select_runs(paths: list[str | Path], where: list[str] | None = None) -> pd.DataFrame:
    """The runs at or below `paths` where every --where expression holds (as dlcli compare reads them)."""
    from dlcli.errors import UserError

    frame = keep_where(compare.load_runs(paths), list(where or []))
    if frame.empty:
        raise UserError("--where: no run matches")
    return frame


def epoch_scalars(run_dir: str | Path) -> list[tuple[int, dict[str, float]]]:
    """(epoch, {exported name: value}) per row of metrics.csv, without the splits an epoch did not
    measure; a run without one has none."""
    if not (Path(run_dir) / layout.METRICS).is_file():
        return []
    rows = []
    for row in layout.read_metrics(Path(run_dir)):
        rows.append((int(row["epoch"]), {name: row[column] for column, name in SCALARS.items()
                                         if row.get(column) is not None}))
    return rows


def run_params(run: pd.Series) -> dict[str, Any]:
    """A run's flattened config (a row of compare.load_runs): its dotted keys, with lists and
    mappings as one text each, as `dlcli compare` shows them."""
    own = compare.run_config(Path(run["path"]), layout.read_summary(Path(run["path"])))
    return {key: param_value(run[key]) for key in own if key in run.index}


def param_value(value: Any) -> str | int | float | bool:
    """A config value as a hyperparameter: numbers and booleans as they are, None as `null`."""
    value = value.item() if hasattr(value, "item") else value
    if value is None or (isinstance(value, float) and value != value):  # NaN: the key unset in this run
        return "null"
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def swept_keys(frame: pd.DataFrame) -> list[str]:
    """The config keys that differ between the exported runs (seed included)."""
    return compare.varying_keys(frame)[0]


def experiment_name(run_dir: str | Path) -> str:
    """A run's sweep (or, for a single run, its experiment name): the folder it lies in."""
    return Path(run_dir).resolve().parent.name


def final_metrics(frame: pd.DataFrame) -> list[str]:
    """The metrics the hparams table shows: train and test, and validation where any run has it (what a
    search chose on)."""
    measured_val = "val_error" in frame and frame["val_error"].notna().any()
    return FINAL_METRICS + (VAL_METRICS if measured_val else [])


def search_tags(frame: pd.DataFrame) -> dict[str, dict[str, str]]:
    """For the runs that are trials of a search: `dlcli.trial` (its numbers: a configuration sampled
    twice trained once) and `dlcli.chosen` (true for the trial chosen on validation), by run id."""
    tags: dict[str, dict[str, str]] = {}
    for folder in {Path(path).parent for path in frame["path"]}:
        if not is_search(folder):
            continue
        table, chosen, _ = search_table(folder)
        for run_id, trials in table.groupby(table["run_id"].astype(str))["trial"]:
            tags[run_id] = {"dlcli.trial": ", ".join(str(int(trial)) for trial in trials),
                            "dlcli.chosen": str(chosen is not None and str(chosen["run_id"]) == run_id).lower()}
    return tags
