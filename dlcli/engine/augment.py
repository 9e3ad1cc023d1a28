"""Augmentation of training batches, each model with its own random stream: random crops (with zero
padding) and horizontal flips of images, random shifts of signals and images, and Gaussian input noise.
Batches arrive normalized (dlcli.engine.batches.model_inputs), so padding is 0 in the normalized input.
Validation and test data are never augmented."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from dlcli.config.schema import Augment


def augment_stream(config: Augment, device: torch.device, seed: int) -> torch.Generator | None:
    """A model's own random stream for augmenting its batches (None when nothing is augmented)."""
    if config.noise_std == 0 and config.shift == 0 and config.crop == 0 and not config.flip:
        return None
    return torch.Generator(device=device).manual_seed(seed + 1)  # its own stream: same init, same order


def make_augment(config: Augment, kind: str, generator: torch.Generator | None) -> Callable[[Tensor], Tensor] | None:
    """The augmentation of training batches, drawing from `generator`: random crops and flips of images,
    random shifts, Gaussian input noise, in that order; or None."""
    if generator is None:
        return None
    dims = (-2, -1) if kind == "image" else (-1,)

    def augment(batch: Tensor) -> Tensor:
        if config.crop > 0 or config.flip:
            batch = crop_and_flip(batch, config.crop, config.flip, generator)
        if config.shift > 0:
            for dim in dims:
                batch = shift(batch, dim, config.shift, config.shift_mode, generator)
        if config.noise_std > 0:
            noise = torch.randn(batch.shape, generator=generator, device=batch.device, dtype=batch.dtype)
            batch = batch + config.noise_std * noise
        return batch

    return augment


def crop_and_flip(batch: Tensor, crop: int, flip: bool, generator: torch.Generator) -> Tensor:
    """Each image [..., H, W] cropped at random from itself padded with `crop` zeros on every side (a
    window at an offset in [−crop, crop] along each axis), then mirrored left to right with probability
    1/2: one gather over each image's pixels, the same for all its channels."""
    count, height, width = len(batch), batch.shape[-2], batch.shape[-1]
    device = batch.device
    rows = torch.arange(height, device=device).view(1, height, 1)
    columns = torch.arange(width, device=device).view(1, 1, width)
    offsets = torch.randint(-crop, crop + 1, (2, count, 1, 1), generator=generator, device=device) if crop else None
    if flip:  # out[i, j] = cropped[i, W − 1 − j] for a mirrored image
        mirrored = torch.rand(count, 1, 1, generator=generator, device=device) < 0.5
        columns = torch.where(mirrored, width - 1 - columns, columns)
    if offsets is not None:  # cropped[i, j] = image[i − offset_i, j − offset_j], zero outside it
        rows, columns = rows - offsets[0], columns - offsets[1]
    source = (rows.clamp(0, height - 1) * width + columns.clamp(0, width - 1)).expand(count, height, width)
    flat = batch.reshape(count, -1, height * width)  # [images, channels (1 for H × W images), pixels]
    index = source.reshape(count, 1, -1).expand(flat.shape)
    out = flat.gather(2, index).view(batch.shape)
    if offsets is None:
        return out
    inside = (rows >= 0) & (rows < height) & (columns >= 0) & (columns < width)  # [images, H, W]
    return torch.where(inside.view(count, *[1] * (batch.dim() - 3), height, width), out, 0.0)


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
