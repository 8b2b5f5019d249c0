"""--config, --print-config, null in YAML, --device without a GPU, -v anywhere, completion.

Every test runs the real ``svm`` in a subprocess; ``--print-config`` shows the merged config
without running the stage, and two stages run for real to show that the provenance they write
holds the nulls.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from svm_toolkit.config import nullable_fields, to_dict
from svm_toolkit.download import DownloadConfig
from svm_toolkit.evaluate.protocol import EvalConfig
from svm_toolkit.extract.config import ExtractConfig
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import ShardWriter
from svm_toolkit.manifest.config import MANIFEST_PRESETS, ManifestConfig
from svm_toolkit.preprocess.config import PREPROCESS_PRESETS, PreprocessConfig
from svm_toolkit.schema import COL, ledger_schema, read_provenance, with_provenance
from svm_toolkit.splits.make import SplitConfig
from svm_toolkit.splits.validate import ValidateConfig
from svm_toolkit.testing import MediaSpec, make_media
from svm_toolkit.train.config import TRAIN_PRESETS, TrainConfig
from svm_toolkit.yt8m.config import Yt8mConfig
from tests.manifest.helpers import write_list

SVM_SCRIPT = Path(sys.executable).parent / "svm"


def svm(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "svm_toolkit", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


#: Each stage command: its arguments (run in a folder holding ``ds/`` and ``in.csv``), its
#: config class and the config its flags start from.
STAGES: dict[str, tuple[tuple[str, ...], type, Any]] = {
    "manifest urls": (
        ("manifest", "urls", "in.csv", "-o", "ds", "--preset", "svm10k"),
        ManifestConfig,
        MANIFEST_PRESETS["svm10k"],
    ),
    "manifest yt8m": (
        ("manifest", "yt8m", "records", "--vocabulary", "vocabulary.csv", "-o", "ds"),
        Yt8mConfig,
        Yt8mConfig(),
    ),
    "download": (("download", "ds"), DownloadConfig, DownloadConfig()),
    "preprocess": (
        ("preprocess", "ds", "--preset", "svm10k"),
        PreprocessConfig,
        PREPROCESS_PRESETS["svm10k"],
    ),
    "extract": (("extract", "ds"), ExtractConfig, ExtractConfig()),
    "splits make": (("splits", "make", "ds"), SplitConfig, SplitConfig()),
    "splits validate": (("splits", "validate", "ds"), ValidateConfig, ValidateConfig()),
    "train": (("train", "ds"), TrainConfig, TRAIN_PRESETS["tivm"]),
    "evaluate": (("evaluate", "ds"), EvalConfig, EvalConfig()),
}


def nested(dotted: list[str], value: Any) -> dict[str, Any]:
    """``["a.b", "c"]`` -> ``{"a": {"b": value}, "c": value}``."""
    out: dict[str, Any] = {}
    for name in dotted:
        *parents, leaf = name.split(".")
        node = out
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return out


def lookup(tree: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        tree = tree[part]
    return tree


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "ds").mkdir()
    write_list(tmp_path / "in.csv")
    return tmp_path


def print_config(workdir: Path, args: tuple[str, ...], *extra: str) -> dict[str, Any]:
    result = svm(*args, *extra, "--print-config", cwd=workdir)
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    assert isinstance(printed, dict)
    return printed


@pytest.mark.parametrize("stage", list(STAGES))
def test_null_in_the_config_file_switches_every_optional_field_off(
    stage: str, workdir: Path
) -> None:
    args, config_class, base = STAGES[stage]
    optional = nullable_fields(config_class)
    (workdir / "null.yaml").write_text(yaml.safe_dump(nested(optional, None)))
    printed = print_config(workdir, args, "--config", "null.yaml")
    expected = to_dict(base)
    for name in optional:
        assert lookup(printed, name) is None, name
        *parents, leaf = name.split(".")
        (lookup(expected, ".".join(parents)) if parents else expected)[leaf] = None
    assert printed == expected  # nothing else moved


def test_the_documented_nullable_fields_are_all_found() -> None:
    assert set(nullable_fields(PreprocessConfig)) >= {
        "max_media_s",
        "speech.max_scored_s",
        "librosa.fmax",
        "librosa.norm",
        "librosa.top_db",
        *(
            f"filters.{f.name}"
            for f in dataclasses.fields(PreprocessConfig().filters)
            if f.name != "require_audio"
        ),
    }
    assert nullable_fields(ExtractConfig) == ["batch_size", "vggish_pca"]
    assert nullable_fields(ValidateConfig) == ["ratios"]
    assert nullable_fields(EvalConfig) == ["pool_size"]
    assert nullable_fields(SplitConfig) == nullable_fields(TrainConfig) == []


def test_printed_config_reads_back_as_the_same_config(workdir: Path) -> None:
    for stage in ("preprocess", "train", "extract", "manifest yt8m"):
        args = STAGES[stage][0]
        result = svm(*args, "--print-config", cwd=workdir)
        assert result.returncode == 0, result.stderr
        (workdir / "printed.yaml").write_text(result.stdout)
        again = svm(*args, "--config", "printed.yaml", "--print-config", cwd=workdir)
        assert again.returncode == 0, again.stderr
        assert again.stdout == result.stdout, stage


def test_flags_given_override_the_file_and_flags_not_given_do_not(workdir: Path) -> None:
    (workdir / "x.yaml").write_text("fps: 2\nworkers: 3\ndevice: cpu\nbatch_size: 4\n")
    printed = print_config(workdir, ("extract", "ds"), "--config", "x.yaml", "--batch-size", "6")
    assert (printed["fps"], printed["workers"], printed["device"]) == (2, 3, "cpu")  # defaults
    assert printed["batch_size"] == 6  # the flag given wins

    (workdir / "s.yaml").write_text("seed: 5\ngroup_by: [video]\nmatch: {max_bucket: 9}\n")
    printed = print_config(workdir, ("splits", "make", "ds"), "--config", "s.yaml", "--seed", "7")
    assert (printed["seed"], printed["group_by"], printed["match"]["max_bucket"]) == (
        7,
        ["video"],
        9,
    )

    (workdir / "y.yaml").write_text("resolve: {concurrency: 2}\nmatch: all\n")
    yt8m = ("manifest", "yt8m", "records", "--vocabulary", "v.csv", "-o", "ds")
    printed = print_config(workdir, yt8m, "--config", "y.yaml", "--timeout", "3")
    assert printed["match"] == "all" and printed["resolve"]["concurrency"] == 2
    assert printed["resolve"]["timeout_s"] == 3  # a lookup flag applies to the file's resolve
    refused = svm(*yt8m, "--timeout", "3", "--print-config", cwd=workdir)  # needs --resolve
    assert refused.returncode == 2 and "--timeout: only with --resolve" in refused.stderr
    printed = print_config(workdir, yt8m, "--resolve", "--deny-host", "10.0.0.0/8")
    assert printed["resolve"]["deny_hosts"] == ["10.0.0.0/8"]

    (workdir / "e.yaml").write_text("ks: [1, 2]\npool_size: 50\n")
    printed = print_config(workdir, ("evaluate", "ds"), "--config", "e.yaml")
    assert (printed["ks"], printed["pool_size"], printed["device"]) == ([1, 2], 50, "auto")


def test_null_for_a_field_that_needs_a_value_is_one_line_naming_file_and_key(
    workdir: Path,
) -> None:
    (workdir / "bad.yaml").write_text("speech: {window_s: null}\n")
    result = svm("preprocess", "ds", "--config", "bad.yaml", cwd=workdir)
    assert result.returncode == 2
    assert result.stderr == (
        "error: bad.yaml: speech.window_s: null is not allowed here; give a value of type "
        "float, e.g. 0.5\n"
    )


def test_manifest_provenance_shows_the_null(workdir: Path) -> None:
    (workdir / "m.yaml").write_text("min_likes: null\n")
    result = svm("manifest", "urls", "in.csv", "--preset", "svm10k", "--config", "m.yaml",
                 "-o", "ds", cwd=workdir)  # fmt: skip
    assert result.returncode == 0, result.stderr
    table = pq.read_table(workdir / "ds" / "manifest.parquet")
    config = read_provenance(table.schema)["config"]
    assert config["min_likes"] is None and config["short_video_metadata"] is True
    assert "filtered:min_likes" not in table.column(COL.status).to_pylist()


def downloaded(root: Path) -> Path:
    """A dataset whose download stage is done: one generated video."""
    layout = DatasetLayout(root)
    path = make_media(layout.media_path("clip", ".mp4"), MediaSpec(seconds=4, size=(160, 240)))
    schema = with_provenance(ledger_schema(pa.field(COL.media_path, pa.string())), "download")
    row = {
        COL.sample_id: "clip",
        COL.stage: "download",
        COL.status: "ok",
        COL.attempts: 1,
        COL.started_at: datetime.now(UTC),
        COL.seconds: 0.1,
        COL.media_path: path.relative_to(root).as_posix(),
    }
    with ShardWriter(layout.ledger_dir, "download", schema) as writer:
        writer.write([row])
    return root


def test_preprocess_provenance_shows_the_nulls(tmp_path: Path) -> None:
    root = downloaded(tmp_path / "ds")
    (tmp_path / "p.yaml").write_text(
        "speech: {max_scored_s: null}\nfilters: {max_speech_ratio: null, min_motion: null}\n"
    )
    result = svm("preprocess", root, "--config", "p.yaml", "--workers", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    ledger = next((root / "ledger").glob("preprocess-*.parquet"))
    config = read_provenance(pq.read_schema(ledger))["config"]
    assert config["speech"]["max_scored_s"] is None
    assert config["filters"]["max_speech_ratio"] is None
    assert config["filters"]["min_motion"] is None
    assert config["workers"] == 1 and config["filters"]["max_silence_ratio"] == 0.8


def _has_cuda() -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return probe.stdout.strip() == "True"


@pytest.mark.parametrize(
    "args",
    [
        ("extract", "ds", "--device", "cuda"),
        ("train", "ds", "--device", "cuda"),
        ("evaluate", "ds", "--device", "cuda"),
        ("evaluate", "ds", "--config", "gpu.yaml"),
    ],
    ids=["extract", "train", "evaluate", "evaluate-config"],
)
def test_device_cuda_without_a_gpu_is_one_line_before_any_work(
    args: tuple[str, ...], workdir: Path
) -> None:
    if _has_cuda():
        pytest.skip("this machine has a CUDA GPU")
    (workdir / "gpu.yaml").write_text("device: cuda\n")
    # ds is an empty folder: any work would fail with another message
    result = svm(*args, cwd=workdir)
    assert result.returncode == 2
    assert result.stdout == ""
    named = "gpu.yaml: device" if "gpu.yaml" in args else "--device"  # where the value came from
    assert result.stderr == (
        f"error: {named} cuda: no CUDA GPU is visible (torch.cuda.is_available() is False); "
        "use --device cpu or auto\n"
    )


#: Runs the CLI, then prints the root logger's level to stderr as it exits.
LEVEL_AT_EXIT = (
    "import atexit, logging, sys; "
    "atexit.register(lambda: print('LEVEL', logging.getLogger().level, file=sys.stderr)); "
    "from svm_toolkit.cli import main; main(sys.argv[1:])"
)


@pytest.mark.parametrize(
    ("before", "after", "level"),
    [
        ((), (), logging.WARNING),
        (("-v",), (), logging.INFO),
        ((), ("-v",), logging.INFO),
        ((), ("-vv",), logging.DEBUG),
        (("-v",), ("-v",), logging.DEBUG),
        (("-v",), ("-q",), logging.WARNING),
        (("-q",), (), logging.WARNING),
    ],
)
def test_verbosity_before_or_after_the_subcommand(
    before: tuple[str, ...], after: tuple[str, ...], level: int, workdir: Path
) -> None:
    args = [*before, "manifest", "urls", "in.csv", "-o", "ds", *after]
    result = subprocess.run(
        [sys.executable, "-c", LEVEL_AT_EXIT, *args],
        capture_output=True,
        text=True,
        cwd=workdir,
        env={**os.environ, "SVM_LOG_LEVEL": ""},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] == f"LEVEL {level}"
    assert ("INFO svm_toolkit.manifest" in result.stderr) is (level <= logging.INFO)


def test_verbose_after_every_subcommand_is_an_option(workdir: Path) -> None:
    for args in (
        ("splits", "make", "ds"),
        ("evaluate", "ds"),
        ("extract", "ds"),
        ("manifest", "info", "ds"),
    ):
        result = svm(*args, "-v", "--help", cwd=workdir)
        assert result.returncode == 0, (args, result.stderr)
        assert "-v, --verbose" in result.stdout and "-q, --quiet" in result.stdout


def test_shell_completion_prints_a_script(tmp_path: Path) -> None:
    result = subprocess.run(
        [SVM_SCRIPT],
        capture_output=True,
        text=True,
        env={**os.environ, "_SVM_COMPLETE": "bash_source"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "_svm_completion()" in result.stdout and "complete -o nosort -F" in result.stdout
    words = subprocess.run(
        [SVM_SCRIPT],
        capture_output=True,
        text=True,
        env={**os.environ, "_SVM_COMPLETE": "bash_complete",
             "COMP_WORDS": "svm splits make --print", "COMP_CWORD": "3"},
        timeout=60,
    )  # fmt: skip
    assert words.returncode == 0 and "--print-config" in words.stdout
