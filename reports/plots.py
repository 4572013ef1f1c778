"""Report plots (matplotlib, Agg backend; PNG written atomically, no timestamps in the file).

Rules that keep plots readable at any n: tick labels are few, short and rotated where they are categories (the
figure widens with their number, so they never overlap); a per-factor plot shows exact x values when the factor
has few distinct values and labelled quantile bins (``[a, b)`` with the images per bin) otherwise, and callers
draw it only from :data:`MIN_DISTINCT` distinct values; with few values per method, points are drawn instead
of (or over) box plots.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from celebref.fsutil import atomic_write_bytes

#: a factor with fewer distinct values than this is not plotted against (the report says why)
MIN_DISTINCT = 5
#: up to this many distinct values, a factor's x axis shows the exact values; beyond, quantile bins
MAX_EXACT = 8
#: number of quantile bins beyond MAX_EXACT distinct values
BINS = 6
#: fewest values for a box (fewer: the points alone)
MIN_BOX = 5
#: most values per method drawn as points
MAX_POINTS = 60
_LABEL_CHARS = 22


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    _plt().close(fig)
    atomic_write_bytes(path, buf.getvalue())


def literal(text: str) -> str:
    """``text`` as matplotlib prints it literally: ``$`` escaped, so that a method label such as ``x$_$`` or
    ``$5 and $6`` is never parsed as mathtext (which raises or typesets it as maths)."""
    return str(text).replace("$", r"\$")


def short(label: str, limit: int = _LABEL_CHARS) -> str:
    """A tick or legend label of at most ``limit`` characters (ellipsis in the middle keeps both ends readable),
    escaped for matplotlib (:func:`literal`)."""
    label = str(label)
    if len(label) > limit:
        keep = (limit - 1) // 2
        label = label[:keep] + "…" + label[-(limit - 1 - keep):]
    return literal(label)


def _num(v: float) -> str:
    """Compact number for tick labels: 3 significant digits, no trailing zeros."""
    if not np.isfinite(v):
        return str(v)
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.0f}"


def _categorical_axis(ax, labels: list[str]) -> None:
    ax.set_xticks(range(len(labels)))
    rotate = len(labels) > 3 or max((len(s) for s in labels), default=0) > 6
    ax.set_xticklabels(labels, rotation=30 if rotate else 0, ha="right" if rotate else "center", fontsize=8)


def _limit_ticks(ax, axis: str = "y", n: int = 5) -> None:
    from matplotlib.ticker import MaxNLocator

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_locator(MaxNLocator(nbins=n))


def plot_distributions(data: dict[str, np.ndarray], title: str, path: Path) -> None:
    """Per-method distribution of one metric: a box (from :data:`MIN_BOX` values) and the values as points
    (all of them up to :data:`MAX_POINTS` per method, else none; outliers are then drawn as circles)."""
    _save(distribution_figure(data, title), path)


def distribution_figure(data: dict[str, np.ndarray], title: str):
    """The figure of :func:`plot_distributions` (not saved)."""
    plt = _plt()
    labels = list(data)
    vals = [np.asarray(data[k], np.float64) for k in labels]
    vals = [v[np.isfinite(v)] for v in vals]
    longest = max((len(short(s).replace("\\$", "$")) for s in labels), default=4)
    fig, ax = plt.subplots(figsize=(max(2.6, 0.75 * len(labels) + 0.06 * longest + 1.2), 3.0))
    boxed = [i for i, v in enumerate(vals) if len(v) >= MIN_BOX]
    if boxed:
        ax.boxplot([vals[i] for i in boxed], positions=boxed, widths=0.5, showmeans=True, showfliers=max(len(vals[i]) for i in boxed) > MAX_POINTS,
                   meanprops={"marker": "^", "markerfacecolor": "tab:green", "markeredgecolor": "tab:green"})
    rng = np.random.default_rng(0)
    for i, v in enumerate(vals):
        if 0 < len(v) <= MAX_POINTS:
            ax.plot(i + rng.uniform(-0.12, 0.12, len(v)), v, "o", ms=4, alpha=0.6, color="tab:blue")
    ax.set_xlim(-0.6, len(labels) - 0.4)
    _categorical_axis(ax, [short(s) for s in labels])
    _limit_ticks(ax, "y")
    ax.set_title(literal(title), fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return fig


class FactorAxis:
    """The x axis of a degradation factor: its exact values (up to :data:`MAX_EXACT` distinct) or
    :data:`BINS` quantile bins; :meth:`index` places values on it, :attr:`labels` name each position
    (value or ``[a, b)`` with the number of images there)."""

    def __init__(self, values: np.ndarray):
        x = np.asarray(values, np.float64)
        x = x[np.isfinite(x)]
        distinct = np.unique(x)
        self.kind = "values" if len(distinct) <= MAX_EXACT else "bins"
        self.points = distinct if self.kind == "values" else np.unique(np.quantile(x, np.linspace(0, 1, BINS + 1)))
        idx = self.index(x)
        n = len(self.points) if self.kind == "values" else len(self.points) - 1
        counts = np.bincount(idx, minlength=n) if len(idx) else np.zeros(n, int)
        if self.kind == "values":
            self.labels = [f"{_num(v)}\nn={c}" for v, c in zip(self.points, counts)]
        else:
            last = len(self.points) - 2
            self.labels = [f"[{_num(a)}, {_num(b)}{']' if k == last else ')'}\nn={c}"
                           for k, (a, b, c) in enumerate(zip(self.points[:-1], self.points[1:], counts))]

    def index(self, values: np.ndarray) -> np.ndarray:
        """Axis position of each value (-1 where it is not finite)."""
        x = np.asarray(values, np.float64)
        idx = np.full(len(x), -1)
        ok = np.isfinite(x)
        if self.kind == "values":
            idx[ok] = np.searchsorted(self.points, x[ok])
        else:
            idx[ok] = np.clip(np.searchsorted(self.points, x[ok], side="right") - 1, 0, len(self.points) - 2)
        return idx


def plot_against_factor(factor: str, x_by_method: dict[str, np.ndarray], panels: dict[str, dict[str, np.ndarray]],
                        path: Path) -> str:
    """One figure per factor: a panel per metric (``panels`` = {metric title: {method: values}}), each the mean
    metric per exact value or per quantile bin of the factor (:class:`FactorAxis`), one line per method.
    Returns the axis kind (``"values"`` or ``"bins"``)."""
    fig, kind = factor_figure(factor, x_by_method, panels)
    _save(fig, path)
    return kind


def factor_figure(factor: str, x_by_method: dict[str, np.ndarray], panels: dict[str, dict[str, np.ndarray]]):
    """The figure of :func:`plot_against_factor` (not saved) and its axis kind."""
    plt = _plt()
    axis = FactorAxis(max(x_by_method.values(), key=len))  # one value per image (every method sees the same images)
    labels = axis.labels
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    width = max(3.4, 0.55 * len(labels) + 1.2)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, 2.9 * rows), squeeze=False)
    for ax, (title, series) in zip(axes.flat, panels.items()):
        for method, y in series.items():
            idx = axis.index(x_by_method[method])
            y = np.asarray(y, np.float64)
            means = [float(np.mean(y[(idx == b) & np.isfinite(y)])) if np.any((idx == b) & np.isfinite(y)) else np.nan
                     for b in range(len(labels))]
            ax.plot(range(len(labels)), means, marker="o", ms=4, label=short(method))
        ax.set_title(literal(title), fontsize=10)
        _categorical_axis(ax, labels)
        _limit_ticks(ax, "y")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    fig.supxlabel(f"{literal(factor)}: {'quantile bins' if axis.kind == 'bins' else 'exact values'}; n = images", fontsize=9)
    fig.tight_layout()
    return fig, axis.kind


def plot_histograms(data: dict[str, np.ndarray], xlabel: str, path: Path, threshold: float | None = None, bins: int = 30) -> None:
    """Overlaid histograms (e.g. same- vs different-identity distances), at most 5 x ticks."""
    _save(histogram_figure(data, xlabel, threshold, bins), path)


def histogram_figure(data: dict[str, np.ndarray], xlabel: str, threshold: float | None = None, bins: int = 30):
    """The figure of :func:`plot_histograms` (not saved)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.8, 3.0))
    finite = [np.asarray(v, np.float64)[np.isfinite(np.asarray(v, np.float64))] for v in data.values()]
    allv = np.concatenate(finite) if finite else np.array([])
    edges = np.linspace(allv.min(), allv.max(), bins + 1) if len(allv) and allv.min() < allv.max() else bins
    for name, v in zip(data, finite):
        if len(v):
            ax.hist(v, bins=edges, alpha=0.5, label=f"{short(name)} (n={len(v)})")
    if threshold is not None:
        ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:g}")
    ax.set_xlabel(literal(xlabel))
    ax.set_ylabel("count")
    _limit_ticks(ax, "x")
    _limit_ticks(ax, "y")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # outside: never over bars
    return fig


def plot_count_bars(counts: dict[int, int], xlabel: str, ylabel: str, path: Path) -> None:
    """Bars on a numeric x axis (e.g. identities by number of images): integer ticks, at most 10."""
    _save(count_bars_figure(counts, xlabel, ylabel), path)


def count_bars_figure(counts: dict[int, int], xlabel: str, ylabel: str):
    """The figure of :func:`plot_count_bars` (not saved)."""
    from matplotlib.ticker import MaxNLocator

    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.8, 3.0))
    xs = sorted(counts)
    ax.bar(xs, [counts[k] for k in xs], width=0.8)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=10, integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    ax.set_xlabel(literal(xlabel))
    ax.set_ylabel(literal(ylabel))
    ax.grid(axis="y", alpha=0.3)
    return fig
