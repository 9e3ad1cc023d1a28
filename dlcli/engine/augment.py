"""Augmentation of training batches, each model with its own random stream: Gaussian input noise and
random shifts of signals and images. Validation and test data are never augmented."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from dlcli.config.schema import Augment


def augment_stream(config: Augment, device: torch.device, seed: int) -> torch.Generator | None:
    """A model's own random stream for augmenting its batches (None when nothing is augmented)."""
    if config.noise_std == 0 and config.shift == 0:
        return None
    return torch.Generator(device=device).manual_seed(seed + 1)  # its own stream: same init, same order


def make_augment(config: Augment, kind: str, generator: torch.Generator | None) -> Callable[[Tensor], Tensor] | None:
    """The augmentation of training batches, drawing from `generator`: Gaussian input noise and random
    shifts, or None."""
    if generator is None:
        return None
    dims = (-2, -1) if kind == "image" else (-1,)

    def augment(batch: Tensor) -> Tensor:
        if config.shift > 0:
            for dim in dims:
                batch = shift(batch, dim, config.shift, config.shift_mode, generator)
        if config.noise_std > 0:
            noise = torch.randn(batch.shape, generator=generator, device=batch.device, dtype=batch.dtype)
            batch = batch + config.noise_std * noise
        return batch

    return augment


def shift(batch: Tensor, dim: int, most: int, mode: str, generator: torch.Generator) -> Tensor:
    """Shift every sample along `dim` by its own random offset in [−most, most]."""
    length = batch.shape[dim]
    offsets = torch.randint(-most, most + 1, (len(batch),), generator=generator, device=batch.device)
    positions = torch.arange(length, device=batch.device)
    source = positions.view(1, -1) - offsets.view(-1, 1)  # out[i, j] = in[i, j − offset_i]
    valid = (source >= 0) & (source < length)
    source = source % length
    shape = [len(batch)] + [1] * (batch.dim() - 1)
    shape[dim] = length
    index = source.view(shape).expand_as(batch)
    shifted = batch.gather(dim, index)
    if mode == "pad":
        shifted = shifted * valid.view(shape).to(batch.dtype)
    return shifted
