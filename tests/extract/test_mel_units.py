"""Audio extractors read the Mel units ``svm preprocess`` stored instead of recomputing them."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from svm_toolkit.extract.backends.vggish import VGGish
from svm_toolkit.extract.config import ExtractConfig
from svm_toolkit.extract.mel_units import attach_mel
from svm_toolkit.extract.prepare import Decoder
from svm_toolkit.extract.registry import get_extractor
from svm_toolkit.extract.runner import plan_jobs, run_extract
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import read_shards
from svm_toolkit.preprocess import run_preprocess
from svm_toolkit.schema import COL
from tests.preprocess.test_stage import CONFIG as PREPROCESS
from tests.preprocess.test_stage import make_dataset

AUDIO = ("vggish", "imagebind_audio")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Preprocessed with both recipes' Mel shards (three videos pass the filters)."""
    root = make_dataset(tmp_path_factory.mktemp("mel_units") / "ds")
    run_preprocess(root, dataclasses.replace(PREPROCESS, mel=("imagebind", "vggish")))
    return root


def unreadable(root: Path, sample_id: str) -> None:
    (root / "media" / sample_id[:2] / f"{sample_id}.mp4").write_bytes(b"\x00" * 512)


def test_stored_units_equal_the_ones_computed_from_the_soundtrack(
    dataset: Path, tmp_path: Path
) -> None:
    root = shutil.copytree(dataset, tmp_path / "ds")
    layout = DatasetLayout(root)
    jobs, _, _ = plan_jobs(layout, AUDIO, ())
    extractors = {name: get_extractor(name)(weights=None) for name in AUDIO}
    attached = list(attach_mel(jobs, layout, extractors))
    assert sorted(j.sample_id for j in attached) == ["boxed", "good", "noise"]
    assert all(set(job.mel) == set(AUDIO) for job in attached)
    decoder = Decoder(root, AUDIO, 1.0)
    for job in attached:
        stored = decoder(job)
        computed = decoder(dataclasses.replace(job, mel={}))
        assert not stored.failed and not computed.failed
        for name in AUDIO:
            np.testing.assert_allclose(
                stored.units[name].data, computed.units[name].data, rtol=1e-5, atol=1e-5
            )
            np.testing.assert_allclose(stored.units[name].times_s, computed.units[name].times_s)
    unreadable(root, "good")  # the stored units need no soundtrack at all
    job = next(j for j in attached if j.sample_id == "good")
    assert set(decoder(job).units) == set(AUDIO)
    assert set(decoder(dataclasses.replace(job, mel={})).failed) == set(AUDIO)


def test_svm_extract_reads_them(dataset: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    weights = tmp_path / "vggish.pth"
    torch.save(VGGish(weights=None).build().state_dict(), weights)
    config = ExtractConfig(
        extractors=("vggish",), device="cpu", workers=1, weights=(("vggish", str(weights)),)
    )
    stored = shutil.copytree(dataset, tmp_path / "stored")
    computed = shutil.copytree(dataset, tmp_path / "computed")
    shutil.rmtree(computed / "preprocess" / "mel_vggish")
    unreadable(stored, "good")  # only the stored units can serve it
    assert run_extract(stored, config).by_status == {"vggish ok": 3}
    run_extract(computed, config)
    ours, theirs = (read_shards(r / "features" / "vggish", "part") for r in (stored, computed))
    assert ours is not None and theirs is not None
    rows = {r[COL.sample_id]: r for r in theirs.to_pylist()}
    for row in ours.to_pylist():
        expected = rows[row[COL.sample_id]]
        assert row[COL.timestamps_s] == pytest.approx(expected[COL.timestamps_s])
        np.testing.assert_allclose(
            np.asarray(row[COL.embeddings], np.float32),
            np.asarray(expected[COL.embeddings], np.float32),
            atol=2e-3,
        )
