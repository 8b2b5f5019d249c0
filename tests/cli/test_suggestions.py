"""A mistyped name is refused with the closest known names, wherever a user types one.

Each command runs in this process as ``svm`` does (:func:`svm_toolkit.cli.main`): exit 2, one
line naming the flag or the name, a suggestion, and no traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from svm_toolkit.cli import main
from svm_toolkit.data import FeatureDataset, join_features
from svm_toolkit.errors import ConfigError
from svm_toolkit.extract.registry import EXTRACTORS, get_extractor, parse_extractors
from svm_toolkit.names import check_feature_sets, did_you_mean, suggest, unknown_name
from svm_toolkit.preprocess.recipes import get_recipes
from svm_toolkit.schema import check_retry
from svm_toolkit.testing.pairs import PairsSpec, write_pairs

SPEC = PairsSpec(pairs=24, video="efficientnet_lite0", audio="vmnet_music")


def run_svm(args: list[str | Path], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the CLI in this process as ``svm`` does; return its exit code and stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Features of efficientnet_lite0 and vmnet_music with splits."""
    return write_pairs(tmp_path_factory.mktemp("suggest") / "ds", SPEC)


def refused(code: int, err: str, *parts: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    for part in parts:
        assert part in err, err


# -- the helper ---------------------------------------------------------------------------------


def test_the_closest_names_are_suggested_and_all_listed() -> None:
    assert suggest("efficientnet_lite", EXTRACTORS) == ["efficientnet_lite0"]
    assert suggest("VGGish", EXTRACTORS)[0] == "vggish"  # case alone always counts
    assert suggest("mfcc", ["imagebind", "vggish", "librosa"]) == []
    assert did_you_mean("mfcc", ["imagebind"]) == ""
    assert unknown_name("split", "tset", ["train", "val", "test"]) == (
        "unknown split 'tset'; did you mean 'test'? Known: train, val, test"
    )
    assert unknown_name("split", "xyz", ["train", "val", "test"]) == (
        "unknown split 'xyz'; known: train, val, test"
    )


# -- the library messages -----------------------------------------------------------------------


def test_extractors() -> None:
    message = (
        "unknown extractor 'efficientnet_lite'; did you mean 'efficientnet_lite0'? Known: "
        + ", ".join(EXTRACTORS)
    )
    with pytest.raises(ConfigError) as info:
        get_extractor("efficientnet_lite")
    assert str(info.value).startswith(message)
    with pytest.raises(ConfigError, match="did you mean 'vmnet_music'"):
        parse_extractors("efficientnet_lite0,vmnet-music")


def test_mel_recipes() -> None:
    with pytest.raises(ConfigError, match=r"unknown Mel recipe vgish; .*did you mean 'vggish'\?"):
        get_recipes(("imagebind", "vgish"))


def test_retry_statuses() -> None:
    with pytest.raises(ConfigError) as info:
        check_retry(["timeot", "rate_limitd"], "download")
    message = str(info.value)
    assert message.startswith("--retry: unknown status 'timeot'; did you mean 'timeout'? Known: ")
    assert "filtered:<reason>" in message and message.endswith("(also unknown: rate_limitd)")


def test_splits_of_the_public_dataset(dataset: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"use one of train, val, test, or None; did you mean 'test'"
    ):
        FeatureDataset(dataset, (SPEC.video,), "tset")


def test_feature_sets(dataset: Path) -> None:
    with pytest.raises(ConfigError) as info:
        join_features(dataset, ("efficientnet_lite", SPEC.audio))
    message = str(info.value)
    assert "unknown feature set 'efficientnet_lite'; did you mean 'efficientnet_lite0'?" in message
    assert "Known: efficientnet_lite0, vmnet_music, imagebind_vision" in message  # extracted first
    assert "svm extract" not in message
    check_feature_sets(dataset, ("resnet50",))  # an extractor not run yet: its reader says so


# -- the commands -------------------------------------------------------------------------------


def test_train_with_a_mistyped_extractor_suggests_the_extracted_one(
    dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_svm(["train", dataset, "--video", "efficientnet_lite", "--epochs", "1"], capsys)
    refused(
        code, err, "unknown feature set 'efficientnet_lite'; did you mean 'efficientnet_lite0'?"
    )
    assert (
        "--extractor efficientnet_lite " not in err and "--extractor efficientnet_lite`" not in err
    )
    assert not (dataset / "runs").exists()  # refused before the run folder is made


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["train", "{ds}", "--preset", "tivn"],
            "is not one of 'tivm', 'mvbind', 'offline'; did you mean 'tivm'?",
        ),
        (
            ["manifest", "urls", "x.txt", "-o", "{ds}", "--preset", "svm10"],
            "did you mean 'svm10k'?",
        ),
        (
            ["evaluate", "{ds}", "--split", "tset"],
            "'tset' is not one of 'train', 'val', 'test'; did you mean 'test'?",
        ),
        (
            ["extract", "{ds}", "--extractor", "efficientnet_lite"],
            "unknown extractor 'efficientnet_lite'; did you mean 'efficientnet_lite0'?",
        ),
        (["preprocess", "{ds}", "--mel", "vgish"], "did you mean 'vggish'?"),
        (
            ["download", "{ds}", "--retry", "timeot"],
            "--retry: unknown status 'timeot'; did you mean 'timeout'?",
        ),
        (
            ["export", "{ds}", "--format", "npy", "-o", "{ds}/out", "--features", "vmnet"],
            "unknown feature set 'vmnet'; did you mean 'vmnet_music'?",
        ),
        (
            ["evaluate", "{ds}", "--audio", "vmnet", "--video", "efficientnet_lite0"],
            "unknown feature set 'vmnet'; did you mean 'vmnet_music'?",
        ),
    ],
    ids=["preset", "manifest-preset", "split", "extractor", "mel", "retry", "export", "zero-shot"],
)
def test_each_command_suggests(
    dataset: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, err = run_svm([a.format(ds=dataset) for a in args], capsys)
    refused(code, err, message)
