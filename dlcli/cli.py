"""The command line: a thin layer that parses arguments, calls the API and prints with `render`.

torch is imported inside the commands that train, so `dlcli --help` stays fast.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, List, Optional

import typer

from dlcli.errors import UserError

app = typer.Typer(
    name="dlcli",
    help="Train and evaluate small PyTorch models from YAML, train and test error side by side: how do we know a model is good?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

EXIT_USER_ERROR = 2
EXIT_RUN_FAILED = 1  # diverged
EXIT_INTERRUPTED = 130  # as a shell reports Ctrl-C


def user_errors_exit_2(command: Callable) -> Callable:
    """Turn a `UserError` into one line per problem on stderr and exit status 2, no traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except UserError as error:
            from dlcli.render import print_problems

            print_problems(error.problems)
            raise typer.Exit(EXIT_USER_ERROR) from None

    return wrapper


SET_HELP = "Override a config key, KEY=VALUE with a YAML value (repeatable): --set optim.lr=0.05"


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
    from dlcli.render import console, epoch_progress, print_run

    overrides = list(set_ or []) + ([f"device={device}"] if device is not None else [])
    experiment = load_experiment(config, overrides)
    if print_config:
        console.print(to_yaml(experiment), end="", markup=False, highlight=False)
        return
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
    split: str = typer.Option("test", "--split", help="test | train"),
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


def main() -> None:
    app()
