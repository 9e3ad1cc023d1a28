"""A bias–variance study's plan: for every grid point, K training sets × S seeds, each an ordinary
sweep run. Every model sees the same test set (`data.seed` is held fixed); `data.resample` draws the
K training sets. Training is the sweep's (resumable: finished runs are skipped); the decomposition is
`dlcli.analysis.bias_variance`'s.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dlcli.config.load import load_experiment
from dlcli.config.data_params import GENERATED
from dlcli.config.sweep import Sweep, load_sweep, read_sweep_section
from dlcli.errors import UserError
from dlcli.layout import csv_cell

DRAWS = ("fresh", "disjoint", "bootstrap")  # how the K training sets are drawn (--split)
INDEX_KEY = "data.resample.index"  # the axis that picks the training set
RESERVED = {"--grid": ("seed", "data.seed", "data.resample"),  # keys the command sets itself
            "--set": ("data.resample",)}  # --set seed / data.seed choose the one test set


@dataclass
class Study:
    sweep: Sweep  # every run: grid point × training set (data.resample.index) × seed
    keys: list[str]  # the swept keys that name a grid point
    trials: int  # K training sets per grid point
    seeds: int  # S seeds per training set
    draw: str  # how the training sets are drawn: fresh | disjoint | bootstrap


def load_study(config_path: str | Path, trials: int, seeds: int | None = None, grid: list[str] = (),
               split: str | None = None, overrides: list[str] = ()) -> Study:
    """Validate the request and every run of it; all problems are reported together, nothing runs."""
    config_path = Path(config_path)
    problems = []
    if trials < 2:
        problems.append(f"--trials: {trials}: at least 2 training sets are needed to measure a variance")
    if seeds is not None and seeds < 1:
        problems.append(f"--seeds: {seeds}: at least 1")
    if split is not None and split not in DRAWS:
        problems.append(f"--split: unknown method {split!r} (allowed: {', '.join(DRAWS)})")
    for option, items in (("--grid", grid), ("--set", overrides)):
        for item in items:
            key = item.partition("=")[0].strip()
            if _is_under(key, RESERVED[option]):
                problems.append(f"{option} {key}: bias-variance sets it itself "
                                "(seeds with --seeds, training sets with --trials and --split)")
    try:
        section = read_sweep_section(config_path)
        swept = {"grid": section.grid, "zip": section.zip}
    except UserError as error:  # said again by load_sweep below, with every other problem
        problems, swept = problems + error.problems, {}
    problems += [f"{config_path}: sweep.{kind}.{key}: bias-variance sets it itself"
                 for kind, axes in swept.items() for key in axes if _is_under(key, RESERVED["--grid"])]
    try:
        base = load_experiment(config_path, overrides)
    except UserError as error:
        raise UserError(problems + error.problems) from None
    method = split or ("fresh" if base.data.name in GENERATED else "disjoint")
    if method == "fresh" and base.data.name not in GENERATED:
        problems.append(f"--split fresh: fresh draws need a generated data set ({', '.join(GENERATED)}); "
                        f"{base.data.name} is fixed: use --split disjoint or bootstrap")
    if method == "disjoint" and base.data.name in GENERATED:
        problems.append(f"--split disjoint: cuts a fixed data set's training samples into {trials} slices; "
                        f"{base.data.name} is generated: draw each training set fresh (--split fresh, its default) "
                        "or bootstrap it (--split bootstrap)")
    if problems:
        raise UserError(problems)
    data_seed = base.seed if base.data.seed is None else base.data.seed  # one test set for every run
    sweep = load_sweep(config_path, [*grid, f"{INDEX_KEY}=range(0,{trials})"], seeds=seeds,
                       overrides=[*overrides, f"data.seed={data_seed}", f"data.resample.method={method}",
                                  f"data.resample.count={trials}"])
    keys = [key for key in sweep.spec.keys if key not in ("seed", INDEX_KEY)]
    return Study(sweep, keys, trials, sweep.spec.seeds or 1, method)


def _is_under(key: str, sections: tuple[str, ...]) -> bool:
    return any(key == section or key.startswith(section + ".") for section in sections)


def grid_points(study: Study) -> dict[str, list[int]]:
    """{grid point label: the indices of its K × S runs}, in the sweep's order."""
    groups: dict[str, list[int]] = {}
    for index, point in enumerate(study.sweep.points):
        label = "  ".join(f"{key}={csv_cell(point[key])}" for key in study.keys) or "all runs"
        groups.setdefault(label, []).append(index)
    return groups
