"""Options every stage command shares: ``--config``/``--print-config``, ``-v``/``-q``, ``--device``.

Config precedence, lowest first: the preset (or the config class's defaults), the ``--config``
YAML file, the flags given on the command line. A flag not given changes nothing (its
parameter source is click's default); ``null`` in the YAML sets a field typed ``X | None`` to
``None`` (:func:`svm_toolkit.config.replace`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

import click
from click.core import ParameterSource

from svm_toolkit.config import load_overrides, replace, to_yaml
from svm_toolkit.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C")

#: The log line format of the ``svm`` group, used when a subcommand sets up logging itself.
LOG_FORMAT: Final = "%(levelname)s %(name)s: %(message)s"

#: ``ctx.meta`` keys of the options below.
_PRINT: Final = "svm.print_config"
_VERBOSE: Final = "svm.verbose"
_QUIET: Final = "svm.quiet"

#: Where an option's value came from when the user did not give it.
_NOT_GIVEN: Final = (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP, None)


def config_options(what: str) -> Callable[[F], F]:
    """Add ``--config FILE`` (a YAML file of ``what`` fields) and ``--print-config``.

    The command reads the file with :func:`merge_config` and calls :func:`print_config` once
    its config is merged, before any work.

    Args:
        what: the config class the file holds fields of, with a hint of its nesting, e.g.
            ``"PreprocessConfig fields (filters: {...}, speech: {...})"``.
    """

    def decorate(command: F) -> F:
        command = click.option(
            "--print-config",
            is_flag=True,
            expose_value=False,
            callback=_remember(_PRINT),
            help="Print the effective config (preset, then --config, then flags) as YAML and "
            "exit without running; the output is a valid --config file.",
        )(command)
        return click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False, path_type=Path),
            metavar="FILE",
            help=f"YAML file of {what}; flags given override it, it overrides the preset and "
            "defaults; null switches an optional field off.",
        )(command)

    return decorate


def _remember(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        ctx.meta[key] = value
        return value

    return callback


def given(values: Mapping[str, Any], ctx: click.Context | None = None) -> dict[str, Any]:
    """The entries of ``values`` whose option the user gave (command line or environment).

    Options left at their default are dropped, so they cannot override the ``--config`` file
    or the preset; click gives ``None`` or the declared default for those.

    Args:
        values: parameter name -> value, e.g. a command's ``**flags``.
        ctx: the command's context (default: the current one).
    """
    ctx = ctx or click.get_current_context()
    return {k: v for k, v in values.items() if ctx.get_parameter_source(k) not in _NOT_GIVEN}


def device_flag(config_file: Path | None, ctx: click.Context | None = None) -> str:
    """Where ``device`` came from, for a message: ``--device`` if typed, else the file's key.

    Example: ``check_device(config.device, flag=device_flag(config_file))`` says
    ``run.yaml: device cuda: no CUDA GPU is visible`` when the file asked for the GPU.
    """
    ctx = ctx or click.get_current_context()
    if config_file is None or ctx.get_parameter_source("device") not in _NOT_GIVEN:
        return "--device"
    return f"{config_file}: device"


def merge_config(base: C, config_file: Path | None, flags: Mapping[str, Any]) -> C:
    """Return ``base`` with the ``--config`` file's fields, then ``flags``, applied.

    Args:
        base: the preset or the default config.
        config_file: the ``--config`` YAML file, if given.
        flags: overrides from the flags the user gave only (see :func:`given`); nested configs
            as mappings (``{"filters": {"max_speech_ratio": 0.7}}``).

    Raises:
        ConfigError: the file is missing or not YAML, names an unknown field, sets a field that
            cannot be ``None`` to null, or makes the config invalid (the message names the
            file and the key).
    """
    config = base
    if config_file is not None:
        config = replace(config, load_overrides(config_file), where=str(config_file))
    if flags:
        config = replace(config, flags, where="")
    return config


def parse_weights(values: tuple[str, ...], names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """``--weights`` values as ``(extractor, path)`` pairs.

    Each is ``NAME=PATH``, or ``PATH`` alone when one extractor runs.

    Raises:
        ConfigError: a bare path with several extractors, or a name not among ``names``.
    """
    pairs = []
    for value in values:
        name, sep, path = value.partition("=")
        if not sep:
            if len(names) != 1:
                raise ConfigError(
                    f"--weights {value}: say which extractor it is for, e.g. "
                    f"--weights {names[0]}={value}"
                )
            name, path = names[0], value
        if name not in names:
            raise ConfigError(
                f"--weights {value}: '{name}' is not among --extractor {','.join(names)}"
            )
        pairs.append((name, path))
    return tuple(pairs)


def print_config(config: Any, ctx: click.Context | None = None) -> None:
    """With ``--print-config``, print ``config`` as YAML and exit 0; otherwise do nothing."""
    ctx = ctx or click.get_current_context()
    if ctx.meta.get(_PRINT):
        click.echo(to_yaml(config), nl=False)
        ctx.exit(0)


def device_option(
    help_text: str = "cpu, cuda, cuda:N, or auto (CUDA when present).",
) -> Callable[[F], F]:
    """Add ``--device`` (default: the config's, ``auto``); check it with ``check_device``."""
    return click.option(
        "--device",
        metavar="cpu|cuda|cuda:N|auto",
        help=f"{help_text} [default: auto]",
    )


def log_level(verbose: int, quiet: bool) -> str:
    """The root log level ``-v``/``-vv``/``-q`` ask for; ``SVM_LOG_LEVEL`` wins over them."""
    return os.environ.get("SVM_LOG_LEVEL", "").upper() or (
        "WARNING" if quiet else "DEBUG" if verbose >= 2 else "INFO" if verbose else "WARNING"
    )


def _verbosity(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Apply ``-v``/``-q`` given after a subcommand, added to those given before it."""
    # ctx.meta is shared by the whole chain: one entry per context (group, then subcommand)
    given: dict[int, Any] = ctx.meta.setdefault(_VERBOSE if param.name == "verbose" else _QUIET, {})
    given[id(ctx)] = value
    if not value:
        return
    root = ctx.find_root().params
    verbose = int(root.get("verbose") or 0) + sum(
        int(v or 0) for v in ctx.meta.get(_VERBOSE, {}).values()
    )
    quiet = bool(root.get("quiet")) or any(ctx.meta.get(_QUIET, {}).values())
    level = log_level(verbose, quiet)
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr)
    logging.getLogger().setLevel(level)


#: ``-v`` and ``-q``: their spellings and settings.
_VERBOSITY: Final[tuple[tuple[tuple[str, ...], dict[str, Any]], ...]] = (
    (
        ("-v", "--verbose"),
        {
            "count": True,
            "help": "More log output (-vv for debug); also accepted before the command. Without a "
            "terminal, -v logs progress every SVM_PROGRESS_S seconds (default 30).",
        },
    ),
    (
        ("-q", "--quiet"),
        {"is_flag": True, "help": "Only warnings and errors; also accepted before the command."},
    ),
)


def add_verbosity(command: click.Command) -> click.Command:
    """Give ``command`` (a group too, and each of its subcommands) ``-v``/``-vv``/``-q`` options.

    They mean what they mean on the ``svm`` group, so ``svm -v splits make DS`` and
    ``svm splits make DS -v`` log the same (counts add up: ``svm -v splits -v make DS`` is
    ``-vv``). A command that has them already is left as it is.
    """
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_verbosity(sub)
    if not any(p.name in ("verbose", "quiet") for p in command.params):
        for opts, attrs in _VERBOSITY:
            command.params.append(
                click.Option(list(opts), expose_value=False, callback=_verbosity, **attrs)
            )
    return command


def verbosity_options() -> Callable[[F], F]:
    """Decorator form of :func:`add_verbosity` for one command function."""

    def decorate(command: F) -> F:
        for opts, attrs in reversed(_VERBOSITY):
            command = click.option(*opts, expose_value=False, callback=_verbosity, **attrs)(command)
        return command

    return decorate
