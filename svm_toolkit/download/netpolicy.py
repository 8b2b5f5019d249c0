"""Where the downloader may connect: http(s) only, never link-local or cloud-metadata addresses.

One policy decides every fetch (direct media, yt-dlp pages and fragments, YT8M lookups):

* only ``http`` and ``https`` URLs, on the first request and after every redirect;
* link-local (``169.254.0.0/16``, ``fe80::/10``), multicast and cloud-metadata addresses
  (``169.254.169.254``, ``100.100.100.200``, ``fd00:ec2::254``, ...) are always refused;
* loopback, private and other non-public ranges (``127.0.0.0/8``, ``10.0.0.0/8``,
  ``192.168.0.0/16``, ``100.64.0.0/10``, ``fc00::/7``, ``::1``...) are refused unless asked for with
  ``--allow-private-hosts`` or the environment variable ``SVM_ALLOW_PRIVATE_HOSTS=1``;
* the user's own ``--deny-host`` entries (host names, which also cover their subdomains, CIDRs,
  and bare addresses, which are ``/32`` or ``/128`` networks) are refused, whatever name resolves
  to them.

The proxy the user configured is the one exemption: its own host and port, and only where the
socket connects (:meth:`NetPolicy.exempts`); a URL naming the proxy's host is checked as any other.

Addresses are checked where the socket connects (after DNS), so a name that resolves to a refused
address is refused too, whatever it resolved to before (DNS rebinding). A refusal is an
:class:`OSError` whose message starts with :data:`REFUSED`; the classifier maps it to the
``refused_host`` status.

This module uses the standard library only: the yt-dlp child process loads it by its path.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

#: The environment variable that allows loopback and private addresses (value ``1``).
ENV_ALLOW_PRIVATE: Final = "SVM_ALLOW_PRIVATE_HOSTS"
#: Every refusal message starts with this (the classifier's ``refused_host`` rule).
REFUSED: Final = "refused by the network policy"
SCHEMES: Final = frozenset({"http", "https"})

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Cloud instance-metadata endpoints outside the link-local range (always refused).
METADATA: Final[tuple[_Address, ...]] = (
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6
    ipaddress.ip_address("192.0.0.192"),  # Oracle Cloud (classic)
)
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
_PRIVATE_HINT: Final = f"pass --allow-private-hosts or set {ENV_ALLOW_PRIVATE}=1 to allow it"
#: A proxy URL's port when it names none.
_PROXY_PORTS: Final = {"http": 80, "https": 443, "socks4": 1080, "socks4a": 1080, "socks5": 1080,
                       "socks5h": 1080}  # fmt: skip


class Refused(OSError):
    """A connection the network policy does not allow (the message says which and why)."""


def env_allows_private(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``SVM_ALLOW_PRIVATE_HOSTS`` is set to ``1`` (or ``true``/``yes``)."""
    value = (os.environ if environ is None else environ).get(ENV_ALLOW_PRIVATE, "")
    return value.strip().lower() in {"1", "true", "yes"}


def _unwrap(address: _Address) -> _Address:
    """The IPv4 address inside an IPv4-mapped or NAT64 IPv6 address, else ``address``."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _parse_ip(text: str) -> _Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class NetPolicy:
    """The rules of one run.

    Attributes:
        allow_private: allow loopback and private addresses (link-local/metadata stay refused).
        deny: the user's refused hosts: names (a name also covers its subdomains), CIDRs and
            addresses (one-address networks).
        exempt: ``(host, port)`` pairs connected to without a check: the proxy the user
            configured (never exempt in :meth:`url_refusal`, only in :meth:`resolve`).
    """

    allow_private: bool = False
    deny: tuple[str, ...] = ()
    exempt: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        for entry in self.deny:
            if not entry.strip():
                raise ValueError("a --deny-host entry is empty")
            if "/" in entry:
                ipaddress.ip_network(entry, strict=False)  # ValueError names the entry

    @classmethod
    def create(
        cls, *, allow_private: bool = False, deny: Iterable[str] = (), proxy: str | None = None
    ) -> NetPolicy:
        """The policy of a run: ``allow_private`` or the environment variable allows private."""
        return cls(
            allow_private=allow_private or env_allows_private(),
            deny=tuple(d.strip().lower() for d in deny),
            exempt=_proxy_address(proxy),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain values (for the yt-dlp child process)."""
        return {"allow_private": self.allow_private, "deny": self.deny, "exempt": self.exempt}

    @property
    def _deny_networks(self) -> tuple[_Network, ...]:
        networks: list[_Network] = []
        for entry in self.deny:
            if "/" in entry:
                networks.append(ipaddress.ip_network(entry, strict=False))
            elif (ip := _parse_ip(entry)) is not None:  # a bare address: a one-address network
                networks.append(ipaddress.ip_network(ip))
        return tuple(networks)

    @property
    def _deny_names(self) -> tuple[str, ...]:
        return tuple(
            d.rstrip(".").lower() for d in self.deny if "/" not in d and _parse_ip(d) is None
        )

    def exempts(self, host: str, port: object) -> bool:
        """Whether connecting to ``host:port`` is the configured proxy (connected unchecked)."""
        try:
            number = int(port)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return False
        return (host.strip("[]").rstrip(".").lower(), number) in self.exempt

    def url_refusal(self, url: str) -> str | None:
        """Why ``url`` may not be fetched (scheme, denied name, refused literal IP), or None."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            return f"{REFUSED}: {scheme or 'no'} scheme in {url[:200]!r} (only http and https)"
        host = parts.hostname or ""
        if not host:
            return f"{REFUSED}: {url[:200]!r} names no host"
        return self.host_refusal(host)

    def host_refusal(self, host: str) -> str | None:
        """Why a host name or literal address is refused before it is resolved, or None."""
        host = host.strip("[]").rstrip(".").lower()
        for name in self._deny_names:
            if host == name or host.endswith("." + name):
                return f"{REFUSED}: host {host} matches --deny-host {name}"
        address = _parse_ip(host)
        return None if address is None else self.address_refusal(str(address), host)

    def address_refusal(self, address: str, host: str | None = None) -> str | None:
        """Why connecting to ``address`` (resolved from ``host``) is refused, or None."""
        parsed = _parse_ip(address)
        if parsed is None:
            return f"{REFUSED}: {address!r} is not an IP address"
        ip = _unwrap(parsed)
        where = str(parsed) if host is None or _parse_ip(host) is not None else f"{parsed} ({host})"
        if ip in METADATA or parsed in METADATA:
            return f"{REFUSED}: {where} is a cloud metadata address (never allowed)"
        if ip.is_link_local:
            return f"{REFUSED}: {where} is link-local, where cloud metadata lives (never allowed)"
        if ip.is_multicast:
            return f"{REFUSED}: {where} is a multicast address (never allowed)"
        for network in self._deny_networks:
            for candidate in {ip, parsed}:
                if candidate.version == network.version and candidate in network:
                    return f"{REFUSED}: {where} is in --deny-host {network}"
        if not ip.is_global and not self.allow_private:
            kind = "loopback" if ip.is_loopback else "private or reserved"
            return f"{REFUSED}: {where} is a {kind} address; {_PRIVATE_HINT}"
        return None

    def resolve(self, host: str, port: int) -> list[tuple[Any, ...]]:
        """``getaddrinfo`` for a TCP connection, every answer checked (unless it is the proxy).

        Raises:
            Refused: the name or any address it resolves to is refused.
            OSError: the name does not resolve.
        """
        if self.exempts(host, port):
            return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        if why := self.host_refusal(host):
            raise Refused(why)
        answers = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        self.check_answers(host, answers)
        return answers

    def check_answers(self, host: str, answers: Iterable[tuple[Any, ...]]) -> None:
        """Raise :class:`Refused` when any resolved address of ``host`` is refused."""
        for answer in answers:
            if why := self.address_refusal(str(answer[4][0]), host):
                raise Refused(why)

    def connect(
        self,
        address: tuple[str, int],
        timeout: object = None,
        source_address: tuple[str, int] | None = None,
    ) -> socket.socket:
        """``socket.create_connection`` that connects only to addresses the policy allows.

        The socket connects to the checked address itself, so the name is resolved once.

        Raises:
            Refused: the host or an address it resolves to is refused.
            OSError: no address could be connected to.
        """
        host, port = address
        error: OSError | None = None
        for family, kind, proto, _, sockaddr in self.resolve(host, port):
            sock = socket.socket(family, kind, proto)
            try:
                if isinstance(timeout, int | float):  # not http.client's "default" sentinel
                    sock.settimeout(timeout)
                if source_address is not None:
                    sock.bind(source_address)
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            return sock
        raise error or OSError(f"no address for {host}")


def _proxy_address(proxy: str | None) -> tuple[tuple[str, int], ...]:
    """The proxy's ``(host, port)`` (its scheme's default port when it names none), or ``()``.

    Example:
        >>> _proxy_address("http://Proxy.example:3128"), _proxy_address("10.0.0.1:8080")
        ((('proxy.example', 3128),), (('10.0.0.1', 8080),))
    """
    if not proxy:
        return ()
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    try:
        port = parts.port or _PROXY_PORTS.get(parts.scheme.lower())
    except ValueError:  # a port out of range: nothing is exempt
        return ()
    if not parts.hostname or port is None:
        return ()
    return ((parts.hostname.rstrip(".").lower(), port),)
