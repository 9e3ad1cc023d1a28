"""A sweep: which points to run. Grid axes multiply, zip axes vary together, seeds repeat each point.

Axes come from the config's `sweep:` section and from the command line (which adds axes or replaces
one of the same key). Values are YAML (`1,8,32,full`, `[64,64],[128,128]`) or generators:
`range(a,b[,step])` and `log(a,b,n)` (n log-spaced values from a to b inclusive). A search
(`method: random | qmc | tpe`) samples its axes instead: `loguniform(a,b)`, `uniform(a,b)`,
`intuniform(a,b)`, `choice(v1,v2,...)` or a list of values (see dlcli.config.search_space).
"""
from __future__ import annotations

import difflib
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError

from dlcli.config.load import load_experiment, parse_value, read_yaml_mapping
from dlcli.config.schema import Experiment
from dlcli.config.search_space import grid_values, parse_distribution
from dlcli.config.types import Integer, Section
from dlcli.errors import UserError


class SweepSection(Section):
    grid: Annotated[dict[str, list[Any] | str | int | float], Field(
        description="dotted key → values (a list, or text such as `1,8,full` or `log(0.01,1,5)`); "
                    "the axes multiply")] = {}
    zip: Annotated[dict[str, list[Any] | str | int | float], Field(
        description="dotted key → values, as in `grid`; these axes vary together (same number of values)")] = {}
    seeds: Annotated[Integer, Field(ge=1)] | None = Field(
        None, description="repeat every point with seeds 0..N-1 (`null`: the config's seed alone)")
    method: Literal["grid", "random", "qmc", "tpe"] = Field(
        "grid", description="`grid`: every point; or a search of `trials` points sampled from the `grid` axes "
                            "(random, quasi-random Sobol, or TPE), chosen on the validation split")
    trials: Annotated[Integer, Field(ge=1)] | None = Field(None, description="a search's number of trials")
    sampler_seed: Integer = Field(0, description="a search's sampler seed (`--seed`): the same seed, the same trials")
    batch: Annotated[Integer, Field(ge=1)] | None = Field(
        None, description="trials asked at once, trained as stacks where they share a shape (`null`: a full stack; "
                          "for tpe 16, so that it learns between batches)")
    prune: Literal["none", "asha"] = Field(
        "none", description="`asha`: successive halving: at epochs min_epochs·eta^k the worst 1 − 1/eta of the "
                            "trials stop, as `pruned`")
    min_epochs: Annotated[Integer, Field(ge=1)] = Field(1, description="epochs before the first rung of `prune`")
    eta: Annotated[Integer, Field(ge=2)] = Field(3, description="`prune`'s reduction factor: 1/eta go on at each rung")
    metric: Literal["val_error", "val_loss"] = Field(
        "val_error", description="what a search minimizes, on `train.val_fraction`'s held-out split")


@dataclass
class SweepSpec:
    grid: dict[str, list[Any]] = field(default_factory=dict)
    zip: dict[str, list[Any]] = field(default_factory=dict)
    seeds: int | None = None

    @property
    def keys(self) -> list[str]:
        """The swept keys, in the order of the points' columns; `seed` when replicated."""
        keys = [*self.grid, *self.zip]
        return keys + (["seed"] if self.seeds and "seed" not in keys else [])

    def points(self) -> list[dict[str, Any]]:
        """Every point as {dotted key: value}: grid product × zipped rows × seeds."""
        grid_rows = [dict(zip(self.grid, values)) for values in itertools.product(*self.grid.values())]
        zip_rows = [dict(zip(self.zip, values)) for values in zip(*self.zip.values())] if self.zip else [{}]
        seeds = [{"seed": seed} for seed in range(self.seeds)] if self.seeds else [{}]
        return [{**g, **z, **s} for g in grid_rows for z in zip_rows for s in seeds]

    def to_dict(self) -> dict[str, Any]:
        return {"grid": self.grid, "zip": self.zip, "seeds": self.seeds}


@dataclass
class Sweep:
    """A base config and the points to run, each a validated experiment."""

    config_path: Path
    spec: SweepSpec
    experiments: list[Experiment]
    points: list[dict[str, Any]]
    overrides: list[str] = field(default_factory=list)


def load_sweep(config_path: str | Path, grid: list[str] = (), zipped: list[str] = (), seeds: int | None = None,
               overrides: list[str] = ()) -> Sweep:
    """Read the config's sweep section, add the command line's axes, and validate every point.

    All problems of all points are reported together, before anything runs.
    """
    config_path = Path(config_path)
    section = read_sweep_section(config_path)
    command_grid, command_zip = cli_axes(grid, "--grid"), cli_axes(zipped, "--zip")
    given = {*command_grid, *command_zip}  # a command-line axis replaces the file's, of either kind
    grid_axes = {**without(section_axes(section.grid, f"{config_path}: sweep.grid"), given), **command_grid}
    zip_axes = {**without(section_axes(section.zip, f"{config_path}: sweep.zip"), given), **command_zip}
    spec = SweepSpec(grid=listed(grid_axes), zip=listed(zip_axes), seeds=seeds or section.seeds)
    _check_spec(spec)
    points = spec.points()
    experiments, problems = [], {}
    for index, point in enumerate(points):
        try:
            experiments.append(load_experiment(config_path, overrides, assignments=point))
        except UserError as error:
            for problem in error.problems:
                problems.setdefault(problem, []).append(index)
    if problems:
        raise UserError(point_problems(problems, len(points)))
    return Sweep(config_path, spec, experiments, points, list(overrides))


def point_problems(problems: dict[str, list[int]], total: int) -> list[str]:
    """One line per distinct problem, saying at which points (1-based) it occurs."""
    def where(indices: list[int]) -> str:
        if len(indices) == total:
            return "every point"
        shown = ", ".join(str(i + 1) for i in indices[:10])
        return f"point{'s' if len(indices) > 1 else ''} {shown}{', …' if len(indices) > 10 else ''}"

    return [f"{problem} ({where(indices)})" for problem, indices in problems.items()]


def parse_values(text: str) -> list[Any]:
    """`1,8,full` -> [1, 8, 'full']; `range(0,10,5)` -> [0, 5]; `log(0.01,1,3)` -> [0.01, 0.1, 1.0];
    `loguniform(1e-4,1)` -> [a distribution] (dlcli.config.search_space)."""
    values: list[Any] = []
    for piece in _split_top_level(text):
        distribution = parse_distribution(piece)
        if distribution is not None:
            values.append(distribution)
            continue
        generated = _generator(piece)
        if generated is not None:
            values += generated
            continue
        try:
            values.append(parse_value(piece))
        except yaml.YAMLError:
            raise UserError(f"{piece!r} is not a valid YAML value") from None
    return values


MAX_AXIS_VALUES = 10_000  # a grid axis's values
MAX_POINTS = 100_000  # a sweep's points, every one checked (and a run folder) before anything runs


def _generator(piece: str) -> list[Any] | None:
    found = re.fullmatch(r"\s*(range|log)\((.*)\)\s*", piece)
    if not found:
        return None
    kind, arguments = found.groups()
    numbers = [_number(argument) for argument in arguments.split(",")]
    if any(number is None or not math.isfinite(number) for number in numbers):
        raise UserError(f"{piece.strip()}: arguments must be finite numbers")
    if kind == "range":
        if len(numbers) not in (2, 3) or (len(numbers) == 3 and numbers[2] <= 0):
            raise UserError(f"{piece.strip()}: expected range(start, stop[, step > 0])")
        start, stop, step = (*numbers, 1)[:3]
        count = max(0, math.ceil((stop - start) / step))
        _check_count(piece, count)
        values = [start + i * step for i in range(count)]
        # 0.1 + 3 * 0.1 rounds to 0.4000000000000001 > 0.4: the stop is excluded whatever the rounding.
        return [_tidy(value) for value in values if value < stop - 1e-9 * abs(step)]
    if len(numbers) != 3 or numbers[0] <= 0 or numbers[1] <= 0 or numbers[2] < 1 or int(numbers[2]) != numbers[2]:
        raise UserError(f"{piece.strip()}: expected log(low > 0, high > 0, count >= 1)")
    low, high, count = numbers[0], numbers[1], int(numbers[2])
    _check_count(piece, count)
    if count == 1:
        return [_tidy(low)]
    ratio = (high / low) ** (1 / (count - 1))
    return [_tidy(low * ratio**i) for i in range(count)]


def _check_count(piece: str, count: int) -> None:
    """An axis is listed before anything runs: a generator of millions of values would fill the memory."""
    if count > MAX_AXIS_VALUES:
        raise UserError(f"{piece.strip()}: {count:,} values; allowed: at most {MAX_AXIS_VALUES:,} per axis")


def _number(text: str) -> int | float | None:
    for kind in (int, float):
        try:
            return kind(text.strip())
        except ValueError:
            continue
    return None


def _tidy(value: int | float) -> int | float:
    # 6 significant digits: log(0.01,1,5) gives 0.0316228, not 0.031622776601683784.
    return value if isinstance(value, int) else float(f"{value:.6g}")


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets and parentheses: `[64,64],[8]` -> ['[64,64]', '[8]']."""
    pieces, depth, current = [], 0, ""
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            pieces.append(current)
            current = ""
        else:
            current += char
    pieces.append(current)
    return [piece.strip() for piece in pieces if piece.strip()]


def cli_axes(items: list[str], option: str) -> dict[str, list[Any]]:
    axes, problems = {}, []
    for item in items:
        key, equals, text = item.partition("=")
        if not equals or not key.strip() or not text.strip():
            problems.append(f"{option} {item}: expected KEY=V1,V2,..., e.g. {option} optim.lr=0.01,0.1")
            continue
        if key.strip() in axes:
            problems.append(f"{option} {key.strip()}: given twice; give its values once: {option} KEY=V1,V2,...")
            continue
        try:
            axes[key.strip()] = parse_values(text)
        except UserError as error:
            problems += [f"{option} {key.strip()}: {problem}" for problem in error.problems]
    if problems:
        raise UserError(problems)
    return axes


def section_axes(section: dict[str, Any], where: str) -> dict[str, list[Any]]:
    axes, problems = {}, []
    for key, values in section.items():
        try:
            axes[key] = parse_values(values) if isinstance(values, str) else (
                values if isinstance(values, list) else [values])
        except UserError as error:
            problems += [f"{where}.{key}: {problem}" for problem in error.problems]
    if problems:
        raise UserError(problems)
    return axes


def read_sweep_section(config_path: Path) -> SweepSection:
    """The config file's `sweep:` section, validated (empty when there is none)."""
    section, source = read_yaml_mapping(config_path).get("sweep") or {}, str(config_path)
    try:
        return SweepSection.model_validate(section)
    except ValidationError as error:
        problems = {_section_problem(e): None for e in error.errors()}  # one line per key, in order
        raise UserError([f"{source}: {problem}" for problem in problems]) from None


def _section_problem(error: dict[str, Any]) -> str:
    """One line for a pydantic error in the sweep section: an axis's values (pydantic tries each of the
    types an axis allows, an error each) as one, an unknown key with the nearest known one."""
    location = [str(part) for part in error["loc"]]
    if location[0] in ("grid", "zip") and len(location) > 1:
        return (f"sweep.{location[0]}.{location[1]}: expected a list of values, or text such as 0.1,0.2 or "
                "loguniform(1e-4,1)")
    if error["type"] == "extra_forbidden":
        near = difflib.get_close_matches(location[0], list(SweepSection.model_fields), n=1)
        return f"sweep.{location[0]}: unknown key" + (f" (did you mean {near[0]}?)" if near else
                                                       f" (known: {', '.join(SweepSection.model_fields)})")
    return f"sweep.{'.'.join(location)}: {error['msg']}"


def listed(axes: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Each axis's values, a choice expanded; every axis a grid cannot list (a sampled one) said at once."""
    values, problems = {}, []
    for key, given in axes.items():
        try:
            values[key] = grid_values(key, given)
        except UserError as error:
            problems += error.problems
    if problems:
        raise UserError(problems)
    return values


def without(axes: dict[str, list[Any]], keys: set[str]) -> dict[str, list[Any]]:
    return {key: values for key, values in axes.items() if key not in keys}


def _check_spec(spec: SweepSpec) -> None:
    problems = [f"sweep axis {key}: no values" for key, values in {**spec.grid, **spec.zip}.items() if not values]
    lengths = {key: len(values) for key, values in spec.zip.items()}
    if len(set(lengths.values())) > 1:
        problems.append("zip axes must have the same number of values: "
                        + ", ".join(f"{key} has {n}" for key, n in lengths.items()))
    both = set(spec.grid) & set(spec.zip)
    problems += [f"{key}: swept both as a grid and a zip axis" for key in sorted(both)]
    if spec.seeds and "seed" in {**spec.grid, **spec.zip}:
        problems.append("seed: swept as an axis and by --seeds; use one")
    count = math.prod(len(values) for values in spec.grid.values()) * (len(next(iter(spec.zip.values()), [0])) or 1) \
        * (spec.seeds or 1)
    if count > MAX_POINTS:
        problems.append(f"the sweep has {count:,} points; allowed: at most {MAX_POINTS:,} (each a run folder)")
    if problems:
        raise UserError(problems)
