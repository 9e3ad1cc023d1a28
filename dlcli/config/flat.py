"""The resolved config as data: flat dotted keys, a content hash, and YAML as a user writes it."""
from __future__ import annotations

import hashlib
import json
from typing import Any

import yaml

from dlcli.config.schema import Experiment

VALUE_KEYS = ("optim.batch_size",)  # keys whose value may be a mapping (a schedule) but is one value


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


# How a run is kept (checkpoints) or run (CPU threads), not what it computes: a resumed sweep may change them.
NOT_HASHED = {"train": {"checkpoint_every", "threads"}}


def config_hash(experiment: Experiment) -> str:
    """A content hash of the resolved config: equal hashes mean the same experiment."""
    blob = json.dumps(experiment.model_dump(mode="json", exclude=NOT_HASHED), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def to_yaml(experiment: Experiment) -> str:
    """The fully resolved config, in the same shape a user writes."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's, where PyYAML was built with it: 10× faster
    return yaml.dump(experiment.model_dump(mode="json"), Dumper=dumper, sort_keys=False)
