"""Benchmark: a stack's linear layer with few outputs (a read-out: 10 classes) computed as dlcli computes
it, a·Wᵀ + b, against its transpose W·aᵀ + b, forward and weight gradient (tried and dropped: it changes
the numbers a training gives, so every documented output; benchmarks.md (s3)).

For each shape (models M, batch B, inputs, outputs) on one CPU thread: the forward product and the
weight's gradient as a stack computes them (a·Wᵀ + b with W stored [M, in, out], aᵀ·g) and transposed
(W·aᵀ + b with W stored [M, out, in], gᵀ·a); medians of --repeats timings of
--calls calls each, and their ratio.

Run: python benchmarks/narrow_layers.py [--repeats 7] [--calls 500]
"""
import argparse
import statistics
import timeit

import torch

SHAPES = [(1, 64, 256, 10), (1, 64, 128, 10), (1, 64, 64, 10), (5, 64, 256, 10), (11, 64, 64, 10),
          (1, 64, 256, 1), (5, 64, 256, 1), (1, 64, 256, 32), (1, 64, 256, 256)]


def median_microseconds(call, repeats: int, calls: int) -> float:
    call()
    return 1e6 * statistics.median(timeit.repeat(call, number=calls, repeat=repeats)) / calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=500)
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    print("models, batch, inputs, outputs: a·Wᵀ + b and aᵀ·g | W·aᵀ + b and gᵀ·a (µs, forward + weight gradient)")
    for models, batch, inputs, outputs in SHAPES:
        a, grad = torch.randn(models, batch, inputs), torch.randn(models, batch, outputs)
        bias = torch.randn(models, outputs)
        stored_wide = torch.randn(models, inputs, outputs)  # [M, in, out]: W transposed
        stored_narrow = stored_wide.transpose(1, 2).contiguous()  # [M, out, in]: W as it is
        wide = [lambda: torch.baddbmm(bias.unsqueeze(1), a, stored_wide),
                lambda: torch.bmm(a.transpose(1, 2), grad)]
        narrow = [lambda: torch.baddbmm(bias.unsqueeze(2), stored_narrow, a.transpose(1, 2)).transpose(1, 2),
                  lambda: torch.bmm(grad.transpose(1, 2), a)]
        times = [sum(median_microseconds(call, arguments.repeats, arguments.calls) for call in form)
                 for form in (wide, narrow)]
        print(f"{models:3d} {batch:4d} {inputs:4d} {outputs:4d}: {times[0]:7.1f} | {times[1]:7.1f}  "
              f"({times[0] / times[1]:.2f}×)")


if __name__ == "__main__":
    main()
