"""The baseline of benchmark (d): a plain PyTorch loop training the widths of
configs/double_descent_mlp.yaml one by one (MNIST-1D 4000/12000, 15% label noise, SGD lr 0.01
momentum 0.9, batch 100, train and test error after every epoch).

Run: python benchmarks/double_descent_loop.py [--seeds 3] [--epochs 500] [--widths 4,8,...]
(seeds 0..N-1, as `dlcli sweep` runs the config; each seed draws its own label noise)
"""
import argparse
import time

import numpy as np
import torch
from mnist1d.data import get_dataset_args, make_dataset
from torch import nn

WIDTHS = [4, 8, 16, 24, 32, 47, 61, 80, 104, 135, 177, 230, 300]


def data(seed: int):
    args = get_dataset_args()
    args.num_samples, args.train_split = 16000, 0.25
    raw = make_dataset(args)
    x, y = raw["x"].astype(np.float32), raw["y"].astype(np.int64)
    rng = np.random.default_rng(seed)
    flipped = rng.choice(len(y), size=round(0.15 * len(y)), replace=False)
    y[flipped] = (y[flipped] + rng.integers(1, 10, size=len(flipped))) % 10
    mean, std = x.mean(0), x.std(0)
    scale = lambda a: torch.tensor((a - mean) / std)  # noqa: E731
    return scale(x), torch.tensor(y), scale(raw["x_test"].astype(np.float32)), torch.tensor(raw["y_test"])


def train_width(width: int, seed: int, epochs: int, x, y, x_test, y_test) -> float:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(40, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for indices in torch.randperm(len(x), generator=generator).split(100):
            loss = loss_fn(model(x[indices]), y[indices])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.inference_mode():
            errors = [(model(a).argmax(1) != b).float().mean().item() for a, b in ((x, y), (x_test, y_test))]
    return errors[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--widths", default=",".join(map(str, WIDTHS)))
    arguments = parser.parse_args()
    started = time.perf_counter()
    for seed in range(arguments.seeds):
        arrays = data(seed)
        for width in map(int, arguments.widths.split(",")):
            test_error = train_width(width, seed, arguments.epochs, *arrays)
            print(f"h={width} seed={seed}: test error {test_error:.4f}  ({time.perf_counter() - started:.1f} s)",
                  flush=True)


if __name__ == "__main__":
    main()
