"""How long `dlcli report` takes on a folder of 1 000 runs of 500 epochs each (10 learning rates ×
10 batch sizes × 10 seeds), and how large the page is. Run by hand; results in docs/benchmarks.md.

    python benchmarks/report_1000_runs.py [--repeats 5]

The runs are written here from one trained run's files (its summary and config as templates, its
metrics stretched to 500 epochs with a little noise): reading and drawing them is what is timed, not
training. Each repeat is a fresh `dlcli report` process, imports included.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

LRS = [0.001 * 2 ** i for i in range(10)]
BATCH_SIZES = [8 * (i + 1) for i in range(10)]
SEEDS = 10
EPOCHS = 500


def template(folder: Path) -> dict:
    """One real run (3 epochs of the tests' tiny config) whose summary the synthetic runs copy."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from conftest import tiny_config

    config = folder / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(name="template")))
    subprocess.run([sys.executable, "-m", "dlcli", "train", str(config), "--out", str(folder / "template")],
                   check=True, capture_output=True)
    run = next((folder / "template" / "template").iterdir())
    return json.loads((run / "summary.json").read_text())


def write_runs(root: Path, summary: dict) -> None:
    generator = np.random.default_rng(0)
    epochs = np.arange(EPOCHS + 1)
    for index, (lr, batch_size, seed) in enumerate((lr, b, s) for lr in LRS for b in BATCH_SIZES for s in range(SEEDS)):
        run_id = f"{index:012x}"
        run = root / "sweep" / run_id
        run.mkdir(parents=True)
        floor = 0.1 + 0.05 * abs(np.log2(lr / 0.03)) / 5 + 0.0005 * batch_size
        train = floor * 0.8 + 0.4 * np.exp(-epochs * lr * 2) + generator.normal(0, 0.005, len(epochs))
        test = floor + 0.4 * np.exp(-epochs * lr * 2) + generator.normal(0, 0.01, len(epochs))
        rows = ["epoch,step,lr,train_loss,train_error,test_loss,test_error,weight_norm,seconds"]
        rows += [f"{e},{e * 10},{lr},{2 * a},{a},{2 * b},{b},{1 + e / 100},{e * 0.01}" for e, a, b in
                 zip(epochs, train, test)]
        (run / "metrics.csv").write_text("\n".join(rows) + "\n")
        config = summary["config"] | {"seed": seed, "optim.lr": lr, "optim.batch_size": batch_size}
        (run / "summary.json").write_text(json.dumps(summary | {
            "run_id": run_id, "seed": seed, "config": config, "status": "completed", "train_error": train[-1],
            "test_error": test[-1], "gap": test[-1] - train[-1], "epochs_run": EPOCHS}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_runs(root / "runs", template(root))
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "dlcli", "report", str(root / "runs"), "-o", str(root / "r.html")],
                           check=True, capture_output=True)
            seconds.append(time.perf_counter() - start)
        size = (root / "r.html").stat().st_size
    print(f"1000 runs × {EPOCHS} epochs: dlcli report median {statistics.median(seconds):.2f} s "
          f"(min {min(seconds):.2f}, max {max(seconds):.2f}, {repeats} runs); page {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
