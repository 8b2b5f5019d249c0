"""Render the report's facts as one self-contained HTML page (CSS inline, images as data URIs).

The page loads nothing: no script, font, style sheet or image from anywhere else (its Content
Security Policy forbids it too), so it opens offline and can be mailed as one file. Every value
read from the dataset is escaped, and links to samples are kept only for ``http(s)`` URLs.
Counts carry ``data-*`` attributes (``data-stage`` and ``data-status`` on the funnel's counts,
``data-split`` on its split sizes) so that tests and scripts can read what the page shows.
"""

from __future__ import annotations

import base64
import datetime
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from svm_toolkit import __version__
from svm_toolkit.manifest.funnel import StageCounts
from svm_toolkit.report.collect import Facts, Group, Shown
from svm_toolkit.schema import Status

Pictures = Mapping[tuple[str, bool], bytes | None]
#: What the page may load: its own inline styles and data: images, nothing else (no script, no
#: request to any host), so a page opened from a mail or a share cannot reach out.
CSP: Final = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_NOT_PREPROCESSED: Final = (
    "<p>Preprocess has not run yet: <code>svm preprocess DATASET</code> filters and crops.</p>"
)
#: Missing samples listed by name in the compare section (the rest are counted).
MISSING_ROWS: Final = 20

_CSS: Final = """
:root{--ok:#2f8f4e;--filtered:#d9a21b;--fail:#c94a3f;--none:#9aa0a6;--ink:#1f2328;
--muted:#59636e;--line:#d8dee4;--bg:#f6f8fa;--card:#fff;--accent:#3b6ea8}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--ink);background:var(--bg)}
header{background:#24292f;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px;font-weight:600}
header p{margin:4px 0 0;color:#c9d1d9;font-size:13px}
nav{padding:8px 28px;background:#fff;border-bottom:1px solid var(--line);position:sticky;top:0}
nav a{margin-right:16px;color:var(--accent);text-decoration:none;font-weight:500}
main{padding:8px 28px 40px;max-width:1280px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;
padding:16px 20px;margin:16px 0}
h2{margin:0 0 4px;font-size:18px}
h3{margin:16px 0 6px;font-size:15px}
p.lead{margin:0 0 12px;color:var(--muted)}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:8px 0 16px}
.card{border:1px solid var(--line);border-radius:8px;padding:8px 14px;min-width:130px}
.card b{display:block;font-size:22px}
.card span{color:var(--muted);font-size:12px}
table{border-collapse:collapse;width:100%}
td,th{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:middle}
th{font-weight:600;color:var(--muted);font-size:12px}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.bar{display:flex;height:16px;border-radius:3px;overflow:hidden;background:#eef1f4;min-width:4px}
.bar i{display:block;height:100%}
.ok{background:var(--ok)}.filtered{background:var(--filtered)}.fail{background:var(--fail)}
.none{background:var(--none)}
.chip{display:inline-block;margin:2px 6px 2px 0;padding:1px 8px;border-radius:10px;
font-size:12px;border:1px solid var(--line);white-space:nowrap}
.chip::before{content:"";display:inline-block;width:8px;height:8px;border-radius:50%;
margin-right:5px;background:var(--c)}
.chip.ok{--c:var(--ok);background:none}.chip.filtered{--c:var(--filtered);background:none}
.chip.fail{--c:var(--fail);background:none}.chip.none{--c:var(--none);background:none}
.grid{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;width:152px;border:1px solid var(--line);border-radius:6px;padding:5px;
background:#fff}
figure .pic{width:140px;height:140px;display:flex;align-items:center;justify-content:center;
background:#111;border-radius:3px;overflow:hidden}
figure img{display:block;max-width:140px;max-height:140px}
figure .nopic{background:#eef1f4;color:var(--muted);font-size:12px}
figcaption{font-size:11.5px;color:var(--muted);margin-top:4px;word-wrap:break-word}
figcaption b{color:var(--ink);font-weight:600}
.more{color:var(--muted);font-style:italic;margin:6px 0 0}
.groups{display:flex;flex-wrap:wrap;gap:12px}
.group{border:1px solid var(--line);border-radius:8px;padding:4px 10px 10px;background:#fafbfc}
.group h3{margin:6px 0}
.group ul{margin:0 0 8px;padding-left:18px;color:var(--muted);font-size:12.5px;max-width:640px}
.plot{max-width:100%;height:auto}
.big{font-size:34px;font-weight:700}
.errors li{color:var(--fail)}.warnings li{color:#8a6400}
footer{color:var(--muted);font-size:12px;padding:0 28px 24px}
"""


def render_page(
    facts: Facts,
    pictures: Pictures,
    plot_png: bytes | None,
    comparison: Mapping[str, Any] | None = None,
    changed: Sequence[Shown] = (),
) -> str:
    """The whole page as one HTML string.

    Args:
        facts: what :func:`svm_toolkit.report.collect.collect` read.
        pictures: ``(sample_id, has a box) -> JPEG bytes`` (``None``: no picture).
        plot_png: the split balance plots (``None`` without splits).
        comparison: ``Comparison.to_json()`` of ``svm compare`` (``None``: no compare section).
        changed: the samples whose media changed since the release, pictured from this
            dataset's files.
    """
    sections = [
        ("funnel", "Funnel", _funnel(facts)),
        ("filtered", "Filtered", _filtered(facts, pictures)),
        ("crops", "Crops", _crops(facts, pictures)),
        ("groups", "Linked samples", _groups(facts, pictures)),
        ("splits", "Splits", _splits(facts, plot_png)),
    ]
    if comparison is not None:
        sections.append(("compare", "Compare", _compare(comparison, pictures, changed)))
    nav = "".join(f'<a href="#{key}">{title}</a>' for key, title, _ in sections)
    body = "".join(
        f'<section id="{key}"><h2>{title}</h2>{content}</section>'
        for key, title, content in sections
    )
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    name = _e(facts.dataset.name or str(facts.dataset))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>svm report: {name}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{name}</h1><p>{_e(str(facts.dataset))} · {facts.funnel.samples:,} samples"
        f" · svm report {_e(__version__)} · {now}</p></header>"
        f"<nav>{nav}</nav><main>{body}</main>"
        "<footer>One file, nothing loaded from elsewhere: the counts are those of "
        f"<code>svm manifest info {_e(str(facts.dataset))} --json</code>.</footer>"
        "</body></html>\n"
    )


# -- funnel -------------------------------------------------------------------------------------


def _funnel(facts: Facts) -> str:
    funnel = facts.funnel
    total = max(1, funnel.samples)
    cards = [("samples in the manifest", funnel.samples)]
    cards += [(f"{s.name} ok", s.ok) for s in funnel.stages[1:]]
    if funnel.splits is not None:
        cards.append(("in splits", funnel.splits.samples))
    rows = "".join(_stage_row(stage, total) for stage in funnel.stages)
    if funnel.splits is not None:
        s = funnel.splits
        chips = "".join(
            f'<span class="chip ok" data-split="{_e(k)}"><b>{v:,}</b> {_e(k)}</span>'
            for k, v in s.sizes.items()
        )
        rows += (
            f'<tr data-stage="splits"><td>splits</td><td class="n">{_of(s.samples, s.of)}</td>'
            f"<td>{_bar([('ok', s.samples)], s.samples / total)}</td>"
            f"<td>{chips} <span class=chip>{s.groups:,} groups of 2+ ({_e(s.source)})</span></td>"
            "</tr>"
        )
    return (
        '<p class="lead">How many samples each stage kept, in pipeline order; each stage counts '
        "its samples by status, of the ok samples of the stage before.</p>"
        + '<div class="cards">'
        + "".join(f"<div class=card><b>{n:,}</b><span>{_e(t)}</span></div>" for t, n in cards)
        + "</div><table><tr><th>stage</th><th>samples</th><th style='width:36%'>kept</th>"
        "<th>by status</th></tr>" + rows + "</table>"
    )


def _stage_row(stage: StageCounts, total: int) -> str:
    name = stage.name if stage.stage != "extract" else f"features: {stage.name}"
    chips = "".join(
        f'<span class="chip {_kind(k)}" data-stage="{_e(stage.name)}" data-status="{_e(k)}">'
        f"<b>{v:,}</b> {_e(k)}</span>"
        for k, v in stage.by_status.items()
    )
    parts = [(_kind(k), v) for k, v in stage.by_status.items()]
    extra = ""
    if stage.bytes is not None:
        extra = f" <span class=chip>{stage.bytes / 1e6:,.1f} MB</span>"
    if stage.feature_rows is not None:
        extra += f" <span class=chip>{stage.feature_rows:,} feature rows</span>"
    return (
        f'<tr data-stage="{_e(stage.name)}" data-samples="{stage.samples}">'
        f'<td>{_e(name)}</td><td class="n">{_of(stage.samples, stage.of)}</td>'
        f"<td>{_bar(parts, stage.samples / total)}</td><td>{chips}{extra}</td></tr>"
    )


def _bar(parts: Sequence[tuple[str, int]], share: float) -> str:
    """A stacked bar ``share`` of the column wide, one segment per status class."""
    whole = max(1, sum(n for _, n in parts))
    segments = "".join(
        f'<i class="{cls}" style="width:{100 * n / whole:.2f}%" title="{n:,}"></i>'
        for cls, n in parts
        if n
    )
    return f'<div class="bar" style="width:{max(0.0, min(1.0, share)) * 100:.1f}%">{segments}</div>'


def _kind(status: str) -> str:
    if status == Status.OK.value:
        return "ok"
    if status.startswith(Status.FILTERED.value):
        return "filtered"
    return "none" if status in ("(none)", Status.UNRESOLVED.value) else "fail"


def _of(samples: int, of: int | None) -> str:
    return f"{samples:,}" if of is None else f"{samples:,} of {of:,}"


# -- pictures -----------------------------------------------------------------------------------


def _figure(sample: Shown, pictures: Pictures) -> str:
    data = pictures.get((sample.sample_id, sample.box is not None))
    if data:
        encoded = base64.b64encode(data).decode("ascii")
        image = f'<img src="data:image/jpeg;base64,{encoded}" alt="{_e(sample.sample_id)}">'
        picture = f'<div class="pic">{image}</div>'
    else:
        picture = '<div class="pic nopic">no picture</div>'
    name = f"<b>{_e(sample.sample_id)}</b>"
    if sample.url and sample.url.startswith(("http://", "https://")):
        name = f'<a href="{_e(sample.url)}" title="{_e(sample.url)}">{name}</a>'
    return (
        f'<figure data-sample="{_e(sample.sample_id)}">{picture}'
        f"<figcaption>{name}<br>{_e(sample.caption)}</figcaption></figure>"
    )


def _grid(samples: Iterable[Shown], pictures: Pictures, total: int, shown: int) -> str:
    more = f'<p class="more">and {total - shown:,} more</p>' if total > shown else ""
    return '<div class="grid">' + "".join(_figure(s, pictures) for s in samples) + "</div>" + more


def _filtered(facts: Facts, pictures: Pictures) -> str:
    out = [
        '<p class="lead">Samples preprocess dropped, by filter, one frame from the middle of '
        "each: a false positive shows at a glance (re-run them with "
        "<code>svm preprocess DATASET --retry filtered:REASON</code> after changing the filter)."
        "</p>"
    ]
    if facts.funnel.stage("preprocess") is None:
        out.append(_NOT_PREPROCESSED)
    elif not facts.filtered_total:
        out.append("<p>No sample was filtered by preprocess.</p>")
    for reason, samples in facts.filtered.items():
        total = facts.filtered_total[reason]
        out.append(f'<h3 data-reason="{_e(reason)}">{_e(reason)} · {total:,}</h3>')
        out.append(_grid(samples, pictures, total, len(samples)))
    if facts.dropped_early:
        chips = "".join(
            f'<span class="chip filtered"><b>{n:,}</b> {_e(k)}</span>'
            for k, n in facts.dropped_early.items()
        )
        out.append(f"<h3>dropped before download (no media to show)</h3><p>{chips}</p>")
    return "".join(out)


def _crops(facts: Facts, pictures: Pictures) -> str:
    lead = (
        '<p class="lead">Samples whose crop box (black borders removed) is not the whole frame; '
        "the box is drawn in red on a frame of the downloaded file.</p>"
    )
    if facts.funnel.stage("preprocess") is None:
        return lead + _NOT_PREPROCESSED
    if not facts.crops:
        return lead + "<p>Every preprocessed sample keeps its whole frame.</p>"
    return lead + _grid(facts.crops, pictures, facts.crops_total, len(facts.crops))


def _groups(facts: Facts, pictures: Pictures) -> str:
    if facts.groups_source is None:
        return "<p>No splits yet: <code>svm splits make DATASET</code> finds the links.</p>"
    if facts.groups_source == "splits.parquet" and facts.links_stale:
        lead = (
            "Groups of samples <code>svm splits make</code> kept inside one split, from "
            "<code>splits.parquet</code>'s groups: <code>splits_links.parquet</code> was not "
            "written with this <code>splits.parquet</code> (a run stopped between the two, or an "
            "older toolkit's). Run <code>svm splits make DATASET</code> again to see the links."
        )
    elif facts.groups_source == "splits.parquet":
        lead = (
            "Groups of samples <code>svm splits make</code> kept inside one split "
            "(from <code>splits.parquet</code>'s groups; the links themselves are in "
            "<code>splits_links.parquet</code> when a newer <code>svm splits make</code> wrote it)."
        )
    else:
        lead = (
            "Samples linked by <code>svm splits make</code> (near-duplicate pictures and sounds "
            "first, then shared values such as a song), which it kept inside one split."
        )
    out = [f'<p class="lead">{lead}</p>']
    if not facts.groups:
        out.append("<p>No group of two or more samples.</p>")
    out.append(
        '<div class="groups">' + "".join(_group(g, pictures) for g in facts.groups) + "</div>"
    )
    if facts.groups_total > len(facts.groups):
        out.append(
            f'<p class="more">and {facts.groups_total - len(facts.groups):,} more groups</p>'
        )
    return "".join(out)


def _group(group: Group, pictures: Pictures) -> str:
    kinds = ", ".join(group.kinds)
    title = f"{group.size} samples" + (f" · {_e(kinds)}" if kinds else "")
    links = "".join(f"<li>{_e(line)}</li>" for line in group.links)
    more = len(group.members)
    return (
        f'<div class="group"><h3>{title}</h3>'
        + (f"<ul>{links}</ul>" if links else "")
        + _grid(group.members, pictures, group.size, more)
        + "</div>"
    )


# -- splits and compare -------------------------------------------------------------------------


def _splits(facts: Facts, plot_png: bytes | None) -> str:
    splits = facts.funnel.splits
    if splits is None:
        return "<p>No splits yet: <code>svm splits make DATASET</code> makes them.</p>"
    image = ""
    if plot_png:
        encoded = base64.b64encode(plot_png).decode("ascii")
        image = f'<img class="plot" src="data:image/png;base64,{encoded}" alt="split balance">'
    return (
        f'<p class="lead">{splits.samples:,} samples in splits ({_e(splits.source)}): '
        + " · ".join(f"{_e(k)} {v:,}" for k, v in splits.sizes.items())
        + f"; {splits.groups:,} groups of two or more kept together.</p>{image}"
    )


def _compare(c: Mapping[str, Any], pictures: Pictures, changed: Sequence[Shown]) -> str:
    """The ``svm compare`` section from ``Comparison.to_json()`` (keys read defensively)."""
    samples, survived = int(c.get("samples") or 0), int(c.get("survived") or 0)
    availability = float(c.get("availability") or 0.0)
    out = [
        f'<p class="lead">Release <code>{_e(str(c.get("release", "")))}</code> against this '
        f"dataset.</p>"
        f'<div class="cards"><div class="card"><b class="big" data-compare="availability">'
        f"{availability:.1%}</b><span>available</span></div>"
        f'<div class="card"><b data-compare="survived">{survived:,}</b>'
        f"<span>of {samples:,} released samples survived</span></div>"
        f'<div class="card"><b>{int(c.get("exit_code") or 0)}</b><span>exit code</span></div>'
        "</div>"
    ]
    by_split = c.get("by_split") or {}
    if by_split:
        rows = "".join(
            f'<tr><td>{_e(str(k))}</td><td class="n">{int(v.get("survived", 0)):,} of '
            f"{int(v.get('released', 0)):,}</td><td>"
            + _bar(
                [
                    ("ok", int(v.get("survived", 0))),
                    ("fail", int(v.get("released", 0)) - int(v.get("survived", 0))),
                ],
                1.0,
            )
            + "</td></tr>"
            for k, v in by_split.items()
        )
        out.append(
            "<h3>per split</h3><table style='width:60%'><tr><th>split</th><th>survived</th>"
            f"<th></th></tr>{rows}</table>"
        )
    missing = c.get("missing_by_status") or {}
    if missing:
        chips = "".join(
            f'<span class="chip {_kind(str(k))}" data-missing="{_e(str(k))}"><b>{int(n):,}</b> '
            f"{_e(str(k))}</span>"
            for k, n in missing.items()
        )
        out.append(f"<h3>missing, by status</h3><p>{chips}</p>")
    out.append(
        _table(
            "media changed since the release",
            ["sample", "title", "what", "detail"],
            [
                [r.get("sample_id"), r.get("title"), r.get("what"), r.get("detail")]
                for r in c.get("changed") or []
            ],
            empty="No surviving sample's media changed.",
        )
    )
    if changed:
        out.append(_grid(changed, pictures, len(changed), len(changed)))
    missing_rows = c.get("missing") or []
    out.append(
        _table(
            "missing samples",
            ["sample", "split", "status", "url", "detail"],
            [
                [r.get("sample_id"), r.get("split"), r.get("status"), r.get("url"), r.get("detail")]
                for r in missing_rows[:MISSING_ROWS]
            ],
            empty="Every released sample survived.",
        )
    )
    if len(missing_rows) > MISSING_ROWS:
        out.append(f'<p class="more">and {len(missing_rows) - MISSING_ROWS:,} more</p>')
    features = c.get("features") or {}
    out.append(
        _table(
            "feature agreement",
            ["extractor", "compared", "median cosine", "matching", "threshold"],
            [
                [
                    name,
                    f.get("compared"),
                    f.get("median_cosine"),
                    f.get("matching"),
                    f.get("threshold"),
                ]
                for name, f in features.items()
            ],
            empty="No extractor on both sides.",
        )
    )
    check = c.get("splits_check") or {}
    for level in ("errors", "warnings"):
        items = check.get(level) or []
        if items:
            lines = "".join(f"<li>{_e(str(x))}</li>" for x in items)
            out.append(f'<h3>split check {level}</h3><ul class="{level}">{lines}</ul>')
    return "".join(out)


def _table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], *, empty: str) -> str:
    if not rows:
        return f"<h3>{_e(title)}</h3><p>{_e(empty)}</p>"
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(_cell(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<h3>{_e(title)}</h3><table><tr>{head}</tr>{body}</table>"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _e(text: str) -> str:
    return html.escape(text, quote=True)


__all__ = ["render_page"]
