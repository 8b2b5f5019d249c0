"""The protocol: both directions, multi-positive ground truth, pools, JSON, tables and plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from svm_toolkit.errors import ConfigError
from svm_toolkit.evaluate import EvalConfig, EvalResult, PairedEmbeddings, evaluate_pairs
from svm_toolkit.evaluate.report import (
    protocol_line,
    render_comparison,
    render_metrics,
    write_results,
)

PROTOCOL_KEYS = {"pairs", "positives", "ties", "score", "pool_size", "pool_seeds", "ks"}


def make_pairs(
    video: npt.ArrayLike, music: npt.ArrayLike, music_ids: tuple[str | None, ...] | None = None
) -> PairedEmbeddings:
    v, m = np.asarray(video, np.float32), np.asarray(music, np.float32)
    n = v.shape[0]
    return PairedEmbeddings(tuple(f"s{i}" for i in range(n)), v, m, music_ids or (None,) * n)


def random_pairs(rng: np.random.Generator, n: int, d: int = 8) -> PairedEmbeddings:
    v, m = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    m = 0.5 * v + m  # related, but not perfectly
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return make_pairs(v, m)


def cpu(**kwargs: Any) -> EvalConfig:
    return EvalConfig(device="cpu", **kwargs)


def shared_song() -> PairedEmbeddings:
    """Samples 0 and 1 share song "a" and have identical videos; music 1 is orthogonal to all."""
    eye = np.eye(4)
    return make_pairs(eye[[0, 0, 2, 3]], eye, ("a", "a", "b", "c"))


def metrics_json(result: EvalResult) -> dict[str, Any]:
    """What ``svm evaluate`` writes: the protocol gains the split and the source."""
    metrics = result.to_dict()
    metrics["protocol"] = {"split": "test", "source": "unit test", **result.protocol}
    return metrics


def test_perfect_embeddings_retrieve_every_pair_first_both_ways() -> None:
    eye = np.eye(8)
    result = evaluate_pairs(make_pairs(eye, eye), cpu(ks=(1, 5)))
    assert set(result.directions) == {"video_to_music", "music_to_video"}
    for d in result.directions.values():
        assert d.full.queries == 8 and d.full.gallery == 8
        assert d.full.recall == {1: 100.0, 5: 100.0}
        assert d.full.median_rank == 1.0 and d.full.mean_rank == 1.0 and d.full.mrr == 1.0
        assert d.full.chance_recall == pytest.approx({1: 100 / 8, 5: 500 / 8})
        assert d.full.chance_median_rank == 4.0
        assert d.curve == ((1, 2, 5, 8), (100.0, 100.0, 100.0, 100.0))
        assert d.pools == () and d.pool_mean() is None


def test_the_default_config_runs_on_the_available_device() -> None:
    eye = np.eye(3)
    result = evaluate_pairs(make_pairs(eye, eye))
    assert result.directions["video_to_music"].full.recall[1] == 100.0
    assert result.protocol["ks"] == [1, 5, 10, 25, 50]


def test_a_constant_model_scores_chance_or_worse_never_perfect() -> None:
    same = np.tile([0.6, 0.8], (10, 1))
    result = evaluate_pairs(make_pairs(same, same), cpu(ks=(1, 10)))
    for d in result.directions.values():
        assert d.full.recall == {1: 0.0, 10: 100.0}
        assert d.full.median_rank == 10.0 and d.full.mrr == pytest.approx(0.1)


def test_own_pair_positives_on_a_shared_song() -> None:
    result = evaluate_pairs(shared_song(), cpu(ks=(1, 2), positives="pair"))
    # video x music = [[1,0,0,0], [1,0,0,0], [0,0,1,0], [0,0,0,1]]
    # video 1's music scores 0, under music 0 (1) and tied with musics 2, 3 -> rank 4
    v2m = result.directions["video_to_music"].full
    assert v2m.recall == {1: 75.0, 2: 75.0}
    assert v2m.median_rank == 1.0 and v2m.mean_rank == 1.75
    assert v2m.mrr == pytest.approx((3 + 1 / 4) / 4)
    # music 0 ties videos 0 and 1 -> rank 2; music 1 scores 0 everywhere -> rank 4
    m2v = result.directions["music_to_video"].full
    assert m2v.recall == {1: 50.0, 2: 75.0}
    assert m2v.median_rank == 1.5 and m2v.mean_rank == 2.0
    assert m2v.mrr == pytest.approx((1 / 2 + 1 / 4 + 2) / 4)
    assert v2m.chance_recall[1] == m2v.chance_recall[1] == pytest.approx(25.0)


def test_music_id_positives_count_every_video_of_the_song() -> None:
    result = evaluate_pairs(shared_song(), cpu(ks=(1, 2), positives="music_id"))
    # video 1 now also finds music 0 (same song) first
    v2m = result.directions["video_to_music"].full
    assert v2m.recall == {1: 100.0, 2: 100.0} and v2m.mean_rank == 1.0
    # music 0: videos 0 and 1 are both positives, tied at 1 -> rank 1;
    # music 1: positives score 0, tied with the two negatives -> rank 3
    m2v = result.directions["music_to_video"].full
    assert m2v.recall == {1: 75.0, 2: 75.0}
    assert m2v.mean_rank == 1.5 and m2v.median_rank == 1.0
    # two queries with two positives among 4, two with one
    assert m2v.chance_recall[1] == pytest.approx(100 * (2 / 4 + 2 / 4 + 1 / 4 + 1 / 4) / 4)
    assert result.protocol["positives"] == "music_id"


def test_groups_follow_the_song_and_unknown_songs_stand_alone() -> None:
    eye = np.eye(5)
    pairs = make_pairs(eye, eye, ("a", None, "a", None, "b"))
    assert pairs.groups("music_id").tolist() == [0, 1, 0, 3, 4]
    assert pairs.groups("pair").tolist() == [0, 1, 2, 3, 4]


def test_pools_give_per_seed_metrics_and_leave_the_remainder_out() -> None:
    same = np.tile([1.0, 0.0], (10, 1))  # every query ties with its whole pool: rank = pool size
    result = evaluate_pairs(make_pairs(same, same), cpu(ks=(1, 4), pool_size=4, pool_seeds=3))
    for d in result.directions.values():
        assert d.full.median_rank == 10.0
        assert len(d.pools) == 3
        for pool in d.pools:
            assert pool.gallery == 4
            assert pool.queries == 8  # floor(10 / 4) * 4: two pools, two pairs left out
            assert pool.median_rank == 4.0 and pool.mean_rank == 4.0
            assert pool.recall == {1: 0.0, 4: 100.0}
            assert pool.chance_recall == pytest.approx({1: 25.0, 4: 100.0})
        mean = d.pool_mean()
        assert mean is not None
        assert mean["gallery"] == 4 and mean["seeds"] == 3 and mean["queries_per_seed"] == 8
        assert mean["recall"] == {"1": {"mean": 0.0, "std": 0.0}, "4": {"mean": 100.0, "std": 0.0}}
        assert mean["median_rank"] == {"mean": 4.0, "std": 0.0}
        assert mean["chance_recall"] == pytest.approx({"1": 25.0, "4": 100.0})
    assert result.protocol["pool_size"] == 4 and result.protocol["pool_seeds"] == 3


def test_pool_seeds_deal_different_pools(rng: np.random.Generator) -> None:
    result = evaluate_pairs(random_pairs(rng, 60), cpu(pool_size=10, pool_seeds=4))
    for d in result.directions.values():
        assert [p.queries for p in d.pools] == [60] * 4
        assert len({p.mean_rank for p in d.pools}) > 1
        assert all(1.0 <= p.mean_rank <= 10.0 for p in d.pools)
        mean = d.pool_mean()
        assert mean is not None
        expected = np.mean([p.mean_rank for p in d.pools])
        assert mean["mean_rank"] == {
            "mean": pytest.approx(expected),
            "std": pytest.approx(np.std([p.mean_rank for p in d.pools])),
        }


def test_one_pool_of_the_whole_set_is_the_full_gallery(rng: np.random.Generator) -> None:
    result = evaluate_pairs(random_pairs(rng, 30), cpu(pool_size=30, pool_seeds=2))
    for d in result.directions.values():
        for pool in d.pools:
            assert pool.recall == pytest.approx(d.full.recall)
            assert pool.median_rank == d.full.median_rank
            assert pool.mean_rank == pytest.approx(d.full.mean_rank)
            assert pool.mrr == pytest.approx(d.full.mrr)


def test_a_pool_larger_than_the_test_set_is_an_error() -> None:
    eye = np.eye(5)
    with pytest.raises(ConfigError, match="larger than the 5 test pairs"):
        evaluate_pairs(make_pairs(eye, eye), cpu(pool_size=6))


@pytest.mark.parametrize(
    "kwargs", [{"ks": ()}, {"ks": (0, 5)}, {"pool_size": 1}, {"pool_seeds": 0}]
)
def test_invalid_configs_are_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        EvalConfig(**kwargs)


def test_paired_embeddings_need_matching_rows_and_dimensions() -> None:
    eye = np.eye(4, dtype=np.float32)
    with pytest.raises(ValueError, match="N rows"):
        PairedEmbeddings(("a", "b", "c"), eye, eye, (None,) * 3)
    with pytest.raises(ValueError, match="N rows"):
        PairedEmbeddings(("a", "b", "c", "d"), eye, eye[:3], (None,) * 4)
    with pytest.raises(ValueError, match="one D"):
        PairedEmbeddings(("a", "b", "c", "d"), eye, eye[:, :3], (None,) * 4)


def test_to_dict_is_json_with_the_protocol(rng: np.random.Generator) -> None:
    result = evaluate_pairs(random_pairs(rng, 20), cpu(ks=(1, 10), pool_size=8, pool_seeds=2))
    d: dict[str, Any] = result.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert set(d["protocol"]) == PROTOCOL_KEYS
    directions = d["directions"]
    assert set(directions) == {"video_to_music", "music_to_video"}
    for name, direction in directions.items():
        assert set(direction) == {"full", "curve", "pools"}
        assert direction["full"]["recall"] == {
            str(k): v for k, v in result.directions[name].full.recall.items()
        }
        assert direction["curve"]["k"] == [1, 2, 5, 10, 20]
        assert direction["pools"]["seeds"] == 2 and direction["pools"]["gallery"] == 8


def test_render_metrics_shows_both_directions_above_chance() -> None:
    result = evaluate_pairs(shared_song(), cpu(ks=(1, 2), pool_size=2, pool_seeds=2))
    text = render_metrics(metrics_json(result))
    assert "video→music" in text and "music→video" in text
    assert text.count("chance") == 2 and text.count("pools of 2") == 2
    header = text.splitlines()[0].split()
    assert header == ["direction", "gallery", "R@1", "R@2", "MedR", "MnR", "MRR"]
    v2m = next(line for line in text.splitlines() if line.startswith("video→music")).split()
    assert v2m == ["video→music", "4", "100.0", "100.0", "1.0", "1.0", "100.0"]


def test_protocol_line_states_the_protocol() -> None:
    eye = np.eye(3)
    line = protocol_line(metrics_json(evaluate_pairs(make_pairs(eye, eye), cpu())))
    assert line.startswith("test split, 3 pairs, full gallery of 3;")
    assert "music_id" in line and "ties count against the query" in line
    pooled = evaluate_pairs(make_pairs(eye, eye), cpu(positives="pair", pool_size=2))
    line = protocol_line(metrics_json(pooled))
    assert "pools of 2 candidates over 5 seeds" in line and "own pair" in line


def test_write_results_writes_the_json_and_a_png(tmp_path: Path) -> None:
    metrics = metrics_json(evaluate_pairs(shared_song(), cpu(ks=(1, 2))))
    json_path, png = write_results(metrics, tmp_path / "out", title="unit test")
    assert json_path == tmp_path / "out" / "metrics.json"
    with json_path.open(encoding="utf-8") as fh:
        assert json.load(fh) == metrics
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_render_comparison_lists_each_run(rng: np.random.Generator) -> None:
    eye = np.eye(6)
    runs = {
        "perfect": metrics_json(evaluate_pairs(make_pairs(eye, eye), cpu(ks=(1, 5)))),
        "random": metrics_json(evaluate_pairs(random_pairs(rng, 6), cpu(ks=(1, 5)))),
    }
    lines = render_comparison(runs, ks=(1, 5, 10)).splitlines()
    assert lines[0].split() == ["run", "direction", "gallery", "R@1", "R@5", "R@10", "MedR", "MRR"]
    body = lines[2:]
    assert [line.split()[:2] for line in body] == [
        ["perfect", "video→music"],
        ["perfect", "music→video"],
        ["random", "video→music"],
        ["random", "music→video"],
    ]
    assert body[0].split()[3:] == ["100.0", "100.0", "nan", "1.0", "100.0"]  # no R@10 asked


def test_an_embeddings_file_is_scored_by_the_same_protocol(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from svm_toolkit.errors import InputError
    from svm_toolkit.evaluate.runner import evaluate_file

    rng = np.random.default_rng(0)
    video = rng.normal(size=(30, 8))
    table = pa.table(
        {
            "sample_id": [f"s{i}" for i in range(30)],
            "video": (3.0 * video).tolist(),  # any scale: normalised on reading
            "music": video.tolist(),
            "music_id": [f"song{i // 2}" for i in range(30)],
        }
    )
    path = tmp_path / "mine.parquet"
    pq.write_table(table, path)
    result = evaluate_file(path, tmp_path / "out")
    for direction in result.metrics["directions"].values():
        assert direction["full"]["recall"]["1"] == 100.0 and direction["full"]["gallery"] == 30
    assert result.metrics["protocol"]["source"] == f"file {path}"
    assert (tmp_path / "out" / "metrics.json").exists()

    pq.write_table(table.drop_columns(["music"]), tmp_path / "nomusic.parquet")
    with pytest.raises(InputError, match=r"nomusic\.parquet: no column\(s\) \['music'\]"):
        evaluate_file(tmp_path / "nomusic.parquet", tmp_path / "x")
    ragged = table.set_column(2, "music", pa.array([[1.0] * (8 - (i == 4)) for i in range(30)]))
    pq.write_table(ragged, tmp_path / "ragged.parquet")
    with pytest.raises(InputError, match=r"ragged\.parquet: row 4: 'music' must be"):
        evaluate_file(tmp_path / "ragged.parquet", tmp_path / "x")
    (tmp_path / "text.parquet").write_text("not parquet")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        evaluate_file(tmp_path / "text.parquet", tmp_path / "x")
