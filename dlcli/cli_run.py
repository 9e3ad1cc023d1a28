"""Commands about single runs: train, evaluate, lr-find."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from dlcli.cli_common import EXIT_INTERRUPTED, EXIT_RUN_FAILED, SET_HELP, app, user_errors_exit_2
from dlcli.errors import UserError


@app.command()
@user_errors_exit_2
def train(
    config: Path = typer.Argument(..., help="The experiment's YAML file.", show_default=False),
    set_: Optional[List[str]] = typer.Option(None, "--set", help=SET_HELP, show_default=False),
    out: Path = typer.Option(Path("results"), "--out", help="Output root: runs go to OUT/<name>/<run-id>/."),
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N | mps (overrides the config)."),
    print_config: bool = typer.Option(False, "--print-config", help="Print the resolved config and exit."),
) -> None:
    """Train one model and log train and test loss and error per epoch.

    Example: dlcli train configs/quickstart.yaml --set optim.lr=0.05 --set model.hidden=[64,64]
    """
    from dlcli.config import load_experiment, to_yaml
    from dlcli.render import epoch_progress, print_run
    from dlcli.results import check_output_root

    experiment = load_experiment(config, list(set_ or []), {"device": device} if device is not None else None,
                                 "--device")
    if print_config:
        sys.stdout.write(to_yaml(experiment))  # verbatim: YAML must not be wrapped or styled
        return
    check_output_root(out)
    from dlcli.train import prepare, run

    try:
        prepared = prepare(experiment)
    except UserError as error:
        raise UserError([f"{config}: {problem}" for problem in error.problems]) from None
    with epoch_progress(experiment.name, experiment.train.epochs) as on_epoch:
        result = run(prepared, out, on_epoch=on_epoch)
    print_run(result.summary, str(result.run_dir))
    if result.status == "diverged":
        raise typer.Exit(EXIT_RUN_FAILED)
    if result.status == "interrupted":
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
    from dlcli.evaluate import evaluate_run
    from dlcli.render import print_evaluation

    evaluation = evaluate_run(run_dir, split, list(set_ or []), device)
    print_evaluation(evaluation, str(run_dir / "evaluation.json"))


@app.command("lr-find")
@user_errors_exit_2
def lr_find(
    config: Path = typer.Argument(..., help="The experiment's YAML file.", show_default=False),
    min_lr: float = typer.Option(1e-6, "--min", min=0, help="The learning rate of the first update."),
    max_lr: float = typer.Option(10.0, "--max", min=0, help="The learning rate of the last update."),
    steps: int = typer.Option(200, "--steps", min=2, help="Updates, the lr rising exponentially over them."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help=SET_HELP, show_default=False),
    out: Path = typer.Option(Path("results"), "--out", help="Writes OUT/<name>/lr_find-<time>/lr_find.csv."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also write the loss-against-lr figure (PNG).",
                                        show_default=False),
) -> None:
    """The LR range test: raise the lr step by step from the initial weights; suggest a good one.

    Example: dlcli lr-find configs/quickstart.yaml --min 1e-5 --max 10 --plot docs/lr_find.png
    """
    import time

    from dlcli.config import load_experiment, to_yaml
    from dlcli.lr_find import COLUMNS, lr_range_test, summary_of
    from dlcli.render import print_lr_find
    from dlcli.results import MetricsLog, atomic_write_json, atomic_write_text, check_output_root

    if not 0 < min_lr < max_lr:
        raise UserError(f"--min {min_lr} / --max {max_lr}: need 0 < min < max")
    if plot is not None and not plot.parent.is_dir():
        raise UserError(f"--plot: folder {plot.parent} does not exist")
    experiment = load_experiment(config, list(set_ or []))
    check_output_root(out)
    result = lr_range_test(experiment, min_lr, max_lr, steps)
    run_dir = out / experiment.name / f"lr_find-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", to_yaml(experiment))
    log = MetricsLog(run_dir / "lr_find.csv", COLUMNS)
    log.append_many(result.rows)
    log.close()
    atomic_write_json(run_dir / "lr_find.json", summary_of(result))
    if plot is not None:
        from dlcli.plot import plot_lr_find

        plot_lr_find(result.rows, result.suggested_lr, plot)
    print_lr_find(result, str(run_dir), plot)
