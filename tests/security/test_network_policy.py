"""Where `svm download` may connect: http(s) only, never link-local or metadata addresses,
loopback and private ones only when asked for, the user's own deny list; checked after DNS and
on every redirect hop, on the direct path and inside the yt-dlp child alike."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from svm_toolkit.download.netpolicy import ENV_ALLOW_PRIVATE, NetPolicy, Refused
from svm_toolkit.download.request import Deadline, open_url
from svm_toolkit.errors import ConfigError
from svm_toolkit.manifest import ManifestConfig, build_manifest
from svm_toolkit.testing import LoopbackServer, MediaSpec, Route, make_media
from svm_toolkit.yt8m.config import ResolveConfig
from svm_toolkit.yt8m.resolve import resolve_ids
from tests.faults.download_helpers import dataset, ledger, svm_download
from tests.manifest.helpers import write_list

NEVER = ["169.254.169.254", "169.254.0.1", "fe80::1", "100.100.100.200", "fd00:ec2::254",
         "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "224.0.0.1"]  # fmt: skip
PRIVATE = ["127.0.0.1", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "0.0.0.0",
           "fc00::1", "::ffff:127.0.0.1"]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackServer]:
    root = tmp_path_factory.mktemp("served")
    make_media(root / "clip.mp4", MediaSpec(seconds=1, size=(96, 64)))
    for name in ("auth_direct.mp4", "auth_same.mp4", "auth_other.mp4", "auth_page.mp4"):
        shutil.copy(root / "clip.mp4", root / name)
    with LoopbackServer(root) as srv:
        yield srv


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy as a user gets it: loopback refused (the test session allows it)."""
    monkeypatch.delenv(ENV_ALLOW_PRIVATE, raising=False)


@pytest.mark.parametrize("address", NEVER)
def test_link_local_metadata_and_multicast_are_always_refused(address: str) -> None:
    for policy in (NetPolicy(), NetPolicy(allow_private=True)):
        assert policy.address_refusal(address) is not None, (address, policy)


@pytest.mark.parametrize("address", PRIVATE)
def test_loopback_and_private_need_asking_for(address: str) -> None:
    why = NetPolicy().address_refusal(address)
    assert why is not None and "--allow-private-hosts" in why and ENV_ALLOW_PRIVATE in why
    assert NetPolicy(allow_private=True).address_refusal(address) is None


def test_public_addresses_schemes_and_the_deny_list() -> None:
    policy = NetPolicy()
    assert policy.address_refusal("93.184.216.34") is None
    assert policy.address_refusal("2606:4700::1111") is None
    assert policy.url_refusal("https://example.com/a.mp4") is None
    for url in ("ftp://example.com/a.mp4", "file:///etc/passwd", "gopher://x/", "data:,x"):
        assert "only http and https" in str(policy.url_refusal(url))
    deny = NetPolicy(deny=("example.com", "203.0.113.0/24", "8.8.8.8"))
    assert deny.url_refusal("http://cdn.example.com/x") is not None
    assert deny.url_refusal("http://notexample.com/x") is None
    assert "203.0.113.0/24" in str(deny.address_refusal("203.0.113.9", "media.org"))
    assert deny.url_refusal("http://8.8.8.8/x") is not None
    assert NetPolicy.create(deny=["Example.COM"]).url_refusal("http://example.com./x") is not None


def test_loopback_is_refused_unless_asked_for(
    tmp_path: Path, server: LoopbackServer, no_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = urlsplit(server.base_url).port
    urls = {
        "direct": server.url(Route.MEDIA, "clip.mp4"),
        "page": server.url(Route.PAGE, "clip.mp4"),
        "byname": f"http://localhost:{port}/media/clip.mp4",  # checked after DNS
    }
    ds = dataset(tmp_path, urls)
    result = svm_download(ds)
    assert result.returncode == 0, result.stderr
    rows = ledger(ds)
    assert {r["status"] for r in rows.values()} == {"refused_host"}
    assert "127.0.0.1 is a loopback address" in str(rows["direct"]["detail"])
    assert "--allow-private-hosts" in str(rows["direct"]["detail"])
    assert "(localhost)" in str(rows["byname"]["detail"])
    assert all(r["attempts"] == 1 for r in rows.values())  # never retried
    # asked for: the flag, or the environment variable
    allowed = svm_download(ds, "--allow-private-hosts", "--retry", "refused_host")
    assert allowed.returncode == 0 and {r["status"] for r in ledger(ds).values()} == {"ok"}
    monkeypatch.setenv(ENV_ALLOW_PRIVATE, "1")
    ds2 = dataset(tmp_path, urls, name="ds2")
    assert svm_download(ds2).returncode == 0
    assert {r["status"] for r in ledger(ds2).values()} == {"ok"}


def test_redirects_and_pages_cannot_lead_elsewhere(tmp_path: Path, server: LoopbackServer) -> None:
    port = urlsplit(server.base_url).port
    by_name = f"http://localhost:{port}/media/clip.mp4"
    urls = {
        "to_ftp": server.url(Route.REDIRECT, "ftp://127.0.0.1/clip.mp4"),
        "to_metadata": server.url(Route.REDIRECT, "http://169.254.169.254/latest/meta-data/"),
        "to_denied": server.url(Route.REDIRECT, by_name),
        "page_metadata": server.url(Route.PAGE_TO, "http://169.254.169.254/clip.mp4"),
        "page_file": server.url(Route.PAGE_TO, "file:///etc/passwd"),
        "page_denied": server.url(Route.PAGE_TO, by_name),  # the yt-dlp child checks names too
        "page_ok": server.url(Route.PAGE, "clip.mp4"),
    }
    ds = dataset(tmp_path, urls)
    result = svm_download(ds, "--deny-host", "localhost", "--timeout", "20")
    assert result.returncode == 0, result.stderr
    rows = ledger(ds)
    assert {k: r["status"] for k, r in rows.items()} == {
        **{k: "refused_host" for k in urls if k != "page_ok"},
        "page_ok": "ok",
    }
    assert "169.254.169.254" in str(rows["to_metadata"]["detail"])
    assert "169.254.169.254" in str(rows["page_metadata"]["detail"])
    assert "file:///etc/passwd" in str(rows["page_file"]["detail"])
    assert "ftp" in str(rows["to_ftp"]["detail"])
    assert "--deny-host localhost" in str(rows["to_denied"]["detail"])
    assert "--deny-host localhost" in str(rows["page_denied"]["detail"])
    again = svm_download(ds, "--deny-host", "localhost")
    assert again.returncode == 0 and "0 videos (7 done before)" in again.stdout


def test_deny_host_takes_cidrs_and_refuses_a_bad_one(
    tmp_path: Path, server: LoopbackServer
) -> None:
    ds = dataset(tmp_path, {"a": server.url(Route.MEDIA, "clip.mp4")})
    bad = svm_download(ds, "--deny-host", "10.0.0.0/33")
    assert bad.returncode == 2 and "--deny-host" in bad.stderr
    assert svm_download(ds, "--deny-host", "127.0.0.0/8").returncode == 0
    (row,) = ledger(ds).values()
    assert row["status"] == "refused_host" and "127.0.0.0/8" in str(row["detail"])


def test_credentials_in_the_url_are_basic_auth_for_that_host_only(
    tmp_path: Path, server: LoopbackServer
) -> None:
    base = server.base_url.replace("http://", "http://user:s%40cret@")
    port = urlsplit(server.base_url).port
    urls = {
        "direct": f"{base}/media/auth_direct.mp4",
        "same_host": f"{base}/redirect/" + server.url(Route.MEDIA, "auth_same.mp4"),
        "other_host": f"{base}/redirect/http://localhost:{port}/media/auth_other.mp4",
        # yt-dlp: the page's relative <video> inherits the credentials, its redirect does not
        "page": f"{base}/pageto//redirect/http://localhost:{port}/media/auth_page.mp4",
    }
    ds = dataset(tmp_path, urls)
    assert svm_download(ds).returncode == 0
    assert {r["status"] for r in ledger(ds).values()} == {"ok"}
    sent = dict(zip(server.requests, server.authorization, strict=True))
    expected = "Basic dXNlcjpzQGNyZXQ="  # user:s@cret
    assert sent["/media/auth_direct.mp4"] == expected
    assert sent["/media/auth_same.mp4"] == expected  # a redirect on the same host keeps it
    assert sent["/media/auth_other.mp4"] is None  # never sent to another host
    assert sent[f"/redirect/http://localhost:{port}/media/auth_page.mp4"] == expected
    assert sent["/media/auth_page.mp4"] is None


def test_yt8m_lookups_follow_the_policy(
    tmp_path: Path, server: LoopbackServer, no_env: None
) -> None:
    config = ResolveConfig(lookup_base=server.base_url, timeout_s=2, max_attempts=1)
    (result,) = resolve_ids(["XE00"], tmp_path, config).values()
    assert result.status == "refused_host" and "127.0.0.1" in str(result.detail)


def test_yt8m_lookups_on_a_private_mirror_when_asked_for(
    tmp_path: Path, server: LoopbackServer, no_env: None
) -> None:
    allowed = ResolveConfig(
        lookup_base=server.base_url, timeout_s=2, max_attempts=1, allow_private_hosts=True
    )
    (result,) = resolve_ids(["XE00"], tmp_path / "a", allowed).values()
    assert result.status != "refused_host"  # the server has no lookup route: it answers 404
    denied = replace(allowed, deny_hosts=("127.0.0.0/8",))
    (result,) = resolve_ids(["XE00"], tmp_path / "b", denied).values()
    assert result.status == "refused_host" and "127.0.0.1" in str(result.detail)


def test_a_bad_deny_entry_for_yt8m_lookups_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--deny-host"):
        ResolveConfig(deny_hosts=("10.0.0.0/33",))  # before: accepted, then every lookup raised


def test_a_bare_address_in_the_deny_list_covers_every_name_resolving_to_it(
    tmp_path: Path, server: LoopbackServer
) -> None:
    policy = NetPolicy.create(allow_private=True, deny=["127.0.0.1", "::1"])
    assert "--deny-host 127.0.0.1/32" in str(policy.address_refusal("127.0.0.1", "localhost"))
    assert "--deny-host ::1/128" in str(policy.address_refusal("::1"))
    assert policy.address_refusal("127.0.0.2", "other") is None
    with pytest.raises(Refused, match=r"127\.0\.0\.1 \(localhost\) is in --deny-host"):
        policy.resolve("localhost", 80)
    port = urlsplit(server.base_url).port
    ds = dataset(tmp_path, {"byname": f"http://localhost:{port}/media/clip.mp4"})
    assert svm_download(ds, "--deny-host", "127.0.0.1").returncode == 0
    (row,) = ledger(ds).values()
    assert row["status"] == "refused_host" and "--deny-host 127.0.0.1/32" in str(row["detail"])


class _Proxy(BaseHTTPRequestHandler):
    """A loopback HTTP proxy that answers every request itself (naming what it was asked)."""

    def do_GET(self) -> None:
        body = f"via proxy: {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _get(url: str, policy: NetPolicy, proxy: str) -> bytes:
    deadline = Deadline.after(5)
    with open_url(url, policy=policy, deadline=deadline, socket_timeout_s=2, proxy=proxy) as got:
        return got.read1(1000)


def test_only_the_proxys_own_address_and_port_are_exempt(
    server: LoopbackServer, no_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        proxy = f"http://127.0.0.1:{httpd.server_address[1]}"
        policy = NetPolicy.create(proxy=proxy)
        assert policy.exempts("127.0.0.1", httpd.server_address[1])
        assert not policy.exempts("127.0.0.1", 22)
        assert "loopback" in str(policy.url_refusal("http://127.0.0.1:22/x"))  # was: None
        assert _get("http://media.example/x.mp4", policy, proxy) == (
            b"via proxy: http://media.example/x.mp4"
        )
        # no_proxy covers the proxy's host: the request would go straight to the server
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        with pytest.raises(Refused, match="loopback"):
            _get(server.url(Route.MEDIA, "clip.mp4"), policy, proxy)
    finally:
        httpd.shutdown()
        httpd.server_close()


class _Page(BaseHTTPRequestHandler):
    """A page on 127.0.0.2 whose <video> points at ``target`` (a class attribute)."""

    target = ""

    def do_GET(self) -> None:
        body = f'<html><body><video controls src="{self.target}"></video></body></html>'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_format_that_ffmpeg_would_fetch_is_checked_after_dns(
    tmp_path: Path, server: LoopbackServer
) -> None:
    """Clip bounds hand the format to ffmpeg, which resolves names itself: checked first."""
    port = urlsplit(server.base_url).port
    page = type("Page", (_Page,), {"target": f"http://localhost:{port}/media/clip.mp4"})
    try:
        httpd = ThreadingHTTPServer(("127.0.0.2", 0), page)
    except OSError as exc:
        pytest.skip(f"cannot listen on 127.0.0.2 here: {exc}")
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.2:{httpd.server_address[1]}/watch.html"
        rows = [
            {"id": "clip", "url": url, "start_s": 0.0, "end_s": 0.5},
            {"id": "whole", "url": url},
        ]
        build_manifest(
            [write_list(tmp_path / "l.csv", rows)], tmp_path / "ds", ManifestConfig(id_column="id")
        )
        before = server.requests.count("/media/clip.mp4")
        result = svm_download(tmp_path / "ds", "--deny-host", "127.0.0.1", "--timeout", "20")
        assert result.returncode == 0, result.stderr
        found = ledger(tmp_path / "ds")
        assert set(found) == {"clip_00000000_00000500", "whole"}  # the clip's id has its bounds
        for row in found.values():
            assert row["status"] == "refused_host", row
            assert "(localhost) is in --deny-host 127.0.0.1/32" in str(row["detail"])
        assert server.requests.count("/media/clip.mp4") == before  # ffmpeg never connected
    finally:
        httpd.shutdown()
        httpd.server_close()
