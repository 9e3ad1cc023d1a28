"""Checkpoints of a training unit: when to write them, and what each model's holds so that a run
continued from it takes exactly the steps it would have taken (bit for bit on the CPU).

Each run folder gets its own checkpoint.pt (a run's folder alone is enough to continue it). What the
engine keeps per model: its weights and optimizer state (`Trainable.state_of`), its batch-order and
augmentation streams, and the lr of its last update. The data, the initial weights and the label noise
need no saving: they are drawn again from the config's seeds.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator

from dlcli.engine.epoch import Member
from dlcli.engine.interface import Trainable

AUTO_SHARE = 0.05  # train.checkpoint_every: auto keeps writing checkpoints under this share of the time


class CheckpointClock:
    """When to write: every N epochs, never (0), or `auto`: as soon as the unit's training since the last
    checkpoint took 1 / AUTO_SHARE times what writing it took (the first after epoch 1). Its pauses
    (a search's lockstep training the other units meanwhile) are not its training: counted, each of a
    batch's three units wrote about three times as often as the share allows."""

    def __init__(self, every: int | str, epochs: int):
        self.every, self.epochs = every, epochs
        self.cost: float | None = None  # seconds the last write took
        self.trained = 0.0  # seconds of training since the last write, up to the last pause
        self.since = time.perf_counter()  # when the last write, or the last pause, ended

    def due(self, epoch: int) -> bool:
        if epoch == 0 or epoch >= self.epochs or self.every == 0:
            return False  # nothing trained yet, or the run finishes right away (its model.pt follows)
        if self.every != "auto":
            return epoch % self.every == 0
        return self.cost is None or self.trained + time.perf_counter() - self.since >= self.cost / AUTO_SHARE

    @contextmanager
    def paused(self) -> Iterator[None]:
        self.trained += time.perf_counter() - self.since
        try:
            yield
        finally:
            self.since = time.perf_counter()

    def write(self, models: Trainable, members: list[Member], position: dict[str, Any]) -> None:
        started = time.perf_counter()
        for m, member in enumerate(members):
            member.log.checkpoint(engine_state(models, member, m), position)
        self.since, self.trained = time.perf_counter(), 0.0
        self.cost = self.since - started


def hand_over(models: Trainable, members: list[Member], position: dict[str, Any]) -> None:
    """End these runs in this unit, for another to continue them from the checkpoint written here."""
    for m, member in enumerate(members):
        member.log.hand_over(engine_state(models, member, m), position)


def engine_state(models: Trainable, member: Member, m: int) -> dict[str, Any]:
    stream = member.augment_stream
    return {"model": models.state_of(m), "batch_order": member.batch_order.get_state(),
            "augment_stream": None if stream is None else stream.get_state(), "lr": member.lr}


def restore(models: Trainable, members: list[Member], states: list[dict[str, Any]]) -> None:
    """Continue the models and their members from their checkpoints' engine states."""
    models.load_states([state["model"] for state in states])
    for member, state in zip(members, states):
        member.batch_order.set_state(state["batch_order"])
        if member.augment_stream is not None:
            member.augment_stream.set_state(state["augment_stream"])
        member.lr = state["lr"]
