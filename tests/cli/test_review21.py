"""Review fixes of issue 21: config values checked per key, lazy commands, groups' flags.

Every test runs the real ``svm`` in a subprocess on small real inputs.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from svm_toolkit.progress import Progress
from tests.manifest.helpers import write_list


def svm(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "svm_toolkit", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=dict(os.environ),
        timeout=120,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "ds").mkdir()
    write_list(tmp_path / "in.csv")
    return tmp_path


@pytest.mark.parametrize(
    ("stage", "yaml_text", "expected"),
    [
        (
            "evaluate",
            "positives: foo\n",
            "error: bad.yaml: positives: 'foo' is not allowed; give one of ",
        ),
        (
            "train",
            "model: {encoder: gru}\n",
            "error: bad.yaml: unknown model.encoder 'gru'; known: transformer, lstm, mean\n",
        ),
        ("train", "loss: {name: foo}\n", "error: bad.yaml: loss.name: 'foo' is not allowed"),
        ("train", 'epochs: "3"\n', "error: bad.yaml: epochs: give int, e.g. "),
        ("evaluate", "ks: 10\n", "error: bad.yaml: ks: give a list, e.g. ["),
        ("preprocess", "mel: vggish\n", "error: bad.yaml: mel: "),
    ],
)
def test_a_bad_value_in_the_config_file_names_file_and_key_and_writes_nothing(
    stage: str, yaml_text: str, expected: str, workdir: Path
) -> None:
    (workdir / "bad.yaml").write_text(yaml_text)
    extra = ("-o", "RUN") if stage == "train" else ()
    result = svm(stage, "ds", *extra, "--config", "bad.yaml", cwd=workdir)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(expected), result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert "v, g, g" not in result.stderr
    assert not (workdir / "RUN").exists()


def test_a_mistyped_command_gets_did_you_mean(tmp_path: Path) -> None:
    result = svm("downlod", "ds", cwd=tmp_path)
    assert result.returncode == 2
    assert "No such command 'downlod'; did you mean 'download'?" in result.stderr


def test_a_command_module_that_fails_to_import_is_one_line_exit_1(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from svm_toolkit.cli import COMMANDS, cli\n"
        "COMMANDS['broken'] = ('svm_toolkit.cli.no_such_module:broken', 'Broken.')\n"
        "cli(['broken'], prog_name='svm')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: svm broken: cannot load (No module named ")
    assert result.stderr.rstrip().endswith("reinstall svm_toolkit")


def test_splits_validate_refuses_an_unknown_feature_set_with_a_suggestion(workdir: Path) -> None:
    result = svm("splits", "validate", "ds", "--features", "efficientnet_lite", cwd=workdir)
    assert result.returncode == 2, result.stderr
    assert "unknown feature set 'efficientnet_lite'; did you mean" in result.stderr
    assert "svm extract" not in result.stderr


def test_manifest_info_json_has_its_stage(workdir: Path) -> None:
    built = svm("manifest", "urls", "in.csv", "-o", "ds", cwd=workdir)
    assert built.returncode == 0, built.stderr
    result = svm("manifest", "info", "ds", "--json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    obj = json.loads(result.stdout)
    assert obj["stage"] == "manifest info"
    assert {"dataset", "samples", "by_source", "stages", "splits", "runs"} <= set(obj)


def test_groups_take_verbosity_too(workdir: Path) -> None:
    built = svm("manifest", "-v", "urls", "in.csv", "-o", "ds", cwd=workdir)
    assert built.returncode == 0, built.stderr
    for args in (("manifest", "-v", "info", "ds"), ("-v", "manifest", "-q", "info", "ds")):
        result = svm(*args, cwd=workdir)
        assert result.returncode == 0, (args, result.stderr)
    result = svm("splits", "-v", "make", "ds", cwd=workdir)
    assert "No such option" not in result.stderr


def test_yt8m_lookup_flags_without_resolve_are_refused(workdir: Path) -> None:
    (workdir / "records").mkdir()
    (workdir / "vocabulary.csv").write_text("Index,Name\n0,Music\n")
    args = ("manifest", "yt8m", "records", "--vocabulary", "vocabulary.csv", "-o", "ds")
    result = svm(*args, "--concurrency", "3", cwd=workdir)
    assert result.returncode == 2, result.stderr
    assert "--concurrency: only with --resolve" in result.stderr
    assert not (workdir / "ds" / "manifest.parquet").exists()


def test_a_mistyped_filter_reason_in_retry_is_refused(workdir: Path) -> None:
    result = svm("preprocess", "ds", "--retry", "filtered:speeh", cwd=workdir)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        "error: --retry filtered:speeh: unknown preprocess filter reason 'speeh'; did you mean "
        "'speech'? Known: duration, resolution, aspect, audio, loudness, silence, static, black, "
        "speech\n"
    )


def test_a_device_from_the_config_file_is_named_by_its_key(workdir: Path) -> None:
    (workdir / "dev.yaml").write_text("device: cuda:99\n")
    result = svm("evaluate", "ds", "--config", "dev.yaml", cwd=workdir)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: dev.yaml: device cuda:99: "), result.stderr
    typed = svm("evaluate", "ds", "--config", "dev.yaml", "--device", "cuda:98", cwd=workdir)
    assert typed.stderr.startswith("error: --device cuda:98: "), typed.stderr


def test_a_bad_progress_interval_fails_only_when_progress_lines_are_on(workdir: Path) -> None:
    env = {**os.environ, "SVM_PROGRESS_S": "often"}
    args = [sys.executable, "-m", "svm_toolkit", "manifest", "urls", "in.csv", "-o", "ds"]
    quiet = subprocess.run(args, capture_output=True, text=True, cwd=workdir, env=env, timeout=60)
    assert quiet.returncode == 0, quiet.stderr
    loud = subprocess.run(
        [*args, "--overwrite", "-v"], capture_output=True, text=True, cwd=workdir, env=env,
        timeout=60,
    )  # fmt: skip
    assert loud.returncode == 2 and "SVM_PROGRESS_S='often'" in loud.stderr, loud.stderr


def test_a_progress_with_nothing_counted_logs_no_final_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="svm_toolkit.progress"):
        empty = Progress("download", total=0, unit="video", tty=False, interval_s=60)
        with empty, empty.suspended():
            pass
        with Progress("download", total=2, unit="video", tty=False, interval_s=60) as bar:
            bar.update(2)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith("download done: 2/2"), lines
