from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from PIL import Image

from svm_toolkit.errors import ConfigError
from svm_toolkit.report import ReportConfig, write_report
from svm_toolkit.report.collect import _crop_box, collect
from svm_toolkit.report.html import render_page


def svm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "svm_toolkit", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def open_page(browser: Any, page: Path) -> None:
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(page.as_uri())


def severe(browser: Any) -> list[dict[str, Any]]:
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def images(browser: Any) -> list[list[Any]]:
    script = "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])"
    result: list[list[Any]] = browser.execute_script(script)
    return result


def test_page_renders_in_chromium_with_the_counts_of_manifest_info(
    report_dataset: Path, browser: Any, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    done = svm("report", str(report_dataset), "-o", str(page))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"report: {page}: ") and " pictures" in done.stdout
    info = svm("manifest", "info", str(report_dataset), "--json")
    assert info.returncode == 0, info.stderr
    funnel = json.loads(info.stdout)

    text = page.read_text(encoding="utf-8")  # one file: nothing to load from anywhere else
    assert "<script" not in text and "<link" not in text
    assert "Content-Security-Policy\" content=\"default-src 'none'; img-src data:;" in text
    assert all(src.startswith("data:") for src in re.findall(r'src="([^"]*)"', text))

    open_page(browser, page)
    assert severe(browser) == []
    pictures = images(browser)
    assert len(pictures) >= 4  # the filtered clip, the cropped clip, a group, the plots
    assert all(complete and width > 0 for _, complete, width in pictures), pictures
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert [name for name in loaded if not name.startswith("data:")] == []

    shown = browser.execute_script(
        "return Array.from(document.querySelectorAll('.chip[data-status]'))"
        ".map(c => [c.dataset.stage, c.dataset.status, c.querySelector('b').textContent])"
    )
    on_page: dict[str, dict[str, int]] = {}
    for stage, status, count in shown:
        on_page.setdefault(stage, {})[status] = int(count.replace(",", ""))
    assert on_page == {s["name"]: s["statuses"] for s in funnel["stages"]}
    assert on_page["preprocess"] == {"ok": 6, "filtered:speech": 1}  # the fixture's story
    sizes = browser.execute_script(
        "return Array.from(document.querySelectorAll('#funnel .chip[data-split]'))"
        ".map(c => [c.dataset.split, c.querySelector('b').textContent])"
    )
    assert {k: int(v) for k, v in sizes} == funnel["splits"]["sizes"]

    speech = browser.find_elements("css selector", '#filtered h3[data-reason="speech"]')
    assert [h.text for h in speech] == ["speech · 1"]
    assert browser.find_elements("css selector", '#filtered figure[data-sample="demo002"] img')
    assert browser.find_elements("css selector", '#crops figure[data-sample="demo004"] img')
    assert browser.find_elements("css selector", "#groups .group figure img")
    assert browser.find_elements("css selector", '#splits img[alt="split balance"]')

    height = browser.execute_script("return document.documentElement.scrollHeight")
    metrics = {"width": 1280, "height": height, "deviceScaleFactor": 1, "mobile": False}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)  # the whole page
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    with Image.open(shot) as picture:
        assert picture.size == (1280, height)
        colours = picture.getcolors(1 << 16)  # None: more than 65,536 colours
        assert colours is None or len(colours) > 50  # not a blank page


def test_compare_section_renders_the_comparison(
    report_dataset: Path, browser: Any, tmp_path: Path
) -> None:
    comparison = {  # the shape of svm compare's Comparison.to_json()
        "release": "/releases/demo",
        "dataset": str(report_dataset),
        "samples": 8,
        "survived": 6,
        "availability": 0.75,
        "by_split": {
            "train": {"released": 4, "survived": 3},
            "test": {"released": 4, "survived": 3},
        },
        "missing_by_status": {"unavailable": 2},
        "changed": [
            {
                "sample_id": "demo003",
                "url": "http://127.0.0.1/demo003.mp4",
                "title": "<script>alert(1)</script>",
                "what": "picture",
                "detail": "12 of 15 frames differ",
            }
        ],
        "features": {
            "vmnet_music": {"compared": 5, "median_cosine": 0.998, "matching": 5, "threshold": 0.9}
        },
        "splits_check": {"errors": [], "warnings": ["val has 1 sample"]},
        "exit_code": 2,
    }
    facts = collect(report_dataset)
    page = tmp_path / "compare.html"
    page.write_text(render_page(facts, {}, None, comparison), encoding="utf-8")

    open_page(browser, page)
    assert severe(browser) == []
    assert browser.execute_script("return document.scripts.length") == 0  # the title is text
    section = browser.find_element("css selector", "#compare")
    assert "<script>alert(1)</script>" in section.text
    availability = section.find_element("css selector", '[data-compare="availability"]')
    assert availability.text == "75.0%"
    assert section.find_element("css selector", '[data-missing="unavailable"] b').text == "2"
    assert "0.998" in section.text and "val has 1 sample" in section.text
    figures = browser.find_elements("css selector", "figure .nopic")
    assert figures  # no pictures given: each sample says so, none is a broken image
    assert images(browser) == []


def test_a_missing_file_gives_no_picture_and_links_are_named(
    report_dataset: Path, tmp_path: Path
) -> None:
    dataset = tmp_path / "dataset"
    shutil.copytree(report_dataset, dataset)
    (dataset / "media" / "de" / "demo002.mp4").unlink()  # the filtered clip's file is gone
    (dataset / "media" / "de" / "demo004.mp4").write_bytes(b"not a video" * 100)  # the cropped
    summary = write_report(dataset, config=ReportConfig(per_reason=1, groups=1))
    assert summary.path == dataset / "report.html" and summary.bytes > 10_000
    assert summary.missing >= 2 and not summary.compared
    text = summary.path.read_text(encoding="utf-8")
    for sample in ("demo002", "demo004"):
        figure = re.search(rf'<figure data-sample="{sample}">(.*?)</figure>', text)
        assert figure is not None and "no picture" in figure.group(1), sample
    facts = collect(dataset)
    assert facts.groups_source == "splits_links.parquet"
    lines = [line for group in facts.groups for line in group.links]
    links = pq.read_table(dataset / "splits_links.parquet").to_pylist()
    said = {
        f"{r['sample_id_a']} ↔ {r['sample_id_b']}: {r['what']}" for r in links if r["in_splits"]
    }
    assert lines and all(line.split(" (")[0] in said for line in lines), (lines, said)


def test_report_refuses_a_folder_without_a_manifest(tmp_path: Path) -> None:
    done = svm("report", str(tmp_path))
    assert done.returncode == 2
    assert "no manifest" in done.stderr and "svm manifest urls" in done.stderr


@pytest.mark.parametrize("field", [{"thumb_width": 121}, {"per_reason": -1}, {"workers": 0}])
def test_config_checks_its_fields(field: dict[str, int]) -> None:
    with pytest.raises(ConfigError, match=next(iter(field))):
        ReportConfig(**field)


def test_crop_box_is_drawn_on_the_frame_as_shown() -> None:
    row = {"crop_x": 0, "crop_y": 16, "crop_w": 160, "crop_h": 88, "width": 160, "height": 120}
    assert _crop_box({**row, "rotation": 0}) == (0, 16, 160, 88)
    assert _crop_box({**row, "rotation": 90}) == (16, 0, 88, 160)  # CropBox.shown's turn
    assert _crop_box({**row, "crop_y": 0, "crop_h": 120, "rotation": 0}) is None  # whole frame
    assert _crop_box({**row, "crop_w": None}) is None  # not probed


def test_report_with_a_release_shows_what_survived(
    report_dataset: Path, browser: Any, tmp_path: Path
) -> None:
    from svm_toolkit.release.write import write_release

    release = write_release(report_dataset, tmp_path / "release").path
    page = tmp_path / "compare.html"
    done = svm("report", str(report_dataset), "--release", str(release), "-o", str(page))
    assert done.returncode == 0, done.stderr
    assert "with the compare section" in done.stdout

    open_page(browser, page)
    assert severe(browser) == []
    assert all(complete and width > 0 for _, complete, width in images(browser))
    section = browser.find_element("css selector", "#compare")
    assert section.find_element("css selector", '[data-compare="availability"]').text == "100.0%"
    assert section.find_element("css selector", '[data-compare="survived"]').text == "6"
    assert "Every released sample survived." in section.text
    assert "vmnet_music" in section.text  # feature agreement of the one extractor


def test_a_dataset_with_only_a_manifest_says_what_to_run(
    report_dataset: Path, tmp_path: Path
) -> None:
    shutil.copy(report_dataset / "manifest.parquet", tmp_path / "manifest.parquet")
    summary = write_report(tmp_path)
    text = summary.path.read_text(encoding="utf-8")
    assert summary.pictures == 0 and "<img" not in text
    assert text.count("Preprocess has not run yet") == 2  # filtered and crops
    assert "No splits yet" in text
    assert '<span class="chip filtered"><b>1</b> filtered:min_likes</span>' in text
