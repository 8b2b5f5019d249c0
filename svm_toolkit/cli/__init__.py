"""The ``svm`` command line: one subcommand per pipeline stage, plus utilities.

Only this package prints; the library logs. Errors the user can fix are printed as one line
(no traceback) with an explicit exit code (see :data:`EXIT_CODES`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Final

import click

from svm_toolkit import __version__
from svm_toolkit.cli.card import card
from svm_toolkit.cli.compact import compact
from svm_toolkit.cli.download import download
from svm_toolkit.cli.export import export
from svm_toolkit.cli.extract import extract, extractors
from svm_toolkit.cli.manifest import manifest
from svm_toolkit.cli.preprocess import preprocess
from svm_toolkit.cli.splits import splits
from svm_toolkit.cli.tools import demo, env
from svm_toolkit.cli.train import evaluate, train
from svm_toolkit.errors import SvmError

EXIT_CODES: Final = """\b
Exit codes:
  0    success
  1    failure (a missing tool, a file written by another version, ...); a download or
       lookup run stopped by the circuit breaker or because nothing could connect
       (--max-connect-failures): run the same command later to resume
  2    bad input or usage: the message names the file, the line and the fix
  3    too many failed samples (--max-failure-rate)
  4    the disk has less free space than --min-free-gb (svm download)
  130  interrupted: run the same command again to resume
"""


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES,
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.version_option(__version__, "-V", "--version", prog_name="svm")
def cli(verbose: int, quiet: bool) -> None:
    """Build video-music datasets and the retrieval baselines that learn from them.

    \b
    A dataset is one folder; every stage reads it and adds to it, and can be re-run
    or resumed at any time:
      svm manifest urls urls.csv -o DATASET     URL lists -> DATASET/manifest.parquet
      svm manifest yt8m RECORDS --vocabulary F -o DATASET   YouTube-8M -> manifest
      svm download DATASET                      media of every sample, with a ledger
      svm preprocess DATASET                    probe, filter, crop, Mel, fingerprints
      svm extract DATASET                       features -> DATASET/features/<extractor>/
      svm splits make DATASET                   leak-free train/val/test splits
      svm train DATASET --preset tivm           a baseline -> DATASET/runs/<name>/
      svm evaluate RUN                          Recall@K, both directions, vs chance
      svm manifest info DATASET                 what a dataset holds
    Start with `svm demo`: it builds a small dataset offline and runs every stage.
    """
    level = os.environ.get("SVM_LOG_LEVEL", "").upper() or (
        "WARNING" if quiet else "DEBUG" if verbose >= 2 else "INFO" if verbose else "WARNING"
    )
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


cli.add_command(manifest)
cli.add_command(download)
cli.add_command(preprocess)
cli.add_command(extract)
cli.add_command(extractors)
cli.add_command(export)
cli.add_command(splits)
cli.add_command(train)
cli.add_command(evaluate)
cli.add_command(env)
cli.add_command(demo)
cli.add_command(compact)
cli.add_command(card)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI and exit with its exit code."""
    try:
        code = cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted: run the same command again to resume", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SvmError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:  # the file system said no: permissions, a full disk, a missing folder
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: run the same command again to resume", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["cli", "main"]
