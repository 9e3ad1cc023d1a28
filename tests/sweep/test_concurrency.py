"""Two processes on one sweep folder: the second is refused, naming the first, and nothing it could
have written is touched; compare reads only the complete rows of runs still being written."""
from __future__ import annotations

import csv
import io
import os
import signal
import sys

from conftest import invoke, start_stopping, succeeded, text, tiny_config, write_yaml
from dlcli.config.load import experiment_from_dict
from dlcli.engine.loop import train


def test_a_second_sweep_on_a_running_sweep_folder_is_refused_naming_the_first(tmp_path):
    config = tiny_config(name="busy", train={"epochs": 12, "checkpoint_every": 3})
    config["data"]["n_train"] = 400
    path, out = write_yaml(tmp_path, config), tmp_path / "out"
    grid = ["--grid", "optim.lr=0.02,0.05"]
    first, _ = start_stopping([sys.executable, "-m", "dlcli", "sweep", str(path), *grid, "--out", str(out)], tmp_path)
    try:
        files = {file: file.read_bytes() for file in (out / "busy").rglob("*") if file.is_file()}
        second = invoke("sweep", path, *grid, "--out", out)
        assert second.exit_code == 2, second.output
        message = text(second.stderr)
        assert "another dlcli sweep is running there" in message and f"process {first.pid}" in message
        assert {file: file.read_bytes() for file in (out / "busy").rglob("*") if file.is_file()} == files
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    output = succeeded(invoke("sweep", path, *grid, "--out", out))  # the lock went with the killed process
    assert "2 runs: 2 completed" in output


def test_compare_reads_only_the_complete_rows_of_a_run_being_written(tmp_path):
    result = train(experiment_from_dict(tiny_config(train={"epochs": 3})), tmp_path)
    with open(result.run_dir / "metrics.csv", "a") as metrics:
        metrics.write("4,40,0.1,0.3")  # a row being written: no newline yet
    output = succeeded(invoke("compare", result.run_dir, "--curves", "--format", "csv"))
    epochs = [row["epoch"] for row in csv.DictReader(io.StringIO(output))]
    assert epochs == ["0", "1", "2", "3"]
