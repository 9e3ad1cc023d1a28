"""Bias–variance decompositions of the test risk (lecture §3 and §5): pure functions of the outputs of
K training sets × S seeds of models on N test points.

The expected test risk is decomposed:

- squared error (Yang et al., arXiv 2002.11328), of numbers (regression) or of vectors against one-hot
  labels (classifiers: the raw outputs when trained with mse, else the predicted distribution):
  variance with their finite-sample correction, noise where the generator's noise-free target is
  known, and bias² the remainder, so that risk = bias² + variance + noise exactly;
- cross-entropy (Yang et al.), exactly: with f̄ the normalized geometric mean of the models'
  distributions, bias² = E_x[−log f̄_y] and variance = E_x E_models KL(f̄ ‖ f);
- 0-1 error (Domingos, ICML 2000): the majority vote is the main prediction; bias = 1 where it is
  wrong, variance = the probability a model disagrees with it. These do not add up to the risk.

With S ≥ 2 seeds the variance splits by the law of total variance into sampling (across training
sets: Var_k of E_s[f]) and optimization (across seeds: E_k of Var_s[f]); the two add up to it.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from dlcli.components.losses import predict_classes


# ---- the decompositions: pure functions of (K training sets, S seeds, N test points, ...) tensors ----


def squared_error(predictions: Tensor, targets: Tensor, clean_targets: Tensor | None = None) -> dict[str, float | None]:
    """Risk E‖f − y‖², variance, noise E(y − f*)² (where the noise-free target f* is given), and
    bias² = risk − variance − noise: the remainder, so the three add up to the risk exactly (Yang et al.
    define bias² the same way, after correcting the variance).

    predictions: (K, S, N) numbers or (K, S, N, C) vectors; targets and clean_targets: (N) or (N, C).
    """
    f, y = predictions.double(), targets.double()
    clean = None if clean_targets is None else clean_targets.double()
    if f.dim() == 3:  # numbers are vectors of one component
        f, y = f.unsqueeze(-1), y.unsqueeze(-1)
        clean = None if clean is None else clean.unsqueeze(-1)
    trials, seeds = f.shape[:2]
    risk = ((f - y) ** 2).sum(-1).mean()
    per_set = f.mean(1, keepdim=True)  # E_s f: each training set's prediction averaged over seeds
    between = ((per_set - per_set.mean(0, keepdim=True)) ** 2).sum(-1).mean()
    within = ((f - per_set) ** 2).sum(-1).mean()
    if seeds == 1:
        # Yang et al.'s correction N/(N−1) for N models: the mean squared deviation from the mean of
        # the same N models underestimates the variance by that factor.
        variance, sampling, optimization = trials / (trials - 1) * between, None, None
    else:
        # The same correction for the nested design (one-way ANOVA): E_k Var_s with S/(S−1), and
        # Var_k of the seed average with K/(K−1), less the seeds' share Var_s/S that the average keeps.
        # Each part is unbiased; the sampling part can come out slightly negative by chance.
        optimization = seeds / (seeds - 1) * within
        sampling = trials / (trials - 1) * between - optimization / seeds
        variance = sampling + optimization
    noise = None if clean is None else ((y - clean) ** 2).sum(-1).mean()
    bias2 = risk - variance - (0.0 if noise is None else noise)
    return _floats(risk=risk, bias2=bias2, variance=variance, variance_sampling=sampling,
                   variance_optimization=optimization, noise=noise)


def cross_entropy(log_probabilities: Tensor, labels: Tensor) -> dict[str, float | None]:
    """Risk E[−log f_y] = bias² + variance exactly (Yang et al.), f̄ the normalized geometric mean:
    bias² = E_x[−log f̄_y], variance = E_x E_models KL(f̄ ‖ f). No noise term: bias² includes it.

    With S ≥ 2, sampling = E_k KL(f̄ ‖ f̄_k) and optimization = E_k E_s KL(f̄_k ‖ f_ks), f̄_k the
    geometric mean over the seeds of training set k (f̄ is also the geometric mean of the f̄_k): they
    add up to the variance exactly.

    log_probabilities: (K, S, N, C); labels: (N) class indices.
    """
    log_f = log_probabilities.double()
    points = torch.arange(len(labels))
    log_mean = torch.log_softmax(log_f.mean((0, 1)), -1)  # log f̄, (N, C)
    risk = -log_f[:, :, points, labels].mean()
    bias2 = -log_mean[points, labels].mean()
    variance = _kl(log_mean, log_f).mean()
    sampling = optimization = None
    if log_f.shape[1] > 1:
        log_set_mean = torch.log_softmax(log_f.mean(1), -1)  # log f̄_k, (K, N, C)
        sampling = _kl(log_mean, log_set_mean).mean()
        optimization = _kl(log_set_mean.unsqueeze(1), log_f).mean()
    return _floats(risk=risk, bias2=bias2, variance=variance, variance_sampling=sampling,
                   variance_optimization=optimization, noise=None)


def zero_one(predicted: Tensor, labels: Tensor, num_classes: int) -> dict[str, float | None]:
    """Domingos: risk P(f ≠ y); the main prediction is the models' majority vote (ties: the lowest
    class); bias = P_x(main ≠ y), variance = P(f ≠ main). Not additive: where the main prediction is
    wrong, disagreeing with it can be right, so risk ≠ bias + variance in general.

    predicted: (K, S, N) class indices; labels: (N).
    """
    votes = F.one_hot(predicted, num_classes).sum((0, 1))  # (N, C)
    main = votes.argmax(-1)
    return _floats(risk=(predicted != labels).double().mean(), bias2=(main != labels).double().mean(),
                   variance=(predicted != main).double().mean(), variance_sampling=None,
                   variance_optimization=None, noise=None)


def decompose(loss: str, outputs: Tensor, targets: Tensor, clean_targets: Tensor | None = None) -> dict[str, dict]:
    """Every decomposition that applies to raw model outputs (K, S, N, width) against the test targets."""
    if targets.dtype != torch.long:  # regression: one output per sample
        return {"mse": squared_error(outputs[..., 0], targets, clean_targets)}
    if loss == "bce":
        logit = outputs[..., 0]
        log_probabilities = torch.stack([F.logsigmoid(-logit), F.logsigmoid(logit)], -1)
    else:
        log_probabilities = torch.log_softmax(outputs, -1)
    classes = log_probabilities.shape[-1]
    one_hot = F.one_hot(targets, classes).double()
    if loss == "mse":  # the vectors the model was trained to bring to the one-hot labels
        return {"mse": squared_error(outputs, one_hot), "zero_one": zero_one(outputs.argmax(-1), targets, classes)}
    return {"mse": squared_error(log_probabilities.exp(), one_hot),
            "cross_entropy": cross_entropy(log_probabilities, targets),
            "zero_one": zero_one(predict_classes(loss, outputs), targets, classes)}


def _kl(log_p: Tensor, log_q: Tensor) -> Tensor:
    """KL(p ‖ q) over the last axis, from log-probabilities (broadcasting)."""
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def _floats(**values: Any) -> dict[str, float | None]:
    return {key: None if value is None else float(value) for key, value in values.items()}
