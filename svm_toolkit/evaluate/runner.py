"""``svm evaluate``: score a run (or raw features) and write ``metrics.json`` and ``recall.png``."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from svm_toolkit.device import resolve_device
from svm_toolkit.evaluate.protocol import EvalConfig, PairedEmbeddings, evaluate_pairs
from svm_toolkit.evaluate.report import ARROWS, write_results
from svm_toolkit.evaluate.sources import file_embeddings, raw_embeddings, run_embeddings
from svm_toolkit.schema import Split

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One evaluation: its ``metrics.json`` content and the files written.

    An output folder's results are never replaced silently: results equal to those already in
    ``metrics.json`` leave both files as they are (``unchanged``), and different ones replace
    them with ``replaced`` saying what was there.

    Attributes:
        metrics: what ``metrics.json`` holds (protocol, then per direction full-gallery metrics,
            the Recall@K curve and the pool statistics).
        written: ``metrics.json`` and ``recall.png`` (the files holding these results).
        unchanged: the folder already held exactly these results; nothing was written.
        replaced: the one-line summary of the results this evaluation overwrote (``None``:
            there were none, or they were the same).
    """

    metrics: Mapping[str, Any]
    written: tuple[Path, ...]
    unchanged: bool = False
    replaced: str | None = None

    def describe(self) -> str:
        """One line: R@1 and R@10 per direction next to chance, and the gallery size."""
        parts = []
        for name, result in self.metrics["directions"].items():
            full = result["full"]
            recall, chance = full["recall"], full["chance_recall"]
            at = [k for k in ("1", "10") if k in recall]
            scores = " · ".join(f"R@{k} {recall[k]:.1f}% (chance {chance[k]:.1f}%)" for k in at)
            parts.append(f"{ARROWS.get(name, name)} {scores}")
        pairs = self.metrics["protocol"]["pairs"]
        return f"{self.metrics['protocol']['split']} gallery {pairs}: " + "; ".join(parts)


def evaluate_run(
    run: Path,
    config: EvalConfig = EvalConfig(),
    *,
    split: str = Split.TEST,
    dataset: Path | None = None,
    out: Path | None = None,
) -> Evaluation:
    """Evaluate a run's best model on one split of its dataset.

    Args:
        run: the run folder.
        config: the protocol.
        split: the split whose pairs are ranked.
        dataset: another dataset than the one the run records.
        out: where the results go (``None``: the run folder).
    """
    device = resolve_device(config.device)
    pairs = run_embeddings(run, split=split, dataset=dataset, device=device)
    return _evaluate(pairs, config, out or run, split=split, source=f"run {run}")


def evaluate_features(
    dataset: Path,
    out: Path,
    config: EvalConfig = EvalConfig(),
    *,
    audio: str,
    video: str,
    split: str = Split.TEST,
) -> Evaluation:
    """Score two extractors' raw embeddings against each other (zero-shot) into ``out``."""
    pairs = raw_embeddings(dataset, audio=audio, video=video, split=split)
    return _evaluate(pairs, config, out, split=split, source=f"zero-shot {video} vs {audio}")


def evaluate_file(path: Path, out: Path, config: EvalConfig = EvalConfig()) -> Evaluation:
    """Score a file of any model's embeddings (see ``sources.file_embeddings``) into ``out``."""
    return _evaluate(file_embeddings(path), config, out, split="given", source=f"file {path}")


def _evaluate(
    pairs: PairedEmbeddings, config: EvalConfig, out: Path, *, split: str, source: str
) -> Evaluation:
    result = evaluate_pairs(pairs, config)
    metrics = result.to_dict()
    protocol = {"split": str(split), "source": source, **result.protocol}
    metrics["protocol"] = protocol
    out.mkdir(parents=True, exist_ok=True)
    metrics = json.loads(json.dumps(metrics))  # as metrics.json will hold it
    path, plot = out / "metrics.json", out / "recall.png"
    before = _previous(path)
    if before is not None and _same(before, metrics) and plot.exists():
        logger.info("evaluate: %s holds these results already; left as it is", path)
        return Evaluation(metrics, (path, plot), unchanged=True)
    written = write_results(
        metrics, out, title=f"{out.name}: {split} split, N = {len(pairs.sample_ids)}"
    )
    replaced = None if before is None or _same(before, metrics) else _summary(before)
    if replaced is not None:
        logger.warning("evaluate: overwrote %s (was %s)", path, replaced)
    logger.info("evaluate: %s", ", ".join(str(p) for p in written))
    return Evaluation(metrics, written, replaced=replaced)


def _previous(path: Path) -> Any:
    """The results already in ``path`` (``None``: none; unreadable ones count as results)."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {"unreadable": True}


def _same(before: Any, now: Mapping[str, Any]) -> bool:
    return json.dumps(before, sort_keys=True) == json.dumps(now, sort_keys=True)


def _summary(metrics: Any) -> str:
    """What replaced results said, in the one line :meth:`Evaluation.describe` gives."""
    try:
        return Evaluation(metrics, ()).describe()
    except (KeyError, TypeError, AttributeError):
        return "results of another form"
