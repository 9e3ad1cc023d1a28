"""The command line: a thin layer that parses arguments, calls the API and prints with `render`.

torch is imported inside the commands that train, so `dlcli --help` stays fast.
"""
from __future__ import annotations

import functools
import sys
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
    from dlcli.results import check_output_root
    from dlcli.runner import check_backend, check_points, run_sweep, sweep_dir_of
    from dlcli.sweep import load_sweep

    spec = load_sweep(config, list(grid or []), list(zip_ or []), seeds, list(set_ or []))
    check_backend(backend)
    check_output_root(out)
    sweep_dir_of(spec, out)
    estimate = check_points(spec, estimate=dry_run)
    if dry_run:
        print_dry_run(spec, estimate)
        return
    with sweep_progress(len(spec.points)) as progress:
        try:
            result = run_sweep(spec, out, workers, backend, address, gpus_per_run,
                               on_result=progress.finished, on_skipped=progress.skipped)
        except KeyboardInterrupt:
            result = None
    if result is None:
        from dlcli.render import console

        console.print("[yellow]sweep interrupted:[/] run the same command again to resume")
        raise typer.Exit(EXIT_INTERRUPTED)
    print_sweep_result(result)
    if result.failed:
        raise typer.Exit(EXIT_RUN_FAILED)


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
    MetricsLog(run_dir / "lr_find.csv", COLUMNS).append_many(result.rows)
    atomic_write_json(run_dir / "lr_find.json", summary_of(result))
    if plot is not None:
        from dlcli.plot import plot_lr_find

        plot_lr_find(result.rows, result.suggested_lr, plot)
    print_lr_find(result, str(run_dir), plot)


@app.command()
@user_errors_exit_2
def compare(
    paths: List[Path] = typer.Argument(..., help="Runs, sweep directories or results roots.", show_default=False),
    sort: str = typer.Option("test_error", "--sort", help="Sort column; -COLUMN for descending."),
    where: Optional[List[str]] = typer.Option(None, "--where", help="Keep runs where COLUMN OP VALUE holds, "
                                              "e.g. optim.lr>=0.1 or status==completed (repeatable).",
                                              show_default=False),
    columns: Optional[str] = typer.Option(None, "--columns", help="Metric columns to show, comma-separated.",
                                          show_default=False),
    by: Optional[str] = typer.Option(None, "--by", help="Group runs by these keys (mean ± std over the rest).",
                                     show_default=False),
    pivot: Optional[str] = typer.Option(None, "--pivot", help="ROW_KEY,COLUMN_KEY: a heatmap of --value.",
                                        show_default=False),
    value: str = typer.Option("test_error", "--value", help="The column a pivot shows."),
    curves: bool = typer.Option(False, "--curves", help="Per-epoch train and test error of the selected runs."),
    fmt: str = typer.Option("table", "--format", help="table | csv | markdown | json"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also write a matplotlib figure (PNG).",
                                        show_default=False),
) -> None:
    """Compare runs: train vs test error side by side, seed replicates as mean ± std, heatmaps, curves.

    Example: dlcli compare results/batch_lr_grid --pivot optim.batch_size,optim.lr --plot docs/grid.png
    """
    from dlcli import compare as runs

    if fmt not in ("table", "csv", "markdown", "json"):
        raise UserError(f"--format: unknown format {fmt!r} (allowed: table, csv, markdown, json)")
    if plot is not None and not plot.parent.is_dir():
        raise UserError(f"--plot: folder {plot.parent} does not exist")
    frame = runs.where(runs.load_runs(paths), list(where or []))
    if frame.empty:
        raise UserError("--where: no run matches")
    if pivot is not None:
        _compare_pivot(frame, pivot, value, fmt, plot)
    elif curves:
        _compare_curves(frame, fmt, plot)
    else:
        _compare_table(frame, sort, _split(columns), _split(by), fmt, plot)


def _compare_table(frame, sort: str, columns: list[str] | None, by: list[str] | None, fmt: str, plot) -> None:
    from dlcli import compare as runs
    from dlcli.render import console, format_table, print_comparison, print_constant_keys

    table, keys, grouped = runs.comparison(frame, by, columns, sort)
    if fmt != "table":
        console.print(format_table(table, fmt), end="", markup=False, highlight=False, soft_wrap=True)
    else:
        print_constant_keys(runs.varying_keys(frame)[1], len(frame))
        print_comparison(table, keys, grouped, columns or runs.METRICS)
    if plot is not None:
        from dlcli.plot import plot_against_key

        swept = [key for key in (by or runs.varying_keys(frame)[0]) if key != "seed"]
        numeric = [key for key in swept if frame[key].map(lambda v: isinstance(v, (int, float))).any()]
        if not numeric:
            raise UserError("--plot: no swept numeric key to plot against (try --curves or --pivot)")
        plot_against_key(frame, numeric[0], [key for key in swept if key != numeric[0]], plot)
        console.print(f"wrote {plot}", soft_wrap=True)


def _compare_pivot(frame, pivot: str, value: str, fmt: str, plot) -> None:
    from dlcli import compare as runs
    from dlcli.render import console, format_table, print_pivot

    keys = _split(pivot) or []
    if len(keys) != 2:
        raise UserError(f"--pivot {pivot}: expected ROW_KEY,COLUMN_KEY, e.g. optim.batch_size,optim.lr")
    table, failed = runs.pivot(frame, keys[0], keys[1], value)
    if fmt != "table":
        flat = table.astype(object).where(~failed, "diverged").reset_index()
        flat.columns = [str(column) for column in flat.columns]
        console.print(format_table(flat, fmt), end="", markup=False, highlight=False, soft_wrap=True)
    else:
        print_pivot(table, failed, value)
    if plot is not None:
        from dlcli.plot import plot_heatmap

        plot_heatmap(table, failed, value, plot)
        console.print(f"wrote {plot}", soft_wrap=True)


def _compare_curves(frame, fmt: str, plot) -> None:
    from dlcli import compare as runs
    from dlcli.render import console, format_table, print_curves

    curves = runs.read_curves(frame)
    if curves.empty:
        raise UserError("--curves: the selected runs have no metrics.csv")
    varying = runs.varying_keys(frame)[0]
    ordered = sorted((row for _, row in frame.iterrows()), key=lambda row: [runs.sort_key(row[k]) for k in varying])
    labels = {row["run_id"]: runs.label_of(row, varying) for row in ordered}
    if fmt != "table":
        console.print(format_table(curves, fmt), end="", markup=False, highlight=False, soft_wrap=True)
    else:
        print_curves(curves, labels)
    if plot is not None:
        from dlcli.plot import plot_curves

        plot_curves(curves, labels, frame, plot)
        console.print(f"wrote {plot}", soft_wrap=True)


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


def main() -> None:
    app()
