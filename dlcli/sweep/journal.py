"""The search's journal file (search.journal), Optuna's journal written in one append at the points
the search chooses rather than at each of Optuna's operations.

Optuna's JournalFileBackend takes a lock, appends, fsyncs and reads the file back for every
operation: eight or so for each trial (asked, its parameters, its rungs, told), a tenth of a short
search. Here the operations collect in memory, where Optuna reads them back, and `flush` appends them
at once: after a batch is asked, after each rung, after runs are told, and when the search stops. A
search killed between two flushes loses only what it then does again the same way: a batch asked
again from its seeded sampler, a rung's reports from the runs' metrics. One process at a time writes
a sweep folder (dlcli.sweep.runner.sweep_lock).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator


class Journal:
    """An Optuna journal backend (`read_logs`, `append_logs`) over the journal file, buffered."""

    def __init__(self, path: Path):
        from optuna.storages.journal import JournalFileBackend

        self.file = JournalFileBackend(str(path))
        self.logs: list[dict[str, Any]] = list(self.file.read_logs(0))
        self.written = len(self.logs)

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        return iter(self.logs[log_number_from:])

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        self.logs += logs

    def flush(self) -> None:
        """Append what the file does not hold yet."""
        if len(self.logs) > self.written:
            self.file.append_logs(self.logs[self.written:])
            self.written = len(self.logs)
