"""train.precision and train.compile: the GPU-path switches, checked where this machine can check them."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from conftest import tiny_config
from dlcli.cli import app
from dlcli.config.load import experiment_from_dict
from dlcli.layout import read_metrics
from dlcli.engine.loop import train


class CountingModule(nn.Module):
    """Stands in for torch.compile's wrapper: the same computation, and a count of the calls."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self._orig_mod = inner  # the name torch.compile uses, so saved keys would show it if leaked
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self._orig_mod(x)


def without_seconds(rows):
    return [{key: value for key, value in row.items() if key != "seconds"} for row in rows]


def test_compile_trains_through_the_compiled_module_and_saves_plain_weights(tmp_path, monkeypatch):
    wrappers = []

    def fake_compile(module, *args, **kwargs):
        wrappers.append(CountingModule(module))
        return wrappers[-1]

    plain = train(experiment_from_dict(tiny_config()), out_root=tmp_path / "plain")
    monkeypatch.setattr(torch, "compile", fake_compile)
    compiled = train(experiment_from_dict(tiny_config(train={"epochs": 3, "compile": True})),
                     out_root=tmp_path / "compiled")
    assert len(wrappers) == 1 and wrappers[0].calls >= 3 * 4  # 4 batches an epoch, plus evaluations
    # The compiled path trains an nn.Module with torch.optim; the plain one a stack of one, whose linear
    # weights are stored transposed (dlcli.engine.stack): the same arithmetic, rounded in another order.
    expected = without_seconds(read_metrics(plain.run_dir))
    assert [row.keys() for row in without_seconds(read_metrics(compiled.run_dir))] == [row.keys() for row in expected]
    assert without_seconds(read_metrics(compiled.run_dir)) == [
        {key: pytest.approx(value, rel=1e-5, abs=1e-7) for key, value in row.items()} for row in expected]
    saved = torch.load(compiled.run_dir / "model.pt", weights_only=True)
    assert list(saved) == list(torch.load(plain.run_dir / "model.pt", weights_only=True))
    assert not any("_orig_mod" in key for key in saved)


def test_bf16_needs_cuda(tmp_path, write_config):
    config = write_config(tiny_config(device="cpu", train={"epochs": 1, "precision": "bf16"}))
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "train.precision" in result.stderr and "CUDA" in result.stderr
    assert not (tmp_path / "out").exists()


def test_compile_with_least_squares_is_refused(tmp_path, write_config):
    config = write_config(tiny_config(loss="mse", model={"name": "random_features", "features": 8},
                                      optim={"name": "lstsq"}, train={"epochs": 1, "compile": True}))
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "train.compile" in result.stderr
