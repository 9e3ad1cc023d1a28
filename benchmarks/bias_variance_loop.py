"""The baseline of benchmark (d), second half: a plain PyTorch loop doing the trainings of
`dlcli bias-variance configs/bias_variance.yaml --trials 20 --seeds 2 --grid model.hidden=[2],[8],[32],[128,128]`
one by one, then the squared-error decomposition.

y = sin(πx) + N(0, 0.3²), 20 training samples per training set (a fresh draw each), 500 test samples;
MLP with tanh units, Adam lr 0.02 on the full batch, 200 epochs, train and test loss after every
epoch; risk, bias², variance and noise over the trials and seeds at each width.

Run: python benchmarks/bias_variance_loop.py [--trials 20] [--seeds 2]
"""
import argparse
import time

import numpy as np
import torch
from torch import nn

WIDTHS = [[2], [8], [32], [128, 128]]
N_TRAIN, N_TEST, NOISE, EPOCHS, LR = 20, 500, 0.3, 200, 0.02


def draw(rng: np.random.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = rng.uniform(-1, 1, size=(n, 1)).astype(np.float32)
    y = (np.sin(np.pi * x[:, 0]) + NOISE * rng.standard_normal(n)).astype(np.float32)
    return torch.tensor(x), torch.tensor(y)


def mlp(widths: list[int]) -> nn.Module:
    layers, inputs = [], 1
    for width in widths:
        layers += [nn.Linear(inputs, width), nn.Tanh()]
        inputs = width
    return nn.Sequential(*layers, nn.Linear(inputs, 1))


def train(widths: list[int], seed: int, x, y, x_test, y_test) -> torch.Tensor:
    torch.manual_seed(seed)
    model = mlp(widths)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    mean, std = x.mean(0), x.std(0)
    x, x_test = (x - mean) / std, (x_test - mean) / std
    for _ in range(EPOCHS):
        model.train()
        loss = ((model(x).squeeze(-1) - y) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.eval()
        with torch.inference_mode():
            losses = [((model(a).squeeze(-1) - b) ** 2).mean().item() for a, b in ((x, y), (x_test, y_test))]
    with torch.inference_mode():
        return model(x_test).squeeze(-1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=2)
    arguments = parser.parse_args()
    started = time.perf_counter()
    x_test, y_test = draw(np.random.default_rng(0), N_TEST)
    clean = torch.sin(torch.pi * x_test[:, 0])
    for widths in WIDTHS:
        predictions = torch.stack([
            torch.stack([train(widths, seed, *draw(np.random.default_rng([0, 2, trial]), N_TRAIN), x_test, y_test)
                         for seed in range(arguments.seeds)])
            for trial in range(arguments.trials)]).double()  # (trials, seeds, N)
        risk = ((predictions - y_test) ** 2).mean()
        variance = ((predictions - predictions.mean((0, 1))) ** 2).mean()
        noise = ((y_test - clean) ** 2).mean()
        print(f"hidden={widths}: risk {risk:.4f}  bias² {risk - variance - noise:.4f}  variance {variance:.4f}  "
              f"noise {noise:.4f}  ({time.perf_counter() - started:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
