"""`svm download` throughput and memory against a plain `yt-dlp` CLI loop, on loopback.

    .venv/bin/python benchmarks/download.py [--videos 200] [--pages 50] [--cli-every 5]

Serves a generated corpus from this process (5 s 360p H.264 + AAC MP4s, and HTML pages with a
`<video>` tag), then runs, each as its own process:

* `svm download` on the direct files, on the pages, and on both together;
* `svm download` on 100 and on 400 direct files, for peak RSS (memory must not grow with the list);
* the baseline: a sequential loop of `yt-dlp -o ... URL` over the same mixed list. It costs about
  a second a video, so by default it runs on every `--cli-every`-th URL (same mix of files and
  pages); `--cli-every 1` runs all of them.

The corpus is cached in `--cache` (default: a folder in the system temp dir).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from svm_toolkit.manifest import ManifestConfig, build_manifest
from svm_toolkit.testing import LoopbackServer, MediaSpec, Route, make_media

SPEC = MediaSpec(seconds=5.0, size=(640, 360), fps=25)
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Run:
    name: str
    videos: int
    seconds: float
    megabytes: float
    peak_rss_mb: float

    def line(self) -> str:
        return (
            f"{self.name:<34}{self.videos:>7}{self.seconds:>9.2f}"
            f"{self.videos / self.seconds:>10.1f}{self.megabytes / self.seconds:>8.1f}"
            f"{self.peak_rss_mb:>10.0f}"
        )


def corpus(cache: Path, count: int) -> list[Path]:
    cache.mkdir(parents=True, exist_ok=True)
    paths = [cache / f"v{i:04d}.mp4" for i in range(count)]
    todo = [p for p in paths if not p.exists()]
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(lambda p: make_media(p, SPEC), todo))
    return paths


def served_names(served: Path, sources: list[Path], count: int) -> list[str]:
    """Hard-link the sources under `count` names (400 names from 200 files)."""
    names = []
    for i in range(count):
        name = f"s{i:04d}.mp4"
        target = served / name
        if not target.exists():
            os.link(sources[i % len(sources)], target)
        names.append(name)
    return names


def svm_download(name: str, work: Path, urls: list[str]) -> Run:
    rows = "id,url\n" + "".join(f"x{i:05d},{u}\n" for i, u in enumerate(urls))
    (work / f"{name}.csv").write_text(rows)
    dataset = work / name
    build_manifest([work / f"{name}.csv"], dataset, ManifestConfig(id_column="id"))
    command = [str(BIN / "svm"), "-q", "download", str(dataset), "--allow-private-hosts"]
    return timed(name, command, dataset, len(urls))


def timed(name: str, command: list[str], output: Path, videos: int) -> Run:
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{name}: {' '.join(command)} exited {status}")
    size = sum(p.stat().st_size for p in output.rglob("*.mp4"))
    return Run(name, videos, seconds, size / 1e6, usage.ru_maxrss / 1024)


def cli_loop(name: str, work: Path, urls: list[str]) -> Run:
    out = work / name
    out.mkdir()
    started = time.perf_counter()
    peak = 0.0
    for i, url in enumerate(urls):
        command = [
            str(BIN / "yt-dlp"),
            "-q",
            "--no-warnings",
            "--no-progress",
            "-o",
            str(out / f"{i:05d}.%(ext)s"),
            url,
        ]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        if status != 0:
            raise SystemExit(f"yt-dlp failed on {url}")
        peak = max(peak, usage.ru_maxrss / 1024)
    seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in out.rglob("*.mp4"))
    return Run(name, len(urls), seconds, size / 1e6, peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--cli-every", type=int, default=5)
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "svm-bench-download"
    )
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    sources = corpus(args.cache / "corpus", args.videos)
    megabytes = sum(p.stat().st_size for p in sources) / 1e6
    width, height = SPEC.size
    print(
        f"corpus: {args.videos} x {SPEC.seconds:g} s {width}x{height} MP4, "
        f"{megabytes:.0f} MB; {args.pages} pages"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work, served = Path(tmp), Path(tmp) / "served"
        served.mkdir()
        names = served_names(served, sources, 400)
        with LoopbackServer(served) as server:
            direct = [server.url(Route.MEDIA, n) for n in names[: args.videos]]
            pages = [
                server.url(Route.PAGE, n) for n in names[args.videos : args.videos + args.pages]
            ]
            mixed = direct + pages
            runs = [
                svm_download("svm download: direct files", work, direct),
                svm_download("svm download: HTML pages", work, pages),
                svm_download("svm download: files + pages", work, mixed),
                svm_download(
                    "svm download: 100 direct (RSS)",
                    work,
                    [server.url(Route.MEDIA, n) for n in names[:100]],
                ),
                svm_download(
                    "svm download: 400 direct (RSS)",
                    work,
                    [server.url(Route.MEDIA, n) for n in names],
                ),
            ]
            sample = mixed[:: args.cli_every]
            runs.append(cli_loop(f"yt-dlp CLI loop (1 in {args.cli_every})", work, sample))
    print(f"{'':<34}{'videos':>7}{'seconds':>9}{'videos/s':>10}{'MB/s':>8}{'RSS MB':>10}")
    for run in runs:
        print(run.line())
    mixed_run, cli = runs[2], runs[-1]
    speedup = (mixed_run.videos / mixed_run.seconds) / (cli.videos / cli.seconds)
    rss_growth = runs[4].peak_rss_mb / runs[3].peak_rss_mb - 1
    print(
        f"svm vs CLI loop on files + pages: {speedup:.1f}x; "
        f"peak RSS 400 vs 100 videos: {rss_growth:+.1%}"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
