"""The bias-variance command: many training sets × seeds per grid point, one fixed test set."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from dlcli.cli.app import (EXIT_RUN_FAILED, SET_HELP, app, check_plot_path, exit_interrupted,
                           training_command, user_errors_exit_2)
from dlcli.components.write_failures import removed_if_unwritable


@app.command("bias-variance")
@user_errors_exit_2
def bias_variance(
    config: Path = typer.Argument(..., help="The experiment's YAML file.", show_default=False),
    trials: int = typer.Option(..., "--trials", help="Training sets per grid point (at least 2): fresh draws "
                               "for generated data, else slices or resamples of the training set (--split).",
                               show_default=False),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="Train each training set with seeds 0..S-1 (init "
                                        "and batch order; default: the config's seed alone); 2 or more split the "
                                        "variance into sampling and optimization.", show_default=False),
    grid: Optional[List[str]] = typer.Option(None, "--grid", help="A grid axis KEY=V1,V2,... (axes multiply), "
                                             "as in dlcli sweep.", show_default=False),
    split: Optional[str] = typer.Option(None, "--split", help="How training sets are drawn: fresh | disjoint | "
                                        "bootstrap (default: fresh for generated data, disjoint otherwise).",
                                        show_default=False),
    set_: Optional[List[str]] = typer.Option(None, "--set", help=SET_HELP, show_default=False),
    out: Path = typer.Option(Path("results"), "--out", help="Output root: runs and bias_variance.csv go to "
                             "OUT/<name>/."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also write risk, bias² and variance against the "
                                        "grid (PNG, SVG or PDF, by its extension).", show_default=False),
    vectorize: bool = typer.Option(True, "--vectorize/--no-vectorize", help="Train a grid point's training "
                                   "sets and seeds together as one stacked model (same numbers, faster)."),
    force: bool = typer.Option(False, "--force", help="Train runs even when a model or the data look too large "
                               "for the device's free memory."),
) -> None:
    """Decompose the test risk into bias², variance (sampling + optimization) and noise; resumable.

    Example: dlcli bias-variance configs/bias_variance.yaml --trials 8 --seeds 2 --grid model.hidden=[2],[8],[32],[128,128]
    """
    from dlcli.analysis.bias_variance import run_study
    from dlcli.layout import check_output_root
    from dlcli.report.console import print_note
    from dlcli.report.sweeps import print_bias_variance, print_sweep_result, sweep_progress
    from dlcli.sweep.study import load_study

    study = load_study(config, trials, seeds, list(grid or []), split, list(set_ or []))
    check_plot_path(plot)
    check_output_root(out)
    with sweep_progress(len(study.sweep.points)) as progress, training_command(), \
            removed_if_unwritable(out, study.sweep.experiments[0].name):
        try:
            result = run_study(study, out, on_result=progress.finished, on_skipped=progress.skipped,
                               vectorize=vectorize, on_note=print_note, force=force)
        except KeyboardInterrupt:
            result = None
    if result is None:
        exit_interrupted("interrupted")
    print_sweep_result(result.sweep)
    if plot is not None and result.rows:
        from dlcli.report.figures import plot_bias_variance

        plot_bias_variance(result.rows, study.keys, plot)
    print_bias_variance(result.rows, study.keys, result.incomplete, str(result.path),
                        str(plot) if plot is not None and result.rows else None)
    if result.incomplete:
        raise typer.Exit(EXIT_RUN_FAILED)
