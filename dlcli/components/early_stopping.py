"""Early stopping: watch a validation metric, stop after `patience` epochs without improvement,
and end with the weights of the best epoch."""
from __future__ import annotations

import math
from typing import Any

from dlcli.config.schema import EarlyStopping


class EarlyStopper:
    def __init__(self, config: EarlyStopping):
        self.config = config
        self.best_value = math.inf
        self.best_row: dict[str, Any] | None = None
        self.best_state: Any = None  # whatever the caller records as the epoch's weights

    @property
    def active(self) -> bool:
        return self.config.patience is not None

    def should_stop(self, row: dict[str, Any], state: Any) -> bool:
        """Record an epoch; True once `patience` epochs have passed without a new best."""
        if not self.active:
            return False
        value = row[self.config.metric]
        if value < self.best_value:  # strictly better: ties keep the earlier, simpler model
            self.best_value, self.best_row, self.best_state = value, row, state
        return row["epoch"] - self.best_row["epoch"] >= self.config.patience

    def message(self, epoch: int) -> str:
        return (f"{self.config.metric} has not improved for {self.config.patience} epochs; stopped after "
                f"epoch {epoch}, best epoch {self.best_row['epoch']}")

    def restore(self) -> dict[str, Any] | None:
        """The best epoch's row, when its weights are to be restored (early stopping on, restore_best)."""
        if not self.active or not self.config.restore_best:
            return None
        return self.best_row
