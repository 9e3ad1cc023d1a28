"""What makes a config invalid beyond its types: per-data-set parameters, file paths, and rules that
involve more than one key; and pydantic's errors turned into (dotted key, message) with a suggestion.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from dlcli.config.data_params import DATA_PARAMS, GENERATED
from dlcli.config.schema import DataConfig, Experiment


BOUNDS = {"greater_than": ("greater than", "gt"), "greater_than_equal": ("greater than or equal to", "ge"),
          "less_than": ("less than", "lt"), "less_than_equal": ("less than or equal to", "le")}


def describe(error: ValidationError, model: type[BaseModel], prefix: tuple = ()) -> list[tuple[str, str]]:
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
        elif kind in BOUNDS:  # pydantic prints a large integer bound as a float (2**63 as ...776000)
            phrase, name = BOUNDS[kind]
            message = f"Input should be {phrase} {item['ctx'][name]}, got {item['input']!r}"
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
        paths = dotted_keys(Experiment)
        close = difflib.get_close_matches(str(loc[-1]), [path.rsplit(".", 1)[-1] for path in paths], n=1, cutoff=0.8)
        if close:
            return f" (did you mean {next(p for p in paths if p.rsplit('.', 1)[-1] == close[0])}?)"
    return f" (allowed: {', '.join(siblings)})" if siblings else ""


def dotted_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += dotted_keys(annotation, f"{prefix}{name}.")
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


def validate_params(raw: dict[str, Any], base_dir: Path) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Validate data.params against the chosen data set's schema; resolve and check file paths."""
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    name = data.get("name", DataConfig.model_fields["name"].default)
    schema = DATA_PARAMS.get(name) if isinstance(name, str) else None  # a list or mapping: reported elsewhere
    params = data.get("params", {})
    if schema is None or not isinstance(params, dict):
        return {}, []  # the main validation already reports the bad name or type
    try:
        validated = schema.model_validate(params).model_dump()
    except ValidationError as error:
        return {}, describe(error, schema, prefix=("data", "params"))
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
    augment = experiment.data.augment
    for key, unset in (("noise_std", 0), ("shift", 0), ("crop", 0), ("flip", False)):
        if getattr(augment, key) != unset:
            problems.append((f"data.augment.{key}", "not available with lstsq: it solves once, on the data as they "
                                                    "are, with no batches to augment (l2 regularizes it)"))
    return problems


def cross_checks(experiment: Experiment) -> list[tuple[str, str]]:
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
    elif not experiment.model.hidden and experiment.model.width is None and experiment.model.name != "resnet18":
        problems.append(("model.hidden", f"{experiment.model.name} needs at least one hidden width"))
    if experiment.model.width is not None and experiment.model.name not in ("cnn", "resnet18"):
        problems.append(("model.width", f"sets the channels of cnn and resnet18, not of {experiment.model.name} "
                                        "(use model.hidden)"))
    schedule = experiment.optim.schedule
    if schedule.name == "triangular" and (schedule.max_lr is None or schedule.max_lr <= experiment.optim.lr):
        problems.append(("optim.schedule.max_lr", f"triangular needs a max_lr above optim.lr "
                                                  f"({experiment.optim.lr}), got {schedule.max_lr}"))
    if experiment.regularization.early_stopping.patience is not None and experiment.train.val_fraction == 0:
        problems.append(("regularization.early_stopping.patience",
                         "early stopping watches a validation set: set train.val_fraction > 0"))
    problems += _eval_splits_problems(experiment)
    resample = experiment.data.resample
    if resample.method == "fresh" and experiment.data.name not in GENERATED:
        problems.append(("data.resample.method", f"fresh draws need a generated data set ({', '.join(GENERATED)}); "
                                                 f"use disjoint or bootstrap for {experiment.data.name}"))
    if resample.method == "disjoint" and resample.index >= resample.count:
        problems.append(("data.resample.index", f"{resample.index} is not a slice of {resample.count}"))
    if experiment.data.name == "sine" and experiment.data.label_noise > 0:
        problems.append(("data.label_noise", "applies to classification data; sine is regression"))
    if experiment.data.random_labels and experiment.data.label_noise > 0:
        problems.append(("data.label_noise", "random_labels already replaces every label: set 0, or random_labels: false"))
    return problems


def _eval_splits_problems(experiment: Experiment) -> list[tuple[str, str]]:
    """`train.eval_splits: val` measures the validation split until the last epoch: there must be one, and
    the run must end on the last epoch's weights (the only ones whose test error is measured)."""
    if experiment.train.eval_splits != "val":
        return []
    if experiment.train.val_fraction == 0:
        return [("train.eval_splits", "val measures the validation split: set train.val_fraction > 0, or use all")]
    stopping = experiment.regularization.early_stopping
    if stopping.patience is not None and stopping.restore_best:
        return [("train.eval_splits", "val measures the test split at the last epoch only, but early stopping with "
                                      "restore_best ends on an earlier epoch's weights: set restore_best: false, "
                                      "or use all")]
    return []
