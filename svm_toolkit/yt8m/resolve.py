"""Resolve YouTube-8M pseudo ids to YouTube ids through the official lookup files.

``<base>/2/j/i/<id[:2]>/<id>.js`` answers ``i("<id>","<11-char YouTube id>");``; a deleted video
answers 404 or 403 with a storage XML error page (``unavailable``). Each outcome is a row of
``ledger/resolve-*.parquet``, which is also the cache: an id that resolved or is gone is never
asked again; a retryable failure (timeout, 429, 5xx whatever its body says, an XML error
document included, a garbage answer) is asked again on the next run. Lookups run
concurrently, each retried with exponential backoff and jitter.
"""

from __future__ import annotations

import datetime as dt
import http.client
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow as pa

from svm_toolkit.classify import RETRYABLE, classify
from svm_toolkit.config import to_dict
from svm_toolkit.download.details import body_gist, http_detail, one_line
from svm_toolkit.download.netpolicy import NetPolicy, Refused
from svm_toolkit.download.pacing import ConnectFailures, ServiceDown
from svm_toolkit.download.request import Deadline, HTTPStatusError, open_url
from svm_toolkit.io.compact import compact_writers
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import ShardLimits, ShardWriter, read_shards
from svm_toolkit.schema import COL, Status, ledger_schema, with_provenance
from svm_toolkit.yt8m.config import ResolveConfig

logger = logging.getLogger(__name__)

STAGE: Final = "resolve"
FINAL: Final = frozenset({Status.OK.value, Status.UNAVAILABLE.value})
_ANSWER: Final = re.compile(rb'\s*i\("(?P<pid>[^"]{1,32})","(?P<yt>[A-Za-z0-9_-]{11})"\);?\s*')
_MAX_BODY: Final = 4096
#: What the storage bucket's XML error document says for an object that does not exist.
_GONE: Final = re.compile(r"<Code>\s*(NoSuchKey|AccessDenied)\s*</Code>")
#: Commit the ledger every this many lookups, so a killed run re-asks at most this many.
_SHARD_ROWS: Final = 500


@dataclass(frozen=True, slots=True)
class Resolution:
    """The outcome of looking one pseudo id up."""

    pseudo_id: str
    status: str
    youtube_id: str | None
    detail: str | None
    attempts: int
    started_at: dt.datetime
    seconds: float


def lookup_url(base: str, pseudo_id: str) -> str:
    """Return the lookup file's URL for ``pseudo_id``.

    Example:
        >>> lookup_url("http://data.yt8m.org", "XE00")
        'http://data.yt8m.org/2/j/i/XE/XE00.js'
    """
    return f"{base.rstrip('/')}/2/j/i/{pseudo_id[:2]}/{pseudo_id}.js"


def ask(pseudo_id: str, config: ResolveConfig) -> tuple[Status, str | None, str | None]:
    """Look one id up once; return ``(status, youtube id, detail)``.

    The request ends by ``timeout_s`` however slowly the server answers (headers included) and
    connects only where the download network policy allows (``allow_private_hosts`` or
    ``SVM_ALLOW_PRIVATE_HOSTS=1`` for a lookup mirror on loopback or a private network).
    """
    url = lookup_url(config.lookup_base, pseudo_id)
    deadline = Deadline.after(config.timeout_s)
    policy = NetPolicy.create(allow_private=config.allow_private_hosts, deny=config.deny_hosts)
    try:
        with open_url(
            url, policy=policy, deadline=deadline, socket_timeout_s=config.timeout_s
        ) as opened:
            body = b""
            while len(body) < _MAX_BODY and (chunk := opened.read1(_MAX_BODY - len(body))):
                body += chunk
    except HTTPStatusError as exc:
        return _http_status(exc), None, http_detail(exc.code, exc.reason, exc.head)
    except Refused as exc:
        return Status.REFUSED_HOST, None, str(exc)[:500]
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, cut answers
        reason = getattr(exc, "reason", exc)
        message = f"{type(reason).__name__}: {reason}"
        if isinstance(reason, TimeoutError):
            return Status.TIMEOUT, None, f"timed out after {config.timeout_s:g} s"
        return classify(message) or Status.NETWORK_ERROR, None, message
    match = _ANSWER.fullmatch(body)
    if match and match.group("pid").decode() == pseudo_id:
        return Status.OK, match.group("yt").decode(), None
    text = body.decode(errors="replace").strip()
    if _GONE.search(text):  # the bucket's "no such object", even with a 200
        return (
            Status.UNAVAILABLE,
            None,
            f"lookup answered with an error document: {body_gist(text)}",
        )
    return Status.NETWORK_ERROR, None, f"unexpected answer from the lookup: {one_line(text, 120)!r}"


def _http_status(exc: HTTPStatusError) -> Status:
    """The status of an HTTP error answer: its code decides before any body text.

    A 5xx is the service's trouble (retried, asked again next run) whatever its body says, an
    XML error document included; a 404, 403 or 410 (``NoSuchKey``, ``AccessDenied``) is gone.
    """
    if exc.code >= 500:
        return Status.NETWORK_ERROR
    if exc.code == 429:
        return Status.RATE_LIMITED
    if exc.code in (403, 404, 410):
        return Status.UNAVAILABLE
    return classify(f"HTTP Error {exc.code}: {exc.reason}. {exc.head}") or Status.NETWORK_ERROR


def resolve_one(
    pseudo_id: str,
    config: ResolveConfig,
    *,
    sleep: Callable[[float], None] = time.sleep,
    connects: ConnectFailures | None = None,
) -> Resolution:
    """Look an id up, retrying retryable failures with exponential backoff and jitter.

    Args:
        pseudo_id: the id.
        config: the lookup settings.
        sleep: waits that many seconds between tries.
        connects: the run's count of lookups in a row that could not connect.

    Raises:
        ServiceDown: ``connects`` reached its limit (before this id got an answer).
    """
    started = dt.datetime.now(dt.UTC)
    clock = time.perf_counter()
    attempt = 0
    while True:
        attempt += 1
        if connects is not None:
            connects.check()
        status, youtube_id, detail = ask(pseudo_id, config)
        if connects is not None:
            connects.record(status.value, detail)
        if status not in RETRYABLE or attempt >= config.max_attempts:
            break
        pause = min(config.backoff_max_s, config.backoff_s * 2 ** (attempt - 1))
        sleep(pause * random.uniform(0.5, 1.5))
    return Resolution(
        pseudo_id, status.value, youtube_id, detail, attempt, started, time.perf_counter() - clock
    )


def resolved(dataset: Path) -> dict[str, Resolution]:
    """Return the newest committed lookup of every pseudo id in the dataset's ledger."""
    table = read_shards(DatasetLayout(Path(dataset)).ledger_dir, STAGE)
    if table is None:
        return {}
    rows = table.to_pylist()
    return {
        row[COL.sample_id]: Resolution(
            pseudo_id=row[COL.sample_id],
            status=row[COL.status],
            youtube_id=row[COL.youtube_id],
            detail=row[COL.detail],
            attempts=row[COL.attempts],
            started_at=row[COL.started_at],
            seconds=row[COL.seconds],
        )
        for row in rows
    }


def resolve_ids(
    pseudo_ids: Sequence[str],
    dataset: Path,
    config: ResolveConfig,
    *,
    on_done: Callable[[Resolution], None] | None = None,
) -> dict[str, Resolution]:
    """Resolve the ids not already resolved (or gone) in the dataset's ledger.

    Args:
        pseudo_ids: ids to resolve.
        dataset: the dataset root; outcomes go to ``ledger/resolve-*.parquet``.
        config: lookup base, concurrency, timeouts and retries.
        on_done: called after each lookup (progress).

    Returns:
        The newest outcome of every id in ``pseudo_ids``.

    Raises:
        ServiceDown: ``max_connect_failures`` lookups in a row could not connect; the answers
            so far are committed, the ids not answered are asked on the next run.
    """
    known = resolved(dataset)
    todo = [
        pid
        for pid in dict.fromkeys(pseudo_ids)
        if known.get(pid) is None or known[pid].status not in FINAL
    ]
    logger.info(
        "resolve: %d ids, %d known, %d to look up",
        len(pseudo_ids),
        len(pseudo_ids) - len(todo),
        len(todo),
    )
    if todo:
        schema = with_provenance(
            ledger_schema(pa.field(COL.youtube_id, pa.string())), STAGE, to_dict(config)
        )
        layout = DatasetLayout(Path(dataset))
        limits = ShardLimits(max_rows=_SHARD_ROWS)
        with ShardWriter(layout.ledger_dir, STAGE, schema, limits=limits) as writer:
            pool = ThreadPoolExecutor(max_workers=config.concurrency)
            connects = ConnectFailures(
                config.max_connect_failures,
                what="lookups",
                resume="run the same command again (ids already answered are not asked again)",
            )
            down: ServiceDown | None = None
            try:
                futures = [pool.submit(resolve_one, pid, config, connects=connects) for pid in todo]
                for future in as_completed(futures):
                    if future.cancelled():
                        continue
                    try:
                        result = future.result()
                    except ServiceDown as exc:  # the answers in flight are still written
                        if down is None:
                            down = exc
                            pool.shutdown(wait=False, cancel_futures=True)
                        continue
                    writer.write([_row(result)])
                    known[result.pseudo_id] = result
                    if on_done is not None:
                        on_done(result)
            finally:  # on Ctrl-C, drop queued lookups instead of waiting for them
                pool.shutdown(wait=True, cancel_futures=True)
            if down is not None:  # the rows written above are committed as the writer closes
                raise down
        compact_writers(layout.root, [writer])
    return {pid: known[pid] for pid in pseudo_ids if pid in known}


def _row(result: Resolution) -> dict[str, object]:
    return {
        COL.sample_id: result.pseudo_id,
        COL.stage: STAGE,
        COL.status: result.status,
        COL.detail: None if result.detail is None else result.detail[:500],
        COL.attempts: result.attempts,
        COL.started_at: result.started_at,
        COL.seconds: result.seconds,
        COL.youtube_id: result.youtube_id,
    }
