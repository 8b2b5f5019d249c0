"""VGGish model + PCA parity against torchvggish itself (PyPI 0.2, ``torchvggish/torchvggish.py``).

The reference is the installed package's ``VGG(make_layers(), postprocess=True)`` with random
weights; its ``Postprocessor`` reads ``vggish_pca_params-970ea276.pth`` through
``torch.hub.load_state_dict_from_url``, which finds the file in the hub cache (``$TORCH_HOME``,
here a temporary folder holding synthetic whitening parameters), so nothing is downloaded. The
examples are torchvggish's own ``vggish_input.waveform_to_examples`` of a stereo 44.1 kHz
Ogg/Vorbis recording with a different signal in each channel; both models get the same examples.

* raw embeddings (``postprocess=False`` forward vs our extractor without PCA): within 1e-6 with
  ``VGGishConfig(final_relu=True)``; our default (TF's graph, no ReLU on the embedding) equals
  torchvggish's after a ReLU;
* PCA (``final_relu=True``, as torchvggish applies it after its ReLU): ours (``--vggish-pca``
  with the same ``.pth``) truncates to 8 bits as TF's ``vggish_postprocess.py`` does, where
  torchvggish rounds: every code is torchvggish's or one below, and our unquantised PCA rounds
  to torchvggish's codes;
* the torch.hub model's state dict (``pproc.pca_eigen_vectors`` / ``pproc.pca_means`` beside
  the VGG weights, harritaylor/torchvggish ``torchvggish/vggish.py``) loads strictly.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from svm_toolkit.extract.backends.vggish import VGGish
from svm_toolkit.models.vggish import QUANTIZE_MAX, QUANTIZE_MIN, VGGishConfig

#: Left: an A-minor chord with a slow tremolo; right: a rising chirp under noise bursts.
STEREO = (
    "aevalsrc="
    "0.2*(sin(2*PI*220*t)+sin(2*PI*261.63*t)+sin(2*PI*329.63*t))*(0.6+0.4*sin(2*PI*2*t))"
    "|0.3*sin(2*PI*(200+300*t)*t)+0.2*(random(0)-0.5)*lt(mod(t\\,0.5)\\,0.1)"
    ":s=44100:d=5"
)
PCA_FILE = "vggish_pca_params-970ea276.pth"  # the file name torchvggish's PCA_PARAMS URL ends in


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> torch.Tensor:
    """torchvggish's examples of the stereo recording: float (N, 1, 96, 64)."""
    from torchvggish import vggish_input

    path = tmp_path_factory.mktemp("audio") / "stereo.ogg"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i", STEREO,
         "-c:a", "libvorbis", "-q:a", "6", str(path)],
        check=True, timeout=30,
    )  # fmt: skip
    wave, rate = soundfile.read(path, dtype="float32")
    assert rate == 44_100 and wave.shape[1] == 2
    assert np.abs(wave[:, 0] - wave[:, 1]).mean() > 0.05  # two different channels
    out = vggish_input.waveform_to_examples(wave, rate)  # a tensor that requires grad
    return torch.as_tensor(out).detach().float().reshape(-1, 1, 96, 64)


def test_vggish_and_pca_equal_torchvggish(
    examples: torch.Tensor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torchvggish import torchvggish as reference

    torch.manual_seed(0)
    plain = reference.VGG(reference.make_layers(), postprocess=False).eval()
    weights = tmp_path / "vggish.pth"
    torch.save(plain.state_dict(), weights)
    with torch.no_grad():
        raw_ref = plain(examples)

    # synthetic whitening: centre on these embeddings, rotate, scale to about unit variance
    q, _ = torch.linalg.qr(torch.randn(128, 128, generator=torch.Generator().manual_seed(1)))
    means = raw_ref.mean(dim=0)
    spread = (raw_ref - means).pow(2).mean().sqrt()
    eigen_vectors = q / spread
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    pca_path = tmp_path / "torch" / "hub" / "checkpoints" / PCA_FILE
    pca_path.parent.mkdir(parents=True)
    torch.save({"pca_eigen_vectors": eigen_vectors, "pca_means": means}, pca_path)
    full = reference.VGG(reference.make_layers(), postprocess=True).eval()
    full.load_state_dict(plain.state_dict())
    with torch.no_grad():
        codes_ref = full(examples).numpy()

    tf_form = VGGish(weights=weights)  # the default: TF's graph, no ReLU on the embedding
    tf_form.load("cpu")
    raw = tf_form.embed(examples[:, 0])
    assert raw.shape == raw_ref.shape == (len(examples), 128) and len(examples) >= 4
    assert bool((raw < 0).any())  # TF's embedding is signed
    assert (raw.clamp(min=0) - raw_ref).abs().max().item() <= 1e-6  # torchvggish adds a ReLU

    ours = VGGish(weights=weights, config=VGGishConfig(final_relu=True))  # torchvggish's form
    ours.load("cpu")
    assert (ours.embed(examples[:, 0]) - raw_ref).abs().max().item() <= 1e-6
    ours.use_pca(pca_path)
    dequantised = ours.embed(examples[:, 0]).numpy()
    codes = np.round((dequantised - QUANTIZE_MIN) * 255 / (QUANTIZE_MAX - QUANTIZE_MIN))
    assert ((codes_ref > 0) & (codes_ref < 255)).mean() > 0.05  # the PCA spreads the codes
    step = codes_ref - codes
    assert set(np.unique(step)) <= {0.0, 1.0}  # TF truncates where torchvggish rounds
    post = ours.pca
    assert post is not None
    scaled = (np.clip(post.pca(raw_ref.double().numpy()), -2, 2) + 2) * 255 / 4
    near_half = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-3
    assert np.array_equal(np.round(scaled)[~near_half], codes_ref[~near_half])


@pytest.mark.parametrize(
    "matrix_key",
    [
        "pproc.pca_eigen_vectors",  # harritaylor/torchvggish vggish.py, commit 48521ec to HEAD
        "pproc.pca_matrix",  # the same file at commit 1bedc9d
    ],
)
def test_torch_hub_state_dict_with_its_postprocessor_loads(tmp_path: Path, matrix_key: str) -> None:
    """The PyPI release (0.2) has no hub ``VGGish`` class, so the ``pproc`` keys of the torch.hub
    module (read from its source at the commits named) are added to the real VGG's state dict."""
    from torchvggish import torchvggish as reference

    torch.manual_seed(2)
    state = reference.VGG(reference.make_layers(), postprocess=False).state_dict()
    matrix, means = torch.randn(128, 128), torch.randn(128, 1)
    path = tmp_path / "vggish_hub.pth"
    torch.save({**state, matrix_key: matrix, "pproc.pca_means": means}, path)
    ours = VGGish(weights=path)
    ours.load("cpu")
    assert ours.postprocessor is not None
    np.testing.assert_array_equal(ours.postprocessor.eigen_vectors, matrix.double().numpy())
    np.testing.assert_array_equal(ours.postprocessor.means, means.double().numpy()[:, 0])
