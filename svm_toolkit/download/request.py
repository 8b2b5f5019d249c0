"""One HTTP GET that no server can hang or misdirect: a deadline on every byte, the network policy.

* **Deadline.** A watchdog thread shuts the request's sockets down when the sample's deadline
  passes (or the run stops), which ends any blocked read, headers included; each body read also
  waits at most ``min(socket timeout, time left)``. Errors after the watchdog fired are
  :class:`TimeoutError` naming the deadline.
* **Policy.** Every connection goes through :meth:`NetPolicy.connect` (the resolved address is
  checked), every redirect hop through :meth:`NetPolicy.url_refusal`.
* **URLs.** IRIs (``café.mp4``, non-ASCII host names) are encoded to URIs before the request;
  ``user:pass@`` becomes HTTP Basic auth, sent only to that scheme, host and port (also after a
  redirect that stays there, never to another host).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.client
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from svm_toolkit.download.netpolicy import NetPolicy, Refused

#: Characters left as they are when an IRI's path, query or fragment is percent-encoded.
_SAFE: Final = "/?#[]@!$&'()*+,;=:%~-._"


@dataclass(frozen=True, slots=True)
class Deadline:
    """When one sample must be done, and the run-wide stop signal (Ctrl-C)."""

    at: float  # time.monotonic() seconds
    timeout_s: float
    stop: threading.Event

    @classmethod
    def after(cls, timeout_s: float, stop: threading.Event | None = None) -> Deadline:
        """A deadline ``timeout_s`` seconds from now."""
        return cls(time.monotonic() + timeout_s, timeout_s, stop or threading.Event())

    def left(self) -> float:
        """Seconds left, never below 0."""
        return max(0.0, self.at - time.monotonic())

    def passed(self) -> str | None:
        """Why the sample must stop now, or ``None``."""
        if self.stop.is_set():
            return "interrupted"
        if time.monotonic() > self.at:
            return f"timed out after {self.timeout_s:g} s"
        return None


def to_uri(url: str) -> str:
    """Encode an IRI as an ASCII URI: IDNA host, UTF-8 percent-encoded path, query and fragment.

    Already-encoded ``%XX`` sequences, ASCII URLs and their reserved characters are kept.

    Example:
        >>> to_uri("http://example.com/caf\u00e9 1.mp4?q=\u00fc")
        'http://example.com/caf%C3%A9%201.mp4?q=%C3%BC'
    """
    parts = urllib.parse.urlsplit(url.strip())
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not hostport.isascii():
        host, colon, port = hostport.rpartition(":") if "]" not in hostport else (hostport, "", "")
        if not colon or not port.isdigit():
            host, colon, port = hostport, "", ""
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            host = urllib.parse.quote(host, safe="")
        hostport = f"{host}{colon}{port}"
    netloc = urllib.parse.quote(userinfo, safe=_SAFE) + at + hostport

    def enc(text: str) -> str:
        return urllib.parse.quote(text, safe=_SAFE)

    return urllib.parse.urlunsplit(
        (parts.scheme, netloc, enc(parts.path), enc(parts.query), enc(parts.fragment))
    )


def split_credentials(url: str) -> tuple[str, str | None]:
    """Remove ``user:pass@`` from ``url``; return it and the ``Authorization`` header for it.

    Example:
        >>> split_credentials("http://u:p@example.com/a.mp4")
        ('http://example.com/a.mp4', 'Basic dTpw')
    """
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return url, None
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    netloc = parts.netloc.rpartition("@")[2]
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), f"Basic {token}"


def origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of a URL, with the scheme's default port filled in."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port or default


class Watchdog:
    """Shuts a request's sockets down once its deadline passes.

    One daemon thread (:class:`_Patrol`) watches every open request of the process, so a
    request costs no thread start.

    Attributes:
        fired: why it fired (``"timed out after 3 s"``, ``"interrupted"``), or ``None``.
    """

    def __init__(self, deadline: Deadline, socket_timeout_s: float) -> None:
        self.deadline = deadline
        self.socket_timeout_s = socket_timeout_s
        self.fired: str | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        _PATROL.add(self)

    def register(self, sock: socket.socket) -> None:
        """Watch ``sock`` (shut down at the deadline)."""
        with self._lock:
            self._sockets.append(sock)
            fired = self.fired
        if fired:
            _shutdown(sock)

    def arm(self) -> float:
        """Before a read: let it wait at most ``min(socket timeout, time left)``; returns that."""
        wait = max(0.01, min(self.socket_timeout_s, self.deadline.left()))
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.settimeout(wait)
        return wait

    def close(self) -> None:
        """Stop watching (the request is over)."""
        _PATROL.remove(self)

    def check(self) -> bool:
        """Fire if the deadline passed; returns whether it fired."""
        why = self.deadline.passed()
        if not why:
            return False
        with self._lock:
            self.fired = why
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)
        return True


class _Patrol:
    """The thread that checks every open request's deadline every 0.05 s."""

    def __init__(self) -> None:
        self._watches: set[Watchdog] = set()
        self._lock = threading.Lock()
        self._busy = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, watch: Watchdog) -> None:
        with self._lock:
            self._watches.add(watch)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="svm-deadlines", daemon=True)
                self._thread.start()
        self._busy.set()

    def remove(self, watch: Watchdog) -> None:
        with self._lock:
            self._watches.discard(watch)

    def _run(self) -> None:
        while True:
            self._busy.wait()
            with self._lock:
                watches = list(self._watches)
                if not watches:
                    self._busy.clear()
                    continue
            for watch in watches:
                if watch.check():
                    self.remove(watch)
            time.sleep(0.05)


_PATROL: Final = _Patrol()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # closed or detached already
        sock.shutdown(socket.SHUT_RDWR)


def _connection_class(
    base: type[http.client.HTTPConnection], policy: NetPolicy, watch: Watchdog
) -> type[http.client.HTTPConnection]:
    """``base`` whose sockets connect through ``policy`` and are watched by ``watch``."""

    class Checked(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = self._checked_connection

        def _checked_connection(
            self, address: tuple[str, int], timeout: object = None, source: Any = None
        ) -> socket.socket:
            sock = policy.connect(address, timeout, source)
            watch.register(sock)
            return sock

        def connect(self) -> None:
            super().connect()
            watch.register(self.sock)  # the TLS socket, for HTTPS

    return Checked


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, connection: type[http.client.HTTPConnection]) -> None:
        super().__init__()
        self._connection = connection

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self._connection, req)


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every request (loading the CA store costs about 20 ms)."""
    return ssl.create_default_context()


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, connection: type[http.client.HTTPConnection]) -> None:
        super().__init__(context=_tls())
        self._connection = connection

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self._connection, req, context=self._context)  # type: ignore[attr-defined]


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Check every redirect hop with the policy; keep Basic auth only on the same origin."""

    def __init__(self, policy: NetPolicy, auth: tuple[tuple[str, str, int | None], str] | None):
        super().__init__()
        self.policy = policy
        self.auth = auth

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        newurl = to_uri(newurl)
        if why := self.policy.url_refusal(newurl):
            raise Refused(f"{why} (redirected from {req.full_url[:200]})")
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and self.auth is not None and origin(newurl) == self.auth[0]:
            new.add_unredirected_header("Authorization", self.auth[1])
        return new


class HTTPStatusError(Exception):
    """The server answered with an HTTP error status.

    Attributes:
        code: the status code.
        reason: its reason phrase.
        head: the start of the answer's body (at most 300 characters).
    """

    def __init__(self, code: int, reason: str, head: str) -> None:
        super().__init__(f"HTTP Error {code}: {reason}. {head}".strip())
        self.code, self.reason, self.head = code, reason, head


def _head(error: urllib.error.HTTPError, watch: Watchdog) -> str:
    """The start of an error answer's body, read within the deadline ('' when it never came)."""
    watch.arm()
    try:
        fp = error.fp
        data = fp.read1(300) if hasattr(fp, "read1") else error.read(300)
    except (OSError, http.client.HTTPException, ValueError):
        return ""
    return bytes(data).decode(errors="replace").strip()


@dataclass
class Opened:
    """An answered request: its response and the watchdog guarding it."""

    response: http.client.HTTPResponse
    watch: Watchdog

    def read1(self, size: int) -> bytes:
        """Read at most ``size`` bytes as soon as any arrive, within the deadline.

        Raises:
            TimeoutError: the deadline passed (the watchdog shut the socket down).
            OSError, http.client.HTTPException: the connection failed.
        """
        wait = self.watch.arm()
        with _deadline_errors(self.watch):
            try:
                data = self.response.read1(size)
            except TimeoutError:
                deadline = self.watch.deadline
                if wait < self.watch.socket_timeout_s:  # the deadline cut this wait short
                    raise TimeoutError(f"timed out after {deadline.timeout_s:g} s") from None
                raise
        if not data and self.watch.fired:
            raise TimeoutError(self.watch.fired)
        return data


@contextlib.contextmanager
def _deadline_errors(watch: Watchdog) -> Iterator[None]:
    """Errors that happen because the watchdog fired are that deadline's ``TimeoutError``."""
    try:
        yield
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if watch.fired and not isinstance(exc, urllib.error.HTTPError):
            raise TimeoutError(watch.fired) from None
        raise


@contextlib.contextmanager
def open_url(
    url: str,
    *,
    policy: NetPolicy,
    deadline: Deadline,
    socket_timeout_s: float,
    proxy: str | None = None,
    headers: dict[str, str] | None = None,
) -> Iterator[Opened]:
    """GET ``url`` under the policy and the deadline; yields the answered request.

    Raises:
        Refused: the URL, a redirect or a resolved address is refused by the policy.
        TimeoutError: the deadline passed (headers included) or a read waited too long.
        HTTPStatusError: the server answered with an error status.
        OSError, http.client.HTTPException: other network failures.
    """
    target, auth = split_credentials(to_uri(url))
    if why := policy.url_refusal(target):
        raise Refused(why)
    watch = Watchdog(deadline, socket_timeout_s)
    try:
        handlers: list[urllib.request.BaseHandler] = [
            _HTTPHandler(_connection_class(http.client.HTTPConnection, policy, watch)),
            _HTTPSHandler(_connection_class(http.client.HTTPSConnection, policy, watch)),
            _Redirects(policy, None if auth is None else (origin(target), auth)),
        ]
        if proxy:
            handlers.append(urllib.request.ProxyHandler({"http": proxy, "https": proxy}))
        opener = urllib.request.build_opener(*handlers)
        request = urllib.request.Request(target, headers=headers or {})
        if auth is not None:
            request.add_unredirected_header("Authorization", auth)
        if why := deadline.passed():
            raise TimeoutError(why)
        try:
            with _deadline_errors(watch):
                response = opener.open(
                    request, timeout=min(socket_timeout_s, deadline.left() + 0.01)
                )
        except urllib.error.HTTPError as exc:
            raise HTTPStatusError(exc.code, str(exc.reason), _head(exc, watch)) from None
        with response:
            yield Opened(response, watch)
    finally:
        watch.close()
