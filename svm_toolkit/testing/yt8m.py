"""YouTube-8M test doubles: synthetic records, vocabulary files and a pseudo-id lookup stub.

Example:
    >>> videos = synthetic_videos(3, labels=lambda i: (14,), seconds=4)
    >>> write_yt8m(tmp / "train0000.tfrecord", videos, layout=Layout.FRAME)  # doctest: +SKIP
    >>> with Yt8mLookupStub({v.yt8m_id: "dQw4w9WgXcQ" for v in videos}) as stub:  # doctest: +SKIP
    ...     ResolveConfig(lookup_base=stub.base_url)
"""

from __future__ import annotations

import csv
import re
import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from svm_toolkit.testing.http import BackgroundServer
from svm_toolkit.yt8m.proto import FeatureValue, encode_example, encode_sequence_example
from svm_toolkit.yt8m.records import AUDIO_DIM, RGB_DIM, Layout, dequantize
from svm_toolkit.yt8m.tfrecord import write_records

#: The 2018 vocabulary.csv header (research.google.com/youtube8m).
VOCABULARY_2018_COLUMNS: Final = (
    "Index", "TrainVideoCount", "KnowledgeGraphId", "Name", "WikiUrl",
    "Vertical1", "Vertical2", "Vertical3", "WikiDescription",
)  # fmt: skip
#: What a storage bucket answers for an object that does not exist.
GCS_NO_SUCH_KEY: Final = (
    "<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code>"
    "<Message>The specified key does not exist.</Message></Error>"
)
GCS_ACCESS_DENIED: Final = (
    "<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>"
    "<Message>Access denied.</Message></Error>"
)
#: What a storage service answers while it sheds load (a 503 with an XML error document).
XML_SERVICE_UNAVAILABLE: Final = (
    "<?xml version='1.0' encoding='UTF-8'?><Error><Code>ServiceUnavailable</Code>"
    "<Message>Reduce your request rate.</Message></Error>"
)
SLOW_YOUTUBE_ID: Final = "slowAnswer0"
FLAKY_YOUTUBE_ID: Final = "flakyAnswer"
_LOOKUP_PATH: Final = re.compile(r"/2/j/i/(?P<prefix>[^/]{2})/(?P<pid>[^/]+)\.js")


@dataclass(frozen=True, slots=True)
class SyntheticVideo:
    """A YT8M video's content: per-second quantised features and its labels.

    Attributes:
        yt8m_id: the record id (4 characters for 2018+ pseudo ids).
        labels: vocabulary indices.
        rgb: uint8, shape (T, 1024), one row per second.
        audio: uint8, shape (T, 128).
    """

    yt8m_id: str
    labels: tuple[int, ...]
    rgb: npt.NDArray[np.uint8]
    audio: npt.NDArray[np.uint8]

    def example(self, *, id_key: str = "id") -> bytes:
        """The video-level ``tf.train.Example``: means of the dequantised seconds."""
        return encode_example(
            {
                id_key: [self.yt8m_id.encode()],
                "labels": np.asarray(self.labels, dtype=np.int64),
                "mean_rgb": dequantize(self.rgb).mean(axis=0),
                "mean_audio": dequantize(self.audio).mean(axis=0),
            }
        )

    def sequence_example(self, *, id_key: str = "id") -> bytes:
        """The frame-level ``tf.train.SequenceExample``: one byte string per second."""
        context: dict[str, FeatureValue] = {
            id_key: [self.yt8m_id.encode()],
            "labels": np.asarray(self.labels, dtype=np.int64),
        }
        lists = {
            "rgb": [[row.tobytes()] for row in self.rgb],
            "audio": [[row.tobytes()] for row in self.audio],
        }
        return encode_sequence_example(context, lists)


def synthetic_videos(
    count: int,
    *,
    labels: Callable[[int], Sequence[int]],
    seconds: int = 5,
    seed: int = 0,
) -> list[SyntheticVideo]:
    """Make ``count`` videos with unique 4-character ids and random features.

    Args:
        count: number of videos.
        labels: label indices of the i-th video.
        seconds: seconds of features per video.
        seed: random seed.
    """
    rng = np.random.default_rng(seed)
    alphabet = np.array(list(string.ascii_letters + string.digits))
    ids: dict[str, None] = {}
    while len(ids) < count:
        ids["".join(rng.choice(alphabet, 4))] = None
    return [
        SyntheticVideo(
            yt8m_id=pid,
            labels=tuple(labels(i)),
            rgb=rng.integers(0, 256, (seconds, RGB_DIM), dtype=np.uint8),
            audio=rng.integers(0, 256, (seconds, AUDIO_DIM), dtype=np.uint8),
        )
        for i, pid in enumerate(ids)
    ]


def write_yt8m(
    path: Path, videos: Sequence[SyntheticVideo], *, layout: Layout, id_key: str = "id"
) -> Path:
    """Write videos as one TFRecord file of the given layout (``id_key="video_id"`` for 2017)."""
    encode = SyntheticVideo.sequence_example if layout is Layout.FRAME else SyntheticVideo.example
    write_records(path, (encode(v, id_key=id_key) for v in videos))
    return Path(path)


def write_vocabulary(path: Path, labels: Mapping[int, str], *, layout: str = "2018") -> Path:
    """Write a vocabulary file in the 2018 (``Index,...,Name,...``) or 2017 layout."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        if layout == "2017":
            writer.writerow(["label_id", "label_name"])
            writer.writerows(sorted(labels.items()))
        else:
            writer.writerow(VOCABULARY_2018_COLUMNS)
            for index, name in sorted(labels.items()):
                wiki = f"https://en.wikipedia.org/wiki/{name.replace(' ', '_')}"
                writer.writerow(
                    [index, 1000 - index, f"/m/{index:05x}", name, wiki, "Arts", "", "", name]
                )
    return Path(path)


class Answer(StrEnum):
    """How the lookup stub answers an id, besides a YouTube id."""

    DELETED = "deleted"  # 403 with a storage XML error (the video is gone)
    SLOW = "slow"  # answers SLOW_YOUTUBE_ID after `slow_s` seconds
    ERROR = "error"  # 500 Internal Server Error
    GARBAGE = "garbage"  # 200 with an HTML page
    FLAKY = "flaky"  # 503 the first time, FLAKY_YOUTUBE_ID after that
    XML_FLAKY = "xmlflaky"  # 503 with XML_SERVICE_UNAVAILABLE the first time, then FLAKY_YOUTUBE_ID
    XML_DOWN = "xmldown"  # 503 with XML_SERVICE_UNAVAILABLE every time


class Yt8mLookupStub(BackgroundServer):
    """A loopback stand-in for YT8M's pseudo-id lookup (``/2/j/i/<id[:2]>/<id>.js``).

    Args:
        answers: pseudo id -> 11-character YouTube id, or an :class:`Answer`. Ids not listed
            get 404 with a ``NoSuchKey`` XML document, as the storage bucket answers.
        slow_s: delay of :attr:`Answer.SLOW`, seconds.

    Attributes:
        requests: number of lookups received per pseudo id.
    """

    def __init__(self, answers: Mapping[str, str | Answer], *, slow_s: float = 2.0) -> None:
        self.answers = dict(answers)
        self.slow_s = slow_s
        self.requests: Counter[str] = Counter()
        super().__init__(_lookup_handler(self))


def _lookup_handler(stub: Yt8mLookupStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            match = _LOOKUP_PATH.fullmatch(self.path.split("?")[0])
            if match is None or match.group("pid")[:2] != match.group("prefix"):
                self._send(HTTPStatus.NOT_FOUND, GCS_NO_SUCH_KEY, "application/xml")
                return
            pid = match.group("pid")
            stub.requests[pid] += 1
            answer = stub.answers.get(pid)
            if answer is None:
                self._send(HTTPStatus.NOT_FOUND, GCS_NO_SUCH_KEY, "application/xml")
            elif answer == Answer.DELETED:
                self._send(HTTPStatus.FORBIDDEN, GCS_ACCESS_DENIED, "application/xml")
            elif answer == Answer.ERROR:
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal Server Error", "text/plain")
            elif answer == Answer.GARBAGE:
                self._send(
                    HTTPStatus.OK,
                    "<html><body>Service temporarily unavailable</body></html>",
                    "text/html",
                )
            elif answer == Answer.FLAKY and stub.requests[pid] == 1:
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, "Service Unavailable", "text/plain")
            elif answer == Answer.XML_DOWN or (
                answer == Answer.XML_FLAKY and stub.requests[pid] == 1
            ):
                self._send(
                    HTTPStatus.SERVICE_UNAVAILABLE, XML_SERVICE_UNAVAILABLE, "application/xml"
                )
            else:
                if answer == Answer.SLOW and stub.stopping.wait(stub.slow_s):
                    return
                if answer == Answer.SLOW:
                    youtube_id = SLOW_YOUTUBE_ID
                elif answer in (Answer.FLAKY, Answer.XML_FLAKY):
                    youtube_id = FLAKY_YOUTUBE_ID
                else:
                    youtube_id = str(answer)
                self._send(HTTPStatus.OK, f'i("{pid}","{youtube_id}");', "application/javascript")

        def _send(self, status: HTTPStatus, body: str, content_type: str) -> None:
            data = body.encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

    return Handler
