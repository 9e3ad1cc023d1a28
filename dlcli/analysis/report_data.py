"""What `dlcli report` shows, as plain data: the compare table, errors against a swept key, a heatmap
of two swept keys, learning curves per run or seed group, per-update losses, the swept keys against
the test error, and the bias-variance and lr-find results found beside the runs. A search folder
shows its trials instead (dlcli.analysis.search), ordered on the validation metric it chose on, and
none of the test-error charts made for grids.

Everything comes from compare.py's pieces (load_runs, comparison, pivot, read_curves), so the report
and `dlcli compare` pick the same keys, the same seed groups and the same order. Nothing is drawn
here: dlcli.report.html turns this into a page.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlcli import layout
from dlcli.analysis import compare as runs
from dlcli.analysis.filters import where as keep_where
from dlcli.analysis.search import SearchView, is_search, read_search
from dlcli.errors import UserError
from dlcli.layout import SUCCEEDED

MAX_CURVES = 40  # learning curves drawn: the table's first rows (best first); more are a tangle
MAX_POINTS = 200  # points per curve: the epochs (or updates) evenly thinned, first and last kept
CURVE_COLUMNS = ["train_loss", "test_loss", "train_error", "test_error", "val_loss", "val_error"]
LOG_RATIO = 20  # a key whose values span this factor or more is drawn on a log scale


@dataclass
class Curve:
    """One line of learning curves: a run, or the mean over a group of seed replicates."""

    config: dict[str, Any]  # the values of the keys that tell the lines apart
    run_ids: list[str]
    status: str
    x: list[float]
    values: dict[str, list[float]]  # column -> value at each x (the mean over the group's runs)


@dataclass
class KeyLine:
    """Errors and losses against the swept key, for one value of the other keys: mean, std, count
    over the seeds at each x."""

    config: dict[str, Any]
    x: list[float]
    stats: dict[str, dict[str, list[float]]]  # metric -> {"mean": [...], "std": [...], "count": [...]}


@dataclass
class AgainstKey:
    key: str
    line_keys: list[str]
    lines: list[KeyLine]
    bayes_error: float | None
    threshold: float | None  # the interpolation threshold, where known
    log_x: bool


@dataclass
class Heatmap:
    value: str
    table: pd.DataFrame  # rows × columns of mean values
    ended: pd.DataFrame  # how a cell's runs that did not complete ended; "" where all completed


@dataclass
class Parallel:
    """Each completed run as a line through the swept keys to its test error (a search's trials: to the
    metric it chose on), the last dimension."""

    dimensions: list[dict[str, Any]]  # label, values, and tickvals/ticktext for a key that is not a number
    left_out: int  # runs that did not complete


@dataclass
class BiasVariance:
    path: Path
    keys: list[str]
    rows: list[dict[str, Any]]


@dataclass
class LrFind:
    path: Path
    rows: list[dict[str, float]]
    summary: dict[str, Any]


@dataclass
class ReportData:
    runs: pd.DataFrame  # one row per run (after --where); empty for a folder with only lr-find runs
    table: pd.DataFrame | None = None  # the compare table
    keys: list[str] = field(default_factory=list)  # its key columns
    grouped: bool = False  # rows are groups of replicates (mean ± std over n)
    constant: dict[str, Any] = field(default_factory=dict)  # keys with one value in every run
    against: AgainstKey | None = None
    heatmap: Heatmap | None = None
    curves: list[Curve] = field(default_factory=list)
    updates: list[Curve] = field(default_factory=list)  # per-update batch loss (steps.csv)
    parallel: Parallel | None = None
    bias_variance: list[BiasVariance] = field(default_factory=list)
    lr_finds: list[LrFind] = field(default_factory=list)
    search: SearchView | None = None  # a search folder alone: its trials, the chosen one, the best so far


def report_data(paths: list[str | Path], where: list[str] | None = None, by: list[str] | None = None) -> ReportData:
    """Everything the report shows about the runs at or below `paths` (--where keeps some, --by
    groups by these keys instead of seed replicates)."""
    for path in map(Path, paths):
        if not path.exists():
            raise UserError(f"{path}: no such file or directory")
    extras = {"bias_variance": read_bias_variance(paths), "lr_finds": read_lr_finds(paths)}
    try:
        frame = runs.load_runs(paths)
    except UserError:
        if not any(extras.values()):
            raise
        return ReportData(runs=pd.DataFrame(), **extras)
    frame = keep_where(frame, list(where or []))
    if frame.empty:
        raise UserError("--where: no run matches")
    search = read_search(paths[0], list(where or [])) if len(paths) == 1 and is_search(paths[0]) else None
    table, keys, grouped = runs.comparison(frame, by, sort=search.metric if search else "test_error")
    data = ReportData(frame, table, keys, grouped, runs.varying_keys(frame)[1], search=search, **extras)
    swept = [key for key in keys if key not in runs.REPLICATES]
    if search is None:  # a search's trials are read on validation, and its sampled points make no grid
        data.against = against_key(frame, by)
        if len(swept) >= 2:
            data.heatmap = Heatmap("test_error", *runs.pivot(frame, swept[0], swept[1], "test_error"))
    data.parallel = parallel(frame, swept, search.metric if search else "test_error")  # a search: as it chose
    data.curves = learning_curves(frame, table, keys, grouped)
    data.updates = update_curves(frame, [run_id for curve in data.curves for run_id in curve.run_ids])
    return data


def against_key(frame: pd.DataFrame, by: list[str] | None) -> AgainstKey | None:
    """Train and test error and loss against the first swept numeric key (as `compare --plot`), one
    line per value of the other keys, seeds as mean and std; None without a numeric swept key."""
    try:
        x_key, line_keys = runs.plot_keys(frame, by)
    except UserError:
        return None
    done = frame[frame["status"].isin(SUCCEEDED)]
    plotted = done.assign(_x=done[x_key].map(runs.axis_value)).dropna(subset=["_x"])
    if plotted.empty:
        return None
    groups = runs.replicate_groups(plotted, line_keys)
    groups.sort(key=lambda members: [runs.sort_key(members.iloc[0][key]) for key in line_keys])
    lines = []
    for members in groups:
        stats = {}
        for metric in ("train_error", "test_error", "train_loss", "test_loss"):
            numbers = members.assign(_y=pd.to_numeric(members[metric], errors="coerce"))
            grouped = numbers.groupby("_x")["_y"].agg(["mean", "std", "count"]).sort_index()
            stats[metric] = {name: [finite(value) for value in grouped[name]] for name in ("mean", "std", "count")}
        x = sorted(members["_x"].unique())
        lines.append(KeyLine({key: members.iloc[0][key] for key in line_keys}, [float(v) for v in x], stats))
    values = plotted["_x"]
    bayes = pd.to_numeric(frame.get("bayes_error"), errors="coerce").dropna().unique() if "bayes_error" in frame else []
    threshold = runs.interpolation_threshold(frame, x_key) if x_key.startswith("model.") and not line_keys else None
    return AgainstKey(x_key, line_keys, lines, float(bayes[0]) if len(bayes) == 1 else None, threshold,
                      bool(values.min() > 0 and values.max() / values.min() >= LOG_RATIO))


def learning_curves(frame: pd.DataFrame, table: pd.DataFrame, keys: list[str], grouped: bool) -> list[Curve]:
    """Per row of the compare table (at most MAX_CURVES, best first): the run's per-epoch metrics, or
    their mean over the row's seed replicates."""
    if grouped:
        groups = {_key_of(members.iloc[0], keys): members for members in runs.replicate_groups(frame, keys)}
    else:
        groups = {(run_id,): frame[frame["run_id"] == run_id] for run_id in frame["run_id"]}
    shown = [(row, groups[_key_of(row, keys) if grouped else (row["run_id"],)])
             for _, row in table.head(MAX_CURVES).iterrows()]
    needed = {run_id for _, members in shown for run_id in members["run_id"]}
    long = runs.read_curves(frame[frame["run_id"].isin(needed)])  # only the runs drawn: reading is the cost
    if long.empty:
        return []
    curves = []
    for row, members in shown:
        epochs = long[long["run_id"].isin(members["run_id"])]
        if epochs.empty:
            continue
        columns = [column for column in CURVE_COLUMNS if column in epochs]
        mean = epochs.groupby("epoch")[columns].mean().sort_index()
        mean = mean.iloc[thinned(len(mean))]
        curves.append(Curve({key: row[key] for key in keys}, list(members["run_id"]), str(row["status"]),
                            [float(x) for x in mean.index],
                            {column: [finite(value) for value in mean[column]] for column in columns}))
    return curves


def update_curves(frame: pd.DataFrame, run_ids: list[str]) -> list[Curve]:
    """The batch loss of every update (steps.csv, thinned to MAX_POINTS) of these runs, where logged."""
    steps = runs.read_curves(frame[frame["run_id"].isin(run_ids)], layout.STEPS)
    if steps.empty:
        return []
    curves = []
    for run_id, run in steps.groupby("run_id", sort=False):
        row = frame[frame["run_id"] == run_id].iloc[0]
        run = run.sort_values("step").iloc[thinned(len(run))]
        curves.append(Curve({"run_id": run_id}, [run_id], str(row["status"]), [float(x) for x in run["step"]],
                            {"batch_loss": [finite(value) for value in run["batch_loss"]]}))
    return curves


def parallel(frame: pd.DataFrame, keys: list[str], value: str = "test_error") -> Parallel | None:
    """The swept keys and `value` (the test error, or the metric a search chose on) of every completed
    run; a key spanning LOG_RATIO or more as log10, a key that is not a number as numbered categories."""
    done = frame[frame["status"].isin(SUCCEEDED)]
    if not keys or done.empty:
        return None
    dimensions = []
    for key in keys:
        numbers = done[key].map(runs.axis_value)
        if numbers.notna().all():
            log = bool(numbers.min() > 0 and numbers.max() / numbers.min() >= LOG_RATIO)
            values = np.log10(numbers) if log else numbers
            dimensions.append({"label": f"log10 {key}" if log else key, "values": [float(v) for v in values]})
        else:
            categories = sorted({str(value) for value in done[key]},
                                key=lambda text: runs.sort_key(runs.parse_value(text)))
            codes = {text: index for index, text in enumerate(categories)}
            dimensions.append({"label": key, "values": [codes[str(value)] for value in done[key]],
                               "tickvals": list(codes.values()), "ticktext": categories})
    numbers = pd.to_numeric(done[value], errors="coerce")
    dimensions.append({"label": value, "values": [finite(number) for number in numbers]})
    return Parallel(dimensions, len(frame) - len(done))


def read_bias_variance(paths: list[str | Path]) -> list[BiasVariance]:
    """Every bias_variance.csv at or below the paths: its grid keys (the columns before
    `decomposition`) and rows, numbers as numbers."""
    found = []
    for path in _files_named(paths, layout.BIAS_VARIANCE):
        table = pd.read_csv(path)
        if "decomposition" not in table.columns:
            continue
        keys = list(table.columns[: list(table.columns).index("decomposition")])
        rows = [{column: _cell(value) for column, value in row.items()} for row in table.to_dict("records")]
        found.append(BiasVariance(path, keys, rows))
    return found


def read_lr_finds(paths: list[str | Path]) -> list[LrFind]:
    """Every lr-find run at or below the paths: its curve (lr_find.csv) and suggestion (lr_find.json)."""
    found = []
    for path in _files_named(paths, layout.LR_FIND_SUMMARY):
        curve = path.parent / layout.LR_FIND_CURVE
        if curve.is_file():
            rows = [{key: finite(value) for key, value in row.items()} for row in pd.read_csv(curve).to_dict("records")]
            found.append(LrFind(path.parent, rows, json.loads(path.read_text(encoding="utf-8"))))
    return found


def _files_named(paths: list[str | Path], name: str) -> list[Path]:
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_file():
            continue
        for folder, subfolders, files in os.walk(path):
            subfolders[:] = sorted(sub for sub in subfolders if not sub.startswith("."))
            if name in files:
                found.append(Path(folder) / name)
    return list(dict.fromkeys(found))


def thinned(count: int, points: int = MAX_POINTS) -> list[int]:
    """At most `points` positions out of `count`, evenly spread, the first and the last kept."""
    if count <= points:
        return list(range(count))
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, points)})


def finite(value: Any) -> float | None:
    """A number for a chart: None for missing, NaN or infinite (a diverged loss)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _cell(value: Any) -> Any:
    return None if isinstance(value, float) and not np.isfinite(value) else value


def _key_of(row: Any, keys: list[str]) -> tuple[str, ...]:
    return tuple(str(row[key]) for key in keys)
