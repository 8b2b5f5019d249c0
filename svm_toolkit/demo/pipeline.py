"""``svm demo``: every stage that exists, offline, on a generated corpus served on loopback.

Layout of the demo folder::

    DIR/corpus/demo000.mp4 …   the generated music videos (served over HTTP on 127.0.0.1)
    DIR/urls.csv               the URL list a scraper would have produced (svm10k columns)
    DIR/dataset/               the dataset root every stage reads and adds to
    DIR/yt8m/                  YouTube-8M branch: vocabulary.csv, frame/*.tfrecord, dataset/

Re-running reuses what is there (generated clips, finished stages) and finishes the rest.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow.parquet as pq

from svm_toolkit.card import refresh_card
from svm_toolkit.classify import RETRYABLE
from svm_toolkit.demo.corpus import Clip, CorpusConfig, generate_corpus, render_replacement
from svm_toolkit.demo.yt8m import run_yt8m_demo
from svm_toolkit.download import DownloadConfig, run_download
from svm_toolkit.evaluate.protocol import EvalConfig
from svm_toolkit.evaluate.runner import Evaluation, evaluate_run
from svm_toolkit.extract.config import ExtractConfig
from svm_toolkit.extract.registry import OFFLINE_DEFAULTS
from svm_toolkit.extract.runner import run_extract
from svm_toolkit.manifest import MANIFEST_PRESETS, build_manifest, dataset_info
from svm_toolkit.manifest.info import DatasetInfo
from svm_toolkit.preprocess.config import PREPROCESS_PRESETS
from svm_toolkit.preprocess.runner import run_preprocess
from svm_toolkit.release.compare import Comparison, compare_release
from svm_toolkit.release.format import SAMPLES
from svm_toolkit.release.rebuild import RebuildConfig, rebuild_release
from svm_toolkit.release.write import write_release
from svm_toolkit.report.build import write_report
from svm_toolkit.schema import COL, Split
from svm_toolkit.splits import SplitConfig, ValidateConfig, make_splits, validate_splits
from svm_toolkit.testing.server import LoopbackServer, Route
from svm_toolkit.train.config import TRAIN_PRESETS, ModelConfig, TrainConfig
from svm_toolkit.train.data import load_pairs
from svm_toolkit.train.trainer import train

logger = logging.getLogger(__name__)

URL_COLUMNS: Final = ("id", "url", "likes", "theme", "author", "duration", "music_id")

#: The demo's splits: larger validation and test shares than the default, so that validation
#: has pairs to rank (its MRR picks the best epoch) and the test gallery holds 40 pairs or more
#: at the default 200 clips (about 170 usable after the filters).
DEMO_RATIOS: Final = (0.55, 0.15, 0.3)
#: The K of the demo's Recall@K; only those below the test gallery's size are reported (at
#: K >= the gallery every model scores 100 %).
DEMO_KS: Final = (1, 5, 10, 25, 50)
#: The run the demo trains: TIVM (transformer, InfoNCE) on the offline features, sized for a
#: corpus of two hundred 8-second clips on 2 cores.
DEMO_RUN: Final = "tivm-demo"
#: The extractors the demo's rebuild runs: the music descriptors alone take a few seconds, where
#: the frames' CNN would add minutes on 2 cores; one extractor shows the feature agreement.
REBUILD_EXTRACTORS: Final = ("vmnet_music",)
#: Every n-th released sample (by id) is gone when the demo rebuilds its release (404).
GONE_EVERY: Final = 10


@dataclass(frozen=True, slots=True)
class StageReport:
    """One line of the demo's summary."""

    stage: str
    summary: str
    seconds: float


@dataclass(frozen=True, slots=True)
class DemoReport:
    """Everything the demo did."""

    directory: Path
    dataset: Path
    stages: tuple[StageReport, ...]
    info: DatasetInfo
    evaluation: Evaluation | None = None
    comparison: Comparison | None = None
    planted: Planted | None = None


@dataclass(frozen=True, slots=True)
class Planted:
    """What the demo changed on "the web" before rebuilding its release.

    Attributes:
        web: the folder the loopback server answers from during the rebuild.
        missing: released samples whose URL answers 404 (every :data:`GONE_EVERY`-th by id).
        replaced: the released sample whose URL serves another clip (in no corpus).
    """

    web: Path
    missing: tuple[str, ...]
    replaced: str | None


def run_demo(
    directory: Path,
    corpus: CorpusConfig = CorpusConfig(),
    *,
    on_clip: Callable[[Clip], None] | None = None,
    on_stage: Callable[[StageReport], None] | None = None,
) -> DemoReport:
    """Generate the corpus, serve it on loopback, and run every stage on it.

    Args:
        directory: the demo folder (created if missing).
        corpus: corpus size and format.
        on_clip: called as each clip is ready (progress).
        on_stage: called with each stage's summary line as soon as the stage ends.
    """
    directory.mkdir(parents=True, exist_ok=True)
    dataset = directory / "dataset"
    stages: list[StageReport] = []

    def done(stage: str, summary: str, started: float) -> None:
        line = StageReport(stage, summary, time.perf_counter() - started)
        stages.append(line)
        logger.info("%s: %s (%.1f s)", stage, summary, line.seconds)
        if on_stage is not None:
            on_stage(line)

    started = time.perf_counter()
    clips = generate_corpus(directory / "corpus", corpus, on_clip=on_clip)
    w, h = corpus.size
    letterboxed = sum(c.letterboxed for c in clips)
    songs = len({c.song.song_id for c in clips})
    done(
        "corpus",
        f"{len(clips)} clips of {corpus.seconds:g} s at {w}x{h}, {corpus.fps} fps; "
        f"{songs} songs, {letterboxed} letterboxed, {sum(c.speech for c in clips)} vlogs "
        "with a voice-over",
        started,
    )

    # One server for the whole demo: the rebuild reaches the released URLs (same port) while
    # it serves "the web later" (a share of the videos gone, one replaced).
    with LoopbackServer(directory / "corpus") as server:
        started = time.perf_counter()
        urls = write_url_list(directory / "urls.csv", clips, server, seconds=corpus.seconds)
        config = dataclasses.replace(MANIFEST_PRESETS["svm10k"], id_column="id")
        summary = build_manifest([urls], dataset, config, overwrite=True)
        note = " (unchanged)" if summary.unchanged else ""
        done("manifest", summary.describe() + note, started)

        started = time.perf_counter()
        retry = tuple(s.value for s in RETRYABLE)  # a re-run recovers what a dead server failed
        fetched = run_download(  # the corpus is served on 127.0.0.1
            dataset, DownloadConfig(retry=retry, backoff_s=0.2, allow_private_hosts=True)
        )
        done("download", fetched.describe(), started)

        started = time.perf_counter()
        preprocessed = run_preprocess(dataset, PREPROCESS_PRESETS["svm10k"])
        done("preprocess", preprocessed.describe(), started)

        started = time.perf_counter()
        # fp32: the demo's Recall@K is the same on CPUs with and without bf16 (``auto`` differs).
        extract = ExtractConfig(extractors=OFFLINE_DEFAULTS, device="cpu", precision="fp32")
        extracted = run_extract(dataset, extract)
        done("extract", extracted.describe(), started)

        started = time.perf_counter()
        made = make_splits(dataset, SplitConfig(ratios=DEMO_RATIOS), overwrite=True)
        done("splits", made.describe(), started)

        started = time.perf_counter()
        report = validate_splits(dataset, ValidateConfig(features=OFFLINE_DEFAULTS))
        report.write(dataset / "splits_report")
        done("validate", report.describe(), started)

        started = time.perf_counter()
        run = dataset / "runs" / DEMO_RUN
        sizes = _split_sizes(dataset)
        if sizes[Split.TRAIN] >= 2:
            trained = train(dataset, demo_train_config(corpus.seconds), run)
            done("train", trained.describe(), started)
        else:
            done("train", _skipped(Split.TRAIN, sizes), started)

        started = time.perf_counter()
        evaluation = None
        if sizes[Split.TRAIN] >= 2 and sizes[Split.TEST] >= 2:
            evaluation = evaluate_run(run, EvalConfig(ks=demo_ks(sizes[Split.TEST])))
            done("evaluate", evaluation.describe(), started)
        else:
            done("evaluate", _skipped(Split.TEST, sizes), started)

        started = time.perf_counter()
        yt8m = run_yt8m_demo(directory / "yt8m")
        features = ", ".join(f"{name} {rows}" for name, rows in yt8m.features.items())
        done("yt8m", f"{yt8m.describe()}; features: {features}", started)

        started = time.perf_counter()
        released = write_release(dataset, directory / "release", overwrite=True)
        done("release", released.describe(), started)

        started = time.perf_counter()
        planted = plant_failures(directory, clips, released.path, corpus)
        server.root = planted.web.resolve()  # the same URLs now answer from "the web later"
        rebuilt = rebuild_release(
            released.path,
            directory / "rebuilt",
            RebuildConfig(
                extractors=REBUILD_EXTRACTORS,
                download=DownloadConfig(backoff_s=0.2, allow_private_hosts=True),
                device="cpu",
            ),
        )
        steps = "; ".join(f"{s.step} {s.summary.split(';')[0]}" for s in rebuilt.steps)
        done("rebuild", steps, started)

    started = time.perf_counter()
    comparison = compare_release(released.path, rebuilt.dataset)
    comparison.write(directory / "rebuilt" / "compare")
    done("compare", comparison.describe(), started)

    started = time.perf_counter()
    pages = (write_report(dataset), write_report(rebuilt.dataset, release=released.path))
    done("report", "; ".join(page.describe() for page in pages), started)

    refresh_card(dataset)  # DIR/dataset/README.md: configs for load_dataset and a datasheet
    return DemoReport(
        directory,
        dataset,
        tuple(stages),
        dataset_info(dataset),
        evaluation,
        comparison=comparison,
        planted=planted,
    )


def plant_failures(
    directory: Path, clips: list[Clip], release: Path, corpus: CorpusConfig
) -> Planted:
    """Write ``DIR/later/``: the corpus as the web serves it years later.

    Every :data:`GONE_EVERY`-th released sample (sorted by id) is gone (404) and the one in
    the middle of the rest is replaced by a clip of another song. The other files are hard
    links to the corpus (copies where links are refused).
    """
    table = pq.read_table(release / SAMPLES, columns=[COL.sample_id])
    ids = sorted(str(i) for i in table.column(COL.sample_id).to_pylist())
    missing = tuple(ids[::GONE_EVERY])
    rest = [i for i in ids if i not in missing]
    replaced = rest[len(rest) // 2] if rest else None
    web = directory / "later"
    if web.exists():
        shutil.rmtree(web)
    web.mkdir(parents=True)
    for clip in clips:
        target = web / clip.path.name
        if clip.clip_id in missing:
            continue
        source = clip.path
        if clip.clip_id == replaced:
            source = render_replacement(directory / "replacement.mp4", corpus).path
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)
    return Planted(web=web, missing=missing, replaced=replaced)


def demo_train_config(seconds: float) -> TrainConfig:
    """The demo's run: ``tivm`` (transformer, InfoNCE) on the offline features.

    ``efficientnet_lite0`` frames and ``vmnet_music`` descriptors. A narrow model (width 64,
    dropout 0.2) with long patience: a demo corpus trains on 50 to 100 pairs, where wider
    models overfit. Validation MRR picks the best epoch. On the default corpus (200 clips: 93
    train, 26 val, 51 test pairs) it reached test R@1 9.8 % video→music and 11.8 %
    music→video against 2.5 % chance (19.6 % and 21.6 % on the splits dealt before the picture
    track changed the groups). It trains in a minute or two on 2 cores; windows cover
    whole clips.
    """
    return dataclasses.replace(
        TRAIN_PRESETS["offline"],
        model=ModelConfig(width=64, embed_dim=64, heads=4, dropout=0.2),
        epochs=100,
        batch_size=32,
        lr=1e-3,
        window_s=seconds,
        patience=30,
        device="cpu",
    )


def demo_ks(gallery: int) -> tuple[int, ...]:
    """The K of :data:`DEMO_KS` below ``gallery`` (pairs ranked); ``(1,)`` for a tiny gallery."""
    return tuple(k for k in DEMO_KS if k < gallery) or (1,)


def _skipped(split: Split, sizes: dict[Split, int]) -> str:
    return f"skipped: {sizes[split]} pair(s) in {split.value}, at least 2 needed (use more --clips)"


def _split_sizes(dataset: Path) -> dict[Split, int]:
    """Pairs per split with both offline features."""
    data = load_pairs(dataset, audio=OFFLINE_DEFAULTS[1], video=OFFLINE_DEFAULTS[0])
    return {split: len(data.rows(split)) for split in Split}


def write_url_list(
    path: Path, clips: list[Clip], server: LoopbackServer, *, seconds: float
) -> Path:
    """Write the demo's URL list: one row per clip, plus the rows real lists always have.

    The extras are a duplicate of the first clip under another URL form, a URL that cannot be
    downloaded (ftp), and a video that has gone (404 on the server).
    """
    rows = [
        {
            "id": c.clip_id,
            "url": server.url(Route.MEDIA, c.path.name),
            "likes": c.likes,
            "theme": c.theme,
            "author": c.author,
            "duration": seconds,
            "music_id": c.song.song_id,
        }
        for c in clips
    ]
    if clips:
        rows.append({**rows[0], "url": f"{rows[0]['url']}?utm_source=share"})
    rows.append(
        {
            "id": "broken000",
            "url": "ftp://files.example/video.mp4",
            "likes": 50_000,
            "theme": "vlog",
        }
    )
    rows.append(
        {
            "id": "gone000",
            "url": server.url(Route.MISSING, "gone000.mp4"),
            "likes": 80_000,
            "theme": "travel",
        }
    )
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=URL_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
    return path
