"""``svm download``: fetch every sample's media with yt-dlp into the dataset."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import click

from svm_toolkit.card import refresh_card
from svm_toolkit.cli import render
from svm_toolkit.cli.engine import engine_config, engine_options
from svm_toolkit.cli.options import config_options, given, merge_config, print_config
from svm_toolkit.config import load_overrides, replace
from svm_toolkit.download import DownloadConfig, run_download
from svm_toolkit.download.limits import default_file_cap_mb
from svm_toolkit.download.netpolicy import ENV_ALLOW_PRIVATE

_DEFAULT = DownloadConfig()

#: Format flags that cannot be combined, and why: each would silently undo the other.
_CONFLICTS: Final = (
    ("format", "max_height", "--format replaces the selector --max-height builds; put the "
     "height in the selector, e.g. --format 'bv*[height<=720]+ba/b'"),
    ("format", "audio_only", "--format replaces the audio selector of --audio-only; give one "
     "of them (for your own audio-only selector, set format and audio_only in --config)"),
    ("audio_only", "max_height", "--audio-only fetches no video, so --max-height would do "
     "nothing"),
)  # fmt: skip
_FLAGS: Final = {"format": "--format", "audio_only": "--audio-only", "max_height": "--max-height"}


def check_format_flags(
    flags: Mapping[str, Any], file: Mapping[str, Any], where: str = "--config"
) -> None:
    """Refuse a format flag combined with one that conflicts with it (exit code 2).

    A flag conflicts with another flag, or with the other setting in the config file. Both
    from the config file are allowed: there they are a deliberate pair (``format`` with
    ``audio_only``: an audio-only download with your own selector).

    Args:
        flags: the command line's values (``None``/``False``: not given).
        file: the config file's values.
        where: the config file's name, for the message.

    Raises:
        click.UsageError: the first conflict, naming both flags.
    """

    def given(values: Mapping[str, Any], name: str) -> bool:
        return values.get(name) not in (None, False)

    for a, b, why in _CONFLICTS:
        if not (given(flags, a) or given(flags, b)):
            continue
        if (given(flags, a) or given(file, a)) and (given(flags, b) or given(file, b)):
            names = [_FLAGS[n] if given(flags, n) else f"{n} (in {where})" for n in (a, b)]
            raise click.UsageError(f"{names[0]} and {names[1]} cannot be used together: {why}")


@click.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--max-height",
    type=click.IntRange(min=1),
    help=f"Tallest video, pixels [default: {_DEFAULT.max_height}].",
)
@click.option(
    "--format",
    "format_",
    help="yt-dlp format selector, instead of the one --max-height or --audio-only builds "
    "(not together with them).",
)
@click.option("--audio-only", is_flag=True, default=None, help="Fetch audio only (m4a).")
@click.option(
    "--transcode",
    is_flag=True,
    default=None,
    help="Re-encode every file that is not H.264 + AAC MP4 at most --max-height to it "
    "(costs a full decode and encode; default: name files by their real container and "
    "remux to MP4 by stream copy where the codecs allow).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help=f"Downloads at once [default: {_DEFAULT.concurrency}].",
)
@click.option(
    "--per-host",
    type=click.IntRange(min=1),
    help=f"Downloads at once per host [default: {_DEFAULT.per_host}].",
)
@click.option(
    "--rate", type=click.FloatRange(min=0, min_open=True), help="Most downloads started per second."
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    help="Deadline of each sample, seconds, all its attempts together; it holds however "
    f"slowly a server sends (headers included) [default: {_DEFAULT.timeout_s:g}].",
)
@click.option(
    "--attempts",
    "max_attempts",
    type=click.IntRange(min=1),
    help=f"Tries per sample for 429, timeouts, network errors [default: {_DEFAULT.max_attempts}].",
)
@click.option(
    "--max-connect-failures",
    type=click.IntRange(min=0),
    help="Stop the run after this many attempts in a row could not connect (refused, DNS, "
    "unreachable: the service or the network is down); 0: never "
    f"[default: {_DEFAULT.max_connect_failures}].",
)
@click.option(
    "--retry",
    help="Re-download samples whose last status is one of these (comma-separated); not ok "
    "(to redo ok samples, delete their files and rows: the message of --retry ok says where).",
)
@click.option(
    "--cookies", type=click.Path(exists=True, dir_okay=False), help="cookies.txt for yt-dlp."
)
@click.option(
    "--cookies-from-browser", help="Read cookies from this browser (firefox, chrome, ...)."
)
@click.option("--proxy", help="Proxy URL for every request.")
@click.option(
    "--sleep-interval",
    "sleep_interval_s",
    type=float,
    help="yt-dlp's sleep before each download, s.",
)
@click.option(
    "--max-sleep-interval",
    "max_sleep_interval_s",
    type=float,
    help="Upper bound of a random sleep, s.",
)
@click.option(
    "--max-failure-rate",
    type=click.FloatRange(0, 1),
    help="Exit with code 3 when a larger share of this run's samples failed.",
)
@click.option(
    "--max-file-mb",
    type=click.FloatRange(min=0, min_open=True),
    help="Largest media file one sample may write, MB; a larger one ends as too_large "
    "[default: derived from the format: (3 Mbit/s x (height/480)^2 + 0.32 Mbit/s audio) x 2 h, "
    f"{default_file_cap_mb(_DEFAULT.max_height):,.0f} MB at 480p, "
    f"{default_file_cap_mb(480, audio_only=True):,.0f} MB with --audio-only].",
)
@click.option(
    "--min-free-gb",
    type=click.FloatRange(min=0),
    help="Stop the run (exit code 4, finished samples kept) when the dataset's disk has less "
    f"free space than this, GB; 0 turns the guard off [default: {_DEFAULT.min_free_gb:g}].",
)
@click.option(
    "--allow-private-hosts",
    is_flag=True,
    default=None,
    help=f"Allow loopback and private addresses (127.0.0.1, 10.x, 192.168.x, ...); also "
    f"{ENV_ALLOW_PRIVATE}=1. Link-local and cloud-metadata addresses stay refused.",
)
@click.option(
    "--deny-host",
    "deny_hosts",
    multiple=True,
    metavar="HOST|CIDR|ADDRESS",
    help="Never connect to this host (and its subdomains), address or address range; repeatable.",
)
@config_options("DownloadConfig fields, including ytdlp_options passed to yt-dlp")
@render.json_option("download")
@engine_options()
def download(
    dataset: Path,
    format_: str | None,
    retry: str | None,
    config_file: Path | None,
    deny_hosts: tuple[str, ...],
    as_json: bool,
    **flags: object,
) -> None:
    """Download the media of every sample in DATASET that is not done yet.

    \b
    Every manifest row with status ok and a URL is fetched once into
    DATASET/media/<id[:2]>/<id>.<ext> (yt-dlp asks for H.264 + AAC, at most 480p by
    default), written atomically and checked with PyAV: a file without the audio its format
    promised is a failure (no_audio), not a success. The file is named by its real
    container: one whose codecs MP4 holds is remuxed to .mp4 by stream copy, others keep
    theirs (.webm, .mkv, .ogg...); the ledger records container and codecs. --transcode
    re-encodes everything to H.264 + AAC MP4 instead. Each outcome is a row of
    DATASET/ledger/download-*.parquet with its status (ok, unavailable, bot_check,
    rate_limited, timeout, ...). Direct media URLs take a lean HTTP path; everything else
    goes through yt-dlp. Clip bounds fetch only that section.

    \b
    Pacing: retries with backoff for 429 / timeouts / network errors, --rate and
    --per-host limits, and a circuit breaker that pauses the run after 5 refusals in a
    row (429 or "confirm you're not a bot") and stops after 3 pauses. When
    --max-connect-failures attempts in a row cannot connect at all (connection refused,
    a name that does not resolve, an unreachable network) the run stops at once
    (exit code 1, finished samples kept; --retry network_error resumes).

    \b
    Safety: each sample ends by --timeout (all attempts together), however slowly a
    server sends; a file past --max-file-mb ends as too_large; the run stops (exit code 4)
    before the disk has less than --min-free-gb free. Only http(s) URLs are fetched, after redirects
    too; link-local and cloud-metadata addresses (169.254.169.254, ...) are always refused,
    loopback and private ones unless --allow-private-hosts (or SVM_ALLOW_PRIVATE_HOSTS=1);
    --deny-host adds your own. A refusal is the status refused_host. user:pass@ in a URL
    is sent as HTTP Basic auth, to that host only.

    \b
    Run the same command again to resume; --retry rate_limited,timeout re-runs only
    those samples. With --engine ray the downloads run as --concurrency Ray actors, paced
    together by one pacer actor (the same rate, per-host limits and breaker).

    \b
    Examples:
      svm download data/svm10k
      svm download data/svm10k --rate 0.5 --cookies cookies.txt --retry rate_limited,bot_check
      svm download data/yt8m --audio-only --max-failure-rate 0.2
      svm download /mnt/shared/yt8m --engine ray --ray-address auto --concurrency 64
      svm download data/lab --allow-private-hosts --deny-host 10.0.0.0/8 --max-file-mb 500
    """
    engine = engine_config(flags)
    overrides = load_overrides(config_file) if config_file is not None else {}
    check_format_flags({**flags, "format": format_}, overrides, str(config_file))
    base = replace(_DEFAULT, overrides, where=str(config_file))
    values = given({**flags, "format_": format_, "retry": retry, "deny_hosts": deny_hosts})
    if "format_" in values:
        values["format"] = values.pop("format_")
    if "retry" in values:
        values["retry"] = tuple(s.strip() for s in (retry or "").split(",") if s.strip())
    if "deny_hosts" in values:
        values["deny_hosts"] = (*base.deny_hosts, *deny_hosts)
    config = merge_config(base, None, values)
    print_config(config)
    summary = run_download(dataset, config, engine=engine)
    refresh_card(dataset)  # the dataset card (README.md) says what is there now
    if as_json:
        extra = {"failed": summary.failed, "failure_rate": summary.failure_rate}
        ledger = dataset / "ledger" / "download-*.parquet"
        render.emit_json(
            "download", {"dataset": dataset, **render.fields(summary), **extra, "ledger": ledger}
        )
    else:
        click.echo(f"download: {summary.describe()}")
        if summary.breaker_pauses:
            click.echo(f"  the circuit breaker paused the run {summary.breaker_pauses} time(s)")
    limit = config.max_failure_rate
    if limit is not None and summary.failure_rate > limit:
        click.echo(
            f"error: {summary.failure_rate:.0%} of this run's samples failed (limit {limit:.0%})",
            err=True,
        )
        raise SystemExit(3)
