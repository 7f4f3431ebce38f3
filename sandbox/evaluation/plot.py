"""accuracy_vs_budget.png: pass@1 against the token budget (matplotlib, Agg backend)."""
from __future__ import annotations

from pathlib import Path

PLOT_FILE = "accuracy_vs_budget.png"


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed (pip install '.[eval]')."""


def plot_accuracy_vs_budget(budgets: list[dict], path: str | Path, title: str = "") -> Path:
    """One point per budget (x: the budget, or the sum of its parts; y: pass@1 in %)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable("matplotlib is not installed: pip install '.[eval]'") from None
    points = [b for b in budgets if b["total"] is not None]
    if not points:
        raise ValueError("no sample has a numeric budget")
    xs = [b["total"] for b in points]
    ys = [100 * b["pass@1"] for b in points]
    figure, axes = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    try:
        axes.plot(xs, ys, marker="o", linewidth=1.8, color="#2563eb")
        if min(xs) > 0 and max(xs) / min(xs) >= 8:
            axes.set_xscale("log", base=2)
            axes.minorticks_off()
        distinct = sorted(set(xs))
        if len(distinct) <= 12:
            axes.set_xticks(distinct, [f"{x:g}" for x in distinct])
        if any(isinstance(b["budget"], dict) for b in points):
            middle = (min(xs) * max(xs)) ** 0.5 if min(xs) > 0 else (min(xs) + max(xs)) / 2
            for b, x, y in zip(points, xs, ys):
                right = x > middle
                axes.annotate(b["label"], (x, y), textcoords="offset points",
                              xytext=(-4 if right else 4, 6), ha="right" if right else "left",
                              fontsize=7, color="#374151")
            axes.set_xlabel("budget (tokens, sum of parts)")
        else:
            axes.set_xlabel("budget (tokens)")
        axes.set_ylabel("accuracy, pass@1 (%)")
        axes.set_ylim(0, 105)
        axes.grid(True, alpha=0.3)
        axes.set_title(title or "Accuracy vs budget")
        figure.tight_layout()
        path = Path(path)
        figure.savefig(path, format="png")
    finally:
        plt.close(figure)
    return path
