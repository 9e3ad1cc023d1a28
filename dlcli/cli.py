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


@app.command()
@user_errors_exit_2
def sweep(
    config: Path = typer.Argument(..., help="The base experiment's YAML file (may hold a sweep: section).",
                                  show_default=False),
    grid: Optional[List[str]] = typer.Option(None, "--grid", help="A grid axis KEY=V1,V2,... (axes multiply); "
                                             "values may be range(a,b[,step]) or log(a,b,n).", show_default=False),
    zip_: Optional[List[str]] = typer.Option(None, "--zip", help="An axis KEY=V1,V2,... that varies together with "
                                             "the other --zip axes.", show_default=False),
    seeds: Optional[int] = typer.Option(None, "--seeds", min=1, help="Repeat every point with seeds 0..N-1."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help=SET_HELP, show_default=False),
    workers: int = typer.Option(1, "--workers", min=1, help="Points trained at once in local processes."),
    out: Path = typer.Option(Path("results"), "--out", help="Output root: the sweep goes to OUT/<name>/."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check every point, count the runs, estimate the "
                                 "time; write nothing."),
    backend: str = typer.Option("local", "--backend", help="local | ray (each point a Ray task)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address, as ray.init takes it "
                                          "(default: start a local Ray instance)."),
    gpus_per_run: Optional[float] = typer.Option(None, "--gpus-per-run", min=0, help="GPUs per Ray task."),
) -> None:
    """Train every point of a grid; resumable: run it again to finish what is missing.

    Example: dlcli sweep configs/batch_lr_grid.yaml --grid optim.lr=log(0.01,1,5) --seeds 3 --workers 2
    """
    from dlcli.render import print_dry_run, print_sweep_result, sweep_progress
    from dlcli.runner import check_points, run_sweep, sweep_dir_of
    from dlcli.sweep import load_sweep

    spec = load_sweep(config, list(grid or []), list(zip_ or []), seeds, list(set_ or []))
    sweep_dir_of(spec, out)
    estimate = check_points(spec, estimate=dry_run)
    if dry_run:
        print_dry_run(spec, estimate)
        return
    with sweep_progress(len(spec.points)) as on_result:
        try:
            result = run_sweep(spec, out, workers, backend, address, gpus_per_run, on_result=on_result)
        except KeyboardInterrupt:
            result = None
    if result is None:
        from dlcli.render import console

        console.print("[yellow]sweep interrupted:[/] run the same command again to resume")
        raise typer.Exit(EXIT_INTERRUPTED)
    print_sweep_result(result)
    if result.failed:
        raise typer.Exit(EXIT_RUN_FAILED)


def main() -> None:
    app()
