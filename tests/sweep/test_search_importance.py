"""`dlcli compare SEARCH --importance`: each sampled key's share of the validation metric's variance
(fANOVA), at the latest epoch every trial was measured at: it finds the key the metric depends on and
gives next to nothing to one that cannot matter."""
from __future__ import annotations

import csv
import io

from conftest import invoke, succeeded, user_error, write_yaml
from test_search import LR_SPACE, searchable

# A weight decay this small changes no prediction: whatever the search finds, it owes to the lr.
NEGLIGIBLE = ["--grid", "regularization.weight_decay=loguniform(1e-12,1e-11)"]


def shares(output: str) -> dict[str, float]:
    return {row["key"]: float(row["share"]) for row in csv.DictReader(io.StringIO(output))}


def test_importance_finds_the_key_the_validation_error_depends_on(tmp_path):
    config = write_yaml(tmp_path, searchable(epochs=3))
    succeeded(invoke("sweep", config, "--method", "random", "--trials", "12", *LR_SPACE, *NEGLIGIBLE,
                     "--out", tmp_path / "out"))
    found = shares(succeeded(invoke("compare", tmp_path / "out" / "tiny", "--importance", "--format", "csv")))
    assert set(found) == {"optim.lr", "regularization.weight_decay"}
    assert abs(sum(found.values()) - 1.0) < 1e-6
    assert found["optim.lr"] > 0.8 > found["regularization.weight_decay"] * 4
    figure = tmp_path / "importance.png"
    table = " ".join(succeeded(invoke("compare", tmp_path / "out" / "tiny", "--importance", "--plot", figure)).split())
    assert "what val_error depends on, at epoch 3 (12 trials measured there)" in table
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {figure}" in table


def test_with_halving_the_trials_are_weighed_at_the_first_rung(tmp_path):
    config = write_yaml(tmp_path, searchable(epochs=4))
    succeeded(invoke("sweep", config, "--method", "random", "--trials", "9", *LR_SPACE, *NEGLIGIBLE,
                     "--prune", "asha", "--min-epochs", "1", "--out", tmp_path / "out"))
    table = " ".join(succeeded(invoke("compare", tmp_path / "out" / "tiny", "--importance")).split())
    assert "at epoch 1 (9 trials measured there)" in table  # pruned trials stop there: later epochs are the survivors'


def test_too_few_trials_or_no_search_is_one_line_naming_the_problem(tmp_path):
    config = write_yaml(tmp_path, searchable(epochs=2))
    succeeded(invoke("sweep", config, "--method", "random", "--trials", "3", *LR_SPACE, "--out", tmp_path / "out"))
    lines = user_error(invoke("compare", tmp_path / "out" / "tiny", "--importance"), tmp_path / "written")
    assert lines == [f"error: --importance: 3 trials of {tmp_path / 'out' / 'tiny'} were measured at a common "
                     "epoch; weighing the keys needs at least 8"]
    run = next(path for path in (tmp_path / "out" / "tiny").iterdir() if (path / "summary.json").is_file())
    assert user_error(invoke("compare", run, "--importance"), tmp_path / "written")[0].startswith(
        f"error: --importance: {run} is not one search folder")
