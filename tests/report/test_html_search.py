"""dlcli report on a search folder: the trials with the validation metric they were chosen on, the
chosen one marked, the best so far drawn from runs.csv's numbers, and no chart that ranks trials on
their test error."""
from __future__ import annotations

import csv
import io
import math

import pandas as pd
import pytest

from conftest import invoke, succeeded, tiny_config, write_yaml
from test_html import report_of

TRIALS = 9


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    """9 random trials of 9 epochs with successive halving (rungs at 1 and 3): (the folder, runs.csv)."""
    folder = tmp_path_factory.mktemp("search_report")
    config = tiny_config(name="tiny")
    config["data"]["n_train"] = 200
    config["train"] = {"epochs": 9, "val_fraction": 0.25}
    succeeded(invoke("sweep", write_yaml(folder, config), "--method", "random", "--trials", TRIALS, "--prune", "asha",
                     "--grid", "optim.lr=loguniform(1e-3,0.5)", "--grid", "model.hidden=choice([4],[16])",
                     "--out", folder / "out"))
    runs = pd.read_csv(folder / "out" / "tiny" / "runs.csv", dtype={"run_id": str})
    assert set(runs["status"]) == {"completed", "pruned"}  # the premise: halving pruned some
    return folder / "out" / "tiny", runs


def chosen_of(runs: pd.DataFrame) -> pd.Series:
    """The trial trained to the end with the lowest validation error (the earliest on a tie)."""
    done = runs[runs["status"] == "completed"]
    return done.loc[done["val_error"].idxmin()]


def test_the_trials_table_marks_the_choice_made_on_validation(search, tmp_path):
    folder, runs = search
    page, blocks = report_of(folder, out=tmp_path / "search.html")
    table = blocks["runs-data"]
    names = [column["name"] for column in table["columns"]]
    assert names[:1] == ["trial"] and {"lr", "hidden", "val_error", "test_error", "status", "epochs"} <= set(names)
    at = {name: names.index(name) for name in names}
    rows = table["rows"]
    assert [int(row["cells"][0].lstrip("★ ")) for row in rows] == runs["trial"].tolist()  # trial order
    chosen = chosen_of(runs)
    marked = [row for row in rows if row["className"] == "chosen"]
    assert len(marked) == 1 and marked[0]["cells"][0] == f"★ {chosen['trial']}"
    assert float(marked[0]["cells"][at["val_error"]]) == pytest.approx(chosen["val_error"], abs=5e-5)
    assert {row["cells"][at["status"]] for row in rows if row["className"] == "pruned"} == {"pruned"}
    header = " ".join(page.split())
    assert f"★ trial {chosen['trial']}, val_error {chosen['val_error']:.4f}" in header
    assert f"its test error {chosen['test_error']:.4f}, reported once, never used to choose" in header
    for test_chart in ("figure-heatmap", "figure-against"):
        assert test_chart not in blocks  # each ranks runs on their test error
    dimensions = blocks["figure-parallel"]["data"][0]["dimensions"]  # the sampled keys against the choice's metric
    done = runs[runs["status"] == "completed"]
    labels = [dimension["label"] for dimension in dimensions]
    assert labels[0] == "model.hidden" and labels[1] in ("optim.lr", "log10 optim.lr") and labels[2] == "val_error"
    lrs = done["optim.lr"].map(math.log10) if labels[1].startswith("log10") else done["optim.lr"]
    lines = sorted(zip(dimensions[1]["values"], dimensions[2]["values"]))  # each completed trial: (lr, val_error)
    expected = sorted(zip(lrs, done["val_error"]))
    assert [value for line in lines for value in line] == pytest.approx([value for line in expected for value in line])


def test_the_best_so_far_is_the_running_minimum_of_the_completed_trials(search, tmp_path):
    folder, runs = search
    _, blocks = report_of(folder, out=tmp_path / "search.html")
    traces = [trace for trace in blocks["figure-best-so-far"]["data"] if trace["xaxis"] == "x"]
    line = next(trace for trace in traces if trace["name"] == "best val_error so far")
    best, expected = math.inf, []
    for _, row in runs.iterrows():
        if row["status"] == "completed":
            best = min(best, row["val_error"])
        expected.append(None if best == math.inf else best)
    assert line["x"] == list(range(1, TRIALS + 1))
    assert [value is None for value in line["y"]] == [value is None for value in expected]
    assert [value for value in line["y"] if value is not None] == \
        pytest.approx([value for value in expected if value is not None])
    star = next(trace for trace in traces if trace["name"] == "the chosen trial")
    chosen = chosen_of(runs)
    assert star["x"] == [chosen["trial"] + 1] and star["y"] == pytest.approx([chosen["val_error"]])
    pruned = next(trace for trace in traces if trace["name"].startswith("a pruned trial"))
    assert len(pruned["x"]) == (runs["status"] == "pruned").sum()
    curves = blocks["figure-curves"]["data"]
    assert "validation (solid)" in blocks["figure-curves"]["layout"]["title"]["text"]
    assert any("val error" in trace["hovertemplate"] for trace in curves)
    named = {trace["name"].split(":")[0] for trace in curves if trace["showlegend"]}  # a curve by its trial
    assert {name.lstrip("★ ") for name in named} <= {f"trial {trial}" for trial in runs["trial"]}
    assert [name for name in named if name.startswith("★")] == [f"★ trial {chosen['trial']}"]


def test_where_keeps_some_trials_and_the_header_keeps_the_whole_search(search, tmp_path):
    folder, runs = search
    page, blocks = report_of(folder, "--where", "status==completed", out=tmp_path / "done.html")
    completed = runs[runs["status"] == "completed"]
    assert len(blocks["runs-data"]["rows"]) == len(completed) < TRIALS
    assert f"{len(completed)} of {TRIALS} trials" in page and f"{TRIALS} trials" in page
    assert f"★ trial {chosen_of(runs)['trial']}" in page


def test_the_page_weighs_the_sampled_keys_as_compare_does(search, tmp_path):
    folder, _ = search
    _, blocks = report_of(folder, out=tmp_path / "search.html")
    bars = blocks["figure-importance"]["data"][0]
    rows = csv.DictReader(io.StringIO(succeeded(invoke("compare", folder, "--importance", "--format", "csv"))))
    shares = {row["key"]: float(row["share"]) for row in rows}
    assert set(shares) == {"optim.lr", "model.hidden"}
    assert dict(zip(bars["y"], bars["x"])) == pytest.approx(shares)
    assert bars["y"][-1] == max(shares, key=shares.get)  # the largest on top


def test_trials_that_diverged_are_drawn_apart_from_those_trained_to_the_end(tmp_path):
    config = tiny_config(name="tiny")
    config["train"] = {"epochs": 2, "val_fraction": 0.25}
    succeeded(invoke("sweep", write_yaml(tmp_path, config), "--method", "random", "--trials", 8,
                     "--grid", "optim.lr=loguniform(1e-2,1e8)", "--out", tmp_path / "out"))
    runs = pd.read_csv(tmp_path / "out" / "tiny" / "runs.csv", dtype={"run_id": str})
    counts = runs["status"].value_counts()
    assert counts.get("diverged", 0) > 0 and counts.get("completed", 0) > 1  # the premise
    _, blocks = report_of(tmp_path / "out" / "tiny", out=tmp_path / "search.html")
    traces = {trace["name"]: trace for trace in blocks["figure-best-so-far"]["data"] if trace["xaxis"] == "x"}
    assert len(traces["a trial trained to the end"]["x"]) == counts["completed"] - 1  # the chosen one: its star
    stopped = traces["a trial that diverged or failed (its val_error when it stopped)"]
    assert sorted(stopped["x"]) == sorted(runs.index[runs["status"] == "diverged"] + 1)
