"""The sweep command: grids of runs, resumable point by point."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from dlcli.cli.app import (EXIT_RUN_FAILED, SET_HELP, TAG_HELP, app, exit_interrupted,
                           training_command, user_errors_exit_2)
from dlcli.components.write_failures import removed_if_unwritable
from dlcli.errors import UserError


@app.command()
@user_errors_exit_2
def sweep(
    config: Path = typer.Argument(..., help="The base experiment's YAML file (may hold a sweep: section).",
                                  show_default=False),
    grid: Optional[List[str]] = typer.Option(None, "--grid", help="A grid axis KEY=V1,V2,... (axes multiply); "
                                             "values may be range(a,b[,step]) or log(a,b,n); a search's axis may "
                                             "be loguniform(a,b), uniform(a,b), intuniform(a,b) or choice(V1,...).",
                                             show_default=False),
    zip_: Optional[List[str]] = typer.Option(None, "--zip", help="An axis KEY=V1,V2,... that varies together with "
                                             "the other --zip axes.", show_default=False),
    seeds: Optional[int] = typer.Option(None, "--seeds", min=1, help="Repeat every point with seeds 0..N-1."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help=SET_HELP, show_default=False),
    workers: int = typer.Option(1, "--workers", min=1, help="Local processes training at once: a grid's points, "
                                "or a search's stacks (shared out between them, and again at each rung)."),
    out: Path = typer.Option(Path("results"), "--out", help="Output root: the sweep goes to OUT/<name>/."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check every point, count the runs, estimate the "
                                 "time; write nothing."),
    backend: str = typer.Option("local", "--backend", help="local | ray: a grid's points as Ray tasks, a search's "
                                "stacks in Ray actors."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address, as ray.init takes it "
                                          "(default: start a local Ray instance)."),
    gpus_per_run: Optional[float] = typer.Option(None, "--gpus-per-run", min=0, help="GPUs per Ray task."),
    force: bool = typer.Option(False, "--force", help="Train points even when a model or the data look too large "
                               "for the device's free memory."),
    vectorize: bool = typer.Option(True, "--vectorize/--no-vectorize", help="Train points that differ only in "
                                   "seed, lr, momentum, decay, L1/L2, dropout rate or data draw together as "
                                   "one stacked model (same numbers, same files, much faster for small models)."),
    tag: Optional[List[str]] = typer.Option(None, "--tag", help=TAG_HELP, show_default=False),
    method: Optional[str] = typer.Option(None, "--method", help="grid (every point) | random | qmc | tpe: a "
                                         "search of --trials points sampled from the axes, chosen on validation "
                                         "(default: sweep.method, else grid).", show_default=False),
    trials: Optional[int] = typer.Option(None, "--trials", min=1, help="A search's number of trials.",
                                         show_default=False),
    seed: Optional[int] = typer.Option(None, "--seed", help="A search's sampler seed (default 0).",
                                       show_default=False),
    batch: Optional[int] = typer.Option(None, "--batch", min=1, help="Trials asked at once and trained as "
                                        "stacks (default: a full stack; tpe: 16, so that it learns between batches).",
                                        show_default=False),
    prune: Optional[str] = typer.Option(None, "--prune", help="none | asha: successive halving stops the worst "
                                        "trials at epochs r, r·eta, r·eta², ... as pruned.", show_default=False),
    min_epochs: Optional[int] = typer.Option(None, "--min-epochs", min=1, help="The first rung r of --prune asha "
                                             "(default 1).", show_default=False),
    eta: Optional[int] = typer.Option(None, "--eta", min=2, help="--prune asha keeps 1/eta at each rung "
                                      "(default 3).", show_default=False),
    metric: Optional[str] = typer.Option(None, "--metric", help="What a search minimizes: val_error (default) | "
                                         "val_loss, on train.val_fraction's split.", show_default=False),
) -> None:
    """Train every point of a grid, or search a space; resumable: run it again to finish what is missing.

    Example: dlcli sweep configs/search_mlp.yaml --method tpe --trials 32 --prune asha
    """
    from dlcli.components.tags import parse_assignments
    from dlcli.config.sweep import load_sweep
    from dlcli.layout import check_output_root
    from dlcli.report.console import print_note
    from dlcli.report.sweeps import print_dry_run, print_sweep_result, sweep_progress
    from dlcli.sweep.backends import check_backend
    from dlcli.sweep.runner import check_not_a_search, estimate_sweep, run_sweep, sweep_dir_of

    from dlcli.config.search import sweep_method

    tags = parse_assignments(tag or [], "--tag")
    options = {"method": method, "trials": trials, "seed": seed, "batch": batch, "prune": prune,
               "min_epochs": min_epochs, "eta": eta, "metric": metric}
    if sweep_method(config, method) != "grid":
        _search(config, list(grid or []), zip_ or seeds, list(set_ or []), options, out, dry_run, force, vectorize,
                tags, {"workers": workers, "backend": backend, "address": address, "gpus_per_run": gpus_per_run})
        return
    given = [f"--{key.replace('_', '-')}" for key, value in options.items() if value is not None and key != "method"]
    if given:
        raise UserError(f"{', '.join(given)}: a grid runs every point; search with --method random, qmc or tpe")
    spec = load_sweep(config, list(grid or []), list(zip_ or []), seeds, list(set_ or []))
    check_backend(backend)
    check_output_root(out)
    if dry_run:
        check_not_a_search(sweep_dir_of(spec, out))  # as the sweep itself would
        print_dry_run(spec, estimate_sweep(spec, vectorize, force))
        return
    with sweep_progress(len(spec.points)) as progress, removed_if_unwritable(out, spec.experiments[0].name), \
            training_command():
        try:
            result = run_sweep(spec, out, workers, backend, address, gpus_per_run,
                               on_result=progress.finished, on_skipped=progress.skipped, vectorize=vectorize,
                               on_note=print_note, force=force, tags=tags)
        except KeyboardInterrupt:
            result = None
    if result is None:
        exit_interrupted("sweep interrupted")
    print_sweep_result(result)
    if result.failed:
        raise typer.Exit(EXIT_RUN_FAILED)


def _search(config: Path, grid: list[str], replicated: bool, overrides: list[str], options: dict, out: Path,
            dry_run: bool, force: bool, vectorize: bool, tags: dict[str, str], where: dict) -> None:
    """`dlcli sweep --method random|qmc|tpe`: sample, train in stacked batches, report the chosen trial."""
    from dlcli.config.search import load_search
    from dlcli.layout import check_output_root
    from dlcli.report.console import print_note
    from dlcli.report.search import print_search_plan, print_search_result
    from dlcli.report.sweeps import sweep_progress
    from dlcli.sweep.backends import check_backend
    from dlcli.sweep.search import batch_size, check_probes, run_search
    from dlcli.sweep.search_folder import check_same_search
    from dlcli.sweep.trials import optuna_module

    if replicated:
        raise UserError("--zip and --seeds are for grids: a search samples its --grid axes")
    check_backend(where["backend"])
    search = load_search(config, grid, overrides, **options)
    optuna_module()  # installed? (before anything is written)
    check_output_root(out)
    check_probes(search, force)
    if dry_run:
        check_same_search(out / search.probes[0].name, search)  # as the search itself would
        print_search_plan(search, batch_size(search.settings))
        return
    with sweep_progress(search.settings.trials) as progress, removed_if_unwritable(out, search.probes[0].name), \
            training_command():
        try:
            result = run_search(search, out, on_result=progress.finished, on_skipped=progress.skipped,
                                on_note=print_note, vectorize=vectorize, force=force, tags=tags, **where)
        except KeyboardInterrupt:
            result = None
    if result is None:
        exit_interrupted("search interrupted")
    print_search_result(result)
    if any(row["status"] == "failed" for row in result.rows):
        raise typer.Exit(EXIT_RUN_FAILED)
