"""The yt-dlp child process: one fetch, in its own process group, so a deadline can end it.

:mod:`svm_toolkit.download.ytdlp_pool` starts ``python -I <this file> <parent pid>`` in a new
session, writes length-prefixed pickled requests on its stdin and reads one JSON line per request
from its stdout; at a sample's deadline it kills the whole group (this process and yt-dlp's
ffmpeg children). A child that answered serves the next request. yt-dlp's progress
hooks do not fire while a server trickles bytes, so a deadline inside yt-dlp cannot hold; a
process that is killed can.

Inside, every name yt-dlp resolves (pages, formats, fragments, redirects; urllib and requests
alike) goes through the network policy, and a chosen format whose URL is not http(s), or whose
host resolves to a refused address, is refused before it is downloaded: ffmpeg (clip bounds,
some streams) resolves and connects by itself, outside this process's resolver. What ffmpeg does
after that check (its own redirects, a name that resolves differently a moment later) is not
seen here. The process also ends itself when its parent dies or a few seconds
after a fetch's deadline. It imports yt-dlp and the standard library only (the policy module is
loaded by its path), not the toolkit.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pickle
import shutil
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: Seconds past the deadline after which the child kills its own group (the parent kills first).
GRACE_S = 5.0
TOO_LARGE = "larger than the size cap"
#: yt-dlp's match filter for every fetch (unless the options bring their own): a livestream in
#: progress would be recorded until the deadline and end as a timeout; it is ``live`` instead.
NOT_LIVE = "!is_live"


def _load_netpolicy() -> Any:
    path = Path(__file__).with_name("netpolicy.py")
    spec = importlib.util.spec_from_file_location("_svm_netpolicy", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _kill_group() -> None:
    with contextlib.suppress(OSError):
        os.killpg(os.getpgid(0), signal.SIGKILL)
    os._exit(137)


class _Watch:
    """Ends the group when the parent dies or the current fetch overruns its deadline."""

    def __init__(self, parent: int) -> None:
        self.parent = parent
        self.until: float | None = None  # time.monotonic() of the current fetch's end + grace
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            until = self.until
            if os.getppid() != self.parent or (until is not None and time.monotonic() > until):
                _kill_group()
            time.sleep(0.25)


_policy: list[Any] = []  # the current fetch's policy (the patched resolver reads it)


def _guard_resolver() -> None:
    """Check every address yt-dlp (or urllib3) resolves against the current fetch's policy."""
    resolve = socket.getaddrinfo

    def checked(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        policy = _policy[0]
        name = host.decode() if isinstance(host, bytes) else str(host)
        if policy.exempts(name, port):  # the configured proxy itself
            return resolve(host, port, *args, **kwargs)
        if why := policy.host_refusal(name):
            raise policy_module.Refused(why)
        answers = resolve(host, port, *args, **kwargs)
        policy.check_answers(name, answers)
        return answers

    socket.getaddrinfo = checked


def check_format_url(policy: Any, url: str) -> None:
    """Refuse a format's URL by its scheme, or by what its host resolves to now.

    ffmpeg (which yt-dlp hands a format to for clip bounds and some streams) resolves the name
    itself, outside :func:`_guard_resolver`; this resolves it first, through the policy. A name
    that does not resolve here is left to the download to fail (or to the proxy to resolve).

    Raises:
        Refused: the scheme, the name or one of its addresses is refused.
    """
    if why := policy.url_refusal(url):
        raise policy_module.Refused(why)
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:  # a port out of range: nothing can connect to it
        return
    with contextlib.suppress(socket.gaierror, UnicodeError):
        policy.resolve(parts.hostname or "", port)


class _Log:
    """yt-dlp's messages: errors kept for the result, the size-cap and filter notices noticed."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.too_large: str | None = None
        self.rejected: str | None = None

    def debug(self, message: str) -> None:
        if "larger than max-filesize" in message:
            self.too_large = message.strip()
        elif "does not pass filter" in message:
            self.rejected = message.strip()

    def info(self, message: str) -> None:
        self.debug(message)

    def warning(self, message: str) -> None:
        self.debug(message)

    def error(self, message: str) -> None:
        self.errors.append(message)


def _decode_credentials() -> None:
    """``user:p%40ss@host``: yt-dlp sends the password still percent-encoded; decode it first.

    yt-dlp sends a URL's credentials as Basic auth only with requests to that URL (and not after
    a redirect to another host); this keeps that and fixes the encoding.
    """
    import base64
    from urllib.parse import unquote, urlsplit

    module: Any = sys.modules["yt_dlp.YoutubeDL"]
    original = module.extract_basic_auth

    def extract(url: str) -> tuple[str, str | None]:
        parts = urlsplit(url)
        stripped, header = original(url)
        if header is None or parts.username is None:
            return stripped, header
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        return stripped, "Basic " + base64.b64encode(pair.encode()).decode("ascii")

    module.extract_basic_auth = extract


def _fetch(request: dict[str, Any], log: _Log) -> dict[str, Any]:
    import yt_dlp
    from yt_dlp.postprocessor import PostProcessor
    from yt_dlp.utils import (
        DownloadCancelled,
        DownloadError,
        download_range_func,
        match_filter_func,
    )

    policy = policy_module.NetPolicy(**request["policy"])
    _policy[:] = [policy]
    cap: int = request["cap_bytes"]

    class CapExceeded(DownloadCancelled):  # type: ignore[misc]
        msg = TOO_LARGE

    class DiskLow(DownloadCancelled):  # type: ignore[misc]
        msg = "low disk space"

    min_free: int = request["min_free_bytes"]
    checked = [0]

    def check_size(status: dict[str, Any]) -> None:
        got = status.get("downloaded_bytes") or 0
        if got > cap:
            raise CapExceeded(f"{got:,} bytes written, {TOO_LARGE} ({cap:,} bytes)")
        if min_free > 0 and abs(got - checked[0]) >= 4 * 1024 * 1024:
            checked[0] = got
            free = shutil.disk_usage(request["scratch"]).free
            if free < min_free:
                raise DiskLow(str(free))

    class CheckURLs(PostProcessor):  # type: ignore[misc]
        """Refuse a chosen format whose URL the policy refuses (scheme, name, resolved address)."""

        def run(self, info: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
            formats = info.get("requested_formats") or [info]
            for fmt in formats:
                for key in ("url", "manifest_url", "fragment_base_url"):
                    if url := str(fmt.get(key) or ""):
                        check_format_url(policy, url)
            return [], info

    options = dict(request["options"])
    options.setdefault("match_filter", match_filter_func(NOT_LIVE))
    options.update(
        logger=log,
        progress_hooks=[check_size],
        max_filesize=cap,
    )
    if request["section"] is not None:
        options["download_ranges"] = download_range_func(None, [tuple(request["section"])])
    scratch = Path(request["scratch"])
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            ydl.add_post_processor(CheckURLs(), when="before_dl")
            info = ydl.extract_info(request["url"], download=True)
    except CapExceeded as exc:
        return {"kind": "too_large", "detail": str(exc)}
    except DiskLow as exc:
        return {
            "kind": "low_disk",
            "detail": "the disk fell below --min-free-gb",
            "free": int(exc.msg),
        }
    except DownloadError as exc:
        message = log.errors[-1] if log.errors else str(exc)
        return {"kind": "error", "detail": message}
    except policy_module.Refused as exc:
        return {"kind": "error", "detail": str(exc)}
    except Exception as exc:  # any failure is this sample's, never the run's
        return {"kind": "crash", "detail": f"{type(exc).__name__}: {exc}"}
    if log.too_large:
        return {"kind": "too_large", "detail": log.too_large}
    if log.rejected:  # a live stream (classified ``live``), or the options' own match filter
        live = f"({NOT_LIVE})" in log.rejected
        return {"kind": "error" if live else "empty", "detail": _rejected(log.rejected)}
    files = [
        p for p in scratch.iterdir() if p.is_file() and not p.name.endswith((".part", ".ytdl"))
    ]
    if not files:
        return {"kind": "empty", "detail": "yt-dlp finished without writing a file"}
    chosen = max(files, key=lambda p: p.stat().st_size)
    return {"kind": "ok", "path": str(chosen), "format": str((info or {}).get("format_id") or "")}


def _rejected(message: str) -> str:
    """yt-dlp's "<title> does not pass filter (...), skipping .." as a detail a person can use."""
    reason = message.partition("does not pass filter")[2].strip(" ,.").removesuffix("skipping")
    reason = f"does not pass filter {reason.strip(' ,.')}"
    if f"({NOT_LIVE})" in reason:
        return f"a live stream in progress, not recorded (yt-dlp: {reason}); retry after it ends"
    return f"yt-dlp skipped it: it {reason}"


def main() -> None:
    """Serve fetches until stdin ends: each a length-prefixed pickle in, one JSON line out."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # yt-dlp and ffmpeg write nothing into the result channel
    watch = _Watch(int(sys.argv[1]))
    _guard_resolver()
    import yt_dlp  # noqa: F401 (loaded once for every fetch this child serves)

    _decode_credentials()
    source = sys.stdin.buffer
    while len(head := source.read(8)) == 8:
        request = pickle.loads(source.read(int.from_bytes(head, "big")))
        watch.until = time.monotonic() + request["seconds"] + GRACE_S
        result = _fetch(request, _Log())
        watch.until = None
        out.write(json.dumps(result) + "\n")
        out.flush()


policy_module = _load_netpolicy()

if __name__ == "__main__":
    main()
