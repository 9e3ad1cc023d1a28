"""Benchmark (b): a sweep of lr × seed points trained as one stacked model against the same points
one by one (`--no-vectorize`), as whole `dlcli sweep` processes, alternating A B A B.

The sweep is the quickstart (MNIST-1D, MLP 40-100-100-10, SGD with momentum, batch 32); 4 lr × 4 seeds
by default, 8 × 8 with --points 64.

Run: python benchmarks/vectorized_vs_one_by_one.py [--points 16|64] [--epochs 20] [--repeats 5] [--device cpu|cuda]
"""
import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from pairs import compare_pairs

REPO = Path(__file__).resolve().parent.parent
LRS = {16: "0.01,0.03,0.1,0.3", 64: "0.003,0.006,0.01,0.02,0.03,0.06,0.1,0.2"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, choices=sorted(LRS), default=16)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    arguments = parser.parse_args()
    seeds = arguments.points // len(LRS[arguments.points].split(","))
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "out"

        def sweep(*extra: str) -> list[str]:
            # A fresh output folder each time: a sweep finds finished points on disk and skips them.
            command = [sys.executable, "-m", "dlcli", "sweep", str(REPO / "configs" / "quickstart.yaml"),
                       "--grid", f"optim.lr={LRS[arguments.points]}", "--seeds", str(seeds),
                       "--set", f"train.epochs={arguments.epochs}", "--set", f"device={arguments.device}",
                       "--out", str(out), *extra]
            return ["bash", "-c", f'rm -rf "{out}" && exec "$@"', "sweep", *command]

        compare_pairs("one by one", sweep("--no-vectorize"), "vectorized", sweep(), arguments.repeats,
                      target="≥ 3 on 2 CPU cores, ≥ 20 on a GPU (64 points)")
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
