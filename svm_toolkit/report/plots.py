"""The report's split balance plots, drawn with matplotlib (no pyplot) into PNG bytes.

Three panels, each comparable across splits of any size: the number of samples per split, the
distribution of durations per split (shares of the split, so sizes do not hide shape) and the
share of each label per split (the most common labels; the rest are ``other``).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

import numpy as np

from svm_toolkit.report.collect import SplitRow

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: One colour per split, the same in every panel (train, val, test, then others).
SPLIT_COLOURS: Final = ("#3b6ea8", "#e0932b", "#5a9e4b", "#8c6bb1", "#c9514a", "#7f7f7f")
#: Labels named in the label panel; the rest are summed as ``other``.
TOP_LABELS: Final = 8
DPI: Final = 100


def split_plots(
    sizes: Mapping[str, int], rows: Sequence[SplitRow], *, label_name: str | None
) -> bytes:
    """Draw the split balance panels as one PNG.

    Args:
        sizes: samples per split (the funnel's, in its order).
        rows: one row per split sample: its duration (seconds) and labels.
        label_name: what the labels are (the label panel's title); ``None``: no label panel.

    Returns:
        The PNG's bytes.
    """
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone

    splits = [s for s, n in sizes.items() if n > 0] or list(sizes)
    colours = {s: SPLIT_COLOURS[i % len(SPLIT_COLOURS)] for i, s in enumerate(splits)}
    panels = 3 if label_name is not None else 2
    fig = Figure(figsize=(4.2 * panels, 3.2))
    axes = np.atleast_1d(fig.subplots(1, panels))
    _sizes(axes[0], sizes, colours)
    _durations(axes[1], rows, splits, colours)
    if label_name is not None:
        _labels(axes[2], rows, splits, label_name)
    fig.tight_layout()
    return _png(fig)


def _sizes(ax: Axes, sizes: Mapping[str, int], colours: Mapping[str, str]) -> None:
    names = list(sizes)
    values = [sizes[n] for n in names]
    bars = ax.bar(names, values, color=[colours.get(n, "#999999") for n in names])
    ax.bar_label(bars, labels=[f"{v:,}" for v in values], fontsize=9)
    ax.set_title("samples per split", fontsize=10)
    ax.set_ylim(0, max([1, *values]) * 1.18)
    ax.spines[["top", "right"]].set_visible(False)


def _durations(
    ax: Axes, rows: Sequence[SplitRow], splits: Sequence[str], colours: Mapping[str, str]
) -> None:
    per_split = {s: np.array([r.duration_s for r in rows if r.split == s], float) for s in splits}
    known = np.concatenate([v[np.isfinite(v)] for v in per_split.values()] or [np.zeros(0)])
    ax.set_title("duration per split (share of the split)", fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    if not known.size:
        ax.text(0.5, 0.5, "no durations known", ha="center", va="center", transform=ax.transAxes)
        return
    low, high = float(known.min()), float(known.max())
    if high - low < 0.05:  # one length for all (clips cut to a fixed length): say so
        ax.text(
            0.5,
            0.5,
            f"every sample {low:.1f} s",
            ha="center",
            va="center",
            fontsize=12,
            transform=ax.transAxes,
        )
        ax.set_xticks([])
        ax.set_yticks([])
        return
    bins = [float(b) for b in np.linspace(low, high, 16)]
    for split, values in per_split.items():
        v = values[np.isfinite(values)]
        if v.size:
            ax.hist(
                v,
                bins=bins,
                weights=np.full(v.size, 1 / v.size),
                histtype="step",
                lw=1.8,
                color=colours[split],
                label=f"{split} ({v.size:,})",
            )
    ax.set_xlabel("seconds")
    ax.legend(fontsize=8, frameon=False)


def _labels(ax: Axes, rows: Sequence[SplitRow], splits: Sequence[str], label_name: str) -> None:
    counts = Counter(label for r in rows for label in r.labels)
    top = [name for name, _ in counts.most_common(TOP_LABELS)]
    names = [*top, "other"] if len(counts) > len(top) else top
    cmap = _palette(len(names))
    left = np.zeros(len(splits))
    for i, name in enumerate(names):
        share = np.zeros(len(splits))
        for j, split in enumerate(splits):
            labels = [label for r in rows if r.split == split for label in r.labels]
            if labels:
                hits = sum(1 for x in labels if (x == name) or (name == "other" and x not in top))
                share[j] = hits / len(labels)
        ax.barh(splits, share, left=left, color=cmap[i], label=name, height=0.6)
        left += share
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_title(f"{label_name} per split (share of labels)", fontsize=10)
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.spines[["top", "right"]].set_visible(False)


def _palette(n: int) -> list[str]:
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return [str(_hex(cmap(i % 20))) for i in range(n)]


def _hex(rgba: tuple[float, ...]) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgba[:3])


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


__all__ = ["split_plots"]
