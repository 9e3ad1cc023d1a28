"""Managing results from the command line: `dlcli runs`, `diff`, `tag` and `clean`, on real runs whose
states (running, killed, interrupted) are made by editing their summary.json."""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import assert_no_traceback, invoke, read_csv_rows, succeeded, text, tiny_config, write_yaml
from dlcli.analysis.manage import LIST_COLUMNS
from dlcli.config.load import experiment_from_dict
from dlcli.engine.loop import train
from dlcli.layout import RUN_RESULT_COLUMNS

LRS = {"base": 0.1, "slow": 0.05, "fast": 0.2}  # one run each, in this order of training


# ---- helpers -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory, one_thread) -> Path:
    """A results root with three finished runs of `tiny`, lr 0.1, 0.05 and 0.2, trained for 2 epochs."""
    out = tmp_path_factory.mktemp("built") / "results"
    for lr in LRS.values():
        train(experiment_from_dict(tiny_config(optim={"name": "sgd", "lr": lr, "batch_size": 32},
                                               train={"epochs": 2})), out_root=out)
    return out


@pytest.fixture
def results(built, tmp_path) -> Path:
    """A copy of the built results this test may change."""
    return Path(shutil.copytree(built, tmp_path / "results"))


def runs_by_lr(root: Path) -> dict[str, Path]:
    found = {}
    for run_dir in sorted((root / "tiny").iterdir()):
        lr = json.loads((run_dir / "summary.json").read_text())["config"]["optim.lr"]
        found[next(name for name, value in LRS.items() if value == lr)] = run_dir
    return found


def edit_summary(run_dir: Path, **changes) -> dict:
    path = run_dir / "summary.json"
    summary = {**json.loads(path.read_text()), **changes}
    path.write_text(json.dumps(summary))
    return summary


def dead_pid() -> int:
    """The process id of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def user_error(result) -> str:
    """Exit 2, no traceback, nothing on stdout, one message line per problem on stderr."""
    assert_no_traceback(result)
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert text(result.stdout).strip() == "", result.stdout
    message = text(result.stderr).strip()
    assert message.startswith("error:"), message
    return message


def listing(*args) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(succeeded(invoke("runs", *args, "--format", "csv")))))


def table_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("│")]


# ---- dlcli runs ----------------------------------------------------------------------------------


def test_runs_lists_every_run_newest_first(results):
    runs = runs_by_lr(results)
    for days, name in enumerate(["fast", "base", "slow"]):  # started `days` days ago
        edit_summary(runs[name], started=f"2020-01-{10 - days:02d}T12:00:00+0000")
    rows = listing(results)
    assert list(rows[0]) == LIST_COLUMNS
    assert [row["path"] for row in rows] == [str(runs[name]) for name in ["fast", "base", "slow"]]
    for row in rows:
        summary = json.loads(Path(row["path"], "summary.json").read_text())
        assert (row["name"], row["run_id"], row["status"]) == ("tiny", summary["run_id"], "completed")
        assert int(row["epochs_run"]) == 2 and float(row["test_error"]) == summary["test_error"]
    ages = [float(row["age_seconds"]) for row in rows]
    assert ages[1] - ages[0] == pytest.approx(86400) and ages[2] - ages[1] == pytest.approx(86400)

    stdout = succeeded(invoke("runs", results))
    lines = table_lines(stdout)
    assert len(lines) == 3 and "3 runs" in stdout
    assert runs["fast"].name in lines[0] and "completed" in lines[0]
    assert [line.split("│")[4].strip() for line in lines] == [f"{int(age // 86400)}d" for age in ages]
    assert json.loads(succeeded(invoke("runs", results, "--format", "json")))[2]["path"] == str(runs["slow"])


def test_runs_filters_on_status_and_where(results):
    runs = runs_by_lr(results)
    edit_summary(runs["slow"], status="interrupted")
    edit_summary(runs["fast"], status="running", pid=os.getpid(), host=socket.gethostname())
    edit_summary(runs["base"], status="running", pid=dead_pid(), host=socket.gethostname(), epochs_run=None,
                 test_error=None)  # as a run killed while training: its metrics are in metrics.csv only
    last = read_csv_rows(runs["base"] / "metrics.csv")[1][-1]
    with open(runs["base"] / "metrics.csv", "a") as file:
        file.write("3,21,0.1,0.6")  # a row cut off mid-write

    assert [row["path"] for row in listing(results, "--status", "interrupted")] == [str(runs["slow"])]
    killed = next(row for row in listing(results) if row["path"] == str(runs["base"]))
    assert (killed["epochs_run"], float(killed["test_error"])) == ("2", float(last["test_error"]))
    running = {row["path"]: row["live"] for row in listing(results, "--status", "running,interrupted")
               if row["status"] == "running"}
    assert running == {str(runs["fast"]): "True", str(runs["base"]): "False"}
    assert [row["path"] for row in listing(results, "--where", "optim.lr>=0.15")] == [str(runs["fast"])]
    assert listing(results, "--where", "optim.lr>=0.15", "--status", "interrupted") == []

    lines = table_lines(succeeded(invoke("runs", results, "--status", "running")))
    assert "running (process gone)" in next(line for line in lines if runs["base"].name in line)
    assert "process gone" not in next(line for line in lines if runs["fast"].name in line)
    assert "no runs match" in succeeded(invoke("runs", results, "--where", "tag.nobody=here"))


def test_runs_looks_in_results_by_default(results, monkeypatch):
    monkeypatch.chdir(results.parent)
    assert len(listing()) == 3


# ---- dlcli diff ----------------------------------------------------------------------------------


def test_diff_shows_the_keys_that_differ_and_the_metrics_side_by_side(results):
    runs = runs_by_lr(results)
    environment = {"dlcli_version": "0.1.0", "torch_version": "2.5.0", "git": {"commit": "abc", "dirty": False}}
    (runs["base"] / "environment.json").write_text(json.dumps(environment))
    (runs["slow"] / "environment.json").write_text(json.dumps({**environment, "git": {"commit": "def", "dirty": False}}))
    stdout = succeeded(invoke("diff", runs["base"], runs["slow"]))
    assert "config: 1 key differs" in stdout and "environment: 1 key differs" in stdout
    config_line = next(line for line in table_lines(stdout) if "optim.lr" in line)
    assert [cell.strip() for cell in config_line.split("│")[1:4]] == ["optim.lr", "0.1", "0.05"]
    assert any("git.commit" in line and "abc" in line and "def" in line for line in table_lines(stdout))
    assert not any(line.split("│")[1].strip() == "seed" for line in table_lines(stdout))  # the same in both
    summaries = [json.loads((runs[name] / "summary.json").read_text()) for name in ("base", "slow")]
    test_error = next(line for line in table_lines(stdout) if line.split("│")[1].strip() == "test_error")
    cells = [cell.strip() for cell in test_error.split("│")[2:5]]
    assert cells == [f"{summaries[0]['test_error']:.4f}", f"{summaries[1]['test_error']:.4f}",
                     f"{summaries[1]['test_error'] - summaries[0]['test_error']:.4f}"]

    (runs["slow"] / "environment.json").unlink()
    assert "environment.json only in A" in succeeded(invoke("diff", runs["base"], runs["slow"]))
    assert "config: the same" in succeeded(invoke("diff", runs["base"], runs["base"]))


def test_diff_reads_config_yaml_when_the_summary_lacks_the_config(results):
    runs = runs_by_lr(results)
    edit_summary(runs["fast"], config=None)
    stdout = succeeded(invoke("diff", runs["base"], runs["fast"]))
    assert "config: 1 key differs" in stdout and any("optim.lr" in line for line in table_lines(stdout))


# ---- dlcli tag -----------------------------------------------------------------------------------


def test_tag_then_compare_where_keeps_only_the_tagged_runs(results):
    runs = runs_by_lr(results)
    before = {name: {file: (run / file).read_bytes() for file in ("summary.json", "config.yaml")}
              for name, run in runs.items()}
    stdout = succeeded(invoke("tag", runs["base"], "baseline=true", runs["slow"], "owner=ana", "--note", "first pass"))
    assert f"{runs['base']}: baseline=true, owner=ana · note: first pass" in stdout
    assert json.loads((runs["base"] / "tags.json").read_text()) == {"tags": {"baseline": "true", "owner": "ana"},
                                                                    "note": "first pass"}
    assert not (runs["fast"] / "tags.json").exists()
    for name, run in runs.items():  # the config, its hash and the summary are untouched
        assert {file: (run / file).read_bytes() for file in ("summary.json", "config.yaml")} == before[name]

    compared = csv.DictReader(io.StringIO(succeeded(invoke("compare", results, "--where", "tag.baseline=true",
                                                           "--format", "csv"))))
    assert sorted(row["path"] for row in compared) == sorted(str(runs[name]) for name in ("base", "slow"))
    assert not any(column.startswith("tag.") for column in compared.fieldnames)  # tags are not config keys
    table = succeeded(invoke("compare", results))
    assert "tag." not in table and "owner" not in table
    rows = listing(results, "--where", "tag.owner=ana")
    assert [row["tags"] for row in rows] == ["baseline=true, owner=ana"] * 2

    succeeded(invoke("tag", runs["slow"], "owner=", "round=2", "--note", ""))  # an empty value removes a tag
    assert json.loads((runs["slow"] / "tags.json").read_text()) == {"tags": {"baseline": "true", "round": "2"},
                                                                    "note": None}
    assert [row["path"] for row in listing(results, "--where", "tag.round>=2")] == [str(runs["slow"])]


def test_tag_on_train_and_sweep_tags_the_runs_as_they_start(tmp_path, one_thread):
    config = write_yaml(tmp_path, tiny_config(name="tagged", train={"epochs": 1}))
    out = tmp_path / "out"
    succeeded(invoke("train", config, "--out", out, "--tag", "owner=ana", "--tag", "round=1"))
    succeeded(invoke("sweep", config, "--grid", "optim.lr=0.05,0.1", "--out", out, "--tag", "owner=ben"))
    tags = {run.name: json.loads((run / "tags.json").read_text())["tags"] for run in (out / "tagged").iterdir()
            if run.is_dir()}
    assert sorted(tags.values(), key=str) == [{"owner": "ana", "round": "1"}, {"owner": "ben"}, {"owner": "ben"}]
    kept = listing(out, "--where", "tag.owner=ben")
    assert len(kept) == 2 and all(row["tags"] == "owner=ben" for row in kept)


def test_a_bad_tag_on_train_is_refused_before_anything_is_written(tmp_path):
    config, out = write_yaml(tmp_path, tiny_config()), tmp_path / "out"
    result = invoke("train", config, "--out", out, "--tag", "no value")
    assert_no_traceback(result)
    assert result.exit_code == 2 and "--tag no value: expected KEY=VALUE" in text(result.stderr)
    assert not out.exists()


# ---- dlcli clean ---------------------------------------------------------------------------------


def unfinished(results: Path) -> dict[str, Path]:
    """base: interrupted; slow: running, its process gone; fast: running in this live process."""
    runs = runs_by_lr(results)
    edit_summary(runs["base"], status="interrupted")
    edit_summary(runs["slow"], status="running", pid=dead_pid(), host=socket.gethostname())
    edit_summary(runs["fast"], status="running", pid=os.getpid(), host=socket.gethostname())
    return runs


def folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def test_clean_dry_run_lists_what_it_would_remove_and_removes_nothing(results):
    runs = unfinished(results)
    files = sorted(map(str, results.rglob("*")))
    stdout = succeeded(invoke("clean", results, "--status", "interrupted,running", "--dry-run"))
    assert sorted(map(str, results.rglob("*"))) == files
    assert str(runs["base"]) in stdout and str(runs["slow"]) in stdout
    assert f"kept {runs['fast']}: running, process {os.getpid()}" in stdout
    assert "dry run: would remove 2 runs" in stdout and "nothing was removed" in stdout


def test_clean_removes_interrupted_and_dead_runs_but_never_a_live_one(results):
    runs = unfinished(results)
    size = folder_size(runs["base"]) + folder_size(runs["slow"])
    stdout = succeeded(invoke("clean", results, "--status", "interrupted,running"))
    assert not runs["base"].exists() and not runs["slow"].exists() and runs["fast"].exists()
    assert f"kept {runs['fast']}" in stdout
    kilobytes = f"{size / 1024:.1f} KB"
    assert f"removed 2 runs, freed {kilobytes}" in stdout

    edit_summary(runs["fast"], status="completed")
    stdout = succeeded(invoke("clean", results, "--status", "interrupted,running,failed"))
    assert "nothing to remove" in stdout and runs["fast"].exists()


def test_clean_by_default_removes_failed_runs_only_not_resumable_ones(results):
    runs = unfinished(results)
    edit_summary(runs["base"], status="failed")
    stdout = succeeded(invoke("clean", results))
    assert not runs["base"].exists() and runs["slow"].exists() and runs["fast"].exists()
    assert "removed 1 run" in stdout


def test_clean_of_one_status_leaves_the_others(results):
    runs = unfinished(results)
    succeeded(invoke("clean", results, "--status", "interrupted"))
    assert not runs["base"].exists() and runs["slow"].exists() and runs["fast"].exists()


def test_clean_puts_a_sweep_point_back_to_pending_and_the_sweep_trains_it_again(tmp_path, one_thread):
    config = write_yaml(tmp_path, tiny_config(name="grid", train={"epochs": 2}))
    out = tmp_path / "results"
    sweep = ["sweep", config, "--grid", "optim.lr=0.05,0.1,0.2", "--out", out]
    succeeded(invoke(*sweep))
    sweep_dir = out / "grid"
    columns, rows = read_csv_rows(sweep_dir / "runs.csv")
    interrupted = rows[1]["run_id"]
    edit_summary(sweep_dir / interrupted, status="interrupted")
    rows[1]["status"] = "interrupted"
    with open(sweep_dir / "runs.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

    stdout = succeeded(invoke("clean", out, "--status", "interrupted"))
    assert f"{sweep_dir / 'runs.csv'}: 1 point went back to pending" in stdout
    assert not (sweep_dir / interrupted).exists()
    after_columns, after = read_csv_rows(sweep_dir / "runs.csv")
    assert after_columns == columns and [after[0], after[2]] == [rows[0], rows[2]]
    assert after[1]["status"] == "pending" and after[1]["run_id"] == interrupted
    assert all(after[1][column] == "" for column in RUN_RESULT_COLUMNS)
    assert after[1]["optim.lr"] == rows[1]["optim.lr"] and after[1]["seed"] == rows[1]["seed"]

    succeeded(invoke(*sweep))  # the sweep trains the removed point again
    assert json.loads((sweep_dir / interrupted / "summary.json").read_text())["status"] == "completed"
    assert [row["status"] for row in read_csv_rows(sweep_dir / "runs.csv")[1]] == ["completed"] * 3


# ---- mistakes ------------------------------------------------------------------------------------


def test_bad_input_exits_2_with_a_one_line_message(results, tmp_path):
    run = runs_by_lr(results)["base"]
    missing = tmp_path / "missing"
    cases = [
        (("runs", results, "--status", "done"), "--status done: unknown status"),
        (("runs", missing), f"{missing}: no such file or directory"),
        (("runs", results, "--where", "lr is big"), "--where lr is big: expected COLUMN OP VALUE"),
        (("runs", results, "--where", "nonsense=1"), "--where nonsense: unknown column"),
        (("runs", results, "--format", "xml"), "--format: unknown format 'xml'"),
        (("diff", run, results), f"{results}: not a run folder (no summary.json)"),
        (("diff", run, missing), f"{missing}: no such file or directory"),
        (("tag", results / "tiny", "k=v"), f"{results / 'tiny'}: not a run folder"),
        (("tag", run, "bad key=v"), "bad key=v: expected KEY=VALUE"),
        (("tag", run, "k!=v"), "k!=v: expected KEY=VALUE"),
        (("tag", run), "nothing to set"),
        (("tag", "k=v"), "no run folder given"),
        (("clean", missing), f"{missing}: no such file or directory"),
        (("clean", results, "--status", "interrupted,stale"), "--status stale: unknown status"),
    ]
    files = sorted(map(str, results.rglob("*")))
    for args, expected in cases:
        message = user_error(invoke(*args))
        assert expected in message and len(message.splitlines()) == 1, (args, message)
    assert sorted(map(str, results.rglob("*"))) == files  # nothing written, nothing removed
