"""Reading an experiment: YAML plus `--set` overrides, validated into the schema.

Validation collects every problem (unknown keys with a suggestion, wrong types, out-of-range values,
unknown names, missing files) and raises one `UserError` naming the file, the dotted key and what is
allowed.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from dlcli.errors import UserError, prefixed
from dlcli.schema import (  # noqa: F401  (re-exported: the schema is part of this module's API)
    DATA_PARAMS, CsvParams, DataConfig, DataName, Experiment, GaussiansParams, Integer, Mnist1dParams,
    ModelConfig, MoonsParams, NpzParams, Number, OptimConfig, RegularizationConfig, Section, SineParams,
    SplitParams, TrainConfig,
)


# ---- reading YAML and overrides ------------------------------------------------------------------


def load_experiment(path: str | Path, overrides: list[str] | tuple[str, ...] = (),
                    assignments: dict[str, Any] | None = None, assignment_source: str = "sweep") -> Experiment:
    """Read a YAML config, apply `key=value` overrides, validate, and resolve data paths.

    A `sweep:` section is the sweep command's business; a single run ignores it.
    """
    path = Path(path)
    raw = read_config_file(path)
    raw.pop("sweep", None)
    return experiment_from_dict(raw, overrides, source=str(path), base_dir=path.parent,
                                assignments=assignments, assignment_source=assignment_source)


def read_config_file(path: Path) -> dict[str, Any]:
    """The YAML mapping of a config file, its name defaulting to the file's name."""
    raw = read_yaml_mapping(path)
    raw.setdefault("name", _default_name(path))
    return raw


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
        problems += [prefixed(where(key), key, message) for key, message in _describe(error, Experiment)]
    params, param_problems = _validate_params(raw, base_dir or Path.cwd())
    problems += [prefixed(where(key), key, message) for key, message in param_problems]
    if experiment is not None:
        problems += [prefixed(where(key), key, message) for key, message in _cross_checks(experiment)]
    if problems:
        raise UserError(problems)
    assert experiment is not None
    return experiment.model_copy(update={"data": experiment.data.model_copy(update={"params": params})})


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Safe-load a YAML file that must hold a mapping; every failure is a one-line `UserError`."""
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read: {error}") from None
    try:
        raw = yaml.safe_load(text)
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


def parse_overrides(overrides: list[str] | tuple[str, ...]) -> list[tuple[str, Any]]:
    """Turn `key=value` strings into (dotted key, YAML-parsed value) pairs."""
    parsed, problems = [], []
    for item in overrides:
        key, equals, text = item.partition("=")
        key = key.strip()
        if not equals or not key:
            problems.append(f"--set {item}: expected KEY=VALUE, e.g. --set optim.lr=0.05")
            continue
        try:
            value = parse_value(text)
        except yaml.YAMLError:
            problems.append(f"--set {item}: the value is not valid YAML")
            continue
        parsed.append((key, value))
    if problems:
        raise UserError(problems)
    return parsed


def parse_value(text: str) -> Any:
    """A command-line value as YAML, except that `1e-3` is a number (YAML 1.1 reads it as text)."""
    value = yaml.safe_load(text) if text.strip() else None
    if isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", value.strip()):
        return float(value)
    return value


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


def to_yaml(experiment: Experiment) -> str:
    """The fully resolved config, in the same shape a user writes."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's, where PyYAML was built with it: 10× faster
    return yaml.dump(experiment.model_dump(mode="json"), Dumper=dumper, sort_keys=False)


VALUE_KEYS = ("optim.batch_size",)  # keys whose value may be a mapping (a schedule) but is one value
GENERATED = ("gaussians", "sine", "moons", "mnist1d")  # data sets that can draw a fresh training set


def flat_config(experiment: Experiment) -> dict[str, Any]:
    """The resolved config as {dotted key: value}, data.params included."""
    return flatten(experiment.model_dump(mode="json"))


def flatten(mapping: dict[str, Any]) -> dict[str, Any]:
    """{'optim': {'lr': 0.1}} -> {'optim.lr': 0.1}; an empty mapping, or a VALUE_KEYS one, stays a value."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node and prefix.rstrip(".") not in VALUE_KEYS:
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix.rstrip(".")] = node

    walk(mapping, "")
    return flat


def config_hash(experiment: Experiment) -> str:
    """A content hash of the resolved config: equal hashes mean the same experiment."""
    blob = json.dumps(experiment.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# ---- helpers -------------------------------------------------------------------------------------


def _default_name(path: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem).lstrip("._-")
    return name or "experiment"


def _tag_of(error: yaml.constructor.ConstructorError) -> str:
    found = re.search(r"tag '([^']+)'", str(error.problem))
    tag = found.group(1) if found else "?"
    return "!!" + tag.removeprefix("tag:yaml.org,2002:")


def _describe(error: ValidationError, model: type[BaseModel], prefix: tuple = ()) -> list[tuple[str, str]]:
    """Turn pydantic errors into (dotted key, message) with friendlier wording."""
    described = []
    for item in error.errors():
        loc = prefix + tuple(part for part in item["loc"] if not _is_branch_tag(part))
        key = ".".join(str(part) for part in loc)
        kind = item["type"]
        if kind == "extra_forbidden":
            message = "unknown key" + _suggestion(model, loc, prefix)
        elif kind == "literal_error":
            allowed = item["ctx"]["expected"].replace("'", "")
            message = f"unknown value {item['input']!r} (allowed: {allowed})"
        elif kind in ("model_type", "dict_type"):
            message = f"expected a mapping of keys, got {item['input']!r}"
        else:
            message = item["msg"].removeprefix("Value error, ")
            if kind not in ("value_error", "missing") and not isinstance(item["input"], (dict, list)):
                message += f", got {item['input']!r}"
        described.append((key, message))
    return described


def _is_branch_tag(part: Any) -> bool:
    # pydantic names the branch of an Optional/Union in the location, e.g. ('n_train', 'int').
    return isinstance(part, str) and (part in ("int", "float", "str", "bool", "none") or "[" in part)


def _suggestion(model: type[BaseModel], loc: tuple, prefix: tuple) -> str:
    """A close sibling key, else a key of the same name elsewhere (`epochs` -> `train.epochs`)."""
    section = _section_at(model, loc[len(prefix) : -1])
    siblings = list(section.model_fields) if section else []
    close = difflib.get_close_matches(str(loc[-1]), siblings, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {'.'.join(map(str, loc[:-1] + (close[0],)))}?)"
    if not prefix:
        paths = _dotted_keys(Experiment)
        close = difflib.get_close_matches(str(loc[-1]), [path.rsplit(".", 1)[-1] for path in paths], n=1, cutoff=0.8)
        if close:
            return f" (did you mean {next(p for p in paths if p.rsplit('.', 1)[-1] == close[0])}?)"
    return f" (allowed: {', '.join(siblings)})" if siblings else ""


def _dotted_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += _dotted_keys(annotation, f"{prefix}{name}.")
        else:
            keys.append(prefix + name)
    return keys


def _section_at(model: type[BaseModel], path: tuple) -> type[BaseModel] | None:
    for part in path:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _validate_params(raw: dict[str, Any], base_dir: Path) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Validate data.params against the chosen data set's schema; resolve and check file paths."""
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    schema = DATA_PARAMS.get(data.get("name", DataConfig.model_fields["name"].default))
    params = data.get("params", {})
    if schema is None or not isinstance(params, dict):
        return {}, []  # the main validation already reports the bad name or type
    try:
        validated = schema.model_validate(params).model_dump()
    except ValidationError as error:
        return {}, _describe(error, schema, prefix=("data", "params"))
    problems = []
    for key in ("path", "test_path"):
        if validated.get(key) is not None:
            resolved = (base_dir / validated[key]).resolve()
            if not resolved.is_file():
                problems.append((f"data.params.{key}", f"file not found: {resolved}"))
            validated[key] = str(resolved)
    return validated, problems


def _least_squares_problems(experiment: Experiment) -> list[tuple[str, str]]:
    """lstsq solves for a linear read-out in one step: it needs a model whose only trainable part is it."""
    if experiment.optim.name != "lstsq":
        return []
    problems = []
    if experiment.loss != "mse":
        problems.append(("loss", f"optim.name lstsq minimizes squared error: use mse, not {experiment.loss}"))
    if experiment.model.name not in ("linear", "random_features"):
        problems.append(("model.name", f"optim.name lstsq fits a linear read-out: use linear or random_features, "
                                       f"not {experiment.model.name}"))
    if experiment.train.epochs != 1:
        problems.append(("train.epochs", f"optim.name lstsq solves in one step: set 1, not {experiment.train.epochs}"))
    for key in ("l1", "weight_decay"):
        if getattr(experiment.regularization, key) > 0:
            problems.append((f"regularization.{key}", "not available with lstsq (l2 gives ridge regression)"))
    if experiment.train.compile:
        problems.append(("train.compile", "lstsq makes no gradient steps to compile"))
    return problems


def _cross_checks(experiment: Experiment) -> list[tuple[str, str]]:
    """Problems that involve more than one key but no data."""
    problems = []
    if experiment.optim.momentum > 0 and experiment.optim.name != "sgd":
        problems.append(("optim.momentum", f"applies to sgd only, not {experiment.optim.name}"))
    problems += _least_squares_problems(experiment)
    if experiment.model.name in ("linear", "random_features"):
        if experiment.model.dropout > 0:
            problems.append(("model.dropout", f"{experiment.model.name} has no trainable hidden units to drop "
                                              "(use mlp)"))
        if experiment.model.norm != "none":
            problems.append(("model.norm", f"{experiment.model.name} has no hidden layers to normalize (use mlp)"))
    elif not experiment.model.hidden:
        problems.append(("model.hidden", f"{experiment.model.name} needs at least one hidden width"))
    schedule = experiment.optim.schedule
    if schedule.name == "triangular" and (schedule.max_lr is None or schedule.max_lr <= experiment.optim.lr):
        problems.append(("optim.schedule.max_lr", f"triangular needs a max_lr above optim.lr "
                                                  f"({experiment.optim.lr}), got {schedule.max_lr}"))
    if experiment.regularization.early_stopping.patience is not None and experiment.train.val_fraction == 0:
        problems.append(("regularization.early_stopping.patience",
                         "early stopping watches a validation set: set train.val_fraction > 0"))
    resample = experiment.data.resample
    if resample.method == "fresh" and experiment.data.name not in GENERATED:
        problems.append(("data.resample.method", f"fresh draws need a generated data set ({', '.join(GENERATED)}); "
                                                 f"use disjoint or bootstrap for {experiment.data.name}"))
    if resample.method == "disjoint" and resample.index >= resample.count:
        problems.append(("data.resample.index", f"{resample.index} is not a slice of {resample.count}"))
    if experiment.data.name == "sine" and experiment.data.label_noise > 0:
        problems.append(("data.label_noise", "applies to classification data; sine is regression"))
    return problems
