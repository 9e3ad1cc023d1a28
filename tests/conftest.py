"""Shared helpers: tiny experiments that train in well under a second on 2 CPU cores."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"


def tiny_config(**sections) -> dict:
    """A small gaussians experiment as a plain mapping; keyword arguments replace whole sections."""
    config = {
        "name": "tiny",
        "seed": 0,
        "device": os.environ.get("DLCLI_TEST_DEVICE", "cpu"),  # benchmarks/gpu_check.sh sets cuda
        "data": {"name": "gaussians", "n_train": 100, "n_test": 100,
                 "params": {"classes": 2, "dim": 2, "separation": 2.0, "sigma": 1.0}},
        "model": {"name": "mlp", "hidden": [8]},
        "loss": "cross_entropy",
        "optim": {"name": "sgd", "lr": 0.1, "batch_size": 32},
        "train": {"epochs": 3},
    }
    config.update(sections)
    return config


@pytest.fixture
def write_config(tmp_path):
    """Write a mapping (or raw text) to a YAML file in the test's folder; returns its path."""

    def write(content: dict | str, name: str = "experiment.yaml") -> Path:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
        return path

    return write
