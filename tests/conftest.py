"""Shared helpers: tiny experiments that train in well under a second on 2 CPU cores."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
import yaml

# The user's cache folder (generated data sets, image sets) is a fresh one for the test session, shared
# with the processes the tests start: nothing from the home folder, nothing written there.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="dlcli-tests-cache-")
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


# ---- the command line ----------------------------------------------------------------------------

WIDE = {"COLUMNS": "300"}  # no wrapping of the lines we read back


def invoke(*args):
    """Run dlcli in-process with a wide terminal."""
    from typer.testing import CliRunner

    from dlcli.cli import app

    return CliRunner().invoke(app, [str(arg) for arg in args], env=WIDE)


def succeeded(result) -> str:
    assert_no_traceback(result)
    assert result.exit_code == 0, (result.exit_code, result.output)
    return text(result.stdout)


def user_error(result, out: Path) -> list[str]:
    """Exit 2, no traceback, the problems on stderr, and the output root never created."""
    assert_no_traceback(result)
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert not out.exists(), sorted(map(str, out.rglob("*")))
    lines = [line for line in text(result.stderr).splitlines() if line.strip()]
    assert lines, "no message on stderr"
    return lines


def write_yaml(folder: Path, config: dict, name: str = "experiment.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(config))
    return path


# ---- processes stopped mid-run ---------------------------------------------------------------------

# Imported by every Python process started with this folder on PYTHONPATH (sweep workers too): once a
# run has written a checkpoint and logged one more epoch, its process says so with a file in
# STOP_FOLDER and waits there to be killed: the kill lands mid-run, after a checkpoint, every time.
SITECUSTOMIZE = """
import os, time
from pathlib import Path

folder = os.environ.get("STOP_FOLDER")
if folder:
    from dlcli.components import run_log

    checkpoint, record = run_log.RunLog.checkpoint, run_log.RunLog.record
    written = []

    def remembering(self, engine, position):
        checkpoint(self, engine, position)
        written.append(position["epoch"])

    def stopping(self, row, state):
        record(self, row, state)
        if written and row is not None and row["epoch"] > written[-1]:
            Path(folder, str(os.getpid())).touch()
            while True:
                time.sleep(1)

    run_log.RunLog.checkpoint, run_log.RunLog.record = remembering, stopping
"""


def start_stopping(command: list[str], folder: Path, stopped: int = 1):
    """Start `command` with the stopping hook, and wait until `stopped` of its processes wait at their
    stopping point (an event: a file each, named by the process id, however busy the machine).
    Returns the process (in a session of its own) and the ids of the stopped processes."""
    hooks, stops = folder / "hooks", folder / "stops"
    hooks.mkdir(), stops.mkdir()
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hooks), os.environ.get("PYTHONPATH", "")]),
           "STOP_FOLDER": str(stops), "COLUMNS": "300"}
    log = open(folder / "stopped.log", "wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        while len(list(stops.iterdir())) < stopped:
            assert process.poll() is None, (folder / "stopped.log").read_text()
            time.sleep(0.02)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    finally:
        log.close()
    return process, sorted(int(path.name) for path in stops.iterdir())


def stop_with(process: subprocess.Popen, how: str, folder: Path) -> str:
    """Stop a command started by `start_stopping`: SIGTERM to its process ("SIGTERM ..."), else Ctrl-C
    (SIGINT) to its whole process group. It must exit with 130; returns what it printed."""
    if how.startswith("SIGTERM"):
        os.kill(process.pid, signal.SIGTERM)
    else:
        os.killpg(process.pid, signal.SIGINT)
    output = (folder / "stopped.log").read_text
    assert process.wait() == 130, output()
    return output()


def stop_two_workers(arguments: list[str], folder: Path, how: str) -> str:
    """`dlcli sweep ARGUMENTS` (with --workers 2) stopped by `how` once both workers wait mid-run, after
    a checkpoint; every worker must be gone when it has exited. Returns what it printed."""
    command = [sys.executable, "-m", "dlcli", "sweep", *map(str, arguments)]
    process, workers = start_stopping(command, folder, stopped=2)
    output = stop_with(process, how, folder)
    assert not [pid for pid in workers if alive(pid)]  # the sweep waited for its workers: none is left
    return output


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kill_when_stopped(command: list[str], folder: Path, stopped: int = 1) -> None:
    """Run `command` until `stopped` of its processes wait at their stopping point, then SIGKILL them all."""
    process, _ = start_stopping(command, folder, stopped)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


# ---- sweep folders ----------------------------------------------------------------------------


def read_csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def without(rows: list[dict[str, str]], *columns: str) -> list[dict[str, str]]:
    return [{key: value for key, value in row.items() if key not in columns} for row in rows]


def run_dirs(sweep_dir: Path) -> set[str]:
    return {path.name for path in sweep_dir.iterdir() if path.is_dir() and not path.name.startswith(".")}


def metrics_without_seconds(run_dir: Path) -> list[dict[str, str]]:
    return without(read_csv_rows(run_dir / "metrics.csv")[1], "seconds")


def assert_same_sweep(expected: Path, actual: Path) -> None:
    """Same runs.csv apart from `seconds`, same run directories holding the same files and results."""
    expected_columns, expected_rows = read_csv_rows(expected / "runs.csv")
    actual_columns, actual_rows = read_csv_rows(actual / "runs.csv")
    assert actual_columns == expected_columns
    assert without(actual_rows, "seconds") == without(expected_rows, "seconds")
    assert run_dirs(actual) == run_dirs(expected) == {row["run_id"] for row in expected_rows}
    for run_id in run_dirs(expected):
        a, b = expected / run_id, actual / run_id
        assert {p.name for p in b.iterdir()} == {p.name for p in a.iterdir()}, run_id
        assert (b / "config.yaml").read_text() == (a / "config.yaml").read_text(), run_id
        assert metrics_without_seconds(b) == metrics_without_seconds(a), run_id
        summary_a, summary_b = (json.loads((d / "summary.json").read_text()) for d in (a, b))
        for volatile in ("started", "seconds"):
            summary_a.pop(volatile), summary_b.pop(volatile)
        assert summary_b == summary_a, run_id
        weights_a = torch.load(a / "model.pt", weights_only=True)
        weights_b = torch.load(b / "model.pt", weights_only=True)
        assert weights_a.keys() == weights_b.keys()
        assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a), run_id


def pytest_unconfigure(config):
    shutil.rmtree(os.environ["XDG_CACHE_HOME"], ignore_errors=True)
