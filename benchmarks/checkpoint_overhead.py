"""Benchmark (e): what checkpoints cost, on the quickstart and on the MLP double-descent config's widest
model. In one process (after a warm-up run): the training time each run reports (summary.json's
`seconds`: the epoch loop, checkpoint writes included) with `train.checkpoint_every` auto (the default)
and 1 (every epoch) against 0 (never), alternating to share the machine's noise, and the time spent
writing checkpoints itself, timed around each write: its share of the training time is the figure
that noise does not blur.

Run: python benchmarks/checkpoint_overhead.py [--repeats 5] [--epochs-widest 40]
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import dlcli.engine.checkpoint as checkpoint
from dlcli.config.load import load_experiment
from dlcli.engine.loop import train

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
WRITES: list[float] = []


def timed_write(write):
    def wrapper(self, models, members, position):
        started = time.perf_counter()
        write(self, models, members, position)
        WRITES.append(time.perf_counter() - started)

    return wrapper


def run(config: Path, overrides: list[str], every: str, out: Path) -> tuple[float, float, int]:
    """Training seconds, seconds spent writing checkpoints, and how many were written."""
    WRITES.clear()
    experiment = load_experiment(config, [*overrides, f"train.checkpoint_every={every}"])
    seconds = train(experiment, out).summary["seconds"]
    return seconds, sum(WRITES), len(WRITES)


def compare(label: str, config: Path, overrides: list[str], repeats: int, out: Path) -> None:
    run(config, overrides, "0", out)  # warm-up: kernels, allocators, the data set's cache
    for every in ("auto", "1"):
        results = [(run(config, overrides, every, out), run(config, overrides, "0", out)) for _ in range(repeats)]
        ratios = [a[0] / b[0] for a, b in results]
        shares = [a[1] / a[0] for a, _ in results]
        print(f"{label}, checkpoint_every={every}: {results[0][0][2]} checkpoints; writing them "
              f"{statistics.median(shares):.1%} of the training time (median); training against checkpoint_every=0: "
              f"{statistics.median(a[0] for a, _ in results):.3f} s against "
              f"{statistics.median(b[0] for _, b in results):.3f} s, ratio pair by pair median "
              f"{statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs-widest", type=int, default=40, help="epochs of the widest double-descent model")
    arguments = parser.parse_args()
    checkpoint.CheckpointClock.write = timed_write(checkpoint.CheckpointClock.write)
    widest = ["model.hidden=[300,300]", f"train.epochs={arguments.epochs_widest}"]
    with tempfile.TemporaryDirectory() as out:
        compare("quickstart", CONFIGS / "quickstart.yaml", [], arguments.repeats, Path(out))
        compare("double descent, widest [300, 300]", CONFIGS / "double_descent_mlp.yaml", widest,
                arguments.repeats, Path(out))


if __name__ == "__main__":
    main()
