"""Stopping a sweep cleanly, with or without worker processes: Ctrl-C (SIGINT) and SIGTERM alike end
the runs in flight as `interrupted`, keep every finished epoch and checkpoint, and leave no process
behind, so that running the same command again resumes.

A worker process ignores SIGINT while it waits for work (an interrupt there would kill it with a
traceback and break the pool) and takes exactly one while it trains (a second could land while the
first is being recorded). The sweep's own process (where the command line turns SIGTERM into the same
interrupt) sends one to each worker, cancels what has not started, and waits for the rest. A search's
workers (dlcli.sweep.unit_workers) are sent one step at a time, so they remember an interrupt that comes
between steps (`InterruptLatch`). A worker dies with the sweep's process (`die_with_parent`): after a
kill -9 none is left holding the folder's lock, or writing a run the resumed sweep continues.
"""
from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
from typing import Iterator


def _interrupt_once(signum, frame) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent ends


def die_with_parent(parent: int) -> None:
    """In a worker process started by process `parent`: be killed when that one ends, however it ends
    (Linux; elsewhere a worker notices at its next message). A forked worker holds a copy of every file
    the sweep had open, its lock among them, so it must not outlive it."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it ended before the request took effect
        os._exit(1)


def ignore_interrupts() -> None:
    """In a worker process, between units of work."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """In a worker process, while it trains: the first SIGINT interrupts the training."""
    signal.signal(signal.SIGINT, _interrupt_once)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


class InterruptLatch:
    """In a worker process that steps a search's units one message at a time: an interrupt that comes
    while it waits is remembered (its next steps end their units as interrupted instead of training),
    and during a step the first one raises KeyboardInterrupt there."""

    def __init__(self):
        self.seen = False
        self._raising = False
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame) -> None:
        first, self.seen = not self.seen, True
        if first and self._raising:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def raising(self) -> Iterator[None]:
        self._raising = True
        try:
            yield
        finally:
            self._raising = False


def interrupt_workers() -> None:
    """Send one interrupt to each worker process of this process (idle ones ignore it)."""
    for child in multiprocessing.active_children():
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGINT)
