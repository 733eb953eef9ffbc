"""The front of flash (or RAM) against the metric: a sweep of budgets, each choice solved exactly and verified.

``sweep`` spreads budgets between the smallest achievable value of the resource and the all-int8 model's (or
the largest option's), solves each, verifies it (``mixed.Planner.choose``), and keeps the points no other point
beats on both the resource and the metric. ``plot`` draws them with matplotlib (the optional extra
``mcuq[plot]``) into a PNG or SVG with no date or version in it, so the same front gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import McuqError
from .knapsack import Infeasible, min_value
from .mixed import Planner, Verified
from .sensitivity import INT8

POINTS = 8


@dataclass(frozen=True)
class Point:
    budget: float
    chosen: Verified

    def metric(self) -> float:
        v = self.chosen
        return v.accuracy if v.accuracy is not None else v.sqnr_db


def sweep(planner: Planner, axis: str = "flash", points: int = POINTS, others=None) -> list[Point]:
    """Budgets on ``axis`` from its smallest achievable value to the all-int8 model's, ``points`` of them; the
    other budgets (``others``, by name) hold for every point. Returns the non-dominated points, by budget."""
    if axis not in ("flash", "ram", "weights"):
        raise McuqError(f"--pareto-axis must be flash, ram or weights, not {axis!r}")
    others = {k: v for k, v in (others or {}).items() if k != axis}
    p = planner.problem(others)
    lo = min_value(p, axis)
    hi = planner.uniform(INT8).value(axis)
    hi = max(hi, lo)
    budgets = sorted({round(lo + (hi - lo) * i / max(points - 1, 1)) for i in range(points)})
    out: list[Point] = []
    for b in budgets:
        try:
            v = planner.choose({**others, axis: float(b)})
        except Infeasible:
            continue
        out.append(Point(float(b), v))
    return front(out, axis)


def front(points: list[Point], axis: str) -> list[Point]:
    """The points that no other point beats: at most as much ``axis`` and at least as good a metric, one better."""
    keep = []
    for a in points:
        ra, ma = a.chosen.value(axis), a.metric()
        dominated = any(
            (b.chosen.value(axis) <= ra and b.metric() >= ma) and (b.chosen.value(axis) < ra or b.metric() > ma)
            for b in points
        )
        if not dominated and all(k.chosen.value(axis) != ra or k.metric() != ma for k in keep):
            keep.append(a)
    return sorted(keep, key=lambda q: q.chosen.value(axis))


def table(points: list[Point], axis: str, labels: bool) -> str:
    metric = "accuracy %" if labels else "SQNR dB"
    head = (
        f"{'budget':>10} {axis + ' B':>12} {'weights B':>10} {'arena B':>8} {'instructions':>13} {metric:>11}  recipe"
    )
    lines = [head, "-" * len(head)]
    for pt in points:
        v = pt.chosen
        recipe = " ".join(f"{p.weight_bits}{'/16' if p.activations == 'int16' else ''}" for p in v.recipe.values())
        lines.append(
            f"{pt.budget:>10,.0f} {v.value(axis):>12,} {v.weight_bytes:>10,} {v.ram:>8,} {v.instructions:>13,} "
            f"{pt.metric():>11.2f}  {recipe}"
        )
    lines.append("recipe: weight bits per layer in layer order (/16: int16 activations)")
    return "\n".join(lines)


def plot(points: list[Point], axis: str, labels: bool, path: str | Path, title: str = "") -> bool:
    """Draw the front into ``path`` (.png or .svg); False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise McuqError(f"{path}: --pareto writes a .png or .svg file")
    with matplotlib.rc_context({"svg.hashsalt": "mcuq", "svg.fonttype": "path"}):
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        xs = [pt.chosen.value(axis) for pt in points]
        ys = [pt.metric() for pt in points]
        ax.plot(xs, ys, "o-", drawstyle="steps-post")
        ax.set_xlabel(f"{axis} (bytes)")
        ax.set_ylabel("accuracy (%)" if labels else "output SQNR (dB)")
        if title:
            ax.set_title(title)
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        import io

        from ..npyio import save_bytes

        buf = io.BytesIO()
        # no dates or software versions in the file: the same front gives the same bytes
        meta = {"Date": None, "Creator": None} if suffix == ".svg" else {"Software": None}
        fig.savefig(buf, format=suffix[1:], metadata=meta)
        plt.close(fig)
    save_bytes(path, buf.getvalue())
    return True
