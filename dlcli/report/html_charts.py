"""The report's interactive charts (plotly figures) from dlcli.analysis.report_data's plain data:
errors against a swept key, the heatmap, learning curves, per-update losses, parallel coordinates,
bias-variance, the lr-find curve and a search's best so far. dlcli.report.html puts them on the page."""
from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from dlcli.analysis.report_data import AgainstKey, BiasVariance, Curve, Heatmap, LrFind, Parallel, finite
from dlcli.analysis.search import SearchView, outcomes
from dlcli.layout import SUCCEEDED
from dlcli.report.text import label_of, number_text, value_text

COLOURS = qualitative.Plotly
SPLIT_NAMES = {"test": "test", "val": "validation"}
HEIGHT = 440  # pixels per chart
BIAS_VARIANCE_LINES = [("risk", "risk", "black", "solid"), ("bias2", "bias²", COLOURS[0], "solid"),
                       ("variance", "variance", COLOURS[1], "solid"),
                       ("variance_sampling", "variance: sampling", COLOURS[1], "dash"),
                       ("variance_optimization", "variance: optimization", COLOURS[1], "dot"),
                       ("noise", "noise", "grey", "dashdot"), ("bayes_error", "Bayes error", "black", "dot")]
DECOMPOSITION_TITLES = {"mse": "squared error", "cross_entropy": "cross-entropy", "zero_one": "0-1 error (not additive)"}


def colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]


def _layout(figure: go.Figure, **extra: Any) -> go.Figure:
    settings = dict(height=HEIGHT, margin=dict(l=60, r=20, t=50, b=50), hovermode="closest",
                    legend=dict(font=dict(size=10)), template="plotly_white")
    figure.update_layout(**(settings | extra))
    return figure


def against_key_figure(data: AgainstKey) -> go.Figure:
    """Train (dashed) and test (solid) error and loss against the key, one colour per line, ± std over
    seeds as a band; the Bayes error and the interpolation threshold as lines."""
    figure = make_subplots(1, 2, subplot_titles=("error", "loss"))
    for index, line in enumerate(data.lines):
        label = label_of(line.config, data.line_keys) if data.line_keys else ""
        for column, quantity in ((1, "error"), (2, "loss")):
            for split, dash in (("test", "solid"), ("train", "dash")):
                stats = line.stats[f"{split}_{quantity}"]
                _band(figure, line.x, stats["mean"], stats["std"], colour(index), column)
                figure.add_trace(go.Scatter(
                    x=line.x, y=stats["mean"], mode="lines+markers", name=f"{split} {label}".strip(),
                    legendgroup=f"{index}-{split}", showlegend=column == 1,
                    line=dict(color=colour(index), dash=dash), customdata=stats["count"],
                    hovertemplate=f"{split} {quantity} {label}<br>{data.key}=%{{x}}<br>mean %{{y:.4f}} over "
                                  "%{customdata} runs<extra></extra>"), row=1, col=column)
    if data.bayes_error is not None:
        figure.add_hline(data.bayes_error, line=dict(color="black", dash="dot"), row=1, col=1,
                         annotation_text=f"Bayes error {data.bayes_error:.4f}")
    if data.threshold is not None:
        for column in (1, 2):
            figure.add_vline(_on_axis(data.threshold, data.log_x), line=dict(color="grey", dash="dashdot"), row=1, col=column,
                             annotation_text=f"interpolation threshold {data.threshold:g}" if column == 1 else None)
    figure.update_xaxes(title_text=data.key, type="log" if data.log_x else "linear")
    return _layout(figure, title="train (dashed) and test (solid) against " + data.key)


def _on_axis(x: float, log: bool) -> float:
    """A shape's position: on a log axis, plotly places shapes at log10 of the value."""
    return math.log10(x) if log and x > 0 else x


def _band(figure: go.Figure, x: list[float], mean: list, std: list, line_colour: str, column: int) -> None:
    """Mean ± std as a filled band, where there are replicates."""
    points = [(a, m, s) for a, m, s in zip(x, mean, std) if m is not None and s is not None]
    if not points:
        return
    upper = [m + s for _, m, s in points]
    lower = [m - s for _, m, s in points]
    xs = [a for a, _, _ in points]
    figure.add_trace(go.Scatter(x=xs + xs[::-1], y=upper + lower[::-1], fill="toself", fillcolor=line_colour,
                                opacity=0.15, line=dict(width=0), hoverinfo="skip", showlegend=False),
                     row=1, col=column)


def heatmap_figure(data: Heatmap) -> go.Figure:
    """Mean test error over two swept keys (averaged over the rest), failed cells marked, the best starred."""
    table, ended = data.table, data.ended
    failed = ended != ""
    shown = table.where(~failed)
    best = shown.stack().idxmin() if shown.stack().size else None
    text = [[ended.loc[row, column] if failed.loc[row, column] else
             ("" if table.loc[row, column] != table.loc[row, column] else
              number_text(table.loc[row, column]) + (" ★" if (row, column) == best else ""))
             for column in table.columns] for row in table.index]
    z = [[None if value != value else float(value) for value in values] for values in shown.to_numpy(dtype=float)]
    figure = go.Figure(go.Heatmap(
        z=z, x=[value_text(column) for column in table.columns], y=[value_text(row) for row in table.index],
        text=text, texttemplate="%{text}", colorscale="RdYlGn", reversescale=True,
        colorbar=dict(title=data.value), hovertemplate=f"{table.index.name}=%{{y}}<br>{table.columns.name}=%{{x}}"
                                                       f"<br>{data.value} %{{z:.4f}}<extra></extra>"))
    figure.update_xaxes(title_text=str(table.columns.name), type="category")
    figure.update_yaxes(title_text=str(table.index.name), type="category")
    return _layout(figure, title=f"{data.value} (lower is better; ★ best)")


def curves_figure(curves: list[Curve], keys: list[str], bayes_error: float | None, held_out: str = "test",
                  trials: dict[str, str] | None = None) -> go.Figure:
    """Train (dashed) and held-out (solid: test, or a search's validation split) error and loss per
    epoch, one colour per run or seed group; the hover shows the config; a run that did not complete is
    dotted. `trials`: a search's trial names by run id, which lead the labels."""
    figure = make_subplots(1, 2, subplot_titles=("error", "loss"))
    for index, curve in enumerate(curves):
        label = label_of(curve.config, keys) if keys else ", ".join(curve.run_ids[:1])
        trial = (trials or {}).get(curve.run_ids[0])
        label = (f"{trial}: {label}" if keys else trial) if trial else label
        failed = curve.status not in SUCCEEDED
        runs = f"{len(curve.run_ids)} runs" if len(curve.run_ids) > 1 else curve.run_ids[0]
        hover = f"{label}<br>{runs}, {curve.status}".replace("%", "%%")
        for column, quantity in ((1, "error"), (2, "loss")):
            for split, dash in ((held_out, "solid"), ("train", "dash")):
                values = curve.values.get(f"{split}_{quantity}")
                if values is None:
                    continue
                figure.add_trace(go.Scatter(
                    x=curve.x, y=values, mode="lines", legendgroup=str(index), showlegend=column == 1 and split == held_out,
                    name=label + (f" ({curve.status})" if failed else ""),
                    line=dict(color=colour(index), dash="dot" if failed else dash, width=1.5),
                    hovertemplate=f"{split} {quantity} %{{y:.4f}} at epoch %{{x}}<br>{hover}<extra></extra>"),
                    row=1, col=column)
    if bayes_error is not None:
        figure.add_hline(bayes_error, line=dict(color="black", dash="dot"), row=1, col=1,
                         annotation_text=f"Bayes error {bayes_error:.4f}")
    losses = [value for curve in curves for split in ("train", held_out) for value in curve.values.get(f"{split}_loss", [])]
    figure.update_yaxes(type=y_scale(losses), row=1, col=2)
    figure.update_xaxes(title_text="epoch")
    return _layout(figure, title=f"learning curves: train (dashed) and {SPLIT_NAMES[held_out]} (solid)")


def y_scale(values: list[float | None]) -> str:
    """log when the values span a thousandfold or more (a diverged loss next to converged ones)."""
    positive = [value for value in values if value is not None and value > 0]
    return "log" if positive and max(positive) >= 1000 * min(positive) else "linear"


def updates_figure(curves: list[Curve], labels: dict[str, str]) -> go.Figure:
    """The training loss of every update (steps.csv), one colour per run."""
    figure = go.Figure()
    for index, curve in enumerate(curves):
        label = labels.get(curve.run_ids[0], curve.run_ids[0]).replace("%", "%%")
        figure.add_trace(go.Scatter(x=curve.x, y=curve.values["batch_loss"], mode="lines", name=label,
                                    line=dict(color=colour(index), width=1, dash="solid" if curve.status in SUCCEEDED
                                              else "dot"),
                                    hovertemplate=f"{label}<br>{curve.run_ids[0]}, {curve.status}<br>update %{{x}}: "
                                                  "batch loss %{y:.4f}<extra></extra>"))
    figure.update_xaxes(title_text="update")
    figure.update_yaxes(title_text="batch loss",
                        type=y_scale([value for curve in curves for value in curve.values["batch_loss"]]))
    return _layout(figure, title="training loss of every update")


def parallel_figure(data: Parallel) -> go.Figure:
    """Each completed run a line from its swept keys to its error (the last dimension), coloured by it."""
    dimensions = [{key: value for key, value in dimension.items()} for dimension in data.dimensions]
    errors, value = dimensions[-1]["values"], dimensions[-1]["label"]
    figure = go.Figure(go.Parcoords(line=dict(color=errors, colorscale="RdYlGn", reversescale=True,
                                              showscale=True, colorbar=dict(title=value)),
                                    dimensions=dimensions))
    left_out = f" ({data.left_out} runs that did not complete left out)" if data.left_out else ""
    return _layout(figure, title=f"swept keys against {value}" + left_out, margin=dict(l=80, r=80, t=80, b=40))


def bias_variance_figure(data: BiasVariance) -> go.Figure:
    """Risk, bias², variance and its two parts against the grid points, a panel per decomposition."""
    names = [name for name in DECOMPOSITION_TITLES if any(row["decomposition"] == name for row in data.rows)]
    figure = make_subplots(1, len(names), subplot_titles=[DECOMPOSITION_TITLES[name] for name in names])
    for column, name in enumerate(names, start=1):
        members = [row for row in data.rows if row["decomposition"] == name]
        x = [" ".join(value_text(row[key]) for key in data.keys) or "all runs" for row in members]
        for key, label, line_colour, dash in BIAS_VARIANCE_LINES:
            values = [row.get(key) for row in members]
            if any(value is not None for value in values):
                figure.add_trace(go.Scatter(x=x, y=values, mode="lines+markers", name=label, legendgroup=key,
                                            showlegend=column == 1, line=dict(color=line_colour, dash=dash)),
                                 row=1, col=column)
    figure.update_xaxes(title_text=", ".join(data.keys), type="category")
    return _layout(figure, title=f"bias and variance: {data.path}")


def best_so_far_figure(view: SearchView) -> go.Figure:
    """A search's best validation metric so far against trials and against the epochs trained by all
    trials (what pruning saves); each trial's own metric a dot, pruned trials grey, the chosen one
    starred; the hover names the trial and its values."""
    table, metric = view.table, view.metric
    keys = list(view.settings.get("space") or {})
    figure = make_subplots(1, 2, subplot_titles=("against trials", "against epochs trained (all trials)"),
                           shared_yaxes=True)
    chosen = table["best"]
    markers = (dict(color=COLOURS[0], size=7, opacity=0.5), dict(color="grey", size=6, opacity=0.5),
               dict(color=COLOURS[2], size=7, opacity=0.6, symbol="x"))
    kinds = [(shown & ~chosen, name, marker) for (shown, name), marker in zip(outcomes(table, metric), markers)]
    kinds.append((chosen, "the chosen trial", dict(color=COLOURS[1], size=16, symbol="star")))
    for column, x in ((1, table["trial"] + 1), (2, table["epochs_total"])):
        figure.add_trace(go.Scatter(x=list(x), y=[finite(value) for value in table["best_so_far"]], mode="lines",
                                    line=dict(color=COLOURS[0], shape="hv"), name=f"best {metric} so far",
                                    legendgroup="best", showlegend=column == 1, hoverinfo="skip"), row=1, col=column)
        for shown, name, marker in kinds:
            part = table[shown]
            if part.empty:
                continue
            hover = [f"trial {int(row['trial'])}, {row['status']}<br>{label_of(row, keys)}".replace("%", "%%")
                     for _, row in part.iterrows()]
            figure.add_trace(go.Scatter(x=list(x[shown]), y=[finite(value) for value in part[metric]],
                                        mode="markers", marker=marker, name=name, legendgroup=name,
                                        showlegend=column == 1, text=hover,
                                        hovertemplate=f"%{{text}}<br>{metric} %{{y:.4f}}<extra></extra>"),
                             row=1, col=column)
    figure.update_xaxes(title_text="trials", row=1, col=1)
    figure.update_xaxes(title_text="epochs trained", row=1, col=2)
    figure.update_yaxes(title_text=metric, row=1, col=1)
    return _layout(figure, title=f"best {metric} so far")


def importance_figure(result) -> go.Figure:
    """A search's sampled keys by their share of the metric's variance (dlcli.analysis.importance),
    the largest on top."""
    keys = list(result.shares)[::-1]
    figure = go.Figure(go.Bar(x=[result.shares[key] for key in keys], y=keys, orientation="h",
                              marker=dict(color=COLOURS[0]), hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    figure.update_xaxes(title_text=f"share of the variance of {result.metric}", range=[0, 1])
    return _layout(figure, title=f"what {result.metric} depends on, at epoch {result.epoch} ({result.trials} trials)")


def lr_find_figure(data: LrFind) -> go.Figure:
    """The LR range test: loss and its moving average against a log-scaled lr, the suggestion marked."""
    lrs = [row["lr"] for row in data.rows]
    figure = go.Figure([go.Scatter(x=lrs, y=[row["loss"] for row in data.rows], mode="lines", name="batch loss",
                                   line=dict(color=COLOURS[0], width=1), opacity=0.35),
                        go.Scatter(x=lrs, y=[row["smoothed_loss"] for row in data.rows], mode="lines",
                                   name="smoothed loss", line=dict(color=COLOURS[0]))])
    suggested = data.summary.get("suggested_lr")
    if suggested is not None:
        figure.add_vline(_on_axis(suggested, True), line=dict(color=COLOURS[1], dash="dash"),
                         annotation_text=f"suggested lr {suggested:.3g}")
    figure.update_xaxes(title_text="learning rate", type="log")
    figure.update_yaxes(title_text="training loss")
    return _layout(figure, title=f"LR range test: {data.path.name}")
