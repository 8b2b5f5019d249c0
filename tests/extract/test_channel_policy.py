"""Extract decodes a sample without stored Mel units on the channels `svm preprocess` used."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa

from svm_toolkit import ffmpeg
from svm_toolkit.data import read_mel
from svm_toolkit.extract.prepare import Decoder, ExtractJob, recorded_channels
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import ShardWriter
from svm_toolkit.preprocess import PreprocessConfig, run_preprocess
from svm_toolkit.preprocess.audio import Take
from svm_toolkit.preprocess.filters import FilterConfig
from svm_toolkit.preprocess.recipes import MelChannels
from svm_toolkit.schema import COL, ledger_schema, with_provenance
from tests.preprocess.test_stage import _download_row

FIRST = PreprocessConfig(
    filters=FilterConfig(min_motion=None),
    mel=("vggish",),
    channels=MelChannels(vggish="first"),  # vggish's default is the channel mean
    workers=1,
)


def stereo_dataset(root: Path) -> str:
    """One downloaded 4 s video whose soundtrack is a tone on the left and noise on the right."""
    media = DatasetLayout(root).media_path("duo", ".mp4")
    media.parent.mkdir(parents=True)
    subprocess.run(
        [ffmpeg.require(), "-v", "error",
         "-f", "lavfi", "-i", "testsrc2=size=240x160:rate=25:duration=4",
         "-f", "lavfi", "-i", "aevalsrc=0.5*sin(2*PI*330*t)|0.3*(random(0)-0.5):s=44100:d=4",
         "-c:v", "libx264", "-g", "10", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
         str(media)],
        check=True,
    )  # fmt: skip
    relative = media.relative_to(root).as_posix()
    schema = with_provenance(ledger_schema(pa.field(COL.media_path, pa.string())), "download")
    with ShardWriter(DatasetLayout(root).ledger_dir, "download", schema) as writer:
        writer.write([_download_row("duo", relative)])
    return relative


def test_a_sample_without_its_mel_row_gets_the_channels_preprocess_used(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    media = stereo_dataset(root)
    assert run_preprocess(root, FIRST).attempted == 1
    assert recorded_channels(root, "vggish") == "first"
    stored = read_mel(root, "vggish")["duo"]

    decoder = Decoder(root, ("vggish",), 1.0)
    assert decoder.takes["vggish"] == Take("first", "resampy")
    job = ExtractJob("duo", media, ("vggish",), size=(240, 160))  # its Mel row is missing
    computed = decoder(job)
    assert not computed.failed
    units = np.asarray(computed.units["vggish"].data, dtype=np.float32)
    np.testing.assert_allclose(units.reshape(stored.units.shape), stored.units, atol=1e-4)

    default = shutil.copytree(root, tmp_path / "no_mel")
    shutil.rmtree(DatasetLayout(default).mel_dir("vggish"))  # no Mel shards: the default policy
    assert recorded_channels(default, "vggish") is None
    mean = Decoder(default, ("vggish",), 1.0)
    assert mean.takes["vggish"] == Take("mean", "resampy")
    other = np.asarray(mean(job).units["vggish"].data, dtype=np.float32)
    assert np.abs(other.reshape(stored.units.shape) - stored.units).max() > 0.1
