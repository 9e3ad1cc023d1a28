"""Benchmark (a): `dlcli train` against a minimal hand-written loop doing the same work, as whole
processes (imports, data generation, training, evaluation), alternating A B A B to share the noise.

Run: python benchmarks/train_vs_loop.py [--repeats 5] [--device cpu|cuda]
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    arguments = parser.parse_args()
    repeats, device = arguments.repeats, arguments.device
    with tempfile.TemporaryDirectory() as out:
        dlcli = [sys.executable, "-m", "dlcli", "train", str(HERE / "train_loop.yaml"), "--out", out,
                 "--device", device]
        loop = [sys.executable, str(HERE / "hand_loop.py"), device]
        timed(dlcli), timed(loop)  # warm the file cache
        pairs = [(timed(dlcli), timed(loop)) for _ in range(repeats)]
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    ratios = [x / y for x, y in pairs]
    print(f"dlcli train : median {statistics.median(a):.2f} s  (min {min(a):.2f}, max {max(a):.2f})")
    print(f"hand loop   : median {statistics.median(b):.2f} s  (min {min(b):.2f}, max {max(b):.2f})")
    print(f"ratio dlcli / loop, pair by pair: median {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}); target ≤ 1.05")


if __name__ == "__main__":
    main()
