"""What a person sees of one run: the end-of-run report, an evaluation, the LR range test, and the
loss worked by hand."""
from __future__ import annotations

from typing import Any

from rich.table import Table

from dlcli.layout import Status
from dlcli.report.console import console
from dlcli.report.text import number_text


def print_run(summary: dict[str, Any], run_dir: str) -> None:
    """The end-of-run report: train against test, the gap, the best epoch, the Bayes error."""
    console.print(f"[bold]{summary['name']}[/] · {summary['status']}")
    table = Table()
    for column in ("", "loss", "error"):
        table.add_column(column, justify="right" if column else "left")
    table.add_row("train", number_text(summary["train_loss"]), number_text(summary["train_error"]))
    table.add_row("test", number_text(summary["test_loss"]), number_text(summary["test_error"]))
    table.add_row("gap (test − train)", "", number_text(summary["gap"]))
    if summary.get("best_epoch") is not None:
        table.add_row(f"best test (epoch {summary['best_epoch']})", "", number_text(summary["best_test_error"]))
    if summary.get("bayes_error") is not None:
        table.add_row("Bayes error", "", number_text(summary["bayes_error"]))
    console.print(table)
    if summary.get("restored_epoch") is not None:  # not the last epoch's numbers: say whose they are
        console.print(f"train and test: epoch {summary['restored_epoch']}'s, the best on validation, whose weights "
                      "early stopping restored (model.pt)")
    console.print(
        f"{summary['epochs_run']} epochs, {summary['steps']} steps, {summary['parameters']:,} parameters, "
        f"{summary['device']}, {summary['seconds']:.1f} s"
    )
    if summary.get("message"):
        style = "yellow" if summary["status"] == Status.INTERRUPTED else "red"
        console.print(f"[{style}]{summary['status']}:[/] {summary['message']}")
    console.print(f"run directory: {run_dir}", soft_wrap=True)


def print_evaluation(evaluation: dict[str, Any], path: str) -> None:
    console.print(f"[bold]{evaluation['run_id']}[/] · {evaluation['split']} split, {evaluation['samples']} samples")
    headline = Table()
    headline.add_column("metric")
    headline.add_column("value", justify="right")
    headline.add_row("loss", number_text(evaluation["loss"]))
    headline.add_row("error", number_text(evaluation["error"]))
    if evaluation.get("ece") is not None:
        headline.add_row("expected calibration error", number_text(evaluation["ece"]))
    if evaluation.get("bayes_error") is not None:
        headline.add_row("Bayes error", number_text(evaluation["bayes_error"]))
    console.print(headline)
    if "per_class" in evaluation:
        console.print(_per_class_table(evaluation["per_class"]))
        console.print(_confusion_table(evaluation["classes"], evaluation["confusion"]))
    console.print(f"wrote {path}", soft_wrap=True)


def _per_class_table(per_class: list[dict[str, Any]]) -> Table:
    table = Table(title="per class", title_justify="left")
    for column in ("class", "support", "error", "precision", "recall"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in per_class:
        table.add_row(row["class"], str(row["support"]), number_text(row["error"]), number_text(row["precision"]),
                      number_text(row["recall"]))
    return table


def _confusion_table(classes: list[str], confusion: list[list[int]]) -> Table:
    table = Table(title="confusion matrix (rows: true class, columns: predicted)", title_justify="left")
    table.add_column("true \\ pred")
    for name in classes:
        table.add_column(name, justify="right")
    for name, counts in zip(classes, confusion):
        table.add_row(name, *(f"[bold]{count}[/]" if i == classes.index(name) else str(count)
                              for i, count in enumerate(counts)))
    return table


def print_lr_find(result, run_dir: str, plot) -> None:
    rows = result.rows
    table = Table(title="loss against learning rate (every tenth step)", title_justify="left")
    for column in ("step", "lr", "loss", "smoothed", "accuracy"):
        table.add_column(column, justify="right")
    for row in rows[:: max(1, len(rows) // 10)]:
        table.add_row(str(row["step"]), f"{row['lr']:.3g}", number_text(row["loss"]), number_text(row["smoothed_loss"]),
                      number_text(row["accuracy"]))
    console.print(table)
    if result.stopped_early:
        console.print(f"stopped after {len(rows)} steps: the loss blew up")
    if result.lr_scale != 1:
        console.print(f"optim.lr_scaling: each update used the lr shown × {result.lr_scale:g} (batch size / "
                      "base_batch_size); the lrs here are optim.lr's")
    if result.suggested_lr is None:
        console.print(f"[yellow]no suggestion:[/] {result.rule}")
    else:
        console.print(f"suggested lr: [bold]{result.suggested_lr:.3g}[/] ({result.rule})")
        cycle = result.triangular
        console.print(f"triangular schedule: max_lr {cycle['max_lr']:.3g} (a third of the lr at the lowest loss, "
                      f"{cycle['lowest_loss_lr']:.3g}), base_lr {cycle['base_lr']:.3g} (max_lr / 4)")
        if cycle["lowest_loss_lr"] == rows[-1]["lr"]:  # no minimum seen: the range stops before the blow-up
            console.print("[yellow]the loss was lowest at the last lr tried:[/] raise --max to see where it blows up")
    console.print(f"wrote {run_dir}/lr_find.csv" + (f" and {plot}" if plot else ""), soft_wrap=True)


def print_loss_table(classes: list[str], target: list[float], rows: list[dict[str, Any]]) -> None:
    """Entropy, KL and cross-entropy per prediction: H(p, q) = H(p) + KL(p ‖ q), and H(q, p) ≠ H(p, q)."""
    console.print("target p: " + ", ".join(f"{name}={value:g}" for name, value in zip(classes, target)))
    table = Table()
    for column in ("prediction q", "H(p)", "KL(p ‖ q)", "H(p, q) = H(p) + KL", "H(q, p)"):
        table.add_column(column, justify="left" if column == "prediction q" else "right")
    for row in rows:
        table.add_row(row["prediction"], *(_nats(row[key]) for key in ("H(p)", "KL(p||q)", "H(p,q)", "H(q,p)")))
    console.print(table)


def _nats(value: float) -> str:
    """3 decimals, inf as itself, and no `-0.000` (a sum of terms 0·log 0 that rounds below zero)."""
    return "inf" if value == float("inf") else f"{value + 0.0:.3f}".replace("-0.000", "0.000")
