"""The baseline of benchmark (a): a minimal hand-written PyTorch loop doing the work of
benchmarks/train_loop.yaml — same data, model, optimizer, batches and per-epoch evaluation.

Run: python benchmarks/hand_loop.py [cpu|cuda] [--threads N] [--hidden 256,256] [--batch 64] [--lr 0.05]
(the defaults are train_loop.yaml's; `--hidden 100,100 --batch 32 --lr 0.03` is configs/quickstart.yaml,
what benchmark (f) uses; `--threads`: torch.set_num_threads, else torch's default).
"""
import argparse
import time

import numpy as np
import torch
from mnist1d.data import get_dataset_args, make_dataset
from torch import nn


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("device", nargs="?", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--hidden", default="256,256")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    arguments = parser.parse_args()
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    device = torch.device(arguments.device)
    widths = [40, *(int(width) for width in arguments.hidden.split(",")), 10]
    started = time.perf_counter()
    data = make_dataset(get_dataset_args())
    x, y = data["x"].astype(np.float32), data["y"].astype(np.int64)
    x_test, y_test = data["x_test"].astype(np.float32), data["y_test"].astype(np.int64)
    mean, std = x.mean(0), x.std(0)
    x, x_test = torch.tensor((x - mean) / std).to(device), torch.tensor((x_test - mean) / std).to(device)
    y, y_test = torch.tensor(y).to(device), torch.tensor(y_test).to(device)
    torch.manual_seed(0)
    layers = []
    for width_in, width_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(width_in, width_out), nn.ReLU()]
    model = nn.Sequential(*layers[:-1]).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=arguments.lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)
    for epoch in range(1, 21):
        model.train()
        for indices in torch.randperm(len(x), generator=generator).to(device).split(arguments.batch):
            loss = loss_fn(model(x[indices]), y[indices])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.inference_mode():
            measured = [(loss_fn(model(a), b).item(), (model(a).argmax(1) != b).float().mean().item())
                        for a, b in ((x, y), (x_test, y_test))]
        print(epoch, measured, f"{time.perf_counter() - started:.2f}s")


if __name__ == "__main__":
    main()
