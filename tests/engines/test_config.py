"""``EngineConfig`` and the CLI's engine options: checked before any work starts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from svm_toolkit.cli import cli
from svm_toolkit.engines import ENGINES, EngineConfig
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
