"""A search: a base config, a space of distributions (the sweep axes), and how to sample it.

`load_search` reads the `sweep:` section and the command line as `load_sweep` does, turns every axis
into a distribution (a list of values is a choice), and checks the config at points that take every
bound and every choice, so a mistake is reported before anything runs. Trials are chosen on the
validation split, so a search needs `train.val_fraction` > 0.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from dlcli.config.flat import NOT_HASHED, flatten
from dlcli.config.load import load_experiment
from dlcli.config.schema import Experiment
from dlcli.config.search_space import Distribution, axis_distribution, probe_points
from dlcli.config.sweep import SweepSection, cli_axes, point_problems, read_sweep_section, section_axes
from dlcli.errors import UserError

METHODS = ("random", "qmc", "tpe")


@dataclass(frozen=True)
class SearchSettings:
    """How a search samples and stops trials (the `sweep:` section's keys; the command line overrides)."""

    method: str = "random"  # random | qmc | tpe
    trials: int = 16
    seed: int = 0  # the sampler's seed
    batch: int | None = None  # trials asked at once (None: dlcli.sweep.search.batch_size)
    prune: str = "none"  # none | asha
    min_epochs: int = 1  # epochs before the first rung
    eta: int = 3  # 1/eta of the trials go on at each rung
    metric: str = "val_error"  # val_error | val_loss

    def rungs(self, epochs: int) -> list[int]:
        """The epochs at which successive halving compares trials: min_epochs·eta^k before the last."""
        if self.prune != "asha":
            return []
        rungs, epoch = [], self.min_epochs
        while epoch < epochs:
            rungs.append(epoch)
            epoch *= self.eta
        return rungs

    def epochs_of_batch(self, size: int, epochs: int) -> int:
        """The epochs a batch of `size` trials trains when it is halved alone and no trial diverges: at
        each rung the best max(1, n // eta) go on (dlcli.sweep.trials.Rungs)."""
        trained, going, start = 0, size, 0
        for stop in [*self.rungs(epochs), epochs]:
            trained += going * (stop - start)
            going, start = max(1, going // self.eta), stop
        return trained


@dataclass
class Search:
    """A base config, the space each trial is sampled from, and the settings; `probes` are the
    experiments checked before anything runs."""

    config_path: Path
    space: dict[str, Distribution]
    settings: SearchSettings
    overrides: list[str] = field(default_factory=list)
    probes: list[Experiment] = field(default_factory=list)
    _experiments: dict[str, Experiment] = field(default_factory=dict, repr=False)  # by point, read once

    def point(self, sampled: dict[str, Any]) -> dict[str, Any]:
        """A trial's values (as Optuna sampled them) as config values, in the space's order."""
        return {key: distribution.value(sampled[key]) for key, distribution in self.space.items()}

    def experiment(self, point: dict[str, Any]) -> Experiment:
        """The trial's experiment: the config file with the overrides and the point's values."""
        key = json.dumps(point, sort_keys=True)
        if key not in self._experiments:
            self._experiments[key] = load_experiment(self.config_path, self.overrides, assignments=point)
        return self._experiments[key]

    def spec(self) -> dict[str, Any]:
        """sweep.yaml's content: what a rerun must match to continue this search (`base`: the values
        every trial shares, from the config file and --set, as a hash)."""
        return {"config": str(self.config_path), "overrides": list(self.overrides), "base": self.base_hash(),
                **asdict(self.settings), "space": {key: str(distribution) for key, distribution in self.space.items()}}

    def base_hash(self) -> str:
        """A content hash of the resolved config without the keys the search samples."""
        flat = flatten(self.probes[0].model_dump(mode="json", exclude=NOT_HASHED))
        shared = {key: value for key, value in flat.items() if key not in self.space}
        return hashlib.sha256(json.dumps(shared, sort_keys=True).encode()).hexdigest()[:12]


def sweep_method(config_path: str | Path, method: str | None) -> str:
    """`grid` or a search method: the command line's, else the config's `sweep.method`."""
    return method or read_sweep_section(Path(config_path)).method


def load_search(config_path: str | Path, grid: list[str] = (), overrides: list[str] = (),
                **options: Any) -> Search:
    """The search a config's sweep section and the command line describe; `options` are SearchSettings
    fields given on the command line (None: the config's, else the default)."""
    config_path = Path(config_path)
    section = read_sweep_section(config_path)
    settings = _settings(section, options)
    if section.zip or section.seeds:
        raise UserError(f"{config_path}: sweep.zip and sweep.seeds are for grids; a search samples its `grid` axes")
    axes = {**section_axes(section.grid, f"{config_path}: sweep.grid"), **cli_axes(list(grid), "--grid")}
    if not axes:
        raise UserError("a search needs a space: --grid KEY=loguniform(a,b) | uniform(a,b) | choice(...), "
                        "or a sweep.grid section")
    problems = []
    space = {}
    for key, values in axes.items():
        try:
            space[key] = axis_distribution(key, values)
        except UserError as error:
            problems += error.problems
    if settings.prune == "asha" and "train.epochs" in space:
        problems.append("train.epochs: successive halving spends epochs as its budget, so a search with it cannot "
                        "sample them; search them with --prune none")
    if problems:
        raise UserError(problems)
    search = Search(config_path, space, settings, list(overrides))
    search.probes = _checked(search)
    return search


def _settings(section: SweepSection, options: dict[str, Any]) -> SearchSettings:
    values = {"method": section.method, "trials": section.trials, "seed": section.sampler_seed,
              "batch": section.batch, "prune": section.prune, "min_epochs": section.min_epochs,
              "eta": section.eta, "metric": section.metric}
    values |= {key: value for key, value in options.items() if value is not None}
    settings = replace(SearchSettings(), **{key: value for key, value in values.items() if value is not None})
    checks = [(settings.method in METHODS, f"--method {settings.method}: a search is one of {', '.join(METHODS)}"),
              (settings.prune in ("none", "asha"), f"--prune {settings.prune}: allowed: none, asha"),
              (settings.metric in ("val_error", "val_loss"), f"--metric {settings.metric}: allowed: val_error, "
                                                               "val_loss (trials are chosen on validation)"),
              (settings.trials >= 1 and (settings.batch or 1) >= 1, "--trials and --batch: at least 1"),
              (settings.min_epochs >= 1 and settings.eta >= 2, "--min-epochs must be ≥ 1 and --eta ≥ 2")]
    problems = [problem for holds, problem in checks if not holds]
    if problems:
        raise UserError(problems)
    return settings


def _checked(search: Search) -> list[Experiment]:
    """The config at the probe points, validated; all problems at once. A search without a validation
    split is refused: choosing on the test split would make its test error an optimistic estimate."""
    points = probe_points(search.space)
    experiments, problems = [], {}
    for index, point in enumerate(points):
        try:
            experiments.append(search.experiment(point))
        except UserError as error:
            for problem in error.problems:
                problems.setdefault(problem, []).append(index)
    if problems:
        raise UserError([line.replace("point", "probe point") for line in point_problems(problems, len(points))])
    if any(experiment.train.val_fraction <= 0 for experiment in experiments):
        raise UserError("train.val_fraction: a search chooses trials on a validation split, never the test "
                        "split; hold one out, e.g. --set train.val_fraction=0.2")
    return experiments


def halving_without_rungs(search: Search) -> str | None:
    """What to say when successive halving was asked for and has no rung before the last epoch (a short
    trial run of a config made for longer ones, say): every trial then trains to the end."""
    settings, epochs = search.settings, search.probes[0].train.epochs
    if settings.prune != "asha" or settings.rungs(epochs):
        return None
    return (f"--min-epochs {settings.min_epochs} is not before the last epoch (train.epochs: {epochs}): successive "
            "halving has no rung, and every trial trains to the end")
