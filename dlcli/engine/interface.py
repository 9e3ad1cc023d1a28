"""The interface the epoch loop trains through: M models at once, every tensor with a leading model
dimension. `SingleModel` (dlcli.engine.single) is one nn.Module with its torch.optim optimizer, M = 1;
`ModelStack` (dlcli.engine.stack) is M same-shape models trained as one.
"""
from __future__ import annotations

from typing import Callable, Protocol

from torch import Tensor

EVAL_BATCH = 8192  # samples per forward pass when measuring a whole split


class Trainable(Protocol):
    """M models, trained and measured together; every model takes the steps it would take alone."""

    least_squares: bool  # fitted in one exact solve (`solve`), not by gradient steps
    single_threaded: bool  # trained and measured on one CPU thread, whatever the run's count

    def start_epoch(self, lrs: list[list[float]]) -> None:
        """Each model's lr for each update of the epoch ([M][steps]); switch to training mode."""

    def data_loss(self, loss_fn: Callable[[Tensor, Tensor], Tensor], inputs: Tensor, targets: Tensor) -> Tensor:
        """Each model's mean loss on its batch: inputs [M, B, ...], targets [M, B] -> [M]."""

    def step(self, data_loss: Tensor, i: int) -> None:
        """Backward through the data loss (plus each model's penalty) and update, with update i's lr."""

    def solve(self, x: Tensor, y: Tensor, l2: float) -> None:
        """The exact least-squares fit of the read-out (only when `least_squares`)."""

    def outputs(self, x: Tensor) -> Tensor:
        """Each model's outputs on a whole split, in evaluation mode: x [M, N, ...] -> [M, N, out]."""

    def weight_norms(self) -> Tensor:
        """Each model's Euclidean norm of all its parameters: [M]."""

    def snapshot(self) -> dict[str, Tensor]:
        """A copy of every model's state at once, {state-dict key: [M, ...]}."""

    def keep(self, indices: list[int]) -> None:
        """Go on with these models only (the others have finished)."""

    def state_of(self, m: int) -> dict:
        """Everything model m needs to continue exactly as if never stopped: weights, optimizer state,
        its random stream (tensors, numbers, dicts only: a checkpoint loads with weights_only)."""

    def load_states(self, states: list[dict]) -> None:
        """Continue each model from its `state_of` (all taken after the same epoch)."""
