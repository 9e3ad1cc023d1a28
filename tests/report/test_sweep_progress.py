"""The sweep's progress bar counts what is done: an interrupted run continues when the sweep runs again."""
from __future__ import annotations


def test_an_interrupted_run_is_not_counted_as_done():
    # Imported here, not at collection: the console reads the terminal's width once, when it is made.
    from dlcli.report.sweeps import sweep_progress

    with sweep_progress(3) as progress:
        progress.skipped(1)
        progress.finished({"status": "completed", "run_id": "a", "seed": 0, "test_error": 0.1, "seconds": 1.0})
        progress.finished({"status": "interrupted", "run_id": "b", "seed": 0, "message": "interrupted"})
        task = progress.progress.tasks[0]
        assert (task.completed, task.total) == (2, 3)
