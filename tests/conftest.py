"""Shared helpers: tiny experiments that train in well under a second on 2 CPU cores."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch
import yaml

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
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


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models on 2 busy cores: a second thread per op (torch or BLAS) costs far more than it saves."""
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(threads)


def text(stream: str) -> str:
    """Output without terminal colour codes."""
    return ANSI.sub("", stream)


def assert_no_traceback(result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


def line_with(lines: list[str], *fragments: str) -> str:
    found = [line for line in lines if all(fragment in line for fragment in fragments)]
    assert found, f"no line with all of {fragments!r} in:\n" + "\n".join(lines)
    return found[0]
