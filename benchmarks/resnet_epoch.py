"""Benchmark: one epoch of ResNet-18 (width k, batch norm) on CIFAR-shaped synthetic images, three ways,
alternating in one process so that all pay the same start-up once, outside the timings:

- dlcli: `dlcli.train` through the Python API on an .npz of the images (data on the device, the stacked
  layers with M = 1). An epoch is the marginal cost, (T(3 epochs) − T(1 epoch)) / 2 of whole `train`
  calls with `train.eval_every` past the end, so both calls measure epochs 0 and last only.
- hand loop: the same model (dlcli's builder, same seed), the images as one float tensor on the device,
  a fresh permutation per epoch, torch.optim.SGD: the least work an epoch can be.
- tutorial loop: the usual torchvision recipe: uint8 images through a Dataset with
  transforms.Compose([ToTensor(), Normalize(...)]) per sample, and a DataLoader (batch 128, shuffled,
  2 worker processes) feeding the device.

All three: SGD lr 0.05, momentum 0.9, batch 128, cross-entropy, no augmentation, and the torch threads
dlcli's `train.threads: auto` picks (the CPUs but one), so that the loops differ in their work only.

Run: python benchmarks/resnet_epoch.py [--width 8] [--n-train 2000] [--repeats 3] [--device cpu|cuda]
(full size on a GPU: --width 64 --n-train 50000)
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

import dlcli
from dlcli.components.models import build_model
from dlcli.components.threads import choose_threads
from dlcli.config.schema import ModelConfig

MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)  # CIFAR-10's per-channel statistics, as tutorials use
BATCH, LR, MOMENTUM = 128, 0.05, 0.9


def images(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n uint8 images, H×W×C as CIFAR stores them, and their labels."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n)


def normalized(pixels: np.ndarray) -> np.ndarray:
    """What ToTensor + Normalize make of them, for the paths that hold floats: N×C×H×W."""
    x = pixels.transpose(0, 3, 1, 2).astype(np.float32) / 255
    return (x - np.array(MEAN, np.float32)[:, None, None]) / np.array(STD, np.float32)[:, None, None]


class TutorialImages(torch.utils.data.Dataset):
    """torchvision.datasets.CIFAR10's __getitem__: a PIL image through the transform, one at a time."""

    def __init__(self, pixels: np.ndarray, labels: np.ndarray):
        from torchvision import transforms

        self.pixels, self.labels = pixels, labels
        self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, index: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.pixels[index])), int(self.labels[index])


def model_and_optimizer(width: int, device: str):
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="resnet18", width=width, norm="batch"), (3, 32, 32), 10).to(device)
    return model, torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)


def train_step(model, optimizer, inputs, targets) -> None:
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(model(inputs), targets).backward()
    optimizer.step()


def hand_epoch(width: int, device: str, x: torch.Tensor, y: torch.Tensor) -> float:
    model, optimizer = model_and_optimizer(width, device)
    model.train()
    started = time.perf_counter()
    for indices in torch.randperm(len(x), device=device).split(BATCH):
        train_step(model, optimizer, x[indices], y[indices])
    _synchronize(device)
    return time.perf_counter() - started


def tutorial_epoch(width: int, device: str, loader) -> float:
    model, optimizer = model_and_optimizer(width, device)
    model.train()
    started = time.perf_counter()
    for inputs, targets in loader:
        train_step(model, optimizer, inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True))
    _synchronize(device)
    return time.perf_counter() - started


def dlcli_run(data: Path, width: int, device: str, epochs: int) -> float:
    experiment = dlcli.experiment_from_dict({
        "name": "resnet_epoch", "seed": 0, "device": device,
        "data": {"name": "npz", "params": {"path": str(data)}},
        "model": {"name": "resnet18", "width": width, "norm": "batch"}, "loss": "cross_entropy",
        "optim": {"name": "sgd", "lr": LR, "momentum": MOMENTUM, "batch_size": BATCH},
        "train": {"epochs": epochs, "eval_every": 100}})
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = dlcli.train(experiment, out_root=out)
        seconds = time.perf_counter() - started
        assert result.status == dlcli.Status.COMPLETED, result.status
    return seconds


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    arguments = parser.parse_args()
    width, device = arguments.width, arguments.device
    torch.set_num_threads(choose_threads("auto"))
    pixels, labels = images(arguments.n_train + arguments.n_test)
    train_pixels, train_labels = pixels[:arguments.n_train], labels[:arguments.n_train]
    data = Path(tempfile.mkdtemp()) / "images.npz"
    np.savez(data, x=normalized(train_pixels), y=train_labels, x_test=normalized(pixels[arguments.n_train:]),
             y_test=labels[arguments.n_train:])
    x = torch.as_tensor(normalized(train_pixels), device=device)
    y = torch.as_tensor(train_labels, device=device)
    loader = torch.utils.data.DataLoader(TutorialImages(train_pixels, train_labels), batch_size=BATCH, shuffle=True,
                                         num_workers=2, pin_memory=device.startswith("cuda"),
                                         persistent_workers=True)
    hand_epoch(width, device, x, y), tutorial_epoch(width, device, loader), dlcli_run(data, width, device, 1)  # warm up
    print(f"ResNet-18 width {width}, {arguments.n_train} images 3×32×32, batch {BATCH}, {device}, "
          f"{torch.get_num_threads()} torch threads")
    times: dict[str, list[float]] = {"hand loop": [], "tutorial loop": [], "dlcli epoch": [], "dlcli 1-epoch run": []}
    for _ in range(arguments.repeats):
        times["hand loop"].append(hand_epoch(width, device, x, y))
        times["tutorial loop"].append(tutorial_epoch(width, device, loader))
        one, three = dlcli_run(data, width, device, 1), dlcli_run(data, width, device, 3)
        times["dlcli 1-epoch run"].append(one)
        times["dlcli epoch"].append((three - one) / 2)
        print("  " + ", ".join(f"{label} {values[-1]:.2f} s" for label, values in times.items()), flush=True)
    medians = {label: statistics.median(values) for label, values in times.items()}
    for label, values in times.items():
        print(f"{label:<18}: median {medians[label]:.2f} s  (min {min(values):.2f}, max {max(values):.2f})")
    print(f"dlcli epoch / hand loop: {medians['dlcli epoch'] / medians['hand loop']:.2f}; "
          f"tutorial loop / hand loop: {medians['tutorial loop'] / medians['hand loop']:.2f}")


if __name__ == "__main__":
    main()
