"""Losses (lecture §1), the error metric, and the L1/L2 penalty (lecture §4).

Every data loss takes raw model outputs and targets and returns per-sample losses; the mean is the
training objective. "Error" is the misclassification rate for classification and the mean squared
error for regression.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

# ---- the lecture's definitions on probability vectors --------------------------------------------


def entropy(p: Tensor) -> Tensor:
    """H(p) = −Σ p log p, with 0 log 0 = 0."""
    return 0.0 - torch.xlogy(p, p).sum(-1)  # 0.0 − x, not −x: a one-hot p has entropy 0, not −0


def cross_entropy(p: Tensor, q: Tensor) -> Tensor:
    """H(p, q) = −Σ p log q for a target distribution p and a prediction q."""
    return -torch.xlogy(p, q).sum(-1)


def kl_divergence(p: Tensor, q: Tensor) -> Tensor:
    """KL(p ‖ q) = H(p, q) − H(p) ≥ 0, zero iff p = q."""
    return cross_entropy(p, q) - entropy(p)


def binary_cross_entropy(y: Tensor, y_hat: Tensor) -> Tensor:
    """L = −[y log ŷ + (1 − y) log(1 − ŷ)] for a label y in {0, 1} and a probability ŷ."""
    return -(torch.xlogy(y, y_hat) + torch.xlogy(1 - y, 1 - y_hat))


# ---- data losses on model outputs (per sample) ---------------------------------------------------


def cross_entropy_loss(outputs: Tensor, targets: Tensor) -> Tensor:
    """Softmax cross-entropy: −log ŷ[y], the only term a one-hot label leaves."""
    return F.cross_entropy(outputs, targets, reduction="none")


def bce_loss(outputs: Tensor, targets: Tensor) -> Tensor:
    """One sigmoid output: ŷ = σ(z), computed from the logit z for numerical stability."""
    return F.binary_cross_entropy_with_logits(outputs.squeeze(-1), targets.to(outputs.dtype), reduction="none")


def mse_loss(outputs: Tensor, targets: Tensor) -> Tensor:
    """Squared Euclidean distance to the target: a number (regression) or a one-hot vector (classes)."""
    if targets.dtype == torch.long:
        return ((outputs - one_hot_or_column(targets, outputs.shape[-1]).to(outputs.dtype)) ** 2).sum(-1)
    return (outputs.squeeze(-1) - targets) ** 2


def one_hot_or_column(targets: Tensor, width: int) -> Tensor:
    """What mse regresses: one-hot vectors for class labels, a column for numbers."""
    if targets.dtype == torch.long:
        return F.one_hot(targets, width).float()
    return targets.reshape(-1, 1).float()


LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "cross_entropy": cross_entropy_loss,
    "bce": bce_loss,
    "mse": mse_loss,
}


def errors(loss: str, outputs: Tensor, targets: Tensor) -> Tensor:
    """Per-sample error: 1 for a wrong class, or the squared error for regression."""
    if targets.dtype != torch.long:
        return (outputs.squeeze(-1) - targets) ** 2
    return (predict_classes(loss, outputs) != targets).to(outputs.dtype)


def predict_classes(loss: str, outputs: Tensor) -> Tensor:
    if loss == "bce":
        return (outputs.squeeze(-1) > 0).long()  # σ(z) > 0.5
    return outputs.argmax(-1)


def class_probabilities(loss: str, outputs: Tensor) -> Tensor:
    """The model's distribution over classes; for mse, outputs clipped to [0, 1] and renormalized."""
    if loss == "cross_entropy":
        return outputs.softmax(-1)
    if loss == "bce":
        p = torch.sigmoid(outputs.squeeze(-1))
        return torch.stack([1 - p, p], -1)
    clipped = outputs.clamp(0, 1) + 1e-12
    return clipped / clipped.sum(-1, keepdim=True)


def output_width(loss: str, task: str, num_classes: int | None) -> int:
    """How many outputs the model needs: one logit per class, one sigmoid, or one number."""
    if task == "regression" or loss == "bce":
        return 1
    return num_classes


def loss_problems(loss: str, task: str, num_classes: int | None, data_name: str) -> list[str]:
    """Why this loss cannot train on this data, if it cannot."""
    if task == "regression" and loss != "mse":
        return [f"loss: {loss} needs class labels, but {data_name} is a regression data set (use mse)"]
    if loss == "bce" and num_classes != 2:
        return [f"loss: bce needs a binary data set, but {data_name} has {num_classes} classes "
                "(use cross_entropy)"]
    return []


# ---- regularization ------------------------------------------------------------------------------


def penalty(parameters: Iterable[Tensor], l1: float, l2: float) -> Tensor | float:
    """λ₂/2 · ||W||² + λ₁ · ||W||₁ over all parameters flattened; d/dw |w| = sign(w), sign(0) = 0."""
    total: Tensor | float = 0.0
    for parameter in parameters:
        if l2:
            total = total + 0.5 * l2 * parameter.pow(2).sum()
        if l1:
            total = total + l1 * parameter.abs().sum()
    return total
