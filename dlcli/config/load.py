"""Reading an experiment: YAML plus `--set` overrides, validated into the schema.

Validation collects every problem (unknown keys with a suggestion, wrong types, out-of-range values,
unknown names, missing files) and raises one `UserError` naming the file, the dotted key and what is
allowed.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dlcli.config.problems import cross_checks, describe, validate_params
from dlcli.config.schema import Experiment
from dlcli.errors import UserError, prefixed


# ---- reading YAML and overrides ------------------------------------------------------------------


def load_experiment(path: str | Path, overrides: list[str] | tuple[str, ...] = (),
                    assignments: dict[str, Any] | None = None, assignment_source: str = "sweep") -> Experiment:
    """The one way a config file is read: YAML, then `key=value` overrides, then a sweep point's
    assignments, validated, with data paths resolved against the file's folder.

    Its name defaults to the file's name. A `sweep:` section is the sweep's business
    (`dlcli.config.sweep`); an experiment ignores it.
    """
    path = Path(path)
    raw = read_yaml_mapping(path)
    raw.setdefault("name", _default_name(path))
    raw.pop("sweep", None)
    experiment = experiment_from_dict(raw, overrides, source=str(path), base_dir=path.parent,
                                      assignments=assignments, assignment_source=assignment_source)
    return experiment.read_from(str(path.resolve()))


def experiment_from_dict(
    raw: dict[str, Any],
    overrides: list[str] | tuple[str, ...] = (),
    source: str | None = None,
    base_dir: Path | None = None,
    assignments: dict[str, Any] | None = None,
    assignment_source: str = "sweep",
) -> Experiment:
    """Validate a config mapping plus `--set` overrides and already-parsed assignments (a sweep point).

    Raises `UserError` listing every problem, each naming where the offending value came from.
    """
    raw = json.loads(json.dumps(raw, default=str))  # deep copy, plain types only
    overridden = apply_overrides(raw, parse_overrides(overrides))
    assigned = apply_overrides(raw, list((assignments or {}).items()))
    problems: list[str] = []

    def where(key: str) -> str | None:
        for label, keys in ((assignment_source, assigned), ("--set", overridden)):
            if any(key == o or key.startswith(o + ".") or o.startswith(key + ".") for o in keys):
                return label
        return source

    experiment = None
    try:
        experiment = Experiment.model_validate(raw)
    except ValidationError as error:
        problems += [prefixed(where(key), key, message) for key, message in describe(error, Experiment)]
    params, param_problems = validate_params(raw, base_dir or Path.cwd())
    problems += [prefixed(where(key), key, message) for key, message in param_problems]
    if experiment is not None:
        problems += [prefixed(where(key), key, message) for key, message in cross_checks(experiment)]
    if problems:
        raise UserError(problems)
    assert experiment is not None
    root = experiment.data.root  # a folder, saved resolved like data.params.path
    if root is not None:
        root = str(((base_dir or Path.cwd()) / Path(root).expanduser()).resolve())
    return experiment.model_copy(update={"data": experiment.data.model_copy(update={"params": params, "root": root})})


# libyaml's safe loader where PyYAML was built with it: the same plain types, parsed about 10× faster (a
# search reads its config once per trial).
class SafeLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader, refusing a key given twice in one mapping (YAML says keys are unique; PyYAML
    keeps the last silently, so `lr: 0.1` above a second `lr: 0.2` trained with 0.2 unnoticed)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool)):
                continue  # an unhashable key: the constructor's own error follows
            if key in seen:
                raise yaml.MarkedYAMLError(problem=f"the key {key} is given twice in one mapping (once allowed)",
                                           problem_mark=key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


SAFE_LOADER = SafeLoader


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Safe-load a YAML file that must hold a mapping; every failure is a one-line `UserError`."""
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read: {error}") from None
    try:
        raw = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.constructor.ConstructorError as error:
        line = f"line {error.problem_mark.line + 1}: " if error.problem_mark else ""
        raise UserError(
            f"{path}: {line}YAML tag {_tag_of(error)} is not allowed "
            "(plain YAML only: mappings, lists, strings, numbers, booleans, null)"
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise UserError(f"{path}: {line}YAML syntax error: {problem}") from None
    if raw is None:
        raise UserError(f"{path}: the file is empty (expected a mapping of config keys)")
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping of config keys, got a {type(raw).__name__}")
    return raw


def blamed(problems: list[str], source: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Each problem (`KEY: ...`) prefixed by where its key's value came from: `--set` when an override gave
    it, else the config file `source`."""
    given = {item.partition("=")[0].strip() for item in overrides}
    return [f"--set {problem}" if problem.partition(":")[0] in given else f"{source}: {problem}"
            for problem in problems]


def parse_overrides(overrides: list[str] | tuple[str, ...]) -> list[tuple[str, Any]]:
    """Turn `key=value` strings into (dotted key, YAML-parsed value) pairs."""
    parsed, problems = [], []
    for item in overrides:
        key, equals, text = item.partition("=")
        key = key.strip()
        if not equals or not key:
            problems.append(f"--set {item}: expected KEY=VALUE, e.g. --set optim.lr=0.05")
            continue
        if key.split(".")[0] == "sweep":
            problems.append(f"--set {key}: the sweep section is set in the file or by dlcli sweep's options "
                            "(--grid, --zip, --seeds, --method, --trials, --batch, --prune, --metric), not --set")
            continue
        try:
            value = parse_value(text)
        except yaml.YAMLError as error:
            problems.append(f"--set {item}: {getattr(error, 'problem', None) or 'the value is not valid YAML'}")
            continue
        parsed.append((key, value))
    if problems:
        raise UserError(problems)
    return parsed


def parse_value(text: str) -> Any:
    """A command-line value as YAML, except that `1e-3` is a number (YAML 1.1 reads it as text)."""
    value = yaml.load(text, Loader=SafeLoader) if text.strip() else None  # a key twice: an error, as in files
    number = scientific_number(value) if isinstance(value, str) else None
    return value if number is None else number


def scientific_number(text: str) -> float | None:
    """`1e-3`, `2.5E+4` as a number; None for any other text."""
    found = re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", text.strip())
    return float(text) if found else None


def apply_overrides(raw: dict[str, Any], overrides: list[tuple[str, Any]]) -> list[str]:
    """Set each dotted key in the nested mapping; returns the keys set."""
    for key, value in overrides:
        node = raw
        *parents, leaf = key.split(".")
        for depth, part in enumerate(parents):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                prefix = ".".join(parents[: depth + 1])
                raise UserError(f"--set {key}: {prefix} is a value, not a section")
            node = child
        node[leaf] = value
    return [key for key, _ in overrides]


def _default_name(path: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem).lstrip("._-")
    return name or "experiment"


def _tag_of(error: yaml.constructor.ConstructorError) -> str:
    found = re.search(r"tag '([^']+)'", str(error.problem))
    tag = found.group(1) if found else "?"
    return "!!" + tag.removeprefix("tag:yaml.org,2002:")
