"""VGGish extractor: the real architecture (small widths for speed, full size on meta)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from svm_toolkit.errors import MissingWeightsError, SampleError
from svm_toolkit.extract.backends.vggish import (
    WEIGHTS_SHA256_PREFIX,
    WEIGHTS_URL,
    VGGish,
    cache_dir,
    load_postprocessor,
    postprocess,
)
from svm_toolkit.extract.base import Media
from svm_toolkit.extract.registry import get_extractor
from svm_toolkit.models.vggish import (
    Postprocessor,
    VGGishConfig,
    convert_tf_variables,
    dequantize,
    quantize,
)
from svm_toolkit.models.vggish import VGGish as VGGishNet
from svm_toolkit.preprocess.mel import vggish_examples

SMALL = VGGishConfig(width=4, hidden=32)
SR = 16_000

#: torchvggish's state-dict keys and shapes (harritaylor/torchvggish ``vggish.py``).
TORCHVGGISH_SHAPES = {
    "features.0.weight": (64, 1, 3, 3),
    "features.0.bias": (64,),
    "features.3.weight": (128, 64, 3, 3),
    "features.3.bias": (128,),
    "features.6.weight": (256, 128, 3, 3),
    "features.6.bias": (256,),
    "features.8.weight": (256, 256, 3, 3),
    "features.8.bias": (256,),
    "features.11.weight": (512, 256, 3, 3),
    "features.11.bias": (512,),
    "features.13.weight": (512, 512, 3, 3),
    "features.13.bias": (512,),
    "embeddings.0.weight": (4096, 12288),
    "embeddings.0.bias": (4096,),
    "embeddings.2.weight": (4096, 4096),
    "embeddings.2.bias": (4096,),
    "embeddings.4.weight": (128, 4096),
    "embeddings.4.bias": (128,),
}


def _small_weights(tmp_path: Path, seed: int = 0, config: VGGishConfig = SMALL) -> Path:
    torch.manual_seed(seed)
    path = tmp_path / f"vggish-{seed}-{config.width}.pth"
    torch.save(VGGishNet(config).state_dict(), path)
    return path


def _loaded(tmp_path: Path) -> VGGish:
    extractor = VGGish(weights=_small_weights(tmp_path), config=SMALL)
    extractor.load("cpu")
    return extractor


def _media(seconds: float, seed: int) -> Media:
    audio = np.random.default_rng(seed).normal(0, 0.1, round(seconds * SR)).astype(np.float32)
    return Media(frames=None, frame_times_s=None, audio=audio, sample_rate=SR)


# -- architecture ---------------------------------------------------------------------------------


def test_full_size_names_shapes_and_count_match_torchvggish() -> None:
    with torch.device("meta"):
        model = VGGishNet()
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    assert shapes == TORCHVGGISH_SHAPES
    assert sum(p.numel() for p in model.parameters()) == 72_141_184


def test_registry_and_contract() -> None:
    assert get_extractor("vggish") is VGGish
    contract = VGGish.contract
    assert (contract.modality, contract.dim, contract.step_s) == ("audio", 128, 0.96)
    assert (contract.sample_rate, contract.recipe) == (16_000, "vggish")


def test_feature_map_is_6_by_4_and_no_final_relu() -> None:
    torch.manual_seed(1)
    model = VGGishNet(SMALL).eval()
    x = torch.randn(3, 96, 64)
    assert model.features(x.unsqueeze(1)).shape == (3, 32, 6, 4)
    out = model(x)
    assert out.shape == (3, 128)
    assert (out < 0).any()  # TF's embedding has no final non-linearity
    relu = VGGishNet(VGGishConfig(width=4, hidden=32, final_relu=True)).eval()
    relu.load_state_dict(model.state_dict())
    torch.testing.assert_close(relu(x), out.clamp(min=0))
    torch.testing.assert_close(model(x.unsqueeze(1)), out)  # (N, 1, 96, 64) accepted too


def test_tf_variables_convert_with_nhwc_flatten_order() -> None:
    rng = np.random.default_rng(2)
    w = SMALL.width
    convs = {
        "conv1": (1, w),
        "conv2": (w, 2 * w),
        "conv3/conv3_1": (2 * w, 4 * w),
        "conv3/conv3_2": (4 * w, 4 * w),
        "conv4/conv4_1": (4 * w, 8 * w),
        "conv4/conv4_2": (8 * w, 8 * w),
    }
    fcs = {"fc1/fc1_1": (6 * 4 * 8 * w, 32), "fc1/fc1_2": (32, 32), "fc2": (32, 128)}
    tf: dict[str, np.ndarray] = {}
    for scope, (cin, cout) in convs.items():
        tf[f"vggish/{scope}/weights:0"] = rng.normal(0, 0.2, (3, 3, cin, cout))  # HWIO
        tf[f"vggish/{scope}/biases:0"] = rng.normal(0, 0.1, cout)
    for scope, (fin, fout) in fcs.items():
        tf[f"vggish/{scope}/weights:0"] = rng.normal(0, 0.2, (fin, fout))  # (in, out)
        tf[f"vggish/{scope}/biases:0"] = rng.normal(0, 0.1, fout)
    model = VGGishNet(SMALL).eval()
    model.load_state_dict(convert_tf_variables(tf), strict=True)
    x = torch.randn(2, 96, 64)
    with torch.no_grad():
        nhwc = model.features(x.unsqueeze(1)).permute(0, 2, 3, 1).reshape(2, -1).numpy()
        out = model(x).numpy()
    # TF: slim.flatten of the NHWC map, then x @ kernel + bias with the kernels as stored.
    h = np.maximum(nhwc @ tf["vggish/fc1/fc1_1/weights:0"] + tf["vggish/fc1/fc1_1/biases:0"], 0)
    h = np.maximum(h @ tf["vggish/fc1/fc1_2/weights:0"] + tf["vggish/fc1/fc1_2/biases:0"], 0)
    expected = h @ tf["vggish/fc2/weights:0"] + tf["vggish/fc2/biases:0"]
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


# -- prepare --------------------------------------------------------------------------------------


def test_prepare_is_vggish_examples_on_a_096_s_grid() -> None:
    media = _media(4.0, seed=3)
    units = VGGish().prepare(media)
    assert media.audio is not None
    np.testing.assert_array_equal(units.data, vggish_examples(media.audio))
    assert units.data.dtype == np.float32 and units.data.shape == (4, 96, 64)
    assert units.times_s.dtype == np.float32
    np.testing.assert_allclose(units.times_s, [0.0, 0.96, 1.92, 2.88], atol=1e-6)


def test_prepare_short_missing_and_wrongly_sampled_audio() -> None:
    assert VGGish().prepare(_media(0.5, seed=4)).data.shape == (0, 96, 64)
    with pytest.raises(SampleError) as err:
        VGGish().prepare(Media(frames=None, frame_times_s=None, audio=None, sample_rate=SR))
    assert err.value.status == "no_audio"
    audio = np.zeros(44_100, np.float32)
    with pytest.raises(ValueError, match="16000 Hz"):
        VGGish().prepare(Media(frames=None, frame_times_s=None, audio=audio, sample_rate=44_100))


# -- weights --------------------------------------------------------------------------------------


def test_load_from_saved_state_dict_and_embed_shapes(tmp_path: Path) -> None:
    extractor = _loaded(tmp_path)
    units = extractor.prepare(_media(2.5, seed=5))
    out = extractor.embed(torch.from_numpy(units.data))
    assert out.shape == (2, 128) and out.dtype == torch.float32
    assert extractor.postprocessor is None
    reference = VGGishNet(SMALL)
    reference.load_state_dict(torch.load(extractor.weights, weights_only=True))
    with torch.no_grad():
        torch.testing.assert_close(out, reference.eval()(torch.from_numpy(units.data)))


def test_missing_weights_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MissingWeightsError) as err:
        VGGish(weights=tmp_path / "absent.pth", config=SMALL).load("cpu")
    message = str(err.value)
    for part in ("absent.pth", "vggish-10086976.pth", WEIGHTS_SHA256_PREFIX, WEIGHTS_URL):
        assert part in message
    assert "--weights" in message

    monkeypatch.setenv("SVM_CACHE_DIR", str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache"
    assert VGGish().weights == tmp_path / "cache" / "vggish.pth"
    with pytest.raises(MissingWeightsError, match=r"cache/vggish\.pth"):
        VGGish(config=SMALL).load("cpu")
    # the torch.hub file name is found in the cache too
    (tmp_path / "cache").mkdir()
    hub_name = _small_weights(tmp_path).rename(tmp_path / "cache" / "vggish-10086976.pth")
    assert VGGish().weights == hub_name
    monkeypatch.delenv("SVM_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "svm_toolkit"


def test_wrong_weights_file(tmp_path: Path) -> None:
    other = _small_weights(tmp_path, config=VGGishConfig(width=8, hidden=32))
    with pytest.raises(MissingWeightsError, match="not vggish weights"):
        VGGish(weights=other, config=SMALL).load("cpu")
    junk = tmp_path / "junk.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, junk)
    with pytest.raises(MissingWeightsError, match=r"vggish-10086976\.pth"):
        VGGish(weights=junk, config=SMALL).load("cpu")


def test_torchvggish_state_dict_with_pproc_keys(tmp_path: Path) -> None:
    torch.manual_seed(6)
    state = VGGishNet(SMALL).state_dict()
    matrix = torch.randn(128, 128)
    means = torch.randn(128, 1)  # torchvggish keeps the means as a column
    path = tmp_path / "whole.pth"
    # the torch.hub VGGish's keys (harritaylor/torchvggish torchvggish/vggish.py, Postprocessor)
    torch.save({**state, "pproc.pca_eigen_vectors": matrix, "pproc.pca_means": means}, path)
    extractor = VGGish(weights=path, config=SMALL)
    extractor.load("cpu")
    assert extractor.postprocessor is not None
    np.testing.assert_allclose(extractor.postprocessor.eigen_vectors, matrix.double().numpy())
    np.testing.assert_allclose(extractor.postprocessor.means, means.double().numpy()[:, 0])
    assert extractor.model is not None
    torch.testing.assert_close(
        extractor.model.state_dict()["embeddings.4.bias"], state["embeddings.4.bias"]
    )


# -- batching -------------------------------------------------------------------------------------


def test_mixed_video_batch_equals_per_video(tmp_path: Path) -> None:
    extractor = _loaded(tmp_path)
    videos = [extractor.prepare(_media(s, seed=10 + i)) for i, s in enumerate((2.0, 3.5, 1.0))]
    assert [len(u.data) for u in videos] == [2, 3, 1]
    together = extractor.embed(torch.from_numpy(np.concatenate([u.data for u in videos])))
    alone = torch.cat([extractor.embed(torch.from_numpy(u.data)) for u in videos])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
    assert extractor.pool(together.numpy()[:2]).shape == (128,)


# -- postprocessing -------------------------------------------------------------------------------


def test_quantize_truncates_and_clips() -> None:
    x = np.array([-3.0, -2.0, -1.999, 0.0, 0.6, 1.0, 2.0, 7.0])
    # (x + 2) * 63.75: 0, 0, 0.06, 127.5, 165.75, 191.25, 255, 255 -> truncated
    np.testing.assert_array_equal(quantize(x), [0, 0, 0, 127, 165, 191, 255, 255])
    assert quantize(x).dtype == np.uint8
    np.testing.assert_allclose(dequantize(np.array([0, 255], np.uint8)), [-2.0, 2.0])


def test_postprocessor_hand_computed() -> None:
    post = Postprocessor([[1.0, 0.0], [0.0, 2.0]], [0.5, -0.5])
    emb = np.array([[1.5, -0.2], [10.0, -9.0]])
    # E (x - mu): [1.0, 0.6] and [9.5, -17.0] -> clipped [2, -2]
    np.testing.assert_allclose(post.pca(emb), [[1.0, 0.6], [9.5, -17.0]])
    np.testing.assert_array_equal(post(emb), [[191, 165], [255, 0]])


def test_postprocess_from_npz_and_torch_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    matrix, means = rng.normal(0, 0.3, (128, 128)), rng.normal(0, 0.1, 128)
    npz = tmp_path / "vggish_pca_params.npz"
    np.savez(npz, pca_eigen_vectors=matrix, pca_means=means)
    pth = tmp_path / "vggish_pca_params-970ea276.pth"
    torch.save(
        {"pca_eigen_vectors": torch.from_numpy(matrix), "pca_means": torch.from_numpy(means)}, pth
    )
    emb = rng.normal(0, 1, (5, 128)).astype(np.float32)
    expected = quantize((emb.astype(np.float64) - means) @ matrix.T)
    out = postprocess(emb, npz)
    assert out.dtype == np.uint8 and out.shape == (5, 128)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(postprocess(emb, pth), expected)
    np.testing.assert_array_equal(postprocess(emb, load_postprocessor(npz)), expected)


def test_postprocess_bad_files(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match=r"vggish_pca_params\.npz"):
        postprocess(np.zeros((1, 128)), tmp_path / "absent.npz")
    small = tmp_path / "small.npz"
    np.savez(small, pca_eigen_vectors=np.eye(4), pca_means=np.zeros(4))
    with pytest.raises(MissingWeightsError, match="expected \\(128, 128\\)"):
        postprocess(np.zeros((1, 128)), small)
    keys = tmp_path / "keys.npz"
    np.savez(keys, something=np.eye(128))
    with pytest.raises(MissingWeightsError, match="not VGGish PCA parameters"):
        postprocess(np.zeros((1, 128)), keys)
    text = tmp_path / "text.pth"
    text.write_text("not a torch file")
    with pytest.raises(MissingWeightsError, match="not VGGish PCA parameters"):
        postprocess(np.zeros((1, 128)), text)


def test_full_size_model_embeds_on_cpu(tmp_path: Path) -> None:
    torch.manual_seed(8)
    model = VGGish().build().eval()
    torch.save(model.state_dict(), tmp_path / "vggish.pth")
    extractor = VGGish(weights=tmp_path / "vggish.pth")
    extractor.load("cpu")  # the frozen graph
    examples = torch.randn(3, 96, 64)
    out = extractor.embed(examples)
    assert out.shape == (3, 128) and out.dtype == torch.float32
    with torch.inference_mode():
        torch.testing.assert_close(out, model(examples), rtol=1e-4, atol=1e-4)


def test_use_pca_gives_the_dequantised_youtube8m_form(tmp_path: Path) -> None:
    from svm_toolkit.extract.backends.vggish import postprocess
    from svm_toolkit.models.vggish import dequantize

    extractor = _loaded(tmp_path)
    batch = torch.from_numpy(extractor.prepare(_media(3.0, seed=9)).data)
    raw = extractor.embed(batch)
    rng = np.random.default_rng(4)
    params = tmp_path / "vggish_pca_params.npz"
    np.savez(
        params, pca_eigen_vectors=rng.normal(0, 0.3, (128, 128)), pca_means=rng.normal(size=128)
    )
    extractor.use_pca(params)
    out = extractor.embed(batch)
    assert out.dtype == torch.float32 and out.shape == raw.shape
    expected = dequantize(postprocess(raw.numpy(), params))
    np.testing.assert_array_equal(out.numpy(), expected)
    assert float(out.min()) >= -2.0 and float(out.max()) <= 2.0
    assert len(np.unique(out.numpy())) <= 256  # 8-bit codes


def test_vggish_pca_without_vggish_is_a_config_error(tmp_path: Path) -> None:
    from svm_toolkit.errors import ConfigError
    from svm_toolkit.extract.config import ExtractConfig
    from svm_toolkit.extract.runner import run_extract

    params = tmp_path / "vggish_pca_params.npz"
    np.savez(params, pca_eigen_vectors=np.eye(128), pca_means=np.zeros(128))
    config = ExtractConfig(extractors=("vmnet_music",), device="cpu", vggish_pca=str(params))
    with pytest.raises(ConfigError, match="--vggish-pca needs the vggish extractor"):
        run_extract(tmp_path, config)
