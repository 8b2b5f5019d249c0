"""Commands that need no model never import one: each runs in a real process that reports
``sys.modules`` at exit, on a real dataset (a CSV URL list, the loopback server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from svm_toolkit.cli import COMMANDS, cli
from svm_toolkit.download.netpolicy import ENV_ALLOW_PRIVATE
from svm_toolkit.io.shards import read_shards
from svm_toolkit.testing import LoopbackServer, MediaSpec, Route, make_media
from tests.manifest.helpers import write_list

#: Never imported by a command that loads no model.
MODEL_MODULES = ("torch", "ray", "librosa", "onnxruntime", "cv2", "scipy", "matplotlib", "datasets")
#: Not imported by ``svm --help`` and ``svm -V`` either: they start as fast as click does.
DATA_MODULES = ("pyarrow", "numpy", "pandas", "yaml", "av", "tqdm")

#: Runs the CLI as the ``svm`` script does, then writes the imported modules to $SVM_MODULES_OUT.
WRAPPER = (
    "import atexit, json, os, sys\n"
    "atexit.register(lambda: json.dump(sorted(sys.modules), "
    "open(os.environ['SVM_MODULES_OUT'], 'w')))\n"
    "sys.argv[0] = 'svm'\n"
    "from svm_toolkit.entry import main\n"
    "main()\n"
)


def run_svm(
    tmp: Path, *args: str | Path, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``svm ARGS`` in a fresh interpreter; return the process and its top-level modules."""
    out = tmp / "modules.json"
    out.unlink(missing_ok=True)
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "SVM_MODULES_OUT": str(out), **(env or {})},
        timeout=120,
    )
    modules = {name.split(".")[0] for name in json.loads(out.read_text())}
    return result, modules


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackServer]:
    root = tmp_path_factory.mktemp("served")
    make_media(root / "clip.mp4", MediaSpec(seconds=1, size=(160, 120)))
    with LoopbackServer(root) as server:
        yield server


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("-V",),
        ("manifest", "--help"),
        ("manifest", "urls", "--help"),
        ("manifest", "info", "--help"),
        ("download", "--help"),
        ("extractors",),
        ("extract", "--help"),
    ],
)
def test_help_loads_no_model(tmp_path: Path, args: tuple[str, ...]) -> None:
    result, modules = run_svm(tmp_path, *args)
    assert result.returncode == 0, result.stderr
    assert not modules & set(MODEL_MODULES), sorted(modules & set(MODEL_MODULES))
    if args in (("--help",), ("-V",)):
        assert not modules & set(DATA_MODULES), sorted(modules & set(DATA_MODULES))


def test_manifest_download_and_info_load_no_model(tmp_path: Path, served: LoopbackServer) -> None:
    urls = write_list(
        tmp_path / "urls.csv",
        [
            {"id": "clip", "url": served.url(Route.MEDIA, "clip.mp4")},
            {"id": "gone", "url": served.url(Route.MISSING, "clip.mp4")},
        ],
    )
    ds = tmp_path / "ds"
    env = {ENV_ALLOW_PRIVATE: "1"}
    for args in (
        ("manifest", "urls", urls, "-o", ds, "--id-column", "id"),
        ("manifest", "info", ds),
        ("download", ds),
        ("manifest", "info", ds),
    ):
        result, modules = run_svm(tmp_path, *args, env=env)
        assert result.returncode == 0, (args, result.stderr)
        assert not modules & set(MODEL_MODULES), (args, sorted(modules & set(MODEL_MODULES)))
    ledger = read_shards(ds / "ledger", "download")
    assert ledger is not None
    statuses = dict(zip(*ledger.select(["sample_id", "status"]).to_pydict().values(), strict=True))
    assert statuses["clip"] == "ok" and statuses["gone"] != "ok"


def test_help_lists_each_command_with_its_own_short_help() -> None:
    ctx = click.Context(cli)
    for name, (target, short_help) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None, target
        assert short_help == command.get_short_help_str(limit=1000), (
            f"COMMANDS[{name!r}] in svm_toolkit/cli/__init__.py: set its short help to "
            f"{command.get_short_help_str(limit=1000)!r}"
        )
    shown = cli.get_help(ctx)
    assert all(f"\n  {name} " in shown for name in COMMANDS)


def test_unknown_command_and_completion_import_no_command(tmp_path: Path) -> None:
    result, modules = run_svm(tmp_path, "extrakt")
    assert result.returncode == 2 and "No such command 'extrakt'" in result.stderr
    env = {"_SVM_COMPLETE": "bash_complete", "COMP_WORDS": "svm ex", "COMP_CWORD": "1"}
    result, modules = run_svm(tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "plain,export",
        "plain,extract",
        "plain,extractors",
    ]
    assert not modules & {*MODEL_MODULES, *DATA_MODULES}


def test_public_api_is_imported_on_first_use(tmp_path: Path) -> None:
    code = (
        "import importlib, sys, svm_toolkit\n"
        "import svm_toolkit.download.netpolicy, svm_toolkit.io.atomic\n"
        "import svm_toolkit.train.checkpoint\n"
        "assert 'pyarrow' not in sys.modules and 'torch' not in sys.modules\n"
        "assert 'svm_toolkit.download.runner' not in sys.modules\n"
        "from svm_toolkit import Status, read_shards, build_manifest, SCHEMA_VERSION\n"
        "assert 'pyarrow' in sys.modules and 'torch' not in sys.modules\n"
        "for package in ('svm_toolkit', 'svm_toolkit.download', 'svm_toolkit.io',\n"
        "                'svm_toolkit.manifest', 'svm_toolkit.yt8m'):\n"
        "    lazy = importlib.import_module(package)\n"
        "    assert set(lazy.__all__) <= set(dir(lazy))\n"
        "    assert set(lazy.__all__) - {'__version__'} == set(lazy._API), package\n"
        "    for name, module in lazy._API.items():  # svm_toolkit.data would import torch\n"
        "        assert module == 'svm_toolkit.data' or getattr(lazy, name) is not None\n"
        "assert 'torch' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
