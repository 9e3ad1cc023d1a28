"""Benchmark (c): `dlcli --help` against `python -c "import torch"`, whole processes, alternating.

Run: python benchmarks/help_vs_import.py [--repeats 10]
"""
import argparse
import sys

from pairs import compare_pairs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=10)
    compare_pairs("dlcli --help", [sys.executable, "-m", "dlcli", "--help"],
                  "import torch", [sys.executable, "-c", "import torch"],
                  parser.parse_args().repeats, target="< 0.25")


if __name__ == "__main__":
    main()
