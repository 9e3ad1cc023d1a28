"""What a training batch of images costs on the device before the model sees it: gathering float32 images
against uint8 images normalized per batch (dlcli.engine.batches.model_inputs), then random crops and
flips (dlcli.engine.augment), beside one forward and backward pass of a model, for scale.

    python benchmarks/image_batches.py [--device cpu|cuda] [--batch 512] [--images 10000] [--rounds 60]

Each round times every variant once on the same random batch indices (A B C … in turn, so all share
the machine's noise); medians over the rounds. CIFAR-shaped images (3×32×32), random pixels.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from dlcli.config.schema import Augment
from dlcli.engine.augment import augment_stream, make_augment
from dlcli.engine.batches import model_inputs


def synchronized(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def variants(images: torch.Tensor, device: torch.device) -> dict:
    floats = images.float()
    stats = (torch.full((1, 3, 1, 1), 120.0, device=device), torch.full((1, 3, 1, 1), 60.0, device=device))

    def augmented(config: Augment):
        augment = make_augment(config, "image", augment_stream(config, device, 0))
        return lambda index: augment(model_inputs(images[index], stats))

    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3072, 512), nn.ReLU(), nn.Linear(512, 10)).to(device)
    cnn = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1),
                        nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(64, 10)).to(device)
    return {
        "float32 images: gather": lambda index: floats[index],
        "uint8 images: gather + normalize": lambda index: model_inputs(images[index], stats),
        "  + crop 4": augmented(Augment(crop=4)),
        "  + flip": augmented(Augment(flip=True)),
        "  + crop 4 + flip": augmented(Augment(crop=4, flip=True)),
        "mlp 3072-512-10: forward + backward": lambda index: mlp(floats[index]).sum().backward(),
        "cnn 32-64 channels: forward + backward": lambda index: cnn(floats[index]).sum().backward(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    images = torch.randint(0, 256, (args.images, 3, 32, 32), dtype=torch.uint8, device=device)
    timings = {name: [] for name in variants(images, device)}
    functions = variants(images, device)
    for round_ in range(args.rounds + 1):  # round 0 warms up
        index = torch.randint(0, args.images, (args.batch,), device=device)
        for name, function in functions.items():
            synchronized(device)
            started = time.perf_counter()
            function(index)
            synchronized(device)
            if round_:
                timings[name].append(time.perf_counter() - started)
    print(f"{device.type}, {args.threads} thread(s), batch {args.batch}, medians of {args.rounds} rounds")
    for name, times in timings.items():
        print(f"{name:<40} {statistics.median(times) * 1e3:8.2f} ms")
    print(f"CIFAR-10 on the device (60 000 images): {60_000 * 3072 / 2**20:.0f} MiB as uint8, "
          f"{60_000 * 3072 * 4 / 2**20:.0f} MiB as float32")


if __name__ == "__main__":
    main()
