"""Benchmark (d): the double-descent figure and a 20-trial bias–variance estimate, each end to end
through dlcli (stacked models) against a plain PyTorch loop doing the same trainings one by one, as
whole processes, alternating A B A B.

  double-descent: `dlcli sweep configs/double_descent_mlp.yaml --workers 2` (13 widths × 3 seeds ×
      500 epochs) against benchmarks/double_descent_loop.py; --epochs shortens both alike.
  bias-variance: `dlcli bias-variance configs/bias_variance.yaml --trials 20 --seeds 2
      --grid model.hidden=[2],[8],[32],[128,128]` against benchmarks/bias_variance_loop.py.

Run: python benchmarks/end_to_end_vs_loop.py double-descent|bias-variance [--repeats N] [--epochs E] [--out DIR]
"""
import argparse
import sys
import tempfile
from pathlib import Path

from pairs import compare_pairs

HERE = Path(__file__).resolve().parent
CONFIGS = HERE.parent / "configs"


def fresh(out: Path, command: list[str]) -> list[str]:
    """The command in an emptied output folder: dlcli skips runs it finds finished."""
    return ["bash", "-c", f'rm -rf "{out}" && exec "$@"', "fresh", *command]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("study", choices=["double-descent", "bias-variance"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None, help="double-descent only (default 500)")
    parser.add_argument("--out", type=Path, default=None, help="keep dlcli's last results in this folder "
                        "(emptied before each dlcli run; default: a temporary one)")
    arguments = parser.parse_args()
    dlcli = [sys.executable, "-m", "dlcli"]
    with tempfile.TemporaryDirectory() as scratch:
        out = arguments.out or Path(scratch) / "out"
        if arguments.study == "double-descent":
            epochs = arguments.epochs or 500
            ours = [*dlcli, "sweep", str(CONFIGS / "double_descent_mlp.yaml"), "--workers", "2",
                    "--set", f"train.epochs={epochs}", "--out", str(out)]
            loop = [sys.executable, str(HERE / "double_descent_loop.py"), "--seeds", "3", "--epochs", str(epochs)]
            target = "≥ 2"
        else:
            ours = [*dlcli, "bias-variance", str(CONFIGS / "bias_variance.yaml"), "--trials", "20", "--seeds", "2",
                    "--grid", "model.hidden=[2],[8],[32],[128,128]", "--out", str(out)]
            loop = [sys.executable, str(HERE / "bias_variance_loop.py"), "--trials", "20", "--seeds", "2"]
            target = "≥ 3"
        compare_pairs("plain loop", loop, "dlcli", fresh(out, ours), arguments.repeats, target=target,
                      warm_up=arguments.repeats > 1)


if __name__ == "__main__":
    main()
