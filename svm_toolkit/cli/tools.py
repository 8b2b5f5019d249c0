"""Utility commands: ``svm env`` and ``svm demo``."""

from __future__ import annotations

from pathlib import Path

import click

from svm_toolkit.cli import render
from svm_toolkit.demo import CorpusConfig, StageReport, run_demo
from svm_toolkit.env import environment
from svm_toolkit.evaluate.report import protocol_line, render_metrics
from svm_toolkit.progress import Progress

_DEFAULT = CorpusConfig()


@click.command()
def env() -> None:
    """Print the versions of the toolkit, Python, torch/CUDA, pyarrow, yt-dlp and ffmpeg.

    Paste this into bug reports.
    """
    info = environment()
    width = max(map(len, info))
    for name, value in info.items():
        click.echo(f"{name:<{width}}  {value}")


@click.command()
@click.option(
    "-o",
    "--output",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("svm-demo"),
    show_default=True,
    help="Demo folder (re-runs reuse it).",
)
@click.option(
    "--clips",
    type=click.IntRange(min=2),
    default=_DEFAULT.clips,
    show_default=True,
    help="Number of generated music videos.",
)
@click.option(
    "--seconds",
    type=click.FloatRange(min=1.0),
    default=_DEFAULT.seconds,
    show_default=True,
    help="Length of each video, seconds.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Retrain the demo run when DIR holds one of another config (other --seconds, "
    "or a demo folder of another version).",
)
def demo(directory: Path, clips: int, seconds: float, overwrite: bool) -> None:
    """Build a small dataset offline and run every stage on it.

    \b
    Generates music videos whose picture follows the soundtrack (tempo -> flashes and
    motion, pitch -> hue, timbre -> texture, changing half-way), serves them on a
    loopback HTTP server, writes a URL list and runs the pipeline on it:
      DIR/corpus/   the videos      DIR/urls.csv   the URL list
      DIR/dataset/  the dataset root (inspect it with `svm manifest info DIR/dataset`)
    Runs offline in a few minutes on 2 cores. Re-running reuses finished work.
    """
    corpus = CorpusConfig(clips=clips, songs=max(1, clips * 5 // 6), seconds=seconds)
    if overwrite:
        from svm_toolkit.demo.pipeline import DEMO_RUN
        from svm_toolkit.train.checkpoint import discard_run

        discard_run(directory / "dataset" / "runs" / DEMO_RUN)
    bar = Progress("corpus", total=clips, unit="clip")

    def stage_done(line: StageReport) -> None:
        bar.close()
        click.echo(f"{line.stage:<10} {line.summary} ({line.seconds:.1f} s)")

    def clip_done(_: object) -> None:
        bar.update()

    with bar:  # closed on error too (close is safe twice)
        report = run_demo(directory, corpus, on_clip=clip_done, on_stage=stage_done)
    if report.evaluation is not None:
        click.echo(f"\nRecall@K of the demo run: {protocol_line(report.evaluation.metrics)}")
        click.echo(render_metrics(report.evaluation.metrics))
    if report.comparison is not None and report.planted is not None:
        gone, replaced = len(report.planted.missing), report.planted.replaced
        click.echo(
            f"\nThe release rebuilt while {gone} of its URLs answer 404 and {replaced} is "
            "another video (svm compare):"
        )
        click.echo(report.comparison.render())
    total = sum(s.seconds for s in report.stages)
    click.echo(f"\ndemo: {len(report.stages)} stages in {total:.1f} s; dataset at {report.dataset}")
    click.echo(f"  samples {report.info.samples:,}: {render.counts(report.info.by_status)}")
    click.echo(f"next: svm manifest info {report.dataset}")
    click.echo(f"      open {report.dataset / 'report.html'} (svm report, a page to look at)")
    if report.comparison is not None:
        click.echo(f"      svm compare {directory / 'release'} {directory / 'rebuilt'}")
    if report.evaluation is not None:
        click.echo(f"      svm evaluate {report.evaluation.written[0].parent}")
