"""``svm_toolkit.config``: overrides from YAML and flags, null included, and YAML round trips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from svm_toolkit.config import load_overrides, nullable_fields, replace, to_dict, to_yaml
from svm_toolkit.device import check_device, resolve_device
from svm_toolkit.download import DownloadConfig
from svm_toolkit.errors import ConfigError
from svm_toolkit.evaluate.protocol import EvalConfig
from svm_toolkit.extract.config import ExtractConfig
from svm_toolkit.manifest.config import ManifestConfig
from svm_toolkit.preprocess.config import PREPROCESS_PRESETS, PreprocessConfig
from svm_toolkit.splits.make import SplitConfig
from svm_toolkit.splits.validate import ValidateConfig
from svm_toolkit.train.config import TRAIN_PRESETS, TrainConfig
from svm_toolkit.yt8m.config import Yt8mConfig


def test_null_switches_an_optional_bound_off() -> None:
    base = PREPROCESS_PRESETS["svm10k"]
    assert base.speech.max_scored_s is not None and base.filters.max_speech_ratio is not None
    config = replace(
        base, {"speech": {"max_scored_s": None}, "filters": {"max_speech_ratio": None}}
    )
    assert config.speech.max_scored_s is None and config.filters.max_speech_ratio is None
    assert config.filters.max_duration_s == base.filters.max_duration_s  # the rest is kept


def test_null_for_a_field_that_needs_a_value_names_file_key_and_what_it_takes() -> None:
    with pytest.raises(ConfigError) as err:
        replace(PreprocessConfig(), {"speech": {"window_s": None}}, where="p.yaml")
    assert str(err.value) == (
        "p.yaml: speech.window_s: null is not allowed here; give a value of type float, e.g. 0.5"
    )
    with pytest.raises(ConfigError, match=r"p.yaml: filters: null is not allowed.*FilterConfig"):
        replace(PreprocessConfig(), {"filters": None}, where="p.yaml")
    with pytest.raises(ConfigError, match="match: null is not allowed here; give one of any, all"):
        replace(Yt8mConfig(), {"match": None}, where="y.yaml")


def test_unknown_nested_keys_and_invalid_values_name_where_they_came_from() -> None:
    with pytest.raises(ConfigError, match=r"p.yaml: unknown field\(s\) \['speech.nope'\]"):
        replace(PreprocessConfig(), {"speech": {"nope": 1}}, where="p.yaml")
    with pytest.raises(ConfigError, match=r"p\.yaml: filter bounds are inverted"):
        replace(
            PreprocessConfig(),
            {"filters": {"min_duration_s": 9, "max_duration_s": 1}},
            where="p.yaml",
        )
    with pytest.raises(ConfigError, match=r"t\.yaml: model: width 250 must be a multiple of heads"):
        replace(TRAIN_PRESETS["tivm"], {"model": {"width": 250}}, where="t.yaml")


def test_lists_become_tuples_and_mappings_fill_an_optional_config() -> None:
    assert replace(ValidateConfig(), {"ratios": [0.5, 0.25, 0.25]}).ratios == (0.5, 0.25, 0.25)
    resolve = replace(Yt8mConfig(), {"resolve": {"concurrency": 3}}).resolve
    assert resolve is not None and resolve.concurrency == 3


def test_nullable_fields_are_found_in_nested_configs() -> None:
    names = nullable_fields(PreprocessConfig)
    assert {"max_media_s", "speech.max_scored_s", "filters.max_speech_ratio"} <= set(names)
    assert "filters.require_audio" not in names and "frames" not in names


def test_yaml_round_trip(tmp_path: Path) -> None:
    config = replace(PREPROCESS_PRESETS["yt8m_music"], {"librosa": {"fmax": None, "top_db": None}})
    path = tmp_path / "c.yaml"
    path.write_text(to_yaml(config))
    assert yaml.safe_load(path.read_text())["librosa"]["fmax"] is None
    assert replace(PreprocessConfig(), load_overrides(path)) == config
    assert to_dict(replace(PreprocessConfig(), load_overrides(path))) == to_dict(config)


def test_load_overrides_refuses_what_is_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_overrides(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_overrides(tmp_path / "list.yaml")
    with pytest.raises(ConfigError, match="a folder"):
        load_overrides(tmp_path)


def test_device_values() -> None:
    check_device("cpu")
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ConfigError, match="--device gpu: unknown device; use cpu, cuda"):
        check_device("gpu")


#: A value other than ``None`` for every nullable field of every stage config (dotted names).
SAMPLES: dict[type, dict[str, Any]] = {
    ManifestConfig: {"url_column": "link", "id_column": "clip", "min_likes": 5,
                     "max_duration_s": 60.0},
    DownloadConfig: {"format": "b", "rate": 0.5, "cookies": "c.txt",
                     "cookies_from_browser": "firefox", "proxy": "http://proxy.example:3128",
                     "sleep_interval_s": 1.0, "max_sleep_interval_s": 2.0,
                     "max_failure_rate": 0.2, "max_file_mb": 100.0},
    PreprocessConfig: {"filters.min_duration_s": 1.0, "filters.max_duration_s": 100.0,
                       "filters.min_short_side": 144, "filters.min_aspect": 0.5,
                       "filters.max_aspect": 2.0, "filters.min_loudness_dbfs": -40.0,
                       "filters.max_silence_ratio": 0.7, "filters.min_motion": 0.4,
                       "filters.max_black_ratio": 0.9, "filters.max_speech_ratio": 0.6,
                       "librosa.fmax": 8000.0, "librosa.norm": "slaney", "librosa.top_db": 60.0,
                       "speech.max_scored_s": 8.0, "max_media_s": 600.0},
    ExtractConfig: {"batch_size": 4, "vggish_pca": "pca.npz"},
    SplitConfig: {},
    ValidateConfig: {"ratios": [0.7, 0.2, 0.1]},
    TrainConfig: {},
    EvalConfig: {"pool_size": 100},
    Yt8mConfig: {"resolve": {"concurrency": 2}},
}  # fmt: skip
BASES: dict[type, Any] = {TrainConfig: TRAIN_PRESETS["tivm"]}


def _nested(dotted: str, value: Any) -> dict[str, Any]:
    *parents, leaf = dotted.split(".")
    out: dict[str, Any] = {leaf: value}
    for parent in reversed(parents):
        out = {parent: out}
    return out


def _get(config: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        config = getattr(config, part)
    return config


@pytest.mark.parametrize("config_class", list(SAMPLES), ids=lambda c: c.__name__)
def test_null_overrides_a_value_for_every_nullable_field(config_class: type) -> None:
    samples = SAMPLES[config_class]
    assert set(samples) == set(nullable_fields(config_class))  # a new one needs a sample here
    base = BASES.get(config_class) or config_class()
    for name, value in samples.items():
        valued = replace(base, _nested(name, value), where="a.yaml")
        assert _get(valued, name) is not None
        cleared = replace(valued, _nested(name, None), where="b.yaml")
        assert _get(cleared, name) is None, name
        assert to_dict(replace(cleared, _nested(name, value))) == to_dict(valued)
