"""Evaluation output: tables, ``metrics.json`` and the Recall@K plot.

The terminal table puts each direction above its chance level; ``--compare`` lines up several
runs' results.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from svm_toolkit.io.atomic import write_bytes_atomic, write_json

#: direction name -> how tables and plots label it.
ARROWS: Final = {"video_to_music": "video→music", "music_to_video": "music→video"}


def protocol_line(metrics: Mapping[str, Any]) -> str:
    """One sentence stating the protocol of a ``metrics.json``."""
    p = metrics["protocol"]
    positives = (
        "videos sharing the song count as hits (music_id)"
        if p["positives"] == "music_id"
        else "only the own pair counts"
    )
    pools = (
        f"; pools of {p['pool_size']:,} candidates over {p['pool_seeds']} seeds"
        if p.get("pool_size")
        else ""
    )
    return (
        f"{p.get('split', 'test')} split, {p['pairs']:,} pairs, full gallery of "
        f"{p['pairs']:,}{pools}; {positives}; cosine, exact; ties count against the query"
    )


def render_metrics(metrics: Mapping[str, Any]) -> str:
    """The Recall@K table of a ``metrics.json`` dict, each direction above its chance level."""
    ks = metrics["protocol"]["ks"]
    headers = ["direction", "gallery", *(f"R@{k}" for k in ks), "MedR", "MnR", "MRR"]
    rows: list[list[object]] = []
    for name, result in metrics["directions"].items():
        full = result["full"]
        rows.append(
            [
                ARROWS.get(name, name),
                full["gallery"],
                *(full["recall"][str(k)] for k in ks),
                full["median_rank"],
                full["mean_rank"],
                round(100 * full["mrr"], 1),
            ]
        )
        rows.append(
            [
                "  chance",
                "",
                *(full["chance_recall"][str(k)] for k in ks),
                full["chance_median_rank"],
                "",
                "",
            ]
        )
        pools = result.get("pools")
        if pools:
            rows.append(
                [
                    f"  pools of {pools['gallery']:,}",
                    pools["gallery"],
                    *(
                        f"{pools['recall'][str(k)]['mean']:.1f}±{pools['recall'][str(k)]['std']:.1f}"
                        for k in ks
                    ),
                    pools["median_rank"]["mean"],
                    pools["mean_rank"]["mean"],
                    round(100 * pools["mrr"]["mean"], 1),
                ]
            )
    return _table(headers, rows)


def render_comparison(runs: Mapping[str, Mapping[str, Any]], ks: Sequence[int] = (1, 5, 10)) -> str:
    """Several runs' full-gallery results side by side, one row per run and direction."""
    headers = ["run", "direction", "gallery", *(f"R@{k}" for k in ks), "MedR", "MRR"]
    rows: list[list[object]] = []
    for run, metrics in runs.items():
        for name, result in metrics["directions"].items():
            full = result["full"]
            rows.append(
                [
                    run,
                    ARROWS.get(name, name),
                    full["gallery"],
                    *(full["recall"].get(str(k), float("nan")) for k in ks),
                    full["median_rank"],
                    round(100 * full["mrr"], 1),
                ]
            )
    return _table(headers, rows, text_columns=2)


def write_results(metrics: Mapping[str, Any], directory: Path, *, title: str) -> tuple[Path, Path]:
    """Write ``metrics.json`` and ``recall.png`` into ``directory``."""
    json_path = directory / "metrics.json"
    write_json(json_path, metrics)
    png = directory / "recall.png"
    plot_recall(metrics, png, title=title)
    return json_path, png


def plot_recall(metrics: Mapping[str, Any], path: Path, *, title: str) -> Path:
    """Recall@K against K (log scale) for both directions, with the chance curve dashed."""
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone
    from matplotlib.ticker import ScalarFormatter

    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    for name, result in metrics["directions"].items():
        curve = result["curve"]
        ax.plot(curve["k"], curve["recall"], marker=".", label=ARROWS.get(name, name))
    n = metrics["protocol"]["pairs"]
    ks = [k for k in metrics["directions"][next(iter(metrics["directions"]))]["curve"]["k"]]
    ax.plot(ks, [100 * min(k / n, 1.0) for k in ks], "k--", lw=1, label="chance (one positive)")
    ax.set(xscale="log", xlabel="K", ylabel="Recall@K (%)", ylim=(0, 100), title=title)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.grid(alpha=0.3)
    ax.legend()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], text_columns: int = 1) -> str:
    """Align a table: the first ``text_columns`` columns left, the numbers right."""
    cells = [list(headers), *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < text_columns else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
