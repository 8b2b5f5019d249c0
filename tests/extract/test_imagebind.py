"""ImageBind vision/audio extractors: tiny configs of the real code, and the Huge layout on meta.

The official names and shapes checked below were read from facebookresearch/ImageBind
``imagebind/models/imagebind_model.py`` (commit 274d2c04b3093efc09324a648a638fed58e10f51),
``multimodal_preprocessors.py`` (1125e1ec9bd8eeeec306788688e88f178c4647f7), ``transformer.py``
(d4782c34fda0b5e11d600d6616c56fade774db0a) and ``helpers.py``
(95d27c7fd5a8362f3527e176c3a80ae5a4d880c0).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from svm_toolkit.errors import MissingWeightsError, SampleError
from svm_toolkit.extract.backends.imagebind import (
    WEIGHTS_URL,
    ImageBindAudio,
    ImageBindVideo,
    ImageBindVision,
    cache_dir,
)
from svm_toolkit.extract.base import Media
from svm_toolkit.extract.images import spatial_crops
from svm_toolkit.extract.registry import get_extractor
from svm_toolkit.models.imagebind import ImageBindArch, ImageBindEncoder, SelfAttention
from svm_toolkit.preprocess.mel import clip_starts, imagebind_fbank

TINY = ImageBindArch(
    vision_dim=32,
    vision_blocks=2,
    vision_heads=2,
    patch=32,
    audio_dim=32,
    audio_blocks=2,
    audio_heads=2,
)
SR = 16_000


@pytest.fixture(scope="module")
def tiny_models() -> dict[str, ImageBindEncoder]:
    torch.manual_seed(0)
    return {b: ImageBindEncoder(b, TINY).eval() for b in ("vision", "audio")}  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, ImageBindEncoder]):
    """Per-branch state dicts and a 'full checkpoint' holding both plus text entries."""
    root = tmp_path_factory.mktemp("imagebind")
    paths = {}
    full: dict[str, torch.Tensor] = {
        "modality_preprocessors.text.pos_embed": torch.zeros(1, 77, 8),
        "modality_trunks.text.blocks.0.attn.in_proj_weight": torch.zeros(24, 8),
        "modality_postprocessors.text.1.log_logit_scale": torch.tensor(2.0),
    }
    for branch, model in tiny_models.items():
        paths[branch] = root / f"{branch}.pth"
        torch.save(model.state_dict(), paths[branch])
        full.update(model.state_dict())
    paths["full"] = root / "imagebind_huge.pth"
    torch.save(full, paths["full"])
    return paths


def frames(rng: np.random.Generator, t: int, h: int = 240, w: int = 320) -> Media:
    data = rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8)
    return Media(data, np.arange(t, dtype=np.float32) + 0.5, None, SR)


def audio(rng: np.random.Generator, seconds: float) -> Media:
    wave = (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
    return Media(None, None, wave, SR)


def test_registered() -> None:
    assert get_extractor("imagebind_vision") is ImageBindVision
    assert get_extractor("imagebind_audio") is ImageBindAudio
    assert ImageBindVision.contract.dim == ImageBindAudio.contract.dim == 1024
    assert ImageBindVision.contract.mean == (0.48145466, 0.4578275, 0.40821073)
    assert ImageBindVision.contract.std == (0.26862954, 0.26130258, 0.27577711)


def test_vision_prepare_embed(weights: dict[str, Path], rng: np.random.Generator) -> None:
    ext = ImageBindVision(weights=weights["vision"], arch=TINY)
    ext.load("cpu")
    units = ext.prepare(frames(rng, 3))
    assert units.data.shape == (3, 3, 224, 224) and units.data.dtype == np.uint8
    np.testing.assert_array_equal(units.times_s, [0.5, 1.5, 2.5])
    out = ext.embed(torch.from_numpy(units.data))
    assert out.shape == (3, 1024) and out.dtype == torch.float32
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(3))
    assert ext.prepare(frames(rng, 0)).data.shape == (0, 3, 224, 224)


def test_vision_matches_model_on_normalised_images(
    weights: dict[str, Path], tiny_models: dict[str, ImageBindEncoder], rng: np.random.Generator
) -> None:
    """embed = the model on CLIP-normalised images; an image = its 2-frame repeat."""
    ext = ImageBindVision(weights=weights["vision"], arch=TINY)
    ext.load("cpu")
    units = ext.prepare(frames(rng, 2))
    x = torch.from_numpy(units.data).float() / 255
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    x = (x - mean) / std
    with torch.no_grad():
        ref = tiny_models["vision"](x.unsqueeze(2).repeat(1, 1, 2, 1, 1))
    torch.testing.assert_close(ext.embed(torch.from_numpy(units.data)), ref, atol=1e-5, rtol=0)


def test_audio_prepare_equals_fbank(rng: np.random.Generator) -> None:
    media = audio(rng, 7.5)
    units = ImageBindAudio(weights=None, arch=TINY).prepare(media)
    assert media.audio is not None
    np.testing.assert_array_equal(units.data, imagebind_fbank(media.audio))
    assert units.data.shape == (3, 1, 128, 204) and units.data.dtype == np.float32
    np.testing.assert_allclose(units.times_s, clip_starts(7.5, 2.0, 3), rtol=1e-6)


def test_audio_embed_and_pool_match_imagebind(
    weights: dict[str, Path], tiny_models: dict[str, ImageBindEncoder], rng: np.random.Generator
) -> None:
    """Units are unit norm (x20 undone); pool = ImageBind's mean over clips, re-normalised."""
    ext = ImageBindAudio(weights=weights["audio"], arch=TINY)
    ext.load("cpu")
    units = ext.prepare(audio(rng, 5.0))
    out = ext.embed(torch.from_numpy(units.data))
    assert out.shape == (3, 1024)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(3))
    with torch.no_grad():
        raw = tiny_models["audio"](torch.from_numpy(units.data))
    torch.testing.assert_close(raw.norm(dim=-1), torch.full((3,), 20.0))
    video = raw.mean(dim=0)  # ImageBind's reduce over the clips of a (B, S, ...) input
    pooled = ext.pool(out.numpy())
    np.testing.assert_allclose(pooled, (video / video.norm()).numpy(), atol=1e-6)


def test_no_audio_is_a_sample_error() -> None:
    ext = ImageBindAudio(weights=None, arch=TINY)
    with pytest.raises(SampleError) as err:
        ext.prepare(Media(None, None, None, SR))
    assert err.value.status == "no_audio"


def test_full_checkpoint_loads_each_branch(
    weights: dict[str, Path], tiny_models: dict[str, ImageBindEncoder], rng: np.random.Generator
) -> None:
    vision = ImageBindVision(weights=weights["full"], arch=TINY)
    vision.load("cpu")
    sound = ImageBindAudio(weights=weights["full"], arch=TINY)
    sound.load("cpu")
    assert vision.model is not None and sound.model is not None
    for branch, ext in (("vision", vision), ("audio", sound)):
        assert ext.model is not None
        expected = tiny_models[branch].state_dict()
        loaded = ext.model.state_dict()
        assert loaded.keys() == expected.keys()
        for key, value in expected.items():
            torch.testing.assert_close(loaded[key], value, atol=0, rtol=0)


def test_missing_weights_error(tmp_path: Path) -> None:
    ext = ImageBindVision(weights=tmp_path / "absent.pth", arch=TINY)
    with pytest.raises(MissingWeightsError) as err:
        ext.load("cpu")
    message = str(err.value)
    assert "absent.pth" in message and WEIGHTS_URL in message and "--weights" in message


def test_wrong_weights_error(
    weights: dict[str, Path], tmp_path: Path, tiny_models: dict[str, ImageBindEncoder]
) -> None:
    # The audio branch's weights are not vision weights.
    with pytest.raises(MissingWeightsError, match="not imagebind_vision weights"):
        ImageBindVision(weights=weights["audio"], arch=TINY).load("cpu")
    # Right names, wrong sizes (a tiny checkpoint for the Huge model is refused, not half-loaded).
    other = ImageBindArch(vision_dim=16, vision_blocks=2, vision_heads=2, patch=32)
    path = tmp_path / "small.pth"
    torch.save(ImageBindEncoder("vision", other).state_dict(), path)
    with pytest.raises(MissingWeightsError, match=re.escape(WEIGHTS_URL)):
        ImageBindVision(weights=path, arch=TINY).load("cpu")
    torch.save(torch.zeros(3), path)  # a tensor, not a state dict
    with pytest.raises(MissingWeightsError, match="not a state dict"):
        ImageBindVision(weights=path, arch=TINY).load("cpu")
    # Not a checkpoint at all (a failed download's HTML page, an empty file).
    for data in (b"<html><body>403 Forbidden</body></html>", b""):
        path.write_bytes(data)
        with pytest.raises(MissingWeightsError, match="not a torch checkpoint"):
            ImageBindVision(weights=path, arch=TINY).load("cpu")
    # A missing entry (the fixed logit scale buffer) is refused too.
    state = tiny_models["audio"].state_dict()
    del state["modality_postprocessors.audio.1.log_logit_scale"]
    torch.save(state, path)
    with pytest.raises(MissingWeightsError):
        ImageBindAudio(weights=path, arch=TINY).load("cpu")


def test_default_weights_follow_cache_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SVM_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ImageBindVision.default_weights() == tmp_path / "xdg/svm_toolkit/imagebind_huge.pth"
    monkeypatch.setenv("SVM_CACHE_DIR", str(tmp_path / "svm"))
    assert cache_dir() == tmp_path / "svm"
    ext = ImageBindAudio(arch=TINY)
    assert ext.weights == tmp_path / "svm/imagebind_huge.pth"
    with pytest.raises(MissingWeightsError, match=r"imagebind_huge\.pth"):
        ext.load("cpu")
    monkeypatch.delenv("SVM_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache/svm_toolkit"


def test_mixed_batches_equal_per_video(weights: dict[str, Path], rng: np.random.Generator) -> None:
    vision = ImageBindVision(weights=weights["vision"], arch=TINY)
    vision.load("cpu")
    clips = [vision.prepare(frames(rng, t, h, w)) for t, h, w in ((2, 224, 300), (3, 400, 224))]
    batch = vision.embed(torch.from_numpy(np.concatenate([c.data for c in clips])))
    single = torch.cat([vision.embed(torch.from_numpy(c.data)) for c in clips])
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=0)

    sound = ImageBindAudio(weights=weights["audio"], arch=TINY)
    sound.load("cpu")
    parts = [sound.prepare(audio(rng, s)) for s in (2.5, 6.0)]
    batch = sound.embed(torch.from_numpy(np.concatenate([p.data for p in parts])))
    single = torch.cat([sound.embed(torch.from_numpy(p.data)) for p in parts])
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=0)


def test_bf16_autocast(weights: dict[str, Path], rng: np.random.Generator) -> None:
    """The runner wraps embed in bf16 autocast: float32 out, close to the float32 result."""
    vision = ImageBindVision(weights=weights["vision"], arch=TINY)
    vision.load("cpu")
    units = torch.from_numpy(vision.prepare(frames(rng, 2)).data)
    sound = ImageBindAudio(weights=weights["audio"], arch=TINY)
    sound.load("cpu")
    clips = torch.from_numpy(sound.prepare(audio(rng, 3.0)).data)
    for ext, x in ((vision, units), (sound, clips)):
        full = ext.embed(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = ext.embed(x)
        assert half.dtype == torch.float32
        assert torch.nn.functional.cosine_similarity(half, full).min() > 0.99


def test_attention_equals_torch_multihead_attention() -> None:
    """Same parameter names and maths as nn.MultiheadAttention (the official trunks' attention)."""
    torch.manual_seed(1)
    for bias_kv in (False, True):
        ours = SelfAttention(16, 4, bias_kv=bias_kv)
        ref = torch.nn.MultiheadAttention(16, 4, bias=True, add_bias_kv=bias_kv).eval()
        ref.load_state_dict(ours.state_dict(), strict=True)
        x = torch.randn(2, 9, 16)
        seq_first = x.transpose(0, 1)
        with torch.no_grad():
            expected = ref(seq_first, seq_first, seq_first, need_weights=False)[0].transpose(0, 1)
            torch.testing.assert_close(ours(x), expected, atol=1e-5, rtol=1e-5)


def _huge_vision_params() -> int:
    d, blocks, out = 1280, 32, 1024
    block = 4 * d * d + 4 * d + 2 * (d * 4 * d) + 5 * d + 4 * d  # attn, mlp, two LayerNorms
    stem = d * 3 * 2 * 14 * 14
    return blocks * block + stem + d + 257 * d + 2 * d + 2 * d + d * out


def _huge_audio_params() -> int:
    d, blocks, out = 768, 12, 1024
    block = 4 * d * d + 4 * d + 2 * d + 2 * (d * 4 * d) + 5 * d + 4 * d  # + bias_k, bias_v
    stem = d * 16 * 16 + 2 * d  # conv + LayerNorm
    return blocks * block + stem + d + 229 * d + 2 * d + d * out


def test_huge_layout_matches_official_checkpoint() -> None:
    with torch.device("meta"):
        vision = ImageBindEncoder("vision")
        sound = ImageBindEncoder("audio")
    v, a = vision.state_dict(), sound.state_dict()
    assert sum(p.numel() for p in vision.parameters()) == _huge_vision_params() == 632_829_440
    assert sum(p.numel() for p in sound.parameters()) == _huge_audio_params() == 86_235_648
    assert len(v) == 32 * 12 + 8 and len(a) == 12 * 14 + 9
    expected = {
        "modality_preprocessors.vision.cls_token": (1, 1, 1280),
        "modality_preprocessors.vision.rgbt_stem.proj.1.weight": (1280, 3, 2, 14, 14),
        "modality_preprocessors.vision.pos_embedding_helper.pos_embed": (1, 257, 1280),
        "modality_trunks.vision.pre_transformer_layer.0.weight": (1280,),
        "modality_trunks.vision.blocks.0.attn.in_proj_weight": (3840, 1280),
        "modality_trunks.vision.blocks.31.attn.out_proj.weight": (1280, 1280),
        "modality_trunks.vision.blocks.31.mlp.fc1.weight": (5120, 1280),
        "modality_trunks.vision.blocks.31.norm_2.bias": (1280,),
        "modality_heads.vision.0.weight": (1280,),
        "modality_heads.vision.2.weight": (1024, 1280),
        "modality_preprocessors.audio.cls_token": (1, 1, 768),
        "modality_preprocessors.audio.rgbt_stem.proj.weight": (768, 1, 16, 16),
        "modality_preprocessors.audio.rgbt_stem.norm_layer.weight": (768,),
        "modality_preprocessors.audio.pos_embedding_helper.pos_embed": (1, 229, 768),
        "modality_trunks.audio.blocks.0.attn.bias_k": (1, 1, 768),
        "modality_trunks.audio.blocks.11.attn.bias_v": (1, 1, 768),
        "modality_trunks.audio.blocks.11.attn.in_proj_bias": (2304,),
        "modality_trunks.audio.blocks.11.mlp.fc2.weight": (768, 3072),
        "modality_heads.audio.0.bias": (768,),
        "modality_heads.audio.2.weight": (1024, 768),
        "modality_postprocessors.audio.1.log_logit_scale": (),
    }
    both = {**v, **a}
    for key, shape in expected.items():
        assert tuple(both[key].shape) == shape, key
    assert not any("pre_transformer_layer" in k for k in a)  # audio has no pre-LayerNorm
    assert not any(k.startswith("modality_postprocessors.vision") for k in v)


def test_spatial_crops_start_centre_end_along_the_long_side() -> None:
    columns = np.broadcast_to(np.arange(300, dtype=np.uint8)[None, :, None], (224, 300, 3))
    crops = spatial_crops(np.stack([columns, columns]), 224)
    assert crops.shape == (3, 2, 3, 224, 224)
    assert [int(c[0, 0, 0, 0]) for c in crops] == [0, 38, 76]  # 0, ceil(76 / 2), 300 - 224
    rows = np.ascontiguousarray(columns.transpose(1, 0, 2))  # portrait: crops go down
    assert [int(c[0, 0, 0, 0]) for c in spatial_crops(rows[None], 224)] == [0, 38, 76]
    small = np.zeros((1, 112, 150, 3), np.uint8)  # the short side is scaled to 224 first
    assert spatial_crops(small, 224).shape == (3, 1, 3, 224, 224)


def test_video_prepare_samples_clips_as_imagebind() -> None:
    seconds = 10
    data = np.stack([np.full((224, 300, 3), i, np.uint8) for i in range(seconds)])
    media = Media(data, np.arange(seconds, dtype=np.float32), None, SR)
    units = ImageBindVideo(weights=None, arch=TINY).prepare(media)
    starts = clip_starts(float(seconds), 2.0, 5)  # 0, 1.6, 3.2, 4.8, 6.4
    np.testing.assert_allclose(units.times_s, starts, atol=1e-6)
    assert units.data.shape == (5, 3, 3, 2, 224, 224) and units.data.dtype == np.uint8
    # each clip's first and last frame: the decoded frames nearest its start and start + 1 s
    picked = units.data[:, 0, 0, :, 0, 0].tolist()
    assert picked == [[0, 1], [2, 3], [3, 4], [5, 6], [6, 7]]
    with pytest.raises(SampleError, match="no decoded frames"):
        ImageBindVideo(weights=None, arch=TINY).prepare(Media(data[:0], None, None, SR))


def test_video_embed_is_the_mean_over_crops_of_the_model_on_clips(
    weights: dict[str, Path], tiny_models: dict[str, ImageBindEncoder], rng: np.random.Generator
) -> None:
    ext = ImageBindVideo(weights=weights["vision"], arch=TINY)
    ext.load("cpu")
    assert get_extractor("imagebind_video") is ImageBindVideo
    units = ext.prepare(frames(rng, 6))
    out = ext.embed(torch.from_numpy(units.data))
    assert out.shape == (5, 1024)
    assert bool((out.norm(dim=-1) < 1).all())  # means of 3 unit vectors, not re-normalised
    x = torch.from_numpy(units.data).flatten(0, 1).float() / 255  # (clips x crops, 3, 2, S, S)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1, 1)
    with torch.no_grad():
        per_crop = tiny_models["vision"]((x - mean) / std).view(5, 3, -1)
    torch.testing.assert_close(out, per_crop.mean(dim=1), atol=1e-5, rtol=0)
    pooled = torch.from_numpy(ext.pool(out.numpy()))  # the mean of all 15, then L2
    expected = torch.nn.functional.normalize(per_crop.flatten(0, 1).mean(dim=0), dim=-1)
    torch.testing.assert_close(pooled, expected, atol=1e-5, rtol=0)
