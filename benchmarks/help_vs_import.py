"""Benchmark (c): `dlcli --help` against `python -c "import torch"`, whole processes, alternating.

Run: python benchmarks/help_vs_import.py [--repeats 10]
"""
import argparse
import statistics
import subprocess
import sys
import time


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=10)
    repeats = parser.parse_args().repeats
    help_command = [sys.executable, "-m", "dlcli", "--help"]
    torch_command = [sys.executable, "-c", "import torch"]
    timed(help_command), timed(torch_command)
    pairs = [(timed(help_command), timed(torch_command)) for _ in range(repeats)]
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    ratios = [x / y for x, y in pairs]
    print(f"dlcli --help : median {statistics.median(a):.3f} s")
    print(f"import torch : median {statistics.median(b):.3f} s")
    print(f"ratio: median {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f}); "
          "target < 0.25")


if __name__ == "__main__":
    main()
