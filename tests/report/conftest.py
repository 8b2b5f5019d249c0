"""A small real dataset for the report tests: generated clips served on loopback, downloaded,
preprocessed (one clip talks: filtered; one is letterboxed: cropped), one extractor, splits."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from svm_toolkit.demo import CorpusConfig
from svm_toolkit.demo.corpus import generate_corpus
from svm_toolkit.demo.pipeline import DEMO_RATIOS, write_url_list
from svm_toolkit.download import DownloadConfig, run_download
from svm_toolkit.extract.config import ExtractConfig
from svm_toolkit.extract.runner import run_extract
from svm_toolkit.manifest import MANIFEST_PRESETS, build_manifest
from svm_toolkit.preprocess.config import PREPROCESS_PRESETS
from svm_toolkit.preprocess.runner import run_preprocess
from svm_toolkit.splits import SplitConfig, make_splits
from svm_toolkit.testing.server import LoopbackServer

#: 8 clips of 3 s on 3 songs: clip 2 is a voice-over (filtered:speech), clip 4 letterboxed
#: (cropped), clip 7 has few likes (filtered:min_likes in the manifest); plus the URL list's
#: duplicate, an ftp URL (invalid_url) and a 404 (unavailable).
CORPUS = CorpusConfig(clips=8, songs=3, seconds=3.0)


@pytest.fixture(scope="session")
def report_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("report")
    dataset = directory / "dataset"
    clips = generate_corpus(directory / "corpus", CORPUS)
    with LoopbackServer(directory / "corpus") as server:
        urls = write_url_list(directory / "urls.csv", clips, server, seconds=CORPUS.seconds)
        config = dataclasses.replace(MANIFEST_PRESETS["svm10k"], id_column="id")
        build_manifest([urls], dataset, config, overwrite=True)
        run_download(dataset, DownloadConfig(backoff_s=0.2, allow_private_hosts=True))
    run_preprocess(dataset, PREPROCESS_PRESETS["svm10k"])
    run_extract(dataset, ExtractConfig(extractors=("vmnet_music",), device="cpu"))
    make_splits(dataset, SplitConfig(ratios=DEMO_RATIOS), overwrite=True)
    return dataset


#: Headless Chromium as the machine notes give it: no sandbox as root, no GPU, and nothing that
#: reaches out on its own (background networking, component updates, sync).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Debian's Chromium driven through its ChromeDriver; missing, the test fails (never skips)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        missing = [n for n, p in (("chromium", chromium), ("chromedriver", driver_path)) if not p]
        pytest.fail(
            f"{' and '.join(missing)} not installed: run scripts/setup.sh --dev (it installs "
            "Debian's chromium and chromium-driver); the report tests need a real browser"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    driver.set_window_size(1280, 900)
    yield driver
    driver.quit()
