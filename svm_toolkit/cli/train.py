"""``svm train`` and ``svm evaluate``: the bundled baselines and the Recall@K evaluator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from svm_toolkit.cli import render
from svm_toolkit.cli.options import (
    config_options,
    device_flag,
    device_option,
    given,
    merge_config,
    print_config,
)
from svm_toolkit.device import check_device
from svm_toolkit.errors import ConfigError
from svm_toolkit.evaluate.metrics import DEFAULT_KS
from svm_toolkit.evaluate.protocol import EvalConfig
from svm_toolkit.progress import Progress
from svm_toolkit.schema import Split
from svm_toolkit.train.config import ENCODER_NAMES, LOSS_NAMES, MODEL_NAMES, TRAIN_PRESETS

_SPLITS = click.Choice([s.value for s in Split])

#: ``svm evaluate``'s parameters and the flags that set them (for refusing those that do not
#: apply to the target given).
_EVAL_FLAGS = {
    "split": "--split",
    "audio": "--audio",
    "video": "--video",
    "dataset": "--dataset",
    "positives": "--positives",
    "pool_size": "--pool-size",
    "pool_seeds": "--pool-seeds",
    "ks": "--ks",
    "device": "--device",
    "config_file": "--config",
    "output": "--output",
}


def _flags(*names: str) -> dict[str, str]:
    return {name: _EVAL_FLAGS[name] for name in names}


@click.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--preset",
    type=click.Choice(list(TRAIN_PRESETS)),
    default="tivm",
    show_default=True,
    help="Starting point: tivm (vggish + resnet50), mvbind (ImageBind), offline (demo).",
)
@click.option("--audio", help="Audio extractor whose features the music tower reads.")
@click.option("--video", help="Visual extractor whose features the video tower reads.")
@click.option("--model", type=click.Choice(MODEL_NAMES), help="Dual encoder.")
@click.option("--encoder", type=click.Choice(ENCODER_NAMES), help="TIVM temporal encoder.")
@click.option("--loss", type=click.Choice(LOSS_NAMES), help="Objective.")
@click.option("--width", type=click.IntRange(min=2), help="Hidden width d.")
@click.option("--embed-dim", type=click.IntRange(min=1), help="Joint embedding size.")
@click.option("--layers", type=click.IntRange(min=1), help="Transformer / LSTM layers.")
@click.option("--epochs", type=click.IntRange(min=1), help="Most epochs.")
@click.option("--batch-size", type=click.IntRange(min=2), help="Pairs per step.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Peak learning rate.")
@click.option("--window", type=click.FloatRange(min=0, min_open=True), help="Crop length, s.")
@click.option(
    "--patience",
    type=click.IntRange(min=0),
    help="Epochs without a better val MRR before stopping (0: off).",
)
@click.option("--seed", type=int, help="Fixes initialisation, batches, crops and dropout.")
@device_option("cpu, cuda, cuda:N or auto.")
@config_options("TrainConfig fields (model: {...}, loss: {...})")
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder [default: DATASET/runs/<model>-<encoder>-<loss>].",
)
@click.option("--mmap", is_flag=True, help="Memory-map features from RUN/cache (large sets).")
@click.option("--overwrite", is_flag=True, help="Start afresh in a folder holding another run.")
@render.json_option("train")
def train(
    dataset: Path,
    preset: str,
    config_file: Path | None,
    output: Path | None,
    mmap: bool,
    overwrite: bool,
    as_json: bool,
    **flags: Any,
) -> None:
    """Train a baseline on the paired features of DATASET's train split.

    \b
    Models:
      tivm    per-second features -> 2-3 linear layers -> temporal encoder (transformer,
              lstm or mean) -> pooling -> L2-normalised embedding, per modality (TIVM)
      mvbind  pooled clip embeddings -> projection heads (MVBind, over ImageBind)
    Losses: infonce (symmetric, learnable temperature) or triplet (margin, hardest
    negative); videos sharing a music_id are positives of each other, never negatives.

    \b
    Each epoch is scored on the val split by MRR (mean reciprocal rank over the whole
    val gallery, both directions; it moves where R@10 of a small gallery sits at 100);
    val loss and R@K for K below the gallery size are recorded too. The best epoch is
    kept and training stops after --patience epochs without a better MRR. Killed runs
    resume from RUN/last.pt when the same command is run again, also after the run
    folder and its dataset were copied or moved together.

    \b
    Output in RUN: config.json, last.pt, best.pt, epochs.csv/json, curves.png.
    Then: svm evaluate RUN

    \b
    Examples:
      svm train data/yt8m --audio vggish --video resnet50 --encoder transformer --loss infonce
      svm train data/svm10k --preset mvbind -o runs/mvbind
      svm train svm-demo/dataset --preset offline --epochs 40
    """
    from svm_toolkit.train.trainer import StepProgress
    from svm_toolkit.train.trainer import train as run_training

    flags = given(flags)
    model = {
        field: flags.pop(flag)
        for flag, field in (
            ("model", "name"),
            ("encoder", "encoder"),
            ("width", "width"),
            ("embed_dim", "embed_dim"),
            ("layers", "encoder_layers"),
        )
        if flag in flags
    }
    loss = {"name": flags.pop("loss")} if "loss" in flags else {}
    if "window" in flags:
        flags["window_s"] = flags.pop("window")
    overrides = {**flags, "model": model, "loss": loss}
    config = merge_config(TRAIN_PRESETS[preset], config_file, overrides)
    print_config(config)
    check_device(config.device, flag=device_flag(config_file))
    m = config.model
    run = output or dataset / "runs" / f"{m.name}-{m.encoder}-{config.loss.name}"
    bar = Progress("train", unit="step")

    def step(progress: StepProgress) -> None:
        bar.total = progress.steps
        if progress.step == 1:
            bar.reset(total=progress.steps)
            bar.set_description(f"epoch {progress.epoch}")
        bar.update()
        bar.set_postfix(loss=f"{progress.loss:.3f}", pairs_s=f"{progress.samples_per_s:,.0f}")

    def epoch(row: dict[str, float]) -> None:
        val = " ".join(
            f"val loss {v:.4f}" if k == "val_loss" else f"{k[4:].upper()} {v:.1f}"
            for k, v in row.items()
            if k.startswith("val_")
        )
        line = f"epoch {int(row['epoch']):>3}  loss {row['train_loss']:.4f}  {val}"
        with bar.suspended():
            click.echo(line, err=as_json)  # --json: stdout holds the object alone

    with bar:  # closed on error too
        summary = run_training(
            dataset, config, run, overwrite=overwrite, mmap=mmap, on_step=step, on_epoch=epoch
        )
    if as_json:
        render.emit_json("train", render.fields(summary))
        return
    click.echo(f"train: {summary.describe()}")
    click.echo(f"run: {summary.run}")
    click.echo(f"next: svm evaluate {summary.run}")


@click.command()
@click.argument("targets", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--split",
    type=_SPLITS,
    default=Split.TEST.value,
    show_default=True,
    help="Split of a RUN's or DATASET's pairs to rank.",
)
@click.option("--audio", help="With a DATASET: the audio extractor scored zero-shot.")
@click.option("--video", help="With a DATASET: the visual extractor scored zero-shot.")
@click.option(
    "--dataset",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Evaluate a run on another dataset than the one it was trained on.",
)
@click.option(
    "--positives",
    type=click.Choice(["music_id", "pair"]),
    default="music_id",
    show_default=True,
    help="music_id: any video sharing the song is a hit; pair: only the own partner.",
)
@click.option("--pool-size", type=click.IntRange(min=2), help="Also rank within N-candidate pools.")
@click.option(
    "--pool-seeds",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Seeded deals of the pools to average.",
)
@click.option(
    "--ks", default=",".join(map(str, DEFAULT_KS)), show_default=True, help="The K of R@K."
)
@device_option("cpu, cuda, cuda:N or auto.")
@config_options("EvalConfig fields (ks, positives, pool_size, pool_seeds, device, chunk_bytes)")
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder [default: a RUN's own folder; DATASET/runs/zero-shot-VIDEO-AUDIO; "
    "beside a FILE, <name>-eval].",
)
@click.option(
    "--compare", is_flag=True, help="Print the metrics.json of several runs side by side."
)
@render.json_option("evaluate")
def evaluate(
    targets: tuple[Path, ...],
    split: str,
    audio: str | None,
    video: str | None,
    dataset: Path | None,
    positives: str,
    pool_size: int | None,
    pool_seeds: int,
    ks: str,
    device: str | None,
    config_file: Path | None,
    output: Path | None,
    compare: bool,
    as_json: bool,
) -> None:
    """Recall@K of a trained RUN, of two extractors on a DATASET (zero-shot), or of a FILE.

    \b
    A FILE is Parquet with one row per test pair: sample_id, video and music (float
    lists; any model's embeddings, L2-normalised here), and optionally music_id.

    \b
    Protocol (stated with every result):
      both directions: video->music and music->video
      full gallery: every pair of the split, N stated; --pool-size N adds pools of N
        candidates (the split dealt into disjoint pools), averaged over --pool-seeds
      multi-positive: videos sharing a music_id count as hits (--positives pair: no)
      exact cosine ranks in bounded-memory chunks (GPU when present); ties count
        against the query; median and mean rank and MRR over all queries
    Each row has the chance level of a random ranking beneath it.

    \b
    Output: a table, RUN/metrics.json and RUN/recall.png (Recall@K curves), or
    in -o DIR. Results already there are left as they are when the same, and
    replaced with a line "overwrote .../metrics.json (was ...)" when not. Flags
    that do not apply to the target (--audio with a RUN, --split with a FILE)
    are refused.

    \b
    Examples:
      svm evaluate data/svm10k/runs/tivm-transformer-infonce
      svm evaluate RUN --pool-size 1000 --pool-seeds 5
      svm evaluate data/svm10k --audio imagebind_audio --video imagebind_vision
      svm evaluate my_model_test.parquet -o results/my_model   # your own embeddings
      svm evaluate --compare runs/transformer runs/lstm runs/mean
    """
    from svm_toolkit.evaluate.report import protocol_line, render_comparison, render_metrics
    from svm_toolkit.evaluate.runner import evaluate_features, evaluate_file, evaluate_run
    from svm_toolkit.train.checkpoint import RunFiles, read_json

    def refuse(flags: dict[str, str], why: str) -> None:
        """Stop on the first of ``flags`` given on the command line (exit 2, one line)."""
        for name in given(dict.fromkeys(flags)):
            raise ConfigError(f"{flags[name]} does not apply {why}; drop it")

    if compare:
        refuse(_EVAL_FLAGS, "with --compare: it prints the metrics.json the runs hold")
        runs = {str(t): read_json(RunFiles(t).metrics) for t in targets}
        if as_json:  # metrics: each run's metrics.json, by run folder
            render.emit_json("evaluate", {"metrics": runs, "written": []})
        else:
            click.echo(render_comparison(runs))
        return
    if len(targets) != 1:
        raise ConfigError("give one RUN or DATASET (or several runs with --compare)")
    flags = given(
        {
            "ks": ks,
            "positives": positives,
            "pool_size": pool_size,
            "pool_seeds": pool_seeds,
            "device": device,
        }
    )
    if "ks" in flags:
        try:
            flags["ks"] = tuple(int(k) for k in ks.split(",") if k.strip())
        except ValueError:
            raise ConfigError(f"--ks {ks}: give whole numbers, e.g. --ks 1,5,10") from None
    config = merge_config(EvalConfig(), config_file, flags)
    print_config(config)
    check_device(config.device, flag=device_flag(config_file))
    target = targets[0]
    if target.is_file():
        refuse(
            _flags("split", "audio", "video", "dataset"),
            f"to a FILE of embeddings ({target}): it holds the pairs it scores",
        )
        out = output or target.with_name(f"{target.stem}-eval")
        result = evaluate_file(target, out, config)
    elif RunFiles(target).config.exists():
        refuse(
            _flags("audio", "video"),
            f"to a run ({target}): its config.json names the features its model reads",
        )
        result = evaluate_run(target, config, split=split, dataset=dataset, out=output)
    elif audio and video:
        refuse(_flags("dataset"), f"to zero-shot scoring: {target} is the dataset")
        out = output or target / "runs" / f"zero-shot-{video}-{audio}"
        result = evaluate_features(target, out, config, audio=audio, video=video, split=split)
    else:
        raise ConfigError(
            f"{target}: not a run folder (no config.json); to score raw features zero-shot "
            "give the dataset with --audio and --video"
        )
    if as_json:
        render.emit_json("evaluate", {"metrics": result.metrics, "written": result.written})
        return
    click.echo(protocol_line(result.metrics))
    click.echo(render_metrics(result.metrics))
    files = ", ".join(str(p) for p in result.written)
    if result.unchanged:
        click.echo(f"unchanged: {files} (the same results as before)")
        return
    if result.replaced is not None:
        click.echo(f"overwrote {result.written[0]} (was {result.replaced})")
    click.echo(f"written: {files}")
