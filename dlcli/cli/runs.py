"""Commands about single runs: train, evaluate, lr-find."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from dlcli.cli.app import (EXIT_INTERRUPTED, EXIT_RUN_FAILED, SET_HELP, TAG_HELP, app,
                           check_plot_path, training_command, user_errors_exit_2)
from dlcli.components.write_failures import WRITE_FAILURES, removed_if_unwritable
from dlcli.errors import UserError
from dlcli.layout import Status


@app.command()
@user_errors_exit_2
def train(
    config: Optional[Path] = typer.Argument(None, help="The experiment's YAML file.", show_default=False),
    set_: Optional[List[str]] = typer.Option(None, "--set", help=SET_HELP, show_default=False),
    out: Path = typer.Option(Path("results"), "--out", help="Output root: runs go to OUT/<name>/<run-id>/."),
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N | mps (overrides the config)."),
    print_config: bool = typer.Option(False, "--print-config", help="Print the resolved config and exit."),
    force: bool = typer.Option(False, "--force", help="Train even when the model or the data look too large for "
                               "the device's free memory."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue an interrupted or killed run from its "
                                          "last checkpoint: RUN_DIR (no CONFIG).", show_default=False),
    tag: Optional[List[str]] = typer.Option(None, "--tag", help=TAG_HELP, show_default=False),
) -> None:
    """Train one model and log train and test loss and error per epoch; or continue one with --resume.

    Example: dlcli train configs/quickstart.yaml --set optim.lr=0.05 --set model.hidden=[64,64]
    """
    if resume is not None:
        if config is not None or set_ or device is not None or print_config or tag:
            raise UserError("--resume RUN_DIR continues a run as it was configured: give no CONFIG, --set, "
                            "--device, --tag or --print-config with it")
        return _resume(resume)
    if config is None:
        raise UserError("CONFIG: missing: give the experiment's YAML file (or --resume RUN_DIR)")
    from dlcli.components.tags import parse_assignments
    from dlcli.config.flat import to_yaml
    from dlcli.config.load import load_experiment
    from dlcli.layout import check_output_root

    tags = parse_assignments(tag or [], "--tag")
    experiment = load_experiment(config, list(set_ or []), {"device": device} if device is not None else None,
                                 "--device")
    if print_config:
        sys.stdout.write(to_yaml(experiment))  # verbatim: YAML must not be wrapped or styled
        return
    check_output_root(out)
    from dlcli.config.load import blamed, read_yaml_mapping
    from dlcli.engine.loop import train as train_experiment
    from dlcli.report.console import epoch_progress, print_note

    if read_yaml_mapping(config).get("sweep"):
        print_note(f"{config} has a sweep: section; this trains its base config once (dlcli sweep {config} runs "
                   "the sweep)")

    with epoch_progress(experiment.name, experiment.train.epochs) as on_epoch, \
            removed_if_unwritable(out, experiment.name), training_command():
        try:
            result = train_experiment(experiment, out, on_epoch, force, tags)
        except UserError as error:  # the data or the model do not fit the config
            raise UserError(blamed(error.problems, config, list(set_ or []))) from None
    _report(result)


def _resume(run_dir: Path) -> None:
    from dlcli.config.load import load_experiment
    from dlcli.engine.loop import resume
    from dlcli.layout import CONFIG
    from dlcli.report.console import epoch_progress, print_note

    if not (run_dir / CONFIG).is_file():
        raise UserError(f"--resume {run_dir}: not a run directory (no {CONFIG})")
    experiment = load_experiment(run_dir / CONFIG)
    try:
        with epoch_progress(experiment.name, experiment.train.epochs) as on_epoch, training_command():
            result = resume(run_dir, on_epoch, on_note=print_note)
    except OSError as error:
        if error.errno not in WRITE_FAILURES:
            raise
        raise UserError(f"--resume {run_dir}: cannot write there: {error.strerror or error}; its last checkpoint "
                        "is kept: free some space and resume again") from None
    _report(result)


def _report(result) -> None:
    """The end-of-run table; exit 1 for a diverged run, 130 for Ctrl-C."""
    from dlcli.report.runs import print_run

    print_run(result.summary, str(result.run_dir))
    if result.status == Status.DIVERGED:
        raise typer.Exit(EXIT_RUN_FAILED)
    if result.status == Status.INTERRUPTED:
        raise typer.Exit(EXIT_INTERRUPTED)


@app.command()
@user_errors_exit_2
def evaluate(
    run_dir: Path = typer.Argument(..., help="A run directory written by `dlcli train`.", show_default=False),
    split: str = typer.Option("test", "--split", help="test | train | val"),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Evaluate on other data: data.KEY=VALUE (repeatable).",
                                             show_default=False),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N | mps"),
) -> None:
    """Reload a run's model and report loss, error, per-class table, confusion matrix and calibration.

    Example: dlcli evaluate results/quickstart/20261127-101500-3f2a1c --split test --set data.n_test=500
    """
    from dlcli.analysis.evaluate import evaluate_run
    from dlcli.layout import EVALUATION
    from dlcli.report.runs import print_evaluation

    evaluation = evaluate_run(run_dir, split, list(set_ or []), device)
    print_evaluation(evaluation, str(run_dir / EVALUATION))


@app.command("lr-find")
@user_errors_exit_2
def lr_find(
    config: Path = typer.Argument(..., help="The experiment's YAML file.", show_default=False),
    min_lr: float = typer.Option(1e-6, "--min", min=0, help="optim.lr at the first update (scaled with the batch as in training, under optim.lr_scaling)."),
    max_lr: float = typer.Option(10.0, "--max", min=0, help="optim.lr at the last update."),
    steps: int = typer.Option(200, "--steps", min=2, help="Updates, the lr rising exponentially over them."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help=SET_HELP, show_default=False),
    out: Path = typer.Option(Path("results"), "--out", help="Writes OUT/<name>/lr_find-<time>/lr_find.csv."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also write the loss-against-lr figure (PNG, SVG or PDF).",
                                        show_default=False),
) -> None:
    """The LR range test: raise the lr step by step from the initial weights; suggest a good one.

    Example: dlcli lr-find configs/quickstart.yaml --min 1e-5 --max 10 --plot docs/lr_find.png
    """
    from dlcli.analysis.lr_find import lr_find as range_test
    from dlcli.config.load import load_experiment
    from dlcli.layout import check_output_root
    from dlcli.report.runs import print_lr_find

    check_plot_path(plot)
    experiment = load_experiment(config, list(set_ or []))
    check_output_root(out)
    with removed_if_unwritable(out, experiment.name):
        result = range_test(experiment, out, min_lr, max_lr, steps)
    if plot is not None:
        from dlcli.report.figures import plot_lr_find

        plot_lr_find(result.rows, result.suggested_lr, plot)
    print_lr_find(result, str(result.run_dir), plot)
