"""Figures (matplotlib, drawn off-screen): error against a swept key, heatmaps, learning curves."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from dlcli.analysis.compare import axis_value, interpolation_threshold, sort_key
from dlcli.analysis.curves import measured_splits
from dlcli.analysis.search import outcomes
from dlcli.layout import SUCCEEDED, atomic_write_bytes
from dlcli.report.text import label_of, value_text


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def plot_against_key(frame: pd.DataFrame, x_key: str, line_keys: list[str], path: Path,
                     quantity: str = "error") -> None:
    """Train and test error (or loss) against `x_key`: one line per value of the other keys, seeds as
    a band, the Bayes error and the interpolation threshold (smallest x that fits the training set)."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    completed = frame[frame["status"].isin(SUCCEEDED)]
    plotted = completed.assign(_x=completed[x_key].map(axis_value)).dropna(subset=["_x"])
    groups = [members for _, members in plotted.groupby([plotted[k].astype(str) for k in line_keys])] \
        if line_keys else [plotted]
    groups.sort(key=lambda members: [sort_key(members.iloc[0][k]) for k in line_keys])
    for index, members in enumerate(groups):
        label = label_of(members.iloc[0], line_keys) if line_keys else ""
        colour = f"C{index % 10}"
        for metric, style in ((f"test_{quantity}", "-"), (f"train_{quantity}", "--")):
            stats = members.groupby("_x")[metric].agg(["mean", "std", "count"]).sort_index()
            axes.plot(stats.index, stats["mean"], style, marker="o", color=colour,
                      label=f"{metric.split('_')[0]} {label}".strip())
            if (stats["count"] > 1).any():
                spread = stats["std"].fillna(0)
                axes.fill_between(stats.index, stats["mean"] - spread, stats["mean"] + spread, color=colour, alpha=0.15)
    values = plotted["_x"]
    if len(values) and values.min() > 0 and values.max() / values.min() >= 20:
        axes.set_xscale("log")
    threshold = interpolation_threshold(frame, x_key) if x_key.startswith("model.") else None
    if threshold is not None and not line_keys:
        axes.axvline(threshold, color="grey", linestyle="-.", label=f"interpolation threshold ({threshold:g})")
    if quantity == "error":
        _bayes_line(axes, frame)
    elif plotted[f"test_{quantity}"].max() > 20 * max(plotted[f"test_{quantity}"].min(), 1e-12):
        axes.set_yscale("log")  # a double-descent peak can be a thousand times the floor
        axes.set_ylim(bottom=plotted[f"test_{quantity}"].min() / 20)  # an interpolating fit's ~0 stays off scale
    axes.set_xlabel(x_key if completed[x_key].map(lambda v: not str(v).startswith("[")).all()
                    else f"{x_key} (first entry)")
    axes.set_ylabel(quantity)
    replicated = "seed" in frame and frame["seed"].nunique() > 1
    axes.set_title(f"train (dashed) and test (solid) {quantity}" + (", mean ± std over seeds" if replicated else ""))
    axes.legend(fontsize=7)
    _save(figure, path)


def plot_heatmap(table: pd.DataFrame, failed: pd.DataFrame, value: str, path: Path) -> None:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(1.2 * len(table.columns) + 2.5, 0.8 * len(table.index) + 2))
    shown = table.where(~failed)
    image = axes.imshow(shown.to_numpy(dtype=float), cmap="RdYlGn_r", aspect="auto")
    figure.colorbar(image, ax=axes, label=value)
    best = shown.stack().idxmin() if shown.stack().size else None
    for i, row_key in enumerate(table.index):
        for j, column in enumerate(table.columns):
            if failed.loc[row_key, column]:
                text = "diverged"
            elif table.loc[row_key, column] != table.loc[row_key, column]:
                text = ""
            else:
                text = f"{table.loc[row_key, column]:.3f}" + (" ★" if (row_key, column) == best else "")
            axes.text(j, i, text, ha="center", va="center", fontsize=8)
    axes.set_xticks(range(len(table.columns)), [value_text(column) for column in table.columns])
    axes.set_yticks(range(len(table.index)), [value_text(row) for row in table.index])
    axes.set_xlabel(table.columns.name)
    axes.set_ylabel(table.index.name)
    axes.set_title(f"{value} (lower is better)")
    _save(figure, path)


def plot_curves(curves: pd.DataFrame, labels: dict[str, str], frame: pd.DataFrame, path: Path,
                x: str = "epoch") -> None:
    """Train (dashed) and test (solid) error against the epoch, one colour per run; the validation
    error (solid) where only it was measured every epoch (a search's runs)."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    splits = measured_splits(curves)
    held_out = splits[-1]  # test, or val
    for index, (run_id, label) in enumerate(labels.items()):
        run = curves[curves["run_id"] == run_id].dropna(subset=[f"{held_out}_error"])
        colour = f"C{index % 10}"
        axes.plot(run[x], run[f"{held_out}_error"], "-", color=colour, label=label)
        if splits == ["train", "test"]:
            axes.plot(run[x], run["train_error"], "--", color=colour)
    _bayes_line(axes, frame)
    axes.set_xlabel(x)
    axes.set_ylabel("error")
    names = {"val": "validation", "test": "test", "train": "train"}
    axes.set_title("train (dashed) and test (solid) error" if splits == ["train", "test"]
                   else f"{names[held_out]} error")
    if len(labels) <= 12:
        axes.legend(fontsize=7)
    _save(figure, path)


def plot_updates(steps: pd.DataFrame, labels: dict[str, str], x: str, path: Path) -> None:
    """The training loss of every update against the update count or the wall-clock seconds."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for index, (run_id, label) in enumerate(labels.items()):
        run = steps[steps["run_id"] == run_id]
        style = dict(marker="o", markersize=3) if len(run) < 50 else dict(linewidth=0.6)
        axes.plot(run[x], run["batch_loss"], color=f"C{index % 10}", label=label, alpha=0.8, **style)
    if x == "step" and steps["step"].max() / max(1, steps["step"].min()) >= 100:
        axes.set_xscale("log")  # GD makes a few updates where SGD makes thousands
    axes.set_xlabel("update" if x == "step" else "seconds")
    axes.set_ylabel("batch loss")
    axes.set_title(f"training loss of every update, against {'updates' if x == 'step' else 'wall-clock time'}")
    axes.legend(fontsize=7)
    _save(figure, path)


def plot_lr_find(rows: list[dict[str, float]], suggested_lr: float | None, path: Path) -> None:
    """Loss (and its moving average) against a log-scaled lr, the suggestion marked."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    lrs = [row["lr"] for row in rows]
    axes.plot(lrs, [row["loss"] for row in rows], color="C0", alpha=0.3, label="batch loss")
    axes.plot(lrs, [row["smoothed_loss"] for row in rows], color="C0", label="smoothed loss")
    if suggested_lr is not None:
        axes.axvline(suggested_lr, color="C3", linestyle="--", label=f"suggested lr {suggested_lr:.3g}")
    axes.set_xscale("log")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("training loss")
    axes.set_title("LR range test")
    axes.legend(fontsize=8)
    _save(figure, path)


def _bayes_line(axes: Any, frame: pd.DataFrame) -> None:
    bayes = pd.to_numeric(frame.get("bayes_error"), errors="coerce").dropna().unique() if "bayes_error" in frame else []
    if len(bayes) == 1 and not math.isnan(bayes[0]):
        axes.axhline(bayes[0], color="black", linestyle=":", label=f"Bayes error {bayes[0]:.4f}")


def _save(figure: Any, path: Path) -> None:
    import io

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format=Path(path).suffix.lower().lstrip(".") or "png", dpi=120)  # png, svg or pdf
    _pyplot().close(figure)
    atomic_write_bytes(Path(path), buffer.getvalue())


def plot_bias_variance(rows: list[dict[str, Any]], keys: list[str], path: Path) -> None:
    """Risk, bias², variance and its two parts against the grid points, one panel per decomposition."""
    plt = _pyplot()
    names = [name for name in ("mse", "cross_entropy", "zero_one") if any(r["decomposition"] == name for r in rows)]
    figure, panels = plt.subplots(1, len(names), figsize=(5 * len(names), 4.2), squeeze=False)
    for axes, name in zip(panels[0], names):
        members = [row for row in rows if row["decomposition"] == name]
        labels = ["  ".join(value_text(row[key]) for key in keys) or "all runs" for row in members]
        numeric = len(keys) == 1 and all(isinstance(row[keys[0]], (int, float)) for row in members)
        x = [row[keys[0]] for row in members] if numeric else list(range(len(members)))
        lines = [("risk", "risk", "k-"), ("bias2", "bias" if name == "zero_one" else "bias²", "C0-"),
                 ("variance", "variance", "C1-"), ("variance_sampling", "variance: sampling", "C1--"),
                 ("variance_optimization", "variance: optimization", "C1:"), ("noise", "noise", "C7-."),
                 ("bayes_error", "Bayes error (generator)", "k:")]
        for key, label, style in lines:
            values = [row[key] for row in members]
            if any(value is not None for value in values):
                axes.plot(x, [math.nan if v is None else v for v in values], style, marker="o", markersize=4,
                          label=label)
        if numeric and min(x) > 0 and max(x) / min(x) >= 20:
            axes.set_xscale("log")
        if not numeric:
            axes.set_xticks(x, labels, rotation=30 if len(members) > 4 else 0, fontsize=8)
        axes.set_xlabel(", ".join(keys) or "")
        axes.set_title({"mse": "squared error", "cross_entropy": "cross-entropy",
                        "zero_one": "0-1 error (not additive)"}[name])
        axes.legend(fontsize=7)
    _save(figure, path)


def plot_searches(tables: dict[str, pd.DataFrame], metrics: dict[str, str], path: Path) -> None:
    """Several searches' best validation metric so far, against trials and against the epochs trained,
    a colour each; each one's chosen trial starred."""
    plt = _pyplot()
    figure, panels = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for index, (label, table) in enumerate(tables.items()):
        colour, metric = f"C{index % 10}", metrics[label]
        chosen = table["best"]
        for axes, x in ((panels[0], table["trial"] + 1), (panels[1], table["epochs_total"])):
            axes.step(x, table["best_so_far"], where="post", color=colour, label=f"{label} ({metric})")
            axes.plot(x[chosen], table.loc[chosen, metric], "*", color=colour, markersize=12)
    panels[0].set_xlabel("trials")
    panels[1].set_xlabel("epochs trained (all trials)")
    panels[0].set_ylabel("best validation metric so far")
    panels[0].set_title("against trials (★ the chosen trial)")
    panels[1].set_title("against epochs trained")
    panels[0].legend(fontsize=7)
    _save(figure, path)


def plot_best_so_far(table: pd.DataFrame, metric: str, path: Path) -> None:
    """A search's best validation metric so far, against trials and against the epochs trained so far
    (what pruning saves); each trial's own metric as a dot, pruned trials grey, the chosen one starred."""
    plt = _pyplot()
    figure, panels = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for axes, x, label in ((panels[0], table["trial"] + 1, "trials"),
                           (panels[1], table["epochs_total"], "epochs trained (all trials)")):
        axes.step(x, table["best_so_far"], where="post", color="C0", label=f"best {metric} so far")
        for (shown, name), (marker, colour) in zip(outcomes(table, metric), (("o", "C0"), ("o", "grey"), ("x", "C1"))):
            if shown.any():
                axes.plot(x[shown], table.loc[shown, metric], marker, color=colour, alpha=0.5, markersize=4,
                          linestyle="none", label=name)
        chosen = table["best"]
        axes.plot(x[chosen], table.loc[chosen, metric], "*", color="C3", markersize=14, label="the chosen trial")
        axes.set_xlabel(label)
    panels[0].set_ylabel(metric)
    panels[0].set_title(f"best {metric} against trials")
    panels[1].set_title(f"best {metric} against epochs trained")
    panels[0].legend(fontsize=7)
    _save(figure, path)


def plot_importance(result: Any, path: Path) -> None:
    """A search's sampled keys by their share of the metric's variance (dlcli.analysis.importance), the
    largest on top."""
    plt = _pyplot()
    keys = list(result.shares)[::-1]
    figure, axes = plt.subplots(figsize=(7, 0.5 * len(keys) + 1.5))
    axes.barh(keys, [result.shares[key] for key in keys], color="C0")
    axes.set_xlim(0, 1)
    axes.set_xlabel(f"share of the variance of {result.metric} (fANOVA main effects, normalized)")
    axes.set_title(f"what {result.metric} depends on, at epoch {result.epoch} ({result.trials} trials)")
    _save(figure, path)
