"""The compare command: tables, replicate groups, heatmaps, curves and figures from run folders."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from dlcli.cli.app import app, check_plot_path, user_errors_exit_2
from dlcli.errors import UserError

FORMATS = ("table", "csv", "markdown", "json")


@app.command()
@user_errors_exit_2
def compare(
    paths: List[Path] = typer.Argument(..., help="Runs, sweep directories or results roots; a search folder alone "
                                  "shows its trials, the chosen one and the best so far; several search folders, "
                                  "each one's choice and their best so far side by side.", show_default=False),
    sort: Optional[str] = typer.Option(None, "--sort", help="Sort column; -COLUMN for descending. Default: "
                                       "test_error; a search's trials in trial order.", show_default=False),
    where: Optional[List[str]] = typer.Option(None, "--where", help="Keep runs where COLUMN OP VALUE holds, "
                                              "e.g. optim.lr>=0.1 or status==completed (repeatable).",
                                              show_default=False),
    columns: Optional[str] = typer.Option(None, "--columns", help="Metric columns to show, comma-separated.",
                                          show_default=False),
    by: Optional[str] = typer.Option(None, "--by", help="Group runs by these keys (mean ± std over the rest).",
                                     show_default=False),
    pivot: Optional[str] = typer.Option(None, "--pivot", help="ROW_KEY,COLUMN_KEY: a heatmap of --value.",
                                        show_default=False),
    value: str = typer.Option("test_error", "--value", help="The column a pivot shows; for --plot against a "
                              "key, test_error or test_loss picks errors or losses."),
    curves: bool = typer.Option(False, "--curves", help="Train and test error per epoch of the selected runs (the "
                                "validation error where only it was measured every epoch, as in a search), or "
                                "with --x step|seconds the loss of every update (from steps.csv)."),
    x: str = typer.Option("epoch", "--x", help="With --curves: epoch | step | seconds."),
    patience: Optional[int] = typer.Option(None, "--patience", min=1, help="Early-stopping what-if: where "
                                           "this patience on --stop-metric would have stopped each run, and its "
                                           "test error there, from the logged curves.", show_default=False),
    stop_metric: str = typer.Option("val_loss", "--stop-metric", help="What --patience watches: val_loss | "
                                    "val_error (or a train_* column)."),
    importance: bool = typer.Option(False, "--importance", help="For a search folder: each sampled key's share of "
                                    "the validation metric's variance (fANOVA), over the trials at the latest "
                                    "epoch all were measured at (with halving, the first rung); --plot draws them."),
    fmt: str = typer.Option("table", "--format", help="table | csv | markdown | json"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also write a matplotlib figure (PNG, SVG or PDF, by "
                                        "its extension).", show_default=False),
) -> None:
    """Compare runs: train vs test error side by side, seed replicates as mean ± std, heatmaps, curves.

    Example: dlcli compare results/batch_lr_grid --pivot optim.batch_size,optim.lr --plot docs/grid.png
    """
    from dlcli.analysis.compare import load_runs
    from dlcli.analysis.filters import where as keep_where
    from dlcli.analysis.search import with_trials

    if fmt not in FORMATS:
        raise UserError(f"--format: unknown format {fmt!r} (allowed: {', '.join(FORMATS)})")
    check_plot_path(plot)
    if x not in ("epoch", "step", "seconds"):
        raise UserError(f"--x: unknown axis {x!r} (allowed: epoch, step, seconds)")
    _check_companions(x, curves, stop_metric, patience, value, pivot, plot)
    if importance:
        _compare_importance(paths, fmt, plot)
        return
    searches = pivot is None and not curves and patience is None and not columns and not by \
        and all(map(_is_search, paths))  # --columns or --by: a search's runs as any runs
    if searches and len(paths) == 1:
        _compare_search(paths[0], list(where or []), sort, fmt, plot)  # its trials, the chosen one, best so far
        return
    if searches and not where and sort is None:  # several: a row each, its choice; their best so far overlaid
        _compare_searches(paths, fmt, plot)
        return
    frame = keep_where(with_trials(load_runs(paths)), list(where or []))  # a search's runs: --where trial==3
    if frame.empty:
        raise UserError("--where: no run matches")
    if patience is not None:
        _compare_what_if(frame, patience, stop_metric, fmt)
    elif pivot is not None:
        _compare_pivot(frame, pivot, value, fmt, plot)
    elif curves and x != "epoch":
        _compare_updates(frame, x, fmt, plot)
    elif curves:
        _compare_curves(frame, fmt, plot)
    else:
        _compare_table(frame, sort or "test_error", _split(columns), _split(by), fmt, plot, value)


def _compare_table(frame, sort: str, columns: list[str] | None, by: list[str] | None, fmt: str, plot,
                   value: str) -> None:
    from dlcli.analysis import compare as runs
    from dlcli.analysis.defaults import away_from_defaults
    from dlcli.report import compare as show

    table, keys, grouped = runs.comparison(frame, by, columns, sort)
    if fmt != "table":
        show.print_formatted(table, fmt)
    else:
        constant = runs.varying_keys(frame)[1]
        set_by_hand = away_from_defaults(constant)
        show.print_constant_keys(set_by_hand, len(frame), len(constant) - len(set_by_hand))
        show.print_comparison(table, keys, grouped, columns or runs.METRICS)
        show.print_threshold(frame, [key for key in keys if key != "seed"])
    if plot is not None:
        from dlcli.report.figures import plot_against_key

        x_key, line_keys = runs.plot_keys(frame, by)
        plot_against_key(frame, x_key, line_keys, plot, "loss" if value.endswith("_loss") else "error")
        show.print_wrote(plot)


def _compare_pivot(frame, pivot: str, value: str, fmt: str, plot) -> None:
    from dlcli.analysis.compare import pivot as pivot_table
    from dlcli.report import compare as show

    keys = _split(pivot) or []
    if len(keys) != 2:
        raise UserError(f"--pivot {pivot}: expected ROW_KEY,COLUMN_KEY, e.g. optim.batch_size,optim.lr")
    table, ended = pivot_table(frame, keys[0], keys[1], value)
    failed = ended != ""
    if fmt != "table":
        flat = table.astype(object).where(~failed, ended).reset_index()
        flat.columns = [str(column) for column in flat.columns]
        show.print_formatted(flat, fmt)
    else:
        show.print_pivot(table, failed, value)
    if plot is not None:
        from dlcli.report.figures import plot_heatmap

        plot_heatmap(table, failed, value, plot)
        show.print_wrote(plot)


def _compare_what_if(frame, patience: int, metric: str, fmt: str) -> None:
    from dlcli.analysis.compare import read_curves
    from dlcli.analysis.curves import early_stopping_what_if
    from dlcli.report import compare as show

    if metric.startswith("test_"):
        raise UserError(f"--stop-metric {metric}: stopping on the test set would leak it into the choice; "
                        "use val_loss, val_error or a train_* column")
    curves = read_curves(frame)
    if curves.empty or metric not in curves:
        raise UserError(f"--stop-metric {metric}: not in the runs' metrics.csv "
                        "(val_* needs train.val_fraction > 0)")
    table = early_stopping_what_if(curves, patience, metric)
    table.insert(1, "run", table["run_id"].map(show.run_labels(frame)))
    if fmt != "table":
        show.print_formatted(table, fmt)
    else:
        show.print_what_if(table, patience, metric)


def _compare_updates(frame, x: str, fmt: str, plot) -> None:
    from dlcli.analysis.compare import read_curves
    from dlcli.analysis.curves import update_noise
    from dlcli.layout import STEPS
    from dlcli.report import compare as show

    steps = read_curves(frame, STEPS)
    if steps.empty:
        raise UserError(f"--x {x}: the selected runs have no steps.csv (train them with train.log_steps: true)")
    labels = {run_id: label for run_id, label in show.run_labels(frame).items() if run_id in set(steps["run_id"])}
    if fmt != "table":
        show.print_formatted(steps, fmt)
    else:
        show.print_update_noise(update_noise(steps), labels)
    if plot is not None:
        from dlcli.report.figures import plot_updates

        plot_updates(steps, labels, x, plot)
        show.print_wrote(plot)


def _compare_curves(frame, fmt: str, plot) -> None:
    from dlcli.analysis.compare import read_curves
    from dlcli.report import compare as show

    curves = read_curves(frame)
    if curves.empty:
        raise UserError("--curves: the selected runs have no metrics.csv")
    labels = show.run_labels(frame)
    if fmt != "table":
        show.print_formatted(curves, fmt)
    else:
        show.print_curves(curves, labels)
    if plot is not None:
        from dlcli.report.figures import plot_curves

        plot_curves(curves, labels, frame, plot)
        show.print_wrote(plot)


def _compare_importance(paths: list[Path], fmt: str, plot) -> None:
    from dlcli.analysis.importance import key_importance
    from dlcli.report import compare as show
    from dlcli.report.search import print_importance

    if len(paths) != 1 or not _is_search(paths[0]):
        raise UserError(f"--importance: {', '.join(map(str, paths))} is not one search folder "
                        "(it weighs the keys a search sampled)")
    result = key_importance(paths[0])
    if fmt == "table":
        print_importance(result)
    else:
        import pandas as pd

        show.print_formatted(pd.DataFrame({"key": list(result.shares), "share": list(result.shares.values())}), fmt)
    if plot is not None:
        from dlcli.report.figures import plot_importance

        plot_importance(result, plot)
        show.print_wrote(plot)


def _check_companions(x: str, curves: bool, stop_metric: str, patience: int | None, value: str, pivot: str | None,
                      plot: Path | None) -> None:
    """An option that only works with another is refused alone, rather than doing nothing."""
    needs = [("--x", x != "epoch" and not curves, "--curves"),
             ("--stop-metric", stop_metric != "val_loss" and patience is None, "--patience"),
             ("--value", value != "test_error" and pivot is None and plot is None, "--pivot or --plot")]
    problems = [f"{option}: applies with {companion}, which was not given"
                for option, alone, companion in needs if alone]
    if problems:
        raise UserError(problems)


def _is_search(path: Path) -> bool:
    from dlcli.analysis.search import is_search

    return is_search(path)


def _compare_search(path: Path, where: list[str], sort: str | None, fmt: str, plot) -> None:
    """The search's trials (those `where` keeps, in trial order or by `sort`); the best so far is the
    whole search's, and so is the figure."""
    from dlcli.analysis.compare import sort_runs
    from dlcli.analysis.filters import where as keep_where
    from dlcli.analysis.search import epochs_trained, search_table
    from dlcli.report import compare as show
    from dlcli.report.search import print_search_table

    table, chosen, settings = search_table(path)
    shown = keep_where(table, where)
    if shown.empty and where:
        raise UserError("--where: no trial matches")
    shown = shown if sort is None else sort_runs(shown, sort)
    if fmt != "table":
        show.print_formatted(shown, fmt)
    else:
        print_search_table(shown, chosen, settings, len(table), epochs_trained(table))
    if plot is not None:
        from dlcli.report.figures import plot_best_so_far

        plot_best_so_far(table, settings.get("metric", "val_error"), plot)
        show.print_wrote(plot)


def _compare_searches(paths: list[Path], fmt: str, plot) -> None:
    from dlcli.analysis.search import searches_table
    from dlcli.report import compare as show
    from dlcli.report.search import print_searches

    table, trials = searches_table(paths)
    if fmt != "table":
        show.print_formatted(table, fmt)
    else:
        print_searches(table)
    if plot is not None:
        from dlcli.report.figures import plot_searches

        plot_searches(trials, dict(zip(table["search"], table["chosen_on"])), plot)
        show.print_wrote(plot)


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]
