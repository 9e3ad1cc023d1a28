"""Benchmark (a): `dlcli train` against a minimal hand-written loop doing the same work, as whole
processes (imports, data generation, training, evaluation), alternating A B A B to share the noise.

Run: python benchmarks/train_vs_loop.py [--repeats 5] [--device cpu|cuda]
"""
import argparse
import sys
import tempfile
from pathlib import Path

from pairs import compare_pairs

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        dlcli = [sys.executable, "-m", "dlcli", "train", str(HERE / "train_loop.yaml"), "--out", out,
                 "--device", arguments.device]
        loop = [sys.executable, str(HERE / "hand_loop.py"), arguments.device]
        compare_pairs("dlcli train", dlcli, "hand loop", loop, arguments.repeats, target="≤ 1.05")


if __name__ == "__main__":
    main()
