"""The sweep command: grids of runs, resumable point by point."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from dlcli.cli.app import (EXIT_RUN_FAILED, SET_HELP, TAG_HELP, app, exit_interrupted,
                           sigterm_interrupts, user_errors_exit_2)
from dlcli.components.write_failures import removed_if_unwritable


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
    force: bool = typer.Option(False, "--force", help="Train points even when a model or the data look too large "
                               "for the device's free memory."),
    vectorize: bool = typer.Option(True, "--vectorize/--no-vectorize", help="Train points that differ only in "
                                   "seed, lr, momentum, decay, L1/L2, dropout rate or data draw together as "
                                   "one stacked model (same numbers, same files, much faster for small models)."),
    tag: Optional[List[str]] = typer.Option(None, "--tag", help=TAG_HELP, show_default=False),
) -> None:
    """Train every point of a grid; resumable: run it again to finish what is missing.

    Example: dlcli sweep configs/batch_lr_grid.yaml --grid optim.lr=log(0.01,1,5) --seeds 3 --workers 2
    """
    from dlcli.components.tags import parse_assignments
    from dlcli.config.sweep import load_sweep
    from dlcli.layout import check_output_root
    from dlcli.report.console import print_note
    from dlcli.report.sweeps import print_dry_run, print_sweep_result, sweep_progress
    from dlcli.sweep.backends import check_backend
    from dlcli.sweep.runner import estimate_sweep, run_sweep

    tags = parse_assignments(tag or [], "--tag")
    spec = load_sweep(config, list(grid or []), list(zip_ or []), seeds, list(set_ or []))
    check_backend(backend)
    check_output_root(out)
    if dry_run:
        print_dry_run(spec, estimate_sweep(spec, vectorize, force))
        return
    with sweep_progress(len(spec.points)) as progress, removed_if_unwritable(out, spec.experiments[0].name), \
            sigterm_interrupts():
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
