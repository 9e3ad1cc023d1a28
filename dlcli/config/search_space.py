"""Distributions of a search space, written where a grid lists values.

`loguniform(a,b)`: a number spread evenly on a log scale from a > 0 to b; `uniform(a,b)`: evenly from
a to b; `intuniform(a,b)`: a whole number from a to b, both included; `choice(v1,v2,...)`: one of the
values, each read as YAML (`choice(16,32,64)`, `choice([64],[256,256])`). A grid expands a choice into
its values; the others are only sampled, by a search (`--method random|qmc|tpe`).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Union

import yaml

from dlcli.errors import UserError

SCALARS = (type(None), bool, int, float, str)  # what Optuna stores as a categorical choice as it is


@dataclass(frozen=True)
class Uniform:
    """Numbers from low to high, spread evenly (on a log scale with `log`); whole numbers with `integer`."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def probes(self) -> list[Any]:
        """The values every sample lies between: a config is checked at each before anything runs."""
        return [self.low, self.high]

    def value(self, sampled: Any) -> Any:
        """A sampled number as the config gets it: 6 significant digits (0.0316228), so config files read
        well, more where the range is narrow for its size (uniform(0.1000001,0.1000004) keeps 11); never
        rounded past a bound."""
        if self.integer:
            return int(sampled)
        size, width = max(abs(self.low), abs(self.high)), self.high - self.low
        digits = 6 + max(0, math.floor(math.log10(size / width))) if size > 0 else 6
        return min(max(float(f"{float(sampled):.{digits}g}"), self.low), self.high)

    def __str__(self) -> str:
        kind = "intuniform" if self.integer else ("loguniform" if self.log else "uniform")
        return f"{kind}({self.low:g},{self.high:g})"


@dataclass(frozen=True)
class Choice:
    """One of the listed values (numbers, text, lists such as hidden widths)."""

    values: tuple

    def probes(self) -> list[Any]:
        return list(self.values)

    def encoded(self) -> list[Any]:
        """The choices as Optuna stores them: scalars as they are, lists and mappings as JSON text."""
        return [value if isinstance(value, SCALARS) else json.dumps(value) for value in self.values]

    def value(self, sampled: Any) -> Any:
        return self.values[self.encoded().index(sampled)]

    def __str__(self) -> str:
        return "choice(" + ",".join(json.dumps(value) if not isinstance(value, str) else value
                                    for value in self.values) + ")"


Distribution = Union[Uniform, Choice]
_PATTERN = re.compile(r"\s*(loguniform|uniform|intuniform|choice)\((.*)\)\s*", re.DOTALL)


def parse_distribution(piece: str) -> Distribution | None:
    """`loguniform(1e-4,1)` -> Uniform(0.0001, 1, log=True); None when the text is not a distribution."""
    found = _PATTERN.fullmatch(piece)
    if not found:
        return None
    kind, arguments = found.groups()
    try:
        values = yaml.safe_load(f"[{arguments}]")
    except yaml.YAMLError:
        raise UserError(f"{piece.strip()}: its arguments are not valid YAML values") from None
    if kind == "choice":
        if not values:
            raise UserError(f"{piece.strip()}: expected choice(value, value, ...) with at least one value")
        return Choice(tuple(values))
    return _uniform(kind, values, piece.strip())


def _uniform(kind: str, values: list[Any], text: str) -> Uniform:
    numbers = [number for number in map(_number, values) if number is not None]
    integer = kind == "intuniform"
    if len(values) != 2 or len(numbers) != 2 or (integer and not all(isinstance(v, int) for v in numbers)):
        raise UserError(f"{text}: expected {kind}(low, high) with {'whole ' if integer else ''}numbers")
    low, high = numbers
    if not all(map(math.isfinite, numbers)):
        raise UserError(f"{text}: the bounds must be finite numbers")
    if integer and max(map(abs, numbers)) > 2**53:  # beyond, a float sample no longer holds every whole number
        raise UserError(f"{text}: the bounds must lie within ±2^53")
    if low >= high:
        raise UserError(f"{text}: low must be below high")
    if kind == "loguniform" and low <= 0:
        raise UserError(f"{text}: a log scale needs low > 0")
    return Uniform(low, high, log=kind == "loguniform", integer=integer)


def _number(value: Any) -> int | float | None:
    """A number, also from text YAML leaves as text (`1e-4`: YAML 1.1 wants `1.0e-4`)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def is_distribution(value: Any) -> bool:
    return isinstance(value, (Uniform, Choice))


def grid_values(key: str, values: list[Any]) -> list[Any]:
    """An axis of a grid: its values, a choice expanded into its values; a sampled distribution is a
    UserError (a grid cannot list it)."""
    expanded = []
    for value in values:
        if isinstance(value, Uniform):
            raise UserError(f"{key}: {value} is sampled, not listed: search it with --method random, qmc or "
                            "tpe (and --trials N), or give values")
        expanded += list(value.values) if isinstance(value, Choice) else [value]
    return expanded


def axis_distribution(key: str, values: list[Any]) -> Distribution:
    """An axis of a search: its one distribution, or a plain list of values as a choice among them."""
    distributions = [value for value in values if is_distribution(value)]
    if not distributions:
        return Choice(tuple(values))
    if len(values) > 1:
        raise UserError(f"{key}: give one distribution or a list of values, not both")
    return distributions[0]


def probe_points(space: dict[str, Distribution]) -> list[dict[str, Any]]:
    """Points that between them take every bound and every choice of every key (each key cycling
    through its probes): a config valid at these is valid across the space, as far as checks can tell."""
    probes = {key: distribution.probes() for key, distribution in space.items()}
    count = max((len(values) for values in probes.values()), default=0)
    return [{key: values[i % len(values)] for key, values in probes.items()} for i in range(count)]
