"""The loss command: cross-entropy, entropy and KL of a target and predictions, by hand."""
from __future__ import annotations

import math
from typing import List, Optional

import typer

from dlcli.cli.app import app, user_errors_exit_2
from dlcli.errors import UserError

# The lecture's worked example: classes CH2, CH3, CH4, SAX, Other; the true class is CH4.
LECTURE_CLASSES = "CH2,CH3,CH4,SAX,Other"
LECTURE_TARGET = "0,0,1,0,0"
LECTURE_PREDICTIONS = ["0.2,0.3,0.1,0.15,0.25", "0.02,0.1,0.8,0.05,0.03"]


@app.command()
@user_errors_exit_2
def loss(
    target: str = typer.Option(LECTURE_TARGET, "--target", help="The target distribution p, comma-separated "
                               "(one-hot for a hard label, or soft)."),
    prediction: Optional[List[str]] = typer.Option(None, "--prediction", help="A predicted distribution q "
                                                   "(repeatable); default: the lecture's two.", show_default=False),
    classes: str = typer.Option(LECTURE_CLASSES, "--classes", help="Class names, comma-separated."),
) -> None:
    """Cross-entropy by hand: H(p, q) = H(p) + KL(p ‖ q) for a target p and each prediction q.

    Example: dlcli loss --target 0.7,0.2,0.1 --prediction 0.6,0.3,0.1 --classes cat,dog,fox
    """
    import torch

    from dlcli.components import losses
    from dlcli.report.runs import print_loss_table

    p = _distribution(target, "--target")
    names = [name.strip() for name in classes.split(",")]
    if len(names) != len(p):
        if classes != LECTURE_CLASSES:
            raise UserError(f"--classes {classes}: {len(names)} names for the {len(p)} classes of --target")
        names = [str(i) for i in range(len(p))]
    rows = []
    for text in prediction or LECTURE_PREDICTIONS:
        q = _distribution(text, "--prediction")
        if len(q) != len(p):
            given = "" if prediction else " (the lecture's default prediction: give --prediction with your target)"
            raise UserError(f"--prediction {text}: {len(q)} values for {len(p)} classes{given}")
        p_t, q_t = torch.tensor(p, dtype=torch.float64), torch.tensor(q, dtype=torch.float64)
        rows.append({"prediction": text, "H(p)": float(losses.entropy(p_t)),
                     "KL(p||q)": float(losses.kl_divergence(p_t, q_t)),
                     "H(p,q)": float(losses.cross_entropy(p_t, q_t)),
                     "H(q,p)": float(losses.cross_entropy(q_t, p_t))})
    print_loss_table(names, p, rows)


def _distribution(text: str, option: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"{option} {text}: expected comma-separated probabilities, e.g. 0.2,0.3,0.5") from None
    if not all(math.isfinite(value) for value in values):
        raise UserError(f"{option} {text}: probabilities must be finite numbers from 0 to 1")
    if any(value < 0 for value in values):
        raise UserError(f"{option} {text}: probabilities must be ≥ 0 (one is {min(values):g})")
    if abs(sum(values) - 1) > 1e-6:
        raise UserError(f"{option} {text}: probabilities must sum to 1 (they sum to {sum(values):g})")
    return values
