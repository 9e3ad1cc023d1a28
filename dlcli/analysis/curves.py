"""What the logged curves of finished runs say without training again: early stopping replayed on
each run's epochs (`dlcli compare --patience`), how noisy its per-update losses were
(`dlcli compare --curves --x step`), and which splits were measured every epoch. Input: the long
tables `compare.read_curves` reads.
"""
from __future__ import annotations

import pandas as pd


def early_stopping_what_if(curves: pd.DataFrame, patience: int, metric: str) -> pd.DataFrame:
    """Per run, from its logged epochs: where patience P on `metric` would have stopped, the epoch it
    would have restored (the best so far), and the test error there, against the run's last epoch."""
    rows = []
    for run_id, run in curves.groupby("run_id", sort=False):
        run = run.sort_values("epoch")
        best_value, best, stop = float("inf"), run.iloc[0], None
        for _, epoch in run.iterrows():
            if epoch[metric] < best_value:
                best_value, best = epoch[metric], epoch
            if epoch["epoch"] - best["epoch"] >= patience:
                stop = epoch
                break
        last = run.iloc[-1]
        rows.append({"run_id": run_id, "stopped_at": int(stop["epoch"]) if stop is not None else None,
                     "restored_epoch": int(best["epoch"]), "test_error_restored": float(best["test_error"]),
                     "last_epoch": int(last["epoch"]), "test_error_last": float(last["test_error"]),
                     "epochs_saved": int(last["epoch"] - stop["epoch"]) if stop is not None else 0})
    return pd.DataFrame(rows)


def update_noise(steps: pd.DataFrame) -> pd.DataFrame:
    """Per run: updates, seconds, the last batch losses, and the noise of the per-update loss
    (standard deviation of the change from one update to the next)."""
    rows = []
    for run_id, run in steps.groupby("run_id", sort=False):
        losses = run["batch_loss"].to_numpy()
        tail = losses[-max(1, len(losses) // 10):]
        rows.append({"run_id": run_id, "updates": len(run), "seconds": run["seconds"].iloc[-1],
                     "final_batch_loss": float(tail.mean()),
                     "loss_noise": float(pd.Series(losses).diff().std()) if len(losses) > 2 else float("nan")})
    return pd.DataFrame(rows)


def measured_splits(curves: pd.DataFrame) -> list[str]:
    """train and test, as measured at most epochs after the first; else the validation split."""
    trained = curves[curves["epoch"] > 0]
    if trained.empty:
        return ["train", "test"]
    mostly = [split for split in ("train", "test", "val")
              if f"{split}_error" in trained and trained[f"{split}_error"].notna().mean() > 0.5]
    return [split for split in mostly if split != "val"] or mostly[:1] or ["train", "test"]
