"""The baseline of benchmark (a): a minimal hand-written PyTorch loop doing the work of
benchmarks/train_loop.yaml — same data, model, optimizer, batches and per-epoch evaluation."""
import sys
import time

import numpy as np
import torch
from mnist1d.data import get_dataset_args, make_dataset
from torch import nn


def main() -> None:
    device = torch.device(sys.argv[1] if len(sys.argv) > 1 else "cpu")
    started = time.perf_counter()
    data = make_dataset(get_dataset_args())
    x, y = data["x"].astype(np.float32), data["y"].astype(np.int64)
    x_test, y_test = data["x_test"].astype(np.float32), data["y_test"].astype(np.int64)
    mean, std = x.mean(0), x.std(0)
    x, x_test = torch.tensor((x - mean) / std).to(device), torch.tensor((x_test - mean) / std).to(device)
    y, y_test = torch.tensor(y).to(device), torch.tensor(y_test).to(device)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                          nn.Linear(256, 10)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)
    for epoch in range(1, 21):
        model.train()
        for indices in torch.randperm(len(x), generator=generator).to(device).split(64):
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
