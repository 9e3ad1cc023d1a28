"""Tags as columns of `load_runs`: read as --where reads values, never taken for config keys, so seed
replicates stay one group however they are tagged; a broken tags.json is named."""
from __future__ import annotations

import csv
import io
import json
import math
import shutil
from pathlib import Path

import pytest

from conftest import invoke, succeeded, text, tiny_config
from dlcli.analysis.compare import load_runs, varying_keys
from dlcli.analysis.filters import where
from dlcli.components.tags import read_tags, tag_runs
from dlcli.config.load import experiment_from_dict
from dlcli.engine.loop import train
from dlcli.errors import UserError


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_thread) -> Path:
    """A results root with two seeds of the same experiment."""
    out = tmp_path_factory.mktemp("replicates") / "results"
    for seed in (0, 1):
        train(experiment_from_dict(tiny_config(seed=seed, train={"epochs": 2})), out_root=out)
    return out


@pytest.fixture
def replicates(trained, tmp_path) -> list[Path]:
    """A copy of the two runs, seed 0 then seed 1, for the test to tag."""
    runs = sorted((Path(shutil.copytree(trained, tmp_path / "results")) / "tiny").iterdir())
    return sorted(runs, key=lambda run: json.loads((run / "summary.json").read_text())["seed"])


def test_tag_values_read_as_where_reads_them(replicates):
    tag_runs(replicates[:1], ["epochs=10", "baseline=true", "owner=ana", "day=2026-11-27", "widths=[8, 8]"])
    frame = load_runs([replicates[0].parent]).set_index("seed")
    assert frame.loc[0, "tag.epochs"] == 10 and frame.loc[0, "tag.baseline"] is True
    assert frame.loc[0, "tag.owner"] == "ana" and frame.loc[0, "tag.day"] == "2026-11-27"
    assert frame.loc[0, "tag.widths"] == "[8, 8]" and math.isnan(frame.loc[1, "tag.epochs"])
    frame = frame.reset_index()
    for expression in ("tag.epochs>=10", "tag.baseline=true", "tag.day=2026-11-27", "tag.widths=[8,8]"):
        assert list(where(frame, [expression])["seed"]) == [0], expression
    assert list(where(frame, ["tag.owner!=ana"])["seed"]) == [1]
    assert where(frame, ["tag.nobody=x"]).empty


def test_tags_are_not_config_keys_and_never_split_replicates(replicates):
    tag_runs(replicates[:1], ["owner=ana"], note="seed 0 only")
    frame = load_runs([replicates[0].parent])
    varying, constant = varying_keys(frame)
    assert varying == ["seed"] and not any(key.startswith("tag.") or key == "note" for key in constant)
    grouped = list(csv.DictReader(io.StringIO(succeeded(invoke("compare", replicates[0].parent, "--format", "csv")))))
    assert len(grouped) == 1 and grouped[0]["n"] == "2"
    by_tag = list(csv.DictReader(io.StringIO(succeeded(invoke("compare", replicates[0].parent, "--by", "tag.owner",
                                                              "--format", "csv")))))
    assert sorted(row["n"] for row in by_tag) == ["1", "1"]


def test_tags_json_written_by_hand_is_read_as_text(replicates):
    (replicates[1] / "tags.json").write_text(json.dumps({"tags": {"round": 2, "final": False}}))
    assert read_tags(replicates[1]) == {"tags": {"round": "2", "final": "false"}, "note": None}
    (replicates[1] / "tags.json").write_text("{not json")
    with pytest.raises(UserError, match="tags.json: not readable as JSON"):
        read_tags(replicates[1])
    result = invoke("compare", replicates[0].parent)
    assert result.exit_code == 2 and "tags.json: not readable as JSON" in text(result.stderr)
    with pytest.raises(UserError, match="tags.json"):  # nothing is written while a tags.json is unreadable
        tag_runs(replicates, ["k=v"])
    assert read_tags(replicates[0])["tags"].get("k") is None
