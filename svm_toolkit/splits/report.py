"""The split validation report: findings (errors and warnings), text, JSON and a PNG of plots."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from svm_toolkit.io.atomic import write_bytes_atomic


class Level(StrEnum):
    """How bad a finding is: errors make results wrong, warnings make them suspect."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem, naming the samples involved.

    Attributes:
        check: the check that found it (a key of ``CHECKS``).
        level: error or warning.
        message: what is wrong and, where it helps, how to fix it.
        samples: the sample ids involved (all of them; the text report shows the first few).
        named: the same samples by id, split, and title or URL, e.g.
            ``clip_a (test; example.org/clip_a.mp4)`` (filled in by ``validate_splits``).
    """

    check: str
    level: Level
    message: str
    samples: tuple[str, ...] = ()
    named: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SplitReport:
    """Everything ``svm splits validate`` found, with the numbers behind the plots.

    Attributes:
        dataset: the dataset root.
        source: where the splits came from (``splits.parquet`` or the manifest).
        by_split: samples per split.
        findings: errors first, then warnings.
        distributions: per quantity (``duration_s``, ``height``, ``group_size``), per split, the
            values (for the plots).
        checks: the checks that ran.
    """

    dataset: str
    source: str
    by_split: dict[str, int]
    findings: tuple[Finding, ...]
    distributions: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    checks: tuple[str, ...] = ()

    @property
    def errors(self) -> list[Finding]:
        """The error findings."""
        return [f for f in self.findings if f.level is Level.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        """The warning findings."""
        return [f for f in self.findings if f.level is Level.WARNING]

    def exit_code(self, *, strict: bool = False) -> int:
        """2 with errors; 1 with warnings when ``strict``; else 0."""
        if self.errors:
            return 2
        return 1 if strict and self.warnings else 0

    def describe(self) -> str:
        """One line: ``120 samples (train 96 · val 12 · test 12): 2 errors, 1 warning``."""
        splits = " · ".join(f"{k} {v:,}" for k, v in self.by_split.items())
        errors, warnings = len(self.errors), len(self.warnings)
        verdict = (
            f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
            if self.findings
            else "clean"
        )
        return f"{sum(self.by_split.values()):,} samples ({splits}): {verdict}"

    def render(self, *, shown: int = 5) -> str:
        """The terminal report: the summary line, then each finding with its first samples.

        Samples are shown by their names (:attr:`Finding.named`): id, split, title or URL.
        """
        lines = [f"splits of {self.dataset} (from {self.source}): {self.describe()}"]
        for finding in self.findings:
            lines.append(f"  {finding.level.value:<7} {finding.check}: {finding.message}")
            if finding.samples:
                more = len(finding.samples) - shown
                listed = ", ".join((finding.named or finding.samples)[:shown]) + (
                    f", +{more} more" if more > 0 else ""
                )
                lines.append(f"          samples: {listed}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (every sample of every finding, by id and by name)."""
        out = asdict(self)
        out["findings"] = [{**asdict(f), "level": f.level.value} for f in self.findings]
        out["errors"], out["warnings"] = len(self.errors), len(self.warnings)
        return out

    def write(self, directory: Path) -> list[Path]:
        """Write ``report.json`` and ``report.png`` into ``directory``; return their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "report.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
        return [path, plot_distributions(self.distributions, directory / "report.png")]


def plot_distributions(
    distributions: Mapping[str, Mapping[str, Sequence[float]]], path: Path
) -> Path:
    """One panel per quantity, one histogram per split (as shares, so sizes compare)."""
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone

    names = [
        n
        for n, per_split in distributions.items()
        if any(np.isfinite(np.asarray(v, float)).any() for v in per_split.values())
    ]  # a quantity never measured (height before preprocessing) gets no empty panel
    fig = Figure(figsize=(4.5 * max(1, len(names)), 3.4))
    axes = fig.subplots(1, max(1, len(names)))
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes, names, strict=False):
        values = [np.asarray(v, float) for v in distributions[name].values() if len(v)]
        joined = np.concatenate(values)
        finite = joined[np.isfinite(joined)]
        bins = np.histogram_bin_edges(finite if len(finite) else [0.0, 1.0], bins=20)
        for split, raw in distributions[name].items():
            v = np.asarray(raw, float)
            v = v[np.isfinite(v)]
            if len(v):
                ax.hist(
                    v,
                    bins=bins,
                    weights=np.full(len(v), 1 / len(v)),
                    histtype="step",
                    lw=1.5,
                    label=f"{split} ({len(v):,})",
                )
        ax.set_xlabel(name)
        ax.set_ylabel("share of the split")
        ax.legend(fontsize=8)
    fig.suptitle("distributions per split")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    write_bytes_atomic(path, buffer.getvalue())
    return path
