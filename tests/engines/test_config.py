"""``EngineConfig`` and the CLI's engine options: checked before any work starts."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from svm_toolkit.cli import cli
from svm_toolkit.engines import ENGINES, EngineConfig
from svm_toolkit.engines.ray_data import CONNECT_TIMEOUT_S, check_reachable
from svm_toolkit.errors import ConfigError


def test_known_engines_and_bounds() -> None:
    assert ENGINES == ("local", "ray")
    assert EngineConfig().name == "local"
    with pytest.raises(ConfigError, match="known engines are local, ray"):
        EngineConfig("spark")
    with pytest.raises(ConfigError, match="model_actors=0, cpus_per_actor=0"):
        EngineConfig("ray", model_actors=0, cpus_per_actor=0)
    with pytest.raises(ConfigError, match="gpus_per_actor=-1"):
        EngineConfig("ray", gpus_per_actor=-1)


@pytest.mark.parametrize("command", ["download", "preprocess", "extract"])
def test_every_stage_takes_the_engine_options(command: str) -> None:
    help_text = CliRunner().invoke(cli, [command, "--help"]).output
    assert "--engine [local|ray]" in help_text and "--ray-address" in help_text
    assert ("--model-actors" in help_text) == (command == "extract")


def test_an_address_without_the_ray_engine_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["download", str(tmp_path), "--ray-address", "auto"])
    assert result.exit_code == 2 and "--ray-address needs --engine ray" in result.output


def test_without_ray_installed_the_engine_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from svm_toolkit.engines.ray_data import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without Ray imports
    with pytest.raises(ConfigError, match=r"pip install -e \.\[ray\]"):
        import_ray()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there


def test_an_unreachable_ray_address_fails_fast_with_the_fix() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(ConfigError, match=rf"127.0.0.1:{port}.*ray start --head --port {port}"):
        check_reachable(f"127.0.0.1:{port}")
    assert time.monotonic() - started < CONNECT_TIMEOUT_S  # refused at once, not retried
    with pytest.raises(ConfigError, match="no Ray head answers"):
        check_reachable(f"ray://127.0.0.1:{port}")
    for left_to_ray in ("auto", "ray://head", "head-node"):
        check_reachable(left_to_ray)
    with socket.socket() as head:  # something listening passes
        head.bind(("127.0.0.1", 0))
        head.listen()
        check_reachable(f"127.0.0.1:{head.getsockname()[1]}")


def test_svm_extract_with_an_unreachable_ray_address_exits_2(tmp_path: Path) -> None:
    pytest.importorskip("ray")  # a dev dependency: never skipped in CI
    address = f"127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "svm_toolkit", "extract", str(tmp_path), "-e", "vmnet_music"]
    done = subprocess.run(
        [*command, "--engine", "ray", "--ray-address", address],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert f"--ray-address {address}: no Ray head answers" in done.stderr
