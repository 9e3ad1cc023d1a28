"""Early stopping: watch a validation metric, stop after `patience` epochs without improvement,
and end with the weights of the best epoch."""
from __future__ import annotations

import math
from typing import Any, Callable

from dlcli.config.schema import EarlyStopping


class EarlyStopper:
    def __init__(self, config: EarlyStopping):
        self.config = config
        self.best_value = math.inf
        self.best_row: dict[str, Any] | None = None
        self.best_state: Any = None  # what the caller records as the epoch's weights (with a state_dict())

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

    def would_stop(self, row: dict[str, Any]) -> bool:
        """Whether recording this row would stop the run (nothing recorded)."""
        if not self.active or row[self.config.metric] < self.best_value:
            return False
        return self.best_row is not None and row["epoch"] - self.best_row["epoch"] >= self.config.patience

    def message(self, epoch: int) -> str:
        return (f"{self.config.metric} has not improved for {self.config.patience} epochs; stopped after "
                f"epoch {epoch}, best epoch {self.best_row['epoch']}")

    def restore(self) -> dict[str, Any] | None:
        """The best epoch's row, when its weights are to be restored (early stopping on, restore_best)."""
        if not self.active or not self.config.restore_best:
            return None
        return self.best_row

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps: the best value and row, and the best epoch's weights (a state dict)."""
        best = self.best_state.state_dict() if self.best_state is not None else None
        return {"best_value": self.best_value, "best_row": self.best_row, "best_weights": best}

    def load(self, state: dict[str, Any], weights_holder: Callable[[dict[str, Any]], Any]) -> None:
        """Continue from a checkpoint's `state()`; `weights_holder` wraps the weights as the caller records them."""
        self.best_value, self.best_row = state["best_value"], state["best_row"]
        weights = state["best_weights"]
        self.best_state = None if weights is None else weights_holder(weights)
