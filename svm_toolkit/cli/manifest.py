"""``svm manifest``: build a manifest from URL lists, and describe a dataset."""

from __future__ import annotations

from pathlib import Path

import click

from svm_toolkit.card import refresh_card
from svm_toolkit.cli import render
from svm_toolkit.cli.options import config_options, given, merge_config, print_config
from svm_toolkit.download.netpolicy import ENV_ALLOW_PRIVATE
from svm_toolkit.manifest import MANIFEST_PRESETS, build_manifest
from svm_toolkit.manifest.config import MAX_SAMPLES
from svm_toolkit.manifest.funnel import dataset_funnel, render_funnel
from svm_toolkit.manifest.readers import MAX_LINE_BYTES, MAX_WHOLE_FILE_BYTES, supported_suffixes
from svm_toolkit.yt8m.build import build_yt8m_manifest
from svm_toolkit.yt8m.config import OFFICIAL_LOOKUP_BASE, ResolveConfig, Yt8mConfig
from svm_toolkit.yt8m.vocabulary import LABEL_PRESETS

_DATASET = click.Path(file_okay=False, path_type=Path)


@click.group()
def manifest() -> None:
    """Build and inspect manifests (one row per sample)."""


@manifest.command("urls")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "dataset",
    required=True,
    type=_DATASET,
    help="Dataset root to write manifest.parquet into.",
)
@click.option(
    "--preset",
    type=click.Choice(sorted(MANIFEST_PRESETS)),
    default="generic",
    show_default=True,
    help="svm10k: map TikTok-scraper columns (diggCount, search_term, ...) and keep > 10k likes.",
)
@click.option(
    "--url-column", help="Input column with the URL [default: url, webpage_url, link, ...]."
)
@click.option(
    "--id-column", help="Input column with your own sample ids [default: derived from the URL]."
)
@click.option(
    "--min-likes", type=click.IntRange(min=0), help="Mark rows with fewer likes filtered:min_likes."
)
@click.option(
    "--max-duration",
    "max_duration_s",
    type=click.FloatRange(min=0, min_open=True),
    help="Mark rows longer than this many seconds filtered:max_duration.",
)
@config_options("ManifestConfig fields (url_column, min_likes, max_duration_s, ...)")
@click.option(
    "--max-line-bytes",
    type=click.IntRange(min=1),
    help=f"Longest line of a txt/csv/tsv/jsonl list [default: {MAX_LINE_BYTES:,}].",
)
@click.option(
    "--max-whole-file-mb",
    type=click.IntRange(min=1),
    help=(
        "Most MiB (decompressed) of a .json or .parquet.gz list, which are parsed whole; other "
        f"formats stream [default: {MAX_WHOLE_FILE_BYTES >> 20}]."
    ),
)
@click.option(
    "--max-samples",
    type=click.IntRange(min=1),
    help=f"Most distinct samples, about 1 KB of memory each [default: {MAX_SAMPLES:,}].",
)
@click.option(
    "--overwrite", is_flag=True, help="Replace an existing manifest even if samples are dropped."
)
@render.json_option("manifest urls")
def urls(
    inputs: tuple[Path, ...],
    dataset: Path,
    preset: str,
    url_column: str | None,
    id_column: str | None,
    min_likes: int | None,
    max_duration_s: float | None,
    config_file: Path | None,
    max_line_bytes: int | None,
    max_whole_file_mb: int | None,
    max_samples: int | None,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Turn URL lists into DATASET/manifest.parquet.

    \b
    INPUTS are files of URLs: .txt (one per line), .csv, .tsv, .jsonl, .json or .parquet,
    each optionally .gz. Every row becomes one sample, keyed by a content-derived id:
      YouTube   any URL form (watch?v=, youtu.be/, shorts/, embed/, live/, music.) -> 11-char id
      TikTok    /@user/video/<id> -> the numeric id (the @user becomes the author)
      other     u + 16 hex digits of a hash of the normalised URL
    The same video under two URL forms merges into one sample. start/end columns make
    clips (id_<start_ms>_<end_ms>). Other columns are kept. Bad URLs stay as rows with
    status invalid_url; rows the pre-filters drop stay as filtered:<reason>.

    \b
    Examples:
      svm manifest urls links.txt -o data/mine
      svm manifest urls tiktok.csv --preset svm10k --max-duration 60 -o data/svm10k
      svm manifest urls clips.jsonl --url-column link --id-column clip -o data/clips
    """
    flags = {
        "url_column": url_column,
        "id_column": id_column,
        "min_likes": min_likes,
        "max_duration_s": max_duration_s,
        "max_line_bytes": max_line_bytes,
        "max_whole_file_mb": max_whole_file_mb,
        "max_samples": max_samples,
    }
    config = merge_config(MANIFEST_PRESETS[preset], config_file, given(flags))
    print_config(config)
    summary = build_manifest(list(inputs), dataset, config, overwrite=overwrite)
    refresh_card(dataset)  # the dataset card (README.md) says what is there now
    if as_json:
        render.emit_json("manifest urls", render.fields(summary))
        return
    state = "unchanged" if summary.unchanged else "written"
    click.echo(f"manifest: {summary.describe()} in {summary.seconds:.1f} s")
    click.echo(f"  source  {render.counts(summary.by_source)}")
    click.echo(f"  {summary.path} {state}")


urls.help = (urls.help or "") + f"\n\nFormats: {', '.join(supported_suffixes())}."


@manifest.command("info")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@render.json_option("manifest info")
def info(dataset: Path, as_json: bool) -> None:
    """Show DATASET's funnel: samples by source, status and split at each stage, in order.

    \b
    manifest -> download -> preprocess -> each extractor -> splits -> runs. Each stage
    counts its samples by status (a retried sample once, by its newest row) and says of
    how many: the ok samples of the stage before. Download adds the bytes of its files,
    preprocess the media durations it measured (ok samples), an extractor its feature
    rows, splits their sizes and groups, runs their preset and Recall@10.

    \b
    Examples:
      svm manifest info data/svm10k
      svm manifest info data/svm10k --json | jq '.stages[] | {name, of, ok}'
    """
    funnel = dataset_funnel(dataset)
    if as_json:
        render.emit_json("manifest info", funnel.to_dict())
        return
    click.echo("\n".join(render_funnel(funnel)))


@manifest.command("yt8m")
@click.argument("records", nargs=-1, required=True)
@click.option(
    "--vocabulary",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="YT8M's vocabulary.csv (2018 or 2017 layout); it maps label names to indices.",
)
@click.option("-o", "--output", "dataset", required=True, type=_DATASET, help="Dataset root.")
@click.option(
    "--preset",
    type=click.Choice(sorted(LABEL_PRESETS)),
    default="music_video",
    show_default=True,
    help="Named label set: music_video (Music video) or music (Concert, Musician, Guitar, ...).",
)
@click.option(
    "--labels",
    multiple=True,
    metavar="NAME|INDEX[,...]",
    help="Label names or indices; overrides --preset. Repeatable, one label each, or a comma "
    "list (a value that is itself a label name, like 'Nike, Inc.', is taken whole).",
)
@click.option(
    "--match",
    type=click.Choice(["any", "all"]),
    default="any",
    show_default=True,
    help="Keep videos with any of the labels, or with all of them.",
)
@click.option(
    "--resolve", is_flag=True, help="Look the 4-character pseudo ids up (needs the network)."
)
@click.option(
    "--lookup-base",
    default=OFFICIAL_LOOKUP_BASE,
    show_default=True,
    help="Base URL of the id lookup.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Lookups at once.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds per lookup request.",
)
@click.option(
    "--allow-private-hosts",
    is_flag=True,
    help=f"Allow a lookup mirror on loopback or a private network; also {ENV_ALLOW_PRIVATE}=1. "
    "Link-local and cloud-metadata addresses stay refused.",
)
@click.option(
    "--deny-host",
    "deny_hosts",
    multiple=True,
    metavar="HOST|CIDR|ADDRESS",
    help="Never look ids up at this host (and its subdomains), address or network; repeatable.",
)
@click.option(
    "--max-connect-failures",
    type=click.IntRange(min=0),
    default=ResolveConfig().max_connect_failures,
    show_default=True,
    help="Stop after this many lookups in a row could not connect (refused, DNS, unreachable: "
    "the service or the network is down); 0: never.",
)
@click.option(
    "--features",
    is_flag=True,
    help="Write YT8M's rgb/audio features to features/yt8m_rgb|yt8m_audio.",
)
@click.option(
    "--skip-bad-records",
    is_flag=True,
    help="Skip a record that does not decode and go on; on a broken frame (CRC, cut short) keep "
    "the file's records before it and go on with the next file. Skipped records are counted.",
)
@click.option(
    "--overwrite", is_flag=True, help="Replace an existing manifest even if samples are dropped."
)
@config_options("Yt8mConfig fields (preset, labels, match, resolve: {...}, features, ...)")
@render.json_option("manifest yt8m")
def yt8m(
    records: tuple[str, ...],
    vocabulary: Path,
    dataset: Path,
    preset: str,
    labels: tuple[str, ...],
    match: str,
    resolve: bool,
    lookup_base: str,
    concurrency: int,
    timeout_s: float,
    allow_private_hosts: bool,
    deny_hosts: tuple[str, ...],
    max_connect_failures: int,
    features: bool,
    skip_bad_records: bool,
    overwrite: bool,
    config_file: Path | None,
    as_json: bool,
) -> None:
    """Build a manifest of YouTube-8M music videos from its TFRecords.

    \b
    RECORDS are TFRecord files, folders or glob patterns ('frame/train*.tfrecord') of
    either layout: video level (tf.train.Example: id, labels, mean_rgb, mean_audio) or
    frame level (tf.train.SequenceExample: per-second rgb/audio), 2018+ ('id') or 2017
    ('video_id'); each file's layout is the one its records show (a 0-second frame-level
    record has no feature lists, and follows its file). Folders are searched for
    *.tfrecord, *.tfrecords and *.tfr, each also with .gz/.zlib/.zz; plain, GZIP and ZLIB
    files are told apart by content. Every record's CRCs are checked. Videos whose labels
    match are kept, keyed by their YT8M id; labels are resolved by name through
    --vocabulary, because indices differ between versions.

    \b
    2018+ ids are 4-character pseudo ids. --resolve looks each up once
    (<lookup-base>/2/j/i/<id[:2]>/<id>.js); the answers are kept in
    DATASET/ledger/resolve-*.parquet, so a re-run never asks twice. Resolved rows get
    watch URLs for `svm download`; deleted videos become 'unavailable'; rows not looked
    up stay 'unresolved'.

    \b
    Examples:
      svm manifest yt8m frame/ --vocabulary vocabulary.csv -o data/yt8m --features
      svm manifest yt8m 'video/train*.tfrecord' --vocabulary vocabulary.csv --preset music \\
          --resolve -o data/yt8m-music
    """
    flags = given(
        {
            "preset": preset,
            "labels": labels,
            "match": match,
            "features": features,
            "skip_bad_records": skip_bad_records,
        }
    )
    if "labels" in flags:  # each value whole: the vocabulary splits comma lists (Nike, Inc.)
        flags["labels"] = tuple(x.strip() for x in labels if x.strip())
    config = merge_config(Yt8mConfig(), config_file, flags)
    lookup = given(
        {
            "lookup_base": lookup_base,
            "concurrency": concurrency,
            "timeout_s": timeout_s,
            "allow_private_hosts": allow_private_hosts,
            "deny_hosts": deny_hosts,
            "max_connect_failures": max_connect_failures,
        }
    )
    if lookup and not resolve and config.resolve is None:  # said, not silently dropped
        spelled = {p.name: p.opts[0] for p in click.get_current_context().command.params}
        named = ", ".join(spelled.get(k, k) for k in lookup)
        raise click.UsageError(f"{named}: only with --resolve (add --resolve or drop {named})")
    if resolve or (config.resolve is not None and lookup):  # the lookup flags need --resolve
        config = merge_config(config, None, {"resolve": lookup})
    print_config(config)
    summary = build_yt8m_manifest(records, vocabulary, dataset, config, overwrite=overwrite)
    refresh_card(dataset)  # the dataset card (README.md) says what is there now
    if as_json:
        render.emit_json("manifest yt8m", render.fields(summary))
        return
    click.echo(f"yt8m: {summary.describe()} in {summary.seconds:.1f} s")
    if summary.missing_labels:
        click.echo(f"  not in this vocabulary: {', '.join(summary.missing_labels)}")
    for name, rows in summary.features.items():
        click.echo(f"  features/{name}: {rows:,} videos")
    click.echo(f"  {summary.path} {'unchanged' if summary.unchanged else 'written'}")
