"""The worker's side of a search's units (dlcli.sweep.unit_workers, dlcli.sweep.ray_units): a unit
started from its payload, stepped one message at a time, and its answers made to travel.
"""
from __future__ import annotations

import os
import pickle
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dlcli.components.datasets import Dataset
from dlcli.components.prepare import data_identity, prepare
from dlcli.config.schema import Experiment
from dlcli.sweep.interrupts import InterruptLatch, die_with_parent

Note = Callable[[str], None]


@dataclass
class UnitPayload:
    """What a worker needs to train a unit: its points' configs and run folders, and the data sets it
    has not been sent yet (by `data_identity`; it keeps those it gets)."""

    experiments: list[Experiment]
    run_dirs: list[Path]
    resume: bool  # continue from the run folders' checkpoints
    force: bool
    tags: dict[str, str] | None
    datasets: dict[tuple, Dataset]
    files: dict[Path, dict[str, bytes]] | None = None  # a resumed unit's run folders, for a worker elsewhere


def serve(link, threads: int, parent: int) -> None:
    """A worker: hold units, step them as told, answer each step; end when told or when the search's
    process has gone."""
    from dlcli.components.threads import use_threads

    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a forked worker's copy of the search's handler
    die_with_parent(parent)
    latch = InterruptLatch()
    use_threads(threads)
    units: dict[int, Any] = {}
    datasets: dict[tuple, Dataset] = {}
    notes: list[str] = []  # what the units said since the last answer, sent with the next
    while True:
        try:
            kind, key, payload = link.recv()
        except (EOFError, OSError):
            break
        if kind == "quit":
            break
        if kind == "start":
            datasets |= payload.datasets
            units[key] = start_unit(payload, datasets, notes.append)
            continue
        answer = step(units[key], kind, payload, latch)
        if answer[0] != "yield":
            del units[key]
        try:
            link.send((key, *answer, list(notes)))
        except OSError:  # the search's process has gone
            break
        notes.clear()
    _end_all(units)
    os._exit(0)  # every file is written and closed: no interpreter teardown (most of a second)


def _end_all(units: dict[int, Any]) -> None:
    """Units still held when the search stops (it broke, or was killed): their runs end as interrupted."""
    from dlcli.engine.loop import stop

    for training in units.values():
        if not isinstance(training, Exception):
            try:
                stop(training, KeyboardInterrupt())
            except BaseException:  # never started, or its folders are gone: what is on disk stays
                pass


def start_unit(payload: UnitPayload, datasets: dict[tuple, Dataset], on_note: Note):
    """The unit's generator, nothing trained yet; or the error that preparing it raised, to answer its
    first step with."""
    from dlcli.engine.loop import unit_training
    from dlcli.sweep.backends import clear_run_dirs

    try:
        unit = [prepare(experiment, datasets[data_identity(experiment)], payload.force)
                for experiment in payload.experiments]
    except Exception as error:  # a UserError (the device's memory here) fails the unit's runs
        return _portable(error)
    if not payload.resume:
        clear_run_dirs(payload.run_dirs)
    return unit_training(unit, payload.run_dirs, resume=payload.resume, on_note=on_note, tags=payload.tags)


def step(training, kind: str, payload: Any, latch: InterruptLatch) -> tuple[str, Any]:
    """One step of a unit: ("yield", (epoch, rows)), ("return", results) or ("error", the exception).
    Once this worker has seen an interrupt, a step ends its unit as interrupted instead of training."""
    from dlcli.engine.loop import stop

    if isinstance(training, Exception):
        return "error", training
    if latch.seen:
        kind, payload = "throw", KeyboardInterrupt()
    try:
        with latch.raising():
            value = training.send(payload) if kind == "send" else training.throw(payload)
    except StopIteration as done:
        return "return", done.value
    except KeyboardInterrupt:  # landed outside the epoch loop, which ends its runs itself
        try:
            return "return", stop(training, KeyboardInterrupt())
        except (KeyboardInterrupt, RuntimeError, StopIteration):  # never started, or ended already
            return "error", KeyboardInterrupt()
    except Exception as error:  # recorded in the runs by the loop
        return "error", _portable(error)
    return "yield", value


def _portable(error: Exception) -> Exception:
    """The error itself if it can travel to the search's process, else its text in a RuntimeError."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error
