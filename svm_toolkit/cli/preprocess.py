"""``svm preprocess``: probe, filter, crop, fingerprint and compute Mel for downloaded videos."""

from __future__ import annotations

from pathlib import Path

import click

from svm_toolkit.card import refresh_card
from svm_toolkit.cli import render
from svm_toolkit.cli.engine import engine_config, engine_options
from svm_toolkit.cli.options import config_options, given, merge_config, print_config
from svm_toolkit.preprocess.config import PREPROCESS_PRESETS
from svm_toolkit.preprocess.recipes import MEL_RECIPES
from svm_toolkit.preprocess.runner import run_preprocess


def _names(value: str | None) -> tuple[str, ...] | None:
    return tuple(s.strip() for s in value.split(",") if s.strip()) if value else None


@click.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--preset",
    type=click.Choice(sorted(PREPROCESS_PRESETS)),
    default="generic",
    show_default=True,
    help="Filters and Mel recipe of a paper: svm10k (3-180 s, ImageBind fbank), yt8m_music "
    "(30-600 s, VGGish log-mel), generic (no length filter, no Mel).",
)
@click.option(
    "--mel",
    help=f"Mel recipes to compute, comma-separated, replacing the preset's "
    f"({', '.join(MEL_RECIPES)}); 'none' for none.",
)
@click.option(
    "--max-speech-ratio",
    type=click.FloatRange(0, 1),
    help="Drop videos that are speech for more than this share of the time [default: 0.5].",
)
@click.option(
    "--write-cropped",
    is_flag=True,
    default=None,
    help="Also write each passing video, cropped and upright, to DATASET/preprocess/cropped/.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Parallel processes, or Ray actors with --engine ray [default: CPU count].",
)
@click.option(
    "--max-media-s",
    type=click.FloatRange(min=0, min_open=True),
    help="Longest video read, seconds; longer ones are too_long, never decoded whole "
    "[default: the preset's: generic 3600, svm10k 900, yt8m_music 3000].",
)
@click.option(
    "--retry",
    help="Redo samples whose last status is one of these (comma-separated); not ok (to redo "
    "ok samples, delete the fingerprints: the message of --retry ok says where).",
)
@config_options("PreprocessConfig fields (filters: {...}, librosa: {...}, speech: {...})")
@render.json_option("preprocess")
@engine_options()
def preprocess(
    dataset: Path,
    preset: str,
    mel: str | None,
    max_speech_ratio: float | None,
    retry: str | None,
    config_file: Path | None,
    as_json: bool,
    **flags: object,
) -> None:
    """Probe, filter, crop, fingerprint and compute Mel for every downloaded video of DATASET.

    \b
    For each video, without decoding every frame:
      probe      duration, size, rotation, fps, codecs, audio rate and channels
      crop       the black-border box from 8 keyframes (agrees with ffmpeg cropdetect),
                 stored in source pixels; later stages crop while decoding
      signals    loudness, silence, motion, black picture, speech share (Silero VAD)
      filters    duration, resolution, aspect, audio, loudness, silence, static, black,
                 speech: the first failure becomes the status filtered:<name>; every score
                 is kept so you can re-filter in pandas without decoding again
      hashes     a perceptual hash of each cropped frame and the Chromaprint fingerprint
                 of the soundtrack (for leak-free splits)
      mel        the recipes of --mel: imagebind (3 x 128 x 204 Kaldi fbank clips),
                 vggish (96 x 64 log-mel examples), librosa (generic, every parameter in
                 the config file)

    \b
    Outputs: DATASET/ledger/preprocess-*.parquet (one row per video: status, facts, scores,
    crop), DATASET/preprocess/fingerprints/ and DATASET/preprocess/mel_<recipe>/.
    Run the same command again to resume; it also fills in a recipe added later.
    With --engine ray the videos run on --workers Ray actors (each loads Silero VAD once).

    \b
    Examples:
      svm preprocess data/svm10k --preset svm10k
      svm preprocess data/yt8m --preset yt8m_music --mel vggish,librosa --workers 8
      svm preprocess data/svm10k --max-speech-ratio 0.7 --retry filtered:speech
      svm preprocess /mnt/shared/yt8m --preset yt8m_music --engine ray --ray-address auto \\
          --workers 256
    """
    engine = engine_config(flags)
    overrides = given({**flags, "retry": retry, "mel": mel, "max_speech_ratio": max_speech_ratio})
    if "retry" in overrides:
        overrides["retry"] = _names(retry) or ()
    if "mel" in overrides:
        recipes = _names(mel) or ()
        overrides["mel"] = () if recipes == ("none",) else recipes
    if "max_speech_ratio" in overrides:
        overrides["filters"] = {"max_speech_ratio": overrides.pop("max_speech_ratio")}
    config = merge_config(PREPROCESS_PRESETS[preset], config_file, overrides)
    print_config(config)
    summary = run_preprocess(dataset, config, engine=engine)
    refresh_card(dataset)  # the dataset card (README.md) says what is there now
    if as_json:
        ledger = dataset / "ledger" / "preprocess-*.parquet"
        render.emit_json(
            "preprocess", {"dataset": dataset, **render.fields(summary), "ledger": ledger}
        )
    else:
        click.echo(f"preprocess: {summary.describe()}")
