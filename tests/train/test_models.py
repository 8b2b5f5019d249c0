from __future__ import annotations

import pytest
import torch

from svm_toolkit.errors import ConfigError
from svm_toolkit.train.config import LossConfig, ModelConfig
from svm_toolkit.train.losses import InfoNCE, Triplet, build_loss
from svm_toolkit.train.models import ENCODERS, build_model


def _batch(b: int = 4, length: int = 5) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    video = torch.randn(b, length, 12, generator=g)
    audio = torch.randn(b, 3, 7, generator=g)
    video_mask = torch.ones(b, length, dtype=torch.bool)
    video_mask[1, 3:] = False
    audio_mask = torch.ones(b, 3, dtype=torch.bool)
    return video, video_mask, audio, audio_mask


@pytest.mark.parametrize("model", ["tivm", "mvbind"])
@pytest.mark.parametrize("encoder", sorted(ENCODERS))
def test_towers_give_unit_embeddings_that_ignore_padding(model: str, encoder: str) -> None:
    torch.manual_seed(0)
    config = ModelConfig(name=model, encoder=encoder, width=16, embed_dim=8, heads=2)
    net = build_model(config, video_dim=12, audio_dim=7).eval()
    video, video_mask, audio, audio_mask = _batch()
    v, a = net(video, video_mask, audio, audio_mask)
    assert v.shape == (4, 8) and a.shape == (4, 8) and v.dtype == torch.float32
    torch.testing.assert_close(v.norm(dim=1), torch.ones(4))
    padded = video.clone()
    padded[1, 3:] = 1e3  # whatever is in the padding must not change row 1
    v2, _ = net(padded, video_mask, audio, audio_mask)
    torch.testing.assert_close(v2, v, rtol=1e-5, atol=1e-5)
    alone, _ = net(video[1:2, :3], video_mask[1:2, :3], audio[1:2], audio_mask[1:2])
    torch.testing.assert_close(alone[0], v[1], rtol=1e-4, atol=1e-5)


def test_registries_match_the_names_the_cli_offers() -> None:
    from svm_toolkit.train.config import ENCODER_NAMES, LOSS_NAMES, MODEL_NAMES
    from svm_toolkit.train.losses import LOSSES
    from svm_toolkit.train.models import MODELS

    assert (tuple(MODELS), tuple(ENCODERS), tuple(LOSSES)) == (
        MODEL_NAMES,
        ENCODER_NAMES,
        LOSS_NAMES,
    )


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="known: tivm, mvbind"):
        build_model(ModelConfig(name="clip"), video_dim=4, audio_dim=4)
    with pytest.raises(ConfigError, match="known: transformer, lstm, mean"):
        build_model(ModelConfig(encoder="gru"), video_dim=4, audio_dim=4)
    with pytest.raises(ConfigError, match="known: infonce, triplet"):
        build_loss(LossConfig(name="hinge"))  # type: ignore[arg-type]


def _unit(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x, dim=1)


def test_infonce_equals_cross_entropy_and_prefers_aligned_pairs() -> None:
    g = torch.Generator().manual_seed(1)
    v, a = _unit(torch.randn(6, 8, generator=g)), _unit(torch.randn(6, 8, generator=g))
    loss = InfoNCE(LossConfig(temperature=0.1, multi_positive=False))
    groups = torch.arange(6)
    logits = 10.0 * v @ a.T
    expected = (
        torch.nn.functional.cross_entropy(logits, groups)
        + torch.nn.functional.cross_entropy(logits.T, groups)
    ) / 2
    torch.testing.assert_close(loss(v, a, groups), expected)
    with torch.no_grad():
        assert float(loss(v, v, groups)) < float(loss(v, a, groups))
    assert loss.temperature == pytest.approx(0.1)


def test_infonce_gradient_pulls_pairs_together_and_learns_temperature() -> None:
    g = torch.Generator().manual_seed(2)
    v = torch.randn(8, 16, generator=g, requires_grad=True)
    a = torch.randn(8, 16, generator=g)
    loss_fn = InfoNCE(LossConfig())
    loss = loss_fn(_unit(v), _unit(a), torch.arange(8))
    loss.backward()
    assert v.grad is not None and torch.isfinite(v.grad).all()
    assert loss_fn.log_scale.grad is not None
    before = (_unit(v) * _unit(a)).sum(dim=1)
    after = (_unit(v - 0.5 * v.grad) * _unit(a)).sum(dim=1)  # one descent step
    assert float(after.mean().detach()) > float(before.mean().detach())


def test_multi_positive_does_not_push_apart_videos_of_one_song() -> None:
    g = torch.Generator().manual_seed(3)
    v = _unit(torch.randn(4, 8, generator=g))
    a = v.clone()
    a[1] = a[0]  # pairs 0 and 1 share a song (same music)
    groups = torch.tensor([0, 0, 2, 3])
    single = InfoNCE(LossConfig(multi_positive=False))
    multi = InfoNCE(LossConfig(multi_positive=True))
    with torch.no_grad():
        assert float(multi(v, a, groups)) < float(single(v, a, groups))
    triplet = Triplet(LossConfig(name="triplet", hard_after_steps=0))
    strict = Triplet(LossConfig(name="triplet", hard_after_steps=0, multi_positive=False))
    assert float(triplet(a, a, groups)) == pytest.approx(0.0, abs=1e-6)
    # the twin counted as a negative: rows 0 and 1 each pay the margin, 0.2 * 2 / 4
    assert float(strict(a, a, groups)) == pytest.approx(0.1, abs=1e-6)


def test_triplet_is_zero_past_the_margin_and_uses_the_hardest_negative() -> None:
    eye = torch.eye(3)
    groups = torch.arange(3)
    hard = Triplet(LossConfig(name="triplet", margin=0.2, hard_after_steps=0))
    mean = Triplet(LossConfig(name="triplet", margin=0.2, hard_negatives=False))
    assert float(hard(eye, eye, groups)) == 0.0  # positives 1, negatives 0: margin met
    a = eye.clone()
    a[1] = _unit(torch.tensor([[0.9, 0.1, 0.0]]))[0]  # music 1 close to video 0
    s = eye @ a.T  # s[i, j] = a[j][i]: s01 = 0.994, s11 = 0.110, others 0 or 1
    # video→music, hardest negative per row: row 0 music 1, row 1 music 0 or 2, row 2 none
    v2m = [0.2 + s[0, 1] - 1.0, 0.2 - s[1, 1], 0.0]
    # music→video: music 0 none, music 1 video 0 (0.2 + s01 - s11), music 2 none
    m2v = [0.0, 0.2 + s[0, 1] - s[1, 1], 0.0]
    expected = float((sum(v2m) / 3 + sum(m2v) / 3) / 2)
    assert float(hard(eye, a, groups)) == pytest.approx(expected, rel=1e-5)
    assert float(mean(eye, a, groups)) < float(hard(eye, a, groups))


def test_triplet_warms_up_on_all_negatives_before_the_hardest() -> None:
    eye = torch.eye(3)
    a = eye.clone()
    a[1] = _unit(torch.tensor([[0.9, 0.1, 0.0]]))[0]
    groups = torch.arange(3)
    loss = Triplet(LossConfig(name="triplet", hard_after_steps=2))
    mean = Triplet(LossConfig(name="triplet", hard_negatives=False))
    hard = Triplet(LossConfig(name="triplet", hard_after_steps=0))
    values = [float(loss(eye, a, groups)) for _ in range(3)]
    assert values[:2] == [pytest.approx(float(mean(eye, a, groups)))] * 2
    assert values[2] == pytest.approx(float(hard(eye, a, groups)))
    assert int(loss.state_dict()["steps"]) == 3  # saved with the checkpoint
