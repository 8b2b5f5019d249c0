"""``svm release``, ``svm rebuild`` and ``svm compare``: share a dataset, rebuild it, check it.

The library modules are imported when a command runs, so ``svm --help`` stays light.
"""

from __future__ import annotations

from pathlib import Path

import click

from svm_toolkit.cli import render
from svm_toolkit.cli.options import parse_weights
from svm_toolkit.device import check_device
from svm_toolkit.errors import ConfigError

_STEPS = ("manifest", "download", "preprocess", "extract", "splits")


@click.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The release folder (must not exist or be empty, unless --overwrite).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an earlier release (a folder holding release.json); never the dataset.",
)
@render.json_option("release")
def release(dataset: Path, out: Path, overwrite: bool, as_json: bool) -> None:
    """Write what another lab needs to rebuild DATASET, and nothing they may not share.

    \b
    No media, no cropped copies, no Mel spectrograms, no feature vectors. The release holds:
      samples.parquet        ids, URLs, clip bounds, public metadata, split and group,
                             media duration, size and crop box of each sample in a split
      fingerprints.parquet   audio (Chromaprint) and picture (perceptual hash) fingerprints
      features/NAME.parquet  per extractor a 32-dim check of each pooled feature, and the
                             projection that made it (features/NAME.projection.parquet)
      README.md              the dataset card, release.json (format, version, counts,
                             stage settings, provenance), SHA256SUMS
    The folder is written beside DIR and renamed into place when complete.

    \b
    Examples:
      svm release data/svm10k -o releases/svm10k-v1
      svm rebuild releases/svm10k-v1 -o data/svm10k-rebuilt
      svm compare releases/svm10k-v1 data/svm10k-rebuilt
    """
    from svm_toolkit.release.write import write_release

    summary = write_release(dataset, out, overwrite=overwrite)
    if as_json:
        render.emit_json("release", render.fields(summary))
    else:
        click.echo(f"release: {summary.describe()}")
        click.echo(f"next: svm rebuild {out} -o DATASET")


@click.command()
@click.argument("release_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    "dataset",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The dataset root to build (re-running continues it).",
)
@click.option(
    "--until",
    type=click.Choice(_STEPS),
    default="splits",
    show_default=True,
    help="The last step to run.",
)
@click.option(
    "--extractors",
    help="Extractors to run, comma-separated [default: the release's that need no weights "
    "file: efficientnet_lite0, vmnet_music].",
)
@click.option(
    "--weights",
    multiple=True,
    metavar="NAME=PATH",
    help="Weights file of an extractor named in --extractors (repeatable).",
)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes [default: CPUs].")
@click.option(
    "--allow-private-hosts",
    is_flag=True,
    help="Allow loopback and private addresses (also SVM_ALLOW_PRIVATE_HOSTS=1).",
)
@render.json_option("rebuild")
def rebuild(
    release_dir: Path,
    dataset: Path,
    until: str,
    extractors: str | None,
    weights: tuple[str, ...],
    device: str,
    workers: int | None,
    allow_private_hosts: bool,
    as_json: bool,
) -> None:
    """Rebuild a dataset from RELEASE_DIR: its samples and splits, then the usual stages.

    \b
    1. checks every file against SHA256SUMS (a changed file is named, exit 2)
    2. writes the manifest: the release's ids, URLs, clip bounds, metadata and splits
    3. download (the release's --max-height), preprocess (its filters and fingerprint
       settings), extract (its extractors that run offline, at its fps and precision),
       splits (the given splits are kept; samples that failed are left out)
    Each stage skips what is done: run the command again to continue. Then compare:
      svm compare RELEASE_DIR DATASET

    \b
    Examples:
      svm rebuild releases/svm10k-v1 -o data/svm10k-rebuilt
      svm rebuild releases/svm10k-v1 -o data/svm10k-rebuilt --until download
      svm rebuild releases/svm10k-v1 -o data/x --extractors vggish --weights vggish=vggish.pth
    """
    from svm_toolkit.download import DownloadConfig
    from svm_toolkit.release.rebuild import RebuildConfig, StepReport, rebuild_release

    names = tuple(n.strip() for n in extractors.split(",") if n.strip()) if extractors else None
    if weights and not names:
        raise ConfigError(
            "--weights needs --extractors naming its extractor, e.g. --extractors vggish "
            "--weights vggish=vggish.pth"
        )
    check_device(device)  # before hours of download and preprocess
    config = RebuildConfig(
        until=until,
        extractors=names,
        download=DownloadConfig(allow_private_hosts=allow_private_hosts),
        device=device,
        weights=parse_weights(weights, names or ()),
        workers=workers,
    )

    def step_done(step: StepReport) -> None:
        if not as_json:
            click.echo(f"{step.step:<10} {step.summary} ({step.seconds:.1f} s)")

    summary = rebuild_release(release_dir, dataset, config, on_step=step_done)
    if as_json:
        render.emit_json("rebuild", render.fields(summary))
    else:
        if summary.skipped_extractors:
            click.echo(
                f"not extracted: {', '.join(summary.skipped_extractors)} (weights needed: "
                "--extractors NAME --weights NAME=PATH)"
            )
        click.echo(f"next: svm compare {release_dir} {dataset}")


@click.command()
@click.argument("release_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where report.json and report.png go [default: DATASET/compare].",
)
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too (samples missing).")
@click.option(
    "--duration-tolerance",
    type=click.FloatRange(min=0),
    default=0.5,
    show_default=True,
    help="Largest change of a video's duration that is still the same video, seconds.",
)
@click.option(
    "--feature-threshold",
    type=click.FloatRange(-1, 1),
    default=0.9,
    show_default=True,
    help="Cosine of the projected features at or above which they match.",
)
@render.json_option("compare")
def compare(
    release_dir: Path,
    dataset: Path,
    out: Path | None,
    strict: bool,
    duration_tolerance: float,
    feature_threshold: float,
    as_json: bool,
) -> None:
    """Compare a rebuilt DATASET with the RELEASE_DIR it was rebuilt from.

    \b
    availability   released samples with usable media, overall, per split and per group;
                   the status of each missing one (unavailable, filtered:..., pending)
    changed        media whose duration or fingerprints (picture, audio) differ from the
                   release's: re-uploaded, edited or replaced
    features       per extractor, cosine of the rebuilt pooled feature and the release's
                   check (both projected the same way): >= the threshold is the same video
                   through the same model
    splits         the checks of 'svm splits validate' on the surviving samples
    Exit codes: 2 with errors (changed media, features that disagree on unchanged media,
    split errors), 1 with warnings (samples missing, split warnings) and --strict, else 0.

    \b
    Output: the summary below, DATASET/compare/report.json and report.png (availability per
    split, histogram of feature cosines).

    \b
    Examples:
      svm compare releases/svm10k-v1 data/svm10k-rebuilt
      svm compare releases/svm10k-v1 data/svm10k-rebuilt --strict --json
    """
    from svm_toolkit.release.compare import CompareConfig, compare_release

    config = CompareConfig(
        duration_tolerance_s=duration_tolerance,
        feature_threshold=feature_threshold,
        strict=strict,
    )
    comparison = compare_release(release_dir, dataset, config)
    written = comparison.write(out or dataset / "compare")
    if as_json:
        data = comparison.to_json()
        render.emit_json("compare", {**data, "written": written})
    else:
        click.echo(comparison.render())
        click.echo(f"report: {', '.join(str(p) for p in written)}")
    click.get_current_context().exit(comparison.exit_code())
