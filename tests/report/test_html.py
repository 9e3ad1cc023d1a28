"""dlcli report: one self-contained HTML page whose table and charts hold the runs' own numbers."""
from __future__ import annotations

import json
import re
import sys

import pandas as pd
import pytest

from conftest import invoke, succeeded, text, tiny_config, write_yaml

LRS = [0.05, 0.2]
DIVERGING_LR = 1000000.0
BATCH_SIZES = [16, 32]
SEEDS = 2


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """2 batch sizes × (2 lrs + one that diverges) × 2 seeds, per-update losses logged: (root, runs.csv)."""
    folder = tmp_path_factory.mktemp("report")
    config = write_yaml(folder, tiny_config(name="grid", train={"epochs": 3, "log_steps": True}))
    succeeded(invoke("sweep", config, "--grid", "optim.batch_size=16,32", "--grid",
                     f"optim.lr={','.join(map(str, LRS + [DIVERGING_LR]))}", "--seeds", SEEDS, "--out", folder / "out"))
    runs = pd.read_csv(folder / "out" / "grid" / "runs.csv", dtype={"run_id": str})
    assert (runs["status"] == "diverged").tolist() == (runs["optim.lr"] == DIVERGING_LR).tolist()  # the premise
    return folder / "out", runs


def page_data(path) -> tuple[str, dict[str, dict]]:
    """The page's text and its embedded JSON blocks by element id."""
    page = path.read_text(encoding="utf-8")
    blocks = re.findall(r'<script type="application/json" id="([\w-]+)"[^>]*>(.*?)</script>', page, flags=re.S)
    return page, {element: json.loads(payload) for element, payload in blocks}


def report_of(*args, out) -> tuple[str, dict[str, dict]]:
    stdout = succeeded(invoke("report", *args, "-o", out))
    assert f"wrote {out}" in " ".join(stdout.split())
    return page_data(out)


def test_the_page_is_self_contained_with_plotly_inline_once(sweep, tmp_path):
    root, _ = sweep
    page, blocks = report_of(root, out=tmp_path / "report.html")
    assert page.startswith("<!DOCTYPE html>")
    assert len(re.findall(r"\* plotly\.js v\d", page)) == 1  # the library's banner: bundled once
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", page, flags=re.S)  # the HTML, without inline scripts
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup), "the page loads from a server"
    assert "<link" not in markup and "<script src" not in page
    assert (tmp_path / "report.html").stat().st_size < 8_000_000
    for chart in ("against", "heatmap", "curves", "updates", "parallel"):
        assert f"figure-{chart}" in blocks, sorted(blocks)


def test_the_table_groups_seeds_with_compares_numbers_and_marks_diverged_runs(sweep, tmp_path):
    root, runs = sweep
    _, blocks = report_of(root, out=tmp_path / "report.html")
    table = blocks["runs-data"]
    names = [column["name"] for column in table["columns"]]
    assert {"lr", "batch_size", "train_error", "test_error", "gap", "status", "n"} <= set(names)
    at = {name: names.index(name) for name in names}
    expected = runs.groupby(["optim.batch_size", "optim.lr"])
    assert len(table["rows"]) == expected.ngroups == len(BATCH_SIZES) * (len(LRS) + 1)
    for row in table["rows"]:
        cells = row["cells"]
        members = runs[(runs["optim.batch_size"] == int(cells[at["batch_size"]]))
                       & (runs["optim.lr"] == float(cells[at["lr"]]))]
        assert cells[at["n"]] == str(SEEDS)
        mean, std = (float(part) for part in cells[at["test_error"]].split("±"))
        assert mean == pytest.approx(members["test_error"].mean(), abs=5e-5)
        assert std == pytest.approx(members["test_error"].std(ddof=1), abs=5e-4)
        diverged = float(cells[at["lr"]]) == DIVERGING_LR
        assert row["failed"] is diverged and (cells[at["status"]] == "diverged") is diverged
    completed = [row for row in table["rows"] if not row["failed"]]
    assert table["rows"][:len(completed)] == completed  # runs that did not complete come last


def test_the_charts_hold_the_runs_numbers(sweep, tmp_path):
    root, runs = sweep
    _, blocks = report_of(root, out=tmp_path / "report.html")
    done = runs[runs["status"] == "completed"]
    heatmap = blocks["figure-heatmap"]["data"][0]
    means = done.groupby(["optim.lr", "optim.batch_size"])["test_error"].mean()
    for i, lr in enumerate(heatmap["y"]):
        for j, batch_size in enumerate(heatmap["x"]):
            if float(lr) == DIVERGING_LR:
                assert heatmap["z"][i][j] is None and heatmap["text"][i][j] == "diverged"
            else:
                assert heatmap["z"][i][j] == pytest.approx(means[(float(lr), int(batch_size))])
    curves = blocks["figure-curves"]["data"]
    label = "lr=0.05, batch_size=16"
    test_lines = [trace for trace in curves if trace["name"] == label and "test error" in trace["hovertemplate"]]
    assert len(test_lines) == 1 and label in test_lines[0]["hovertemplate"]
    members = done[(done["optim.lr"] == 0.05) & (done["optim.batch_size"] == 16)]
    assert test_lines[0]["y"][-1] == pytest.approx(members["test_error"].mean())
    assert any("(diverged)" in trace["name"] and trace["line"]["dash"] == "dot" for trace in curves)
    against = blocks["figure-against"]["data"]
    errors = [trace for trace in against if trace.get("name") == "test batch_size=32" and trace["xaxis"] == "x"]
    by_lr = done[done["optim.batch_size"] == 32].groupby("optim.lr")["test_error"].mean()
    assert errors[0]["x"] == LRS and errors[0]["y"] == pytest.approx(by_lr.loc[LRS].tolist())
    parallel = blocks["figure-parallel"]["data"][0]["dimensions"]
    assert [dimension["label"] for dimension in parallel][-1] == "test_error"
    assert sorted(parallel[-1]["values"]) == pytest.approx(sorted(done["test_error"]))


def test_where_and_by_select_and_group_the_runs(sweep, tmp_path):
    root, runs = sweep
    _, blocks = report_of(root, "--where", "optim.lr<1", "--by", "optim.lr", out=tmp_path / "lr.html")
    rows = blocks["runs-data"]["rows"]
    assert len(rows) == len(LRS) and not any(row["failed"] for row in rows)
    assert [row["cells"][-1] for row in rows] == [str(len(BATCH_SIZES) * SEEDS)] * len(LRS)


def test_a_folder_mixing_a_run_a_sweep_a_bias_variance_study_and_an_lr_find(sweep, tmp_path):
    root = tmp_path / "mixed"
    config = write_yaml(tmp_path, tiny_config(name="single", train={"epochs": 2}))
    succeeded(invoke("train", config, "--out", root))
    succeeded(invoke("lr-find", config, "--steps", 30, "--out", root))
    study = write_yaml(tmp_path, tiny_config(name="study", train={"epochs": 2}), "study.yaml")
    succeeded(invoke("bias-variance", study, "--trials", 2, "--grid", "model.hidden=[2],[8]", "--out", root))
    _, blocks = report_of(root, sweep[0], out=tmp_path / "mixed.html")
    assert len(blocks["runs-data"]["rows"]) > 1
    curve = pd.read_csv(next(root.glob("single/lr_find-*/lr_find.csv")))
    lr_find = blocks["figure-lr-find-0"]["data"]
    assert lr_find[1]["x"] == pytest.approx(curve["lr"].tolist())
    assert lr_find[1]["y"] == pytest.approx(curve["smoothed_loss"].tolist())
    decomposition = pd.read_csv(root / "study" / "bias_variance.csv")
    traces = {trace["name"]: trace for trace in blocks["figure-bias-variance-0"]["data"] if trace["xaxis"] == "x"}
    first = decomposition[decomposition["decomposition"] == decomposition["decomposition"].iloc[0]]
    assert traces["risk"]["y"] == pytest.approx(first["risk"].tolist())
    _, only = report_of(next(root.glob("single/lr_find-*")), out=tmp_path / "lr_find.html")
    assert "runs-data" not in only and "figure-lr-find-0" in only


def test_without_plotly_it_says_which_extra_to_install(sweep, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "plotly", None)  # `import plotly` raises ImportError
    result = invoke("report", sweep[0], "-o", tmp_path / "report.html")
    assert result.exit_code == 2, result.output
    lines = text(result.stderr).strip().splitlines()
    assert len(lines) == 1 and "dlcli[report]" in lines[0]
    assert not (tmp_path / "report.html").exists()


def test_bad_input_is_one_line_and_exit_2(sweep, tmp_path):
    for args in ([tmp_path / "missing"], [sweep[0], "-o", tmp_path / "no" / "report.html"],
                 [sweep[0], "--where", "optim.lr>100000000"], [sweep[0], "--where", "nokey=1"],
                 [sweep[0], "-o", tmp_path / "report.png"]):  # a page, named as an image
        result = invoke("report", *args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output and text(result.stderr).strip()
