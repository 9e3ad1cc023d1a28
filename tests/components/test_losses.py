"""Losses, penalties and dropout checked against the lecture's formulas, computed here independently."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dlcli.components import losses
from dlcli.config.schema import ModelConfig
from dlcli.components.models import build_model

# ---- cross-entropy: the lecture's worked example -------------------------------------------------

CLASSES = ["CH2", "CH3", "CH4", "SAX", "Other"]
TRUE = CLASSES.index("CH4")  # index 2


@pytest.mark.parametrize(
    "y_hat, expected",
    [
        ([0.2, 0.3, 0.1, 0.15, 0.25], 2.303),  # −log 0.1: a poor prediction of CH4
        ([0.02, 0.1, 0.8, 0.05, 0.03], 0.223),  # −log 0.8: a confident, correct one
    ],
)
def test_lecture_cross_entropy_example(y_hat, expected):
    assert TRUE == 2
    assert math.isclose(sum(y_hat), 1.0)
    assert abs(-math.log(y_hat[TRUE]) - expected) < 1e-3  # the lecture's rounded numbers
    q = torch.tensor(y_hat, dtype=torch.float64)
    p = torch.zeros(5, dtype=torch.float64)
    p[TRUE] = 1.0  # one-hot: only the true class's term survives
    assert abs(losses.cross_entropy(p, q).item() - expected) < 1e-3
    # logits log ŷ: softmax(log ŷ) = ŷ / Σŷ = ŷ, so the softmax cross-entropy is −log ŷ[CH4] too.
    logits = torch.log(torch.tensor([y_hat], dtype=torch.float32))
    loss = losses.cross_entropy_loss(logits, torch.tensor([TRUE]))
    assert loss.shape == (1,)
    assert abs(loss.item() - expected) < 1e-3


def test_better_prediction_of_the_true_class_has_lower_cross_entropy():
    p = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0])
    poor = losses.cross_entropy(p, torch.tensor([0.2, 0.3, 0.1, 0.15, 0.25]))
    good = losses.cross_entropy(p, torch.tensor([0.02, 0.1, 0.8, 0.05, 0.03]))
    assert good < poor


# ---- soft targets: H(p, q) = H(p) + KL(p ‖ q) ------------------------------------------------------


def _random_distributions(count: int, k: int, seed: int, zeros: bool = False) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    raw = torch.rand(count, k, generator=generator, dtype=torch.float64) + 0.01
    if zeros:
        raw[:, 0] = 0.0  # a class with probability 0: 0 log 0 = 0
    return raw / raw.sum(-1, keepdim=True)


def _manual_entropy(p: torch.Tensor) -> torch.Tensor:
    return torch.tensor([-sum(pi * math.log(pi) for pi in row.tolist() if pi > 0) for row in p], dtype=torch.float64)


def _manual_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return torch.tensor(
        [sum(pi * math.log(pi / qi) for pi, qi in zip(prow.tolist(), qrow.tolist()) if pi > 0) for prow, qrow in zip(p, q)],
        dtype=torch.float64,
    )


@pytest.mark.parametrize("zeros", [False, True])
def test_cross_entropy_is_entropy_plus_kl_for_soft_targets(zeros):
    p = _random_distributions(50, 5, seed=1, zeros=zeros)
    q = _random_distributions(50, 5, seed=2)
    h_pq = losses.cross_entropy(p, q)
    manual_h_pq = torch.tensor([-sum(pi * math.log(qi) for pi, qi in zip(a.tolist(), b.tolist()) if pi > 0)
                                for a, b in zip(p, q)], dtype=torch.float64)
    torch.testing.assert_close(h_pq, manual_h_pq, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(losses.entropy(p), _manual_entropy(p), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(losses.kl_divergence(p, q), _manual_kl(p, q), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(h_pq, _manual_entropy(p) + _manual_kl(p, q), rtol=1e-10, atol=1e-12)


def test_kl_is_nonnegative_and_zero_only_for_equal_distributions():
    p = _random_distributions(200, 4, seed=3)
    q = _random_distributions(200, 4, seed=4)
    kl = losses.kl_divergence(p, q)
    assert (kl > 0).all()  # Gibbs' inequality, strict since p ≠ q
    assert losses.kl_divergence(p, p).abs().max().item() < 1e-12
    # ... and the cross-entropy is minimized over q at q = p, where it equals the entropy.
    assert (losses.cross_entropy(p, q) > losses.entropy(p)).all()
    torch.testing.assert_close(losses.cross_entropy(p, p), losses.entropy(p))


def test_cross_entropy_is_not_symmetric():
    p = torch.tensor([0.9, 0.1], dtype=torch.float64)
    q = torch.tensor([0.5, 0.5], dtype=torch.float64)
    h_pq = -(0.9 * math.log(0.5) + 0.1 * math.log(0.5))  # = log 2 ≈ 0.693
    h_qp = -(0.5 * math.log(0.9) + 0.5 * math.log(0.1))  # ≈ 1.204
    assert abs(losses.cross_entropy(p, q).item() - h_pq) < 1e-12
    assert abs(losses.cross_entropy(q, p).item() - h_qp) < 1e-12
    assert abs(h_pq - h_qp) > 0.5


# ---- binary cross-entropy ------------------------------------------------------------------------


def _bce(y: float, y_hat: float) -> float:
    """−[y log ŷ + (1 − y) log(1 − ŷ)] with 0 log 0 = 0."""
    first = y * math.log(y_hat) if y > 0 else 0.0
    second = (1 - y) * math.log(1 - y_hat) if y < 1 else 0.0
    return -(first + second)


@pytest.mark.parametrize("y", [0.0, 1.0])
@pytest.mark.parametrize("y_hat", [0.0, 0.01, 0.3, 0.5, 0.7, 0.99, 1.0])
def test_bce_matches_its_formula_and_is_zero_exactly_when_prediction_equals_label(y, y_hat):
    loss = losses.binary_cross_entropy(torch.tensor(y, dtype=torch.float64), torch.tensor(y_hat, dtype=torch.float64))
    if y_hat == y:
        assert loss.item() == 0.0
    elif y_hat == 1 - y:
        assert loss.item() == math.inf  # certain and wrong
    else:
        assert loss.item() > 0
        assert math.isclose(loss.item(), _bce(y, y_hat), rel_tol=1e-12)


def test_bce_on_a_logit_equals_the_formula_at_the_sigmoid():
    logits = [-6.0, -2.0, -0.5, 0.0, 0.3, 1.7, 5.0]
    for label in (0, 1):
        outputs = torch.tensor(logits, dtype=torch.float64).unsqueeze(-1)  # one output per sample
        targets = torch.full((len(logits),), label, dtype=torch.long)
        loss = losses.bce_loss(outputs, targets)
        expected = [_bce(float(label), 1 / (1 + math.exp(-z))) for z in logits]
        torch.testing.assert_close(loss, torch.tensor(expected, dtype=torch.float64), rtol=1e-9, atol=1e-12)


# ---- mse on one-hot targets ----------------------------------------------------------------------


def test_mse_on_class_labels_is_squared_distance_to_the_one_hot_vector():
    outputs = torch.tensor([[0.2, 0.5, -0.1], [1.0, 0.0, 0.0], [0.3, 0.3, 2.0]])
    targets = torch.tensor([1, 0, 0])
    expected = [
        0.2**2 + (0.5 - 1) ** 2 + 0.1**2,
        0.0,
        (0.3 - 1) ** 2 + 0.3**2 + 2.0**2,
    ]
    torch.testing.assert_close(losses.mse_loss(outputs, targets), torch.tensor(expected), rtol=1e-6, atol=1e-7)


# ---- the penalty ---------------------------------------------------------------------------------


def _value(total) -> float:
    return float(total.detach()) if isinstance(total, torch.Tensor) else float(total)


def _parameters() -> list[torch.Tensor]:
    w = torch.tensor([[0.5, -1.5, 0.0], [2.0, -0.25, 0.75]], requires_grad=True)  # an exact 0
    b = torch.tensor([-0.3, 0.0, 1.2], requires_grad=True)
    return [w, b]


def test_l2_penalty_is_half_lambda_sum_of_squares():
    params = _parameters()
    squares = sum(v * v for p in params for v in p.detach().flatten().tolist())
    assert math.isclose(_value(losses.penalty(params, l1=0.0, l2=0.1)), 0.1 / 2 * squares, rel_tol=1e-6)
    # gradient of λ/2·Σw² is λ·w
    losses.penalty(params, l1=0.0, l2=0.1).backward()
    for p in params:
        torch.testing.assert_close(p.grad, 0.1 * p.detach())


def test_l1_penalty_is_lambda_sum_of_absolute_values_with_subgradient_sign():
    params = _parameters()
    absolutes = sum(abs(v) for p in params for v in p.detach().flatten().tolist())
    assert math.isclose(_value(losses.penalty(params, l1=0.2, l2=0.0)), 0.2 * absolutes, rel_tol=1e-6)
    losses.penalty(params, l1=0.2, l2=0.0).backward()
    for p in params:
        expected = torch.tensor([0.2 * (1.0 if v > 0 else -1.0 if v < 0 else 0.0) for v in p.detach().flatten().tolist()])
        torch.testing.assert_close(p.grad.flatten(), expected)
    assert params[0].grad[0, 2].item() == 0.0 and params[1].grad[1].item() == 0.0  # sign(0) = 0


def test_l1_and_l2_penalties_add_and_none_is_zero():
    params = _parameters()
    values = [v for p in params for v in p.detach().flatten().tolist()]
    expected = 0.3 * sum(abs(v) for v in values) + 0.05 * sum(v * v for v in values)
    assert math.isclose(_value(losses.penalty(params, l1=0.3, l2=0.1)), expected, rel_tol=1e-6)
    assert _value(losses.penalty(params, l1=0.0, l2=0.0)) == 0.0


# ---- inverted dropout ----------------------------------------------------------------------------


def _dropout_model(p: float, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(ModelConfig(name="mlp", hidden=[16], dropout=p), (4,), 3)


def _capture_dropout(model: nn.Module) -> dict:
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(dropouts) == 1
    captured = {}

    def hook(module, inputs, output):
        captured["in"], captured["out"] = inputs[0].detach(), output.detach()

    dropouts[0].register_forward_hook(hook)
    return captured


def test_inverted_dropout_keeps_the_expected_activation_in_train_mode():
    p, copies = 0.5, 20_000
    model = _dropout_model(p)
    captured = _capture_dropout(model)
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(123)  # the dropout masks
    model.train()
    with torch.no_grad():
        model(x.repeat(copies, 1))  # `copies` independent forward passes of the same 8 inputs, at once
    a = captured["in"].view(copies, 8, 16)  # activation without dropout (identical in every copy)
    out = captured["out"].view(copies, 8, 16)
    assert torch.equal(a, a[:1].expand_as(a))
    a = a[0]
    assert (a > 0).sum() > 20  # enough live ReLU units for the check to mean something
    # Each unit is either dropped (0) or kept and scaled by 1/(1−p): exactly 2a for p = 0.5.
    kept = out != 0
    torch.testing.assert_close(out[kept], (a.expand_as(out) / (1 - p))[kept])
    live = (a > 0).expand_as(out)
    assert abs(kept[live].float().mean().item() - (1 - p)) < 0.01  # drop rate p
    # E[out] = a·(1−p)/(1−p) = a. One copy has variance a²·p/(1−p), so the mean of N copies has standard
    # deviation |a|·sqrt(p/((1−p)N)); 5 of them bound a two-sided miss per unit at < 1e-6 (128 units).
    mean = out.mean(0)
    bound = 5 * a.abs() * math.sqrt(p / ((1 - p) * copies)) + 1e-7
    assert ((mean - a).abs() <= bound).all(), ((mean - a).abs() / bound).max()
    # and without the 1/(1−p) rescaling the mean would be a/2, far outside that bound:
    assert ((mean * (1 - p) - a).abs()[a > 0.05] > bound[a > 0.05]).all()


def test_dropout_is_exactly_the_identity_in_eval_mode():
    model = _dropout_model(0.5, seed=7)
    reference = _dropout_model(0.0, seed=7)  # same seed, same weights, no dropout layer
    assert not any(isinstance(m, nn.Dropout) for m in reference.modules())
    captured = _capture_dropout(model)
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(2))
    model.eval()
    reference.eval()
    with torch.no_grad():
        out = model(x)
        assert torch.equal(captured["out"], captured["in"])
        assert torch.equal(out, reference(x))
        model.train()
        assert not torch.equal(model(x), out)  # in train mode it does drop


# ---- which losses fit which data -----------------------------------------------------------------


def test_loss_problems():
    regression = losses.loss_problems("cross_entropy", "regression", None, "sine")
    assert len(regression) == 1 and "cross_entropy" in regression[0] and "sine" in regression[0]
    assert losses.loss_problems("bce", "regression", None, "sine")
    three = losses.loss_problems("bce", "classification", 3, "gaussians")
    assert len(three) == 1 and "bce" in three[0] and "3" in three[0]
    assert losses.loss_problems("bce", "classification", 2, "gaussians") == []
    assert losses.loss_problems("cross_entropy", "classification", 3, "gaussians") == []
    assert losses.loss_problems("mse", "regression", None, "sine") == []
    assert losses.loss_problems("mse", "classification", 3, "gaussians") == []
