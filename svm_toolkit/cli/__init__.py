"""The ``svm`` command line: one subcommand per pipeline stage, plus utilities.

Only this package prints; the library logs. Errors the user can fix are printed as one line
(no traceback) with an explicit exit code (see :data:`EXIT_CODES`).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import click

from svm_toolkit import __version__
from svm_toolkit.errors import SvmError

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "card": (
        "svm_toolkit.cli.card:card",
        "Write DATASET/README.md: Hugging Face configs and a datasheet.",
    ),
    "compact": (
        "svm_toolkit.cli.compact:compact",
        "Rewrite DATASET's shards so that every sample appears once (its newest row).",
    ),
    "compare": (
        "svm_toolkit.cli.release:compare",
        "Compare a rebuilt DATASET with the RELEASE_DIR it was rebuilt from.",
    ),
    "demo": (
        "svm_toolkit.cli.tools:demo",
        "Build a small dataset offline and run every stage on it.",
    ),
    "download": (
        "svm_toolkit.cli.download:download",
        "Download the media of every sample in DATASET that is not done yet.",
    ),
    "env": (
        "svm_toolkit.cli.tools:env",
        "Print the versions of the toolkit, Python, torch/CUDA, pyarrow, yt-dlp and ffmpeg.",
    ),
    "evaluate": (
        "svm_toolkit.cli.train:evaluate",
        "Recall@K of a trained RUN, of two extractors on a DATASET (zero-shot), or of a FILE.",
    ),
    "export": (
        "svm_toolkit.cli.export:export",
        "Export the features of DATASET for training code that expects other layouts.",
    ),
    "extract": (
        "svm_toolkit.cli.extract:extract",
        "Extract features of every preprocessed video of DATASET into sharded Parquet.",
    ),
    "extractors": (
        "svm_toolkit.cli.extract:extractors",
        "List the registered extractors with their input contracts (loads no model).",
    ),
    "manifest": (
        "svm_toolkit.cli.manifest:manifest",
        "Build and inspect manifests (one row per sample).",
    ),
    "preprocess": (
        "svm_toolkit.cli.preprocess:preprocess",
        "Probe, filter, crop, fingerprint and compute Mel for every downloaded video of DATASET.",
    ),
    "rebuild": (
        "svm_toolkit.cli.release:rebuild",
        "Rebuild a dataset from RELEASE_DIR: its samples and splits, then the usual stages.",
    ),
    "release": (
        "svm_toolkit.cli.release:release",
        "Write what another lab needs to rebuild DATASET, and nothing they may not share.",
    ),
    "report": (
        "svm_toolkit.cli.report:report",
        "Write DATASET's report: one HTML page to look at, that opens offline.",
    ),
    "splits": (
        "svm_toolkit.cli.splits:splits",
        "Make train/val/test splits that cannot leak, and validate any splits.",
    ),
    "train": (
        "svm_toolkit.cli.train:train",
        "Train a baseline on the paired features of DATASET's train split.",
    ),
}
"""Subcommands of ``svm``: name -> (``"module:attribute"`` of the click command, its short help).

A command's module is imported only when that command runs (or its ``--help`` is shown), so
``svm --help``, ``svm -V`` and the commands that need no model never import torch. The short
help is kept here so that ``svm --help`` lists every command without importing any of them;
``tests/cli/test_imports.py`` checks that it matches each command's docstring.
"""


class LazyGroup(click.Group):
    """A click group whose subcommands (:data:`COMMANDS`) are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Names of all subcommands, sorted (imports none of them)."""
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import the module of ``cmd_name`` and return its command (``None`` if unknown)."""
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return self.commands.get(cmd_name)
        module_name, attr = COMMANDS[cmd_name][0].split(":")
        try:
            command = getattr(importlib.import_module(module_name), attr)
        except ImportError as exc:  # a broken install: one line, not a traceback
            message = f"svm {cmd_name}: cannot load ({exc}); reinstall svm_toolkit"
            raise click.ClickException(message) from None  # exits 1
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}:{attr} is not a click command")
        from svm_toolkit.cli.options import add_verbosity  # -v/-q after the subcommand too

        self.commands[cmd_name] = add_verbosity(command)
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Like click's, with ``did you mean`` for a mistyped subcommand (imports none)."""
        name = click.utils.make_str(args[0])
        if not name.startswith("-") and self.get_command(ctx, name) is None:
            from svm_toolkit.names import did_you_mean

            ctx.fail(f"No such command '{name}'{did_you_mean(name, self.list_commands(ctx))}")
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The ``Commands:`` section of ``svm --help``, from :data:`COMMANDS` (imports none)."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [
            (name, click.Command(name, help=self._short_help(name)).get_short_help_str(limit))
            for name in names
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Complete subcommand names (with their short help) and options, importing none."""
        from click.shell_completion import CompletionItem

        results = [
            CompletionItem(name, help=self._short_help(name))
            for name in self.list_commands(ctx)
            if name.startswith(incomplete)
        ]
        results.extend(click.Command.shell_complete(self, ctx, incomplete))
        return results

    def _short_help(self, name: str) -> str:
        if name in COMMANDS:
            return COMMANDS[name][1]
        return self.commands[name].get_short_help_str(limit=1000)


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
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES,
)
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="More log output (-vv for debug); without a terminal, -v logs progress every "
    "SVM_PROGRESS_S seconds (default 30).",
)
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


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI and exit with its exit code."""
    try:
        code = cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted: run the same command again to resume", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        from svm_toolkit.names import suggest_choice  # a mistyped choice: the closest ones

        suggest_choice(exc).show()
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


__all__ = ["COMMANDS", "LazyGroup", "cli", "main"]
