"""Benchmark (b): a sweep of lr × seed points trained as one stacked model against the same points
one by one (`--no-vectorize`), alternating A B A B in one process, so that both pay the same start-up
(interpreter, torch, CUDA) once, outside the timings. Each timing is a whole `run_sweep`: preparing
every point (data, model), training, and writing every run's files.

The sweep is the quickstart (MNIST-1D, MLP 40-100-100-10, SGD with momentum, batch 32, 4000 training
signals); 4 lr × 4 seeds by default, 8 × 8 with --points 64.

Run: python benchmarks/vectorized_vs_one_by_one.py [--points 16|64] [--epochs 20] [--repeats 5] [--device cpu|cuda]
"""
import argparse
from pathlib import Path

from pairs import one_by_one_against_stacked

REPO = Path(__file__).resolve().parent.parent
LRS = {16: "0.01,0.03,0.1,0.3", 64: "0.003,0.006,0.01,0.02,0.03,0.06,0.1,0.2"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, choices=sorted(LRS), default=16)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    arguments = parser.parse_args()
    lrs = LRS[arguments.points]
    seeds = arguments.points // len(lrs.split(","))
    config = REPO / "configs" / "quickstart.yaml"
    overrides = [f"device={arguments.device}"]

    print(f"{arguments.points} points ({seeds} seeds × lr {lrs}), {arguments.epochs} epochs, {arguments.device}")
    one_by_one_against_stacked(config, [f"optim.lr={lrs}"], seeds, [*overrides, f"train.epochs={arguments.epochs}"],
                               arguments.repeats, "vectorized", "target ≥ 3 on 2 CPU cores, ≥ 20 on a GPU (64 points)")


if __name__ == "__main__":
    main()
