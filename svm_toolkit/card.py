"""The dataset card: ``README.md`` at the dataset root, read by people and by Hugging Face.

The card has two parts, both kept current by ``svm card DATASET`` and at the end of every
stage command (``svm manifest``, ``download``, ``preprocess``, ``extract``, ``splits make``):

* YAML front matter with the ``configs:`` block Hugging Face ``datasets`` reads, one config per
  part of the dataset, so ``load_dataset(ROOT, "efficientnet_lite0")`` loads that extractor's
  committed shards (``features/efficientnet_lite0/part-*.parquet``), ``load_dataset(ROOT)`` the
  manifest, and the media (mp4) are in no config.
* A datasheet in Markdown between ``<!-- svm:begin -->`` and ``<!-- svm:end -->``: what each
  config holds, sources, counts by status per stage, filters and thresholds, extractors with
  their provenance, Mel recipes, split sizes and the commands that rebuild the dataset.

Everything else in the file is the user's and is kept: text outside the markers, and every YAML
key but ``configs`` (in ``configs``, entries whose ``config_name`` the toolkit did not write are
kept too; the generated names are listed in a comment inside the markers).

Each config has one split, ``full``, that holds every row: Hugging Face takes splits from
separate files, and our shards are not split by ``splits.parquet`` (a sample's split can change
when the splits are remade, and its features are not rewritten). A split named ``train`` would
silently hold validation and test rows, so the card names it ``full`` and shows the join with the
``splits`` config instead.

Building the card reads only Parquet footers (row counts, provenance metadata) and the id and
status columns: it takes well under a second on the demo dataset.
"""

from __future__ import annotations

import fcntl
import json
import logging
import re
import shlex
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from svm_toolkit import __version__
from svm_toolkit.errors import InputError, SvmError
from svm_toolkit.io import checked
from svm_toolkit.io.atomic import atomic_path
from svm_toolkit.io.paths import DatasetLayout, id_problem
from svm_toolkit.io.shards import committed_shards, read_shards
from svm_toolkit.schema import COL, METADATA_KEY, Split

logger = logging.getLogger(__name__)

CARD_FILE: Final = "README.md"
BEGIN: Final = "<!-- svm:begin -->"
END: Final = "<!-- svm:end -->"
#: The one split of every config (see the module docstring for why it is not ``train``).
SPLIT: Final = "full"
#: The YAML key of the front matter the toolkit owns; every other key is the user's.
OWNED_KEY: Final = "configs"

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*(?:\r?\n|\Z)", re.S | re.M)
_TOP_KEY = re.compile(r"[^\s#\-.][^:]*:")
_OURS = re.compile(r"<!-- svm:configs ([^>]*) -->")
_SHARDS: Final = "part"

#: What a row of each kind of config is, for the table of contents.
_KIND_TEXT: Final = {
    "manifest": "one row per sample: id, URL, source, status and the input's columns",
    "splits": "sample_id -> split (train, val, test) and the group that kept samples together",
    "ledger": "one status row per sample of stage `{stage}` (status, detail, attempts, timings)",
    "features": "`{name}` embeddings: per-step vectors, their times (s) and the pooled vector",
    "mel": "Mel units of recipe `{recipe}` (float32) and their start times (s)",
    "fingerprints": "perceptual hashes of frames and Chromaprint audio fingerprints",
}


@dataclass(frozen=True, slots=True)
class Part:
    """One loadable part of a dataset: a Hugging Face config.

    Attributes:
        name: the config name (``manifest``, ``splits``, ``ledger_<stage>``, an extractor's
            name, ``mel_<recipe>``, ``fingerprints``).
        kind: ``manifest``, ``splits``, ``ledger``, ``features``, ``mel`` or ``fingerprints``.
        pattern: the data files, a glob relative to the dataset root (POSIX).
        files: committed files the glob matches now.
        rows: rows in those files, as outside readers count them (Parquet footers).
        samples: distinct sample ids (fewer than ``rows`` when a retried sample appears twice).
        provenance: the ``svm_toolkit`` metadata of the newest file (empty when unreadable).
        by_status: each sample's newest status, counted (ledgers only).
        dim: the pooled vector's size (feature sets only, from the Parquet schema).
    """

    name: str
    kind: str
    pattern: str
    files: int
    rows: int
    samples: int
    provenance: Mapping[str, Any] = field(default_factory=dict)
    by_status: Mapping[str, int] = field(default_factory=dict)
    dim: int | None = None


@dataclass(frozen=True, slots=True)
class CardFacts:
    """What the datasheet says about a dataset, read from its files.

    Attributes:
        root: the dataset root.
        parts: the loadable parts, manifest first.
        by_source: manifest samples per source.
        manifest_status: manifest samples per status.
        by_split: samples per split in ``splits.parquet``.
        groups: groups of more than one sample in ``splits.parquet``.
    """

    root: Path
    parts: tuple[Part, ...]
    by_source: Mapping[str, int] = field(default_factory=dict)
    manifest_status: Mapping[str, int] = field(default_factory=dict)
    by_split: Mapping[str, int] = field(default_factory=dict)
    groups: int = 0

    def part(self, kind: str) -> list[Part]:
        """The parts of one kind, in card order."""
        return [p for p in self.parts if p.kind == kind]


@dataclass(frozen=True, slots=True)
class CardSummary:
    """What :func:`write_card` did.

    Attributes:
        path: the card (``DATASET/README.md``).
        configs: the config names the toolkit wrote, in card order.
        kept: config names of the user's that were kept.
        changed: whether the file was written (``False``: it already said exactly this).
        default: the config ``load_dataset(ROOT)`` loads, or ``None`` when none is marked.
    """

    path: Path
    configs: tuple[str, ...]
    kept: tuple[str, ...]
    changed: bool
    default: str | None

    def describe(self) -> str:
        """One line, e.g. ``DATASET/README.md written: 9 configs (default manifest)``."""
        state = "written" if self.changed else "unchanged"
        default = f"default {self.default}" if self.default else "no default"
        kept = f"; {len(self.kept)} of yours kept" if self.kept else ""
        return f"{self.path} {state}: {len(self.configs)} configs ({default}){kept}"


# -- reading the dataset ----------------------------------------------------------------------


def card_facts(dataset: Path) -> CardFacts:
    """Read what the card says: each part's files, rows, ids, statuses and provenance.

    Reads Parquet footers and the ``sample_id``/``status``/``source``/``split``/``group``
    columns only, never vectors.

    Raises:
        InputError: a committed file is truncated or damaged, or holds an unsafe id.
    """
    layout = DatasetLayout(Path(dataset))
    parts: list[Part] = []
    facts: dict[str, Any] = {}
    if layout.manifest.is_file():
        table = checked.read_table(
            layout.manifest,
            columns=_present(layout.manifest, [COL.sample_id, COL.source, COL.status]),
        )
        facts["by_source"] = _count(_column(table, COL.source))
        facts["manifest_status"] = _count(_column(table, COL.status))
        parts.append(_single(layout, "manifest", layout.manifest, table))
    if layout.splits.is_file():
        table = checked.read_table(
            layout.splits, columns=_present(layout.splits, [COL.sample_id, COL.split, COL.group])
        )
        by_split = Counter(_column(table, COL.split))
        order = [s.value for s in Split] + sorted(set(by_split) - {s.value for s in Split})
        facts["by_split"] = {k: by_split[k] for k in order if k in by_split}
        sizes = Counter(_column(table, COL.group))
        facts["groups"] = sum(1 for n in sizes.values() if n > 1)
        parts.append(_single(layout, "splits", layout.splits, table))
    parts += _ledgers(layout)
    features = layout.root / "features"
    if features.is_dir():
        for folder in sorted(p for p in features.iterdir() if p.is_dir()):
            if id_problem(folder.name):  # not a name the toolkit writes: no config
                logger.warning("card: %s is not a feature set name; left out", folder)
                continue
            part = _sharded(layout, folder.name, "features", folder)
            if part is not None:
                parts.append(part)
    if layout.preprocess_dir.is_dir():
        for folder in sorted(layout.preprocess_dir.glob("mel_*")):
            named = folder.is_dir() and not id_problem(folder.name)
            part = _sharded(layout, folder.name, "mel", folder) if named else None
            if part is not None:
                parts.append(part)
        part = _sharded(layout, "fingerprints", "fingerprints", layout.fingerprints_dir)
        if part is not None:
            parts.append(part)
    return CardFacts(root=layout.root, parts=_unique(parts), **facts)


def _present(path: Path, columns: Sequence[str]) -> list[str]:
    names = set(checked.read_schema(path).names)
    return [c for c in columns if c in names]


def _column(table: pa.Table, name: str) -> list[Any]:
    return table.column(name).to_pylist() if name in table.column_names else []


def _count(values: Iterable[Any]) -> dict[str, int]:
    return {str(k): v for k, v in Counter(values).most_common()}


def _provenance(path: Path) -> dict[str, Any]:
    return _schema_provenance(checked.read_schema(path))


def _schema_provenance(schema: pa.Schema) -> dict[str, Any]:
    raw = (schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        return {}
    try:
        meta = json.loads(raw)
    except ValueError:  # damaged metadata: the card says nothing about it
        return {}
    return meta if isinstance(meta, dict) else {}


def _single(layout: DatasetLayout, name: str, path: Path, table: pa.Table) -> Part:
    ids = _column(table, COL.sample_id)
    return Part(
        name=name,
        kind=name,
        pattern=path.relative_to(layout.root).as_posix(),
        files=1,
        rows=table.num_rows,
        samples=len(set(ids)),
        provenance=_provenance(path),
    )


def _sharded(
    layout: DatasetLayout, name: str, kind: str, folder: Path, prefix: str = _SHARDS
) -> Part | None:
    shards = committed_shards(folder, prefix)
    if not shards:
        return None
    rows = sum(_footer_rows(p) for p in shards)
    columns = [COL.status] if kind == "ledger" else []
    table = read_shards(folder, prefix, columns=columns)
    latest = 0 if table is None else table.num_rows
    by_status = _count(_column(table, COL.status)) if table is not None else {}
    # A ledger folder holds several stages: ``download-[0-9]*`` is not ``download-x-00000``.
    digits = "[0-9]" if kind == "ledger" else ""
    glob = (folder / f"{prefix}-{digits}*.parquet").relative_to(layout.root).as_posix()
    schema = checked.read_schema(shards[-1])
    return Part(
        name=name,
        kind=kind,
        pattern=glob,
        files=len(shards),
        rows=rows,
        samples=latest,
        provenance=_schema_provenance(schema),
        by_status=by_status,
        dim=_dim(schema),
    )


def _dim(schema: pa.Schema) -> int | None:
    """The size of each vector (the pooled ``embedding``, else a step of ``embeddings``)."""
    for name in (COL.embedding, COL.embeddings):
        kind = schema.field(name).type if name in schema.names else None
        while kind is not None and pa.types.is_list(kind):
            kind = kind.value_type
        if kind is not None and pa.types.is_fixed_size_list(kind):
            return int(kind.list_size)
    return None


def _footer_rows(path: Path) -> int:
    try:
        return int(pq.read_metadata(path).num_rows)
    except checked.READ_ERRORS as exc:
        raise checked.unreadable(path, exc) from None


def _ledgers(layout: DatasetLayout) -> list[Part]:
    if not layout.ledger_dir.is_dir():
        return []
    stages = sorted(
        {
            m.group("stage")
            for p in layout.ledger_dir.glob("*.parquet")
            if (m := checked.LEDGER_SHARD.fullmatch(p.name))
        },
        key=_stage_order,
    )
    parts = []
    for stage in stages:
        part = _sharded(layout, f"ledger_{stage}", "ledger", layout.ledger_dir, prefix=stage)
        if part is not None:
            parts.append(part)
    return parts


def _stage_order(stage: str) -> tuple[int, str]:
    order = ("resolve", "download", "preprocess")
    return (order.index(stage), stage) if stage in order else (len(order), stage)


def _unique(parts: list[Part]) -> tuple[Part, ...]:
    seen: set[str] = set()
    out = []
    for part in parts:
        if part.name in seen:
            logger.warning("card: %s is a second part named %r; left out", part.pattern, part.name)
            continue
        seen.add(part.name)
        out.append(part)
    return tuple(out)


# -- the YAML configs -------------------------------------------------------------------------


def hf_configs(facts: CardFacts, *, default: bool = True) -> list[dict[str, Any]]:
    """The ``configs:`` entries of the card, one per part, in card order.

    Args:
        facts: what the dataset holds.
        default: mark the manifest ``default: true`` (what ``load_dataset(ROOT)`` loads).
    """
    configs: list[dict[str, Any]] = []
    for part in facts.parts:
        entry: dict[str, Any] = {"config_name": part.name}
        if default and part.kind == "manifest":
            entry["default"] = True
        entry["data_files"] = [{"split": SPLIT, "path": part.pattern}]
        configs.append(entry)
    return configs


# -- the Markdown datasheet -------------------------------------------------------------------


def render_datasheet(facts: CardFacts, *, default: str | None) -> str:
    """The generated Markdown between the markers (without the markers)."""
    names = " ".join(p.name for p in facts.parts)
    out = [
        f"<!-- svm:configs {names} -->",
        "<!-- Written by `svm card` (svm_toolkit); edits between these markers are replaced, "
        "text outside them is kept. -->",
        "",
        "## Contents",
        "",
    ]
    out += _contents(facts, default)
    out += _sources(facts)
    out += _stages(facts)
    out += _filters(facts)
    out += _extractors(facts)
    out += _mels(facts)
    out += _splits(facts)
    out += _rebuild(facts)
    return "\n".join(out).rstrip() + "\n"


def _contents(facts: CardFacts, default: str | None) -> list[str]:
    if not facts.parts:
        return ["Nothing committed yet: run `svm manifest urls ... -o DATASET` first.", ""]
    rows = []
    for part in facts.parts:
        what = _KIND_TEXT[part.kind].format(
            stage=part.name.removeprefix("ledger_"),
            name=part.name,
            recipe=part.name.removeprefix("mel_"),
        )
        name = f"`{part.name}`" + (" (default)" if part.name == default else "")
        samples = f"{part.samples:,}"
        if part.rows != part.samples:
            samples += f" ({part.rows - part.samples:,} older rows: run `svm compact DATASET`)"
        rows.append([name, f"`{part.pattern}`", f"{part.files:,}", f"{part.rows:,}", samples, what])
    example = next((p.name for p in facts.parts if p.kind == "features"), None)
    example = example or next((p.name for p in facts.parts if p.kind != "manifest"), "manifest")
    lines = _table(["config", "data files", "shards", "rows", "samples", "rows are"], rows)
    lines += [
        "",
        "Every file is Parquet and opens as it is with pandas, pyarrow, polars, DuckDB and "
        "Hugging Face `datasets`: the folders hold only committed shards (their stats are in "
        "hidden `.stats/` folders). Media files are in no config.",
        "",
        f"Each config has one split, `{SPLIT}`, holding every row (not `train`: it would hold "
        "validation and test rows too). Hugging Face takes splits from separate files, and the "
        "shards are not split by `splits.parquet`; select a split by joining on `sample_id`"
        + (":" if facts.part("splits") else " with the `splits` config (`svm splits make`):"),
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'rows = load_dataset("DATASET", "{example}", split="{SPLIT}")',
    ]
    if facts.part("splits"):
        lines += [
            f'splits = load_dataset("DATASET", "splits", split="{SPLIT}")',
            'train_ids = {r["sample_id"] for r in splits if r["split"] == "train"}',
            'train = rows.filter(lambda i: i in train_ids, input_columns="sample_id")',
        ]
    lines += [
        "```",
        "",
        "`svm_toolkit.data` reads the same files into a PyTorch `Dataset` by split.",
        "",
    ]
    return lines


def _sources(facts: CardFacts) -> list[str]:
    manifests = facts.part("manifest")
    if not manifests:
        return []
    manifest = manifests[0]
    meta = manifest.provenance
    lines = ["## Sources", ""]
    lines.append(f"{manifest.samples:,} samples in `manifest.parquet`.")
    lines.append("")
    lines.append(f"- by source: {_counts(facts.by_source)}")
    lines.append(f"- by status: {_counts(facts.manifest_status)}")
    inputs = meta.get("inputs")
    if isinstance(inputs, list) and inputs:
        lines += ["", "Built from:", ""]
        rows = [
            [
                f"`{_cell(i.get('file'))}`",
                f"{i.get('rows', '')}",
                f"`{_cell(i.get('sha256', ''))}`",
            ]
            for i in inputs
            if isinstance(i, dict)
        ]
        lines += _table(["input", "rows", "sha256"], rows)
    lines.append("")
    return lines


def _stages(facts: CardFacts) -> list[str]:
    ledgers = facts.part("ledger")
    if not ledgers:
        return []
    rows = [
        [f"`{p.name.removeprefix('ledger_')}`", f"{p.samples:,}", _counts(p.by_status)]
        for p in ledgers
    ]
    return [
        "## Counts by status",
        "",
        "Each sample's newest outcome per stage (the ledgers in `ledger/`):",
        "",
        *_table(["stage", "samples", "status"], rows),
        "",
    ]


def _filters(facts: CardFacts) -> list[str]:
    rows: list[list[str]] = []
    for stage, command in _FILTER_STAGES:
        part = next((p for p in facts.parts if p.name == stage), None)
        config = part.provenance.get("config") if part is not None else None
        if not isinstance(config, dict):
            continue
        for key, value in _flatten(config):
            media = stage == "ledger_download" and key in _MEDIA_KEYS and value is not False
            if _is_threshold(key) or media:
                rows.append([f"`svm {command}`", f"`{key}`", _value(value)])
    if not rows:
        return []
    return [
        "## Filters and thresholds",
        "",
        "Samples outside these bounds have a `filtered:<reason>` (or `too_long`) status; the "
        "full configs are under Rebuild.",
        "",
        *_table(["stage", "setting", "value"], rows),
        "",
    ]


#: Stages whose recorded config holds filters, with their commands.
_FILTER_STAGES: Final = (
    ("manifest", "manifest urls"),
    ("ledger_download", "download"),
    ("ledger_preprocess", "preprocess"),
)
#: Download settings that decide what media the dataset holds (no cookies or proxy: the card
#: is meant to be published).
_MEDIA_KEYS: Final = ("format", "max_height", "max_file_mb", "audio_only")
#: ``min_``/``max_`` settings that bound reading, not samples.
_NOT_FILTERS: Final = (
    "max_line_bytes",
    "max_whole_file_mb",
    "max_samples",
    "max_scored_s",
    "max_attempts",
    "max_connect_failures",
    "max_failure_rate",
    "max_sleep_interval_s",
    "min_free_gb",
)


def _is_threshold(key: str) -> bool:
    leaf = key.rsplit(".", 1)[-1]
    return leaf.startswith(("min_", "max_", "require_")) and leaf not in _NOT_FILTERS


def _extractors(facts: CardFacts) -> list[str]:
    features = facts.part("features")
    if not features:
        return []
    rows = []
    notes = []
    for part in features:
        meta = part.provenance
        found = meta.get("input_contract")
        contract: Mapping[str, Any] = found if isinstance(found, dict) else {}
        spec = meta.get("input_spec")
        weights = meta.get("weights")
        sha = meta.get("weights_sha256")
        ran = [meta.get("precision"), meta.get("device")]
        rows.append(
            [
                f"`{part.name}`",
                f"{part.samples:,}",
                _cell(contract.get("modality") or ""),
                str(contract.get("dim") or part.dim or ""),
                _input(contract),
                f"`{_cell(Path(str(weights)).name)}`" if weights else "none",
                f"`{sha}`" if sha else "",
                " on ".join(_cell(x) for x in ran) if all(ran) else "",
                _value(meta.get("toolkit_version")),
            ]
        )
        if contract.get("weights"):
            notes.append(f"- `{part.name}`: {_cell(contract['weights'])}")
        elif isinstance(spec, dict) and spec:  # features imported as they were published
            described = "; ".join(f"{k}: {_value(v)}" for k, v in _flatten(spec))
            notes.append(f"- `{part.name}`: {described}")
    return [
        "## Extractors",
        "",
        *_table(
            [
                "extractor",
                "samples",
                "modality",
                "dim",
                "input",
                "weights",
                "weights sha256",
                "ran in",
                "toolkit",
            ],
            rows,
        ),
        "",
        *(["Weights and inputs:", "", *notes, ""] if notes else []),
        "Vectors are float16; each shard's `svm_toolkit` Parquet metadata holds the full "
        "provenance (config, input contract, weights checksum).",
        "",
    ]


def _input(contract: Mapping[str, Any]) -> str:
    bits = []
    if contract.get("image_size"):
        bits.append(f"{contract['image_size']} px")
    if contract.get("fps"):
        bits.append(f"{contract['fps']:g} fps")
    if contract.get("sample_rate"):
        bits.append(f"{contract['sample_rate']} Hz")
    if contract.get("recipe"):
        bits.append(f"Mel `{contract['recipe']}`")
    if contract.get("step_s"):
        bits.append(f"step {contract['step_s']:g} s")
    return ", ".join(bits)


def _mels(facts: CardFacts) -> list[str]:
    mels = facts.part("mel")
    if not mels:
        return []
    rows = []
    for part in mels:
        meta = part.provenance
        shape = meta.get("unit_shape")
        recipe = meta.get("recipe_config")
        settings = (
            ", ".join(f"{k} {_value(v)}" for k, v in _flatten(recipe))
            if isinstance(recipe, dict)
            else ""
        )
        shape_text = " x ".join(str(x) for x in shape) if isinstance(shape, list) else ""
        rows.append([f"`{part.name}`", f"{part.samples:,}", shape_text, settings])
    return [
        "## Mel spectrograms",
        "",
        *_table(["config", "samples", "unit shape", "recipe"], rows),
        "",
    ]


def _splits(facts: CardFacts) -> list[str]:
    parts = facts.part("splits")
    if not parts:
        return []
    config = parts[0].provenance.get("config")
    lines = [
        "## Splits",
        "",
        *_table(["split", "samples"], [[k, f"{v:,}"] for k, v in facts.by_split.items()]),
        "",
        f"Groups of more than one sample (each kept inside one split): {facts.groups:,}.",
    ]
    if isinstance(config, dict):
        keep = ("ratios", "seed", "group_by", "stratify")
        lines.append(
            "Made with " + ", ".join(f"`{k}` {_value(config[k])}" for k in keep if k in config)
        )
        lines[-1] += "."
    return [*lines, ""]


def _rebuild(facts: CardFacts) -> list[str]:
    commands: list[str] = []
    files: list[str] = []
    manifest = next((p for p in facts.parts if p.kind == "manifest"), None)
    if manifest is not None:
        inputs = manifest.provenance.get("inputs") or []
        names = " ".join(
            str(i.get("file")) for i in inputs if isinstance(i, dict) and i.get("file")
        )
        flags = _config_file(manifest, "manifest.yaml", files)
        commands.append(f"svm manifest urls {names or 'URLS'} -o DATASET{flags}")
    download = next((p for p in facts.parts if p.name == "ledger_download"), None)
    if download is not None:
        commands.append("svm download DATASET" + _download_flags(download))
    pre = next((p for p in facts.parts if p.name == "ledger_preprocess"), None)
    if pre is not None:
        commands.append("svm preprocess DATASET" + _config_file(pre, "preprocess.yaml", files))
    features = [p for p in facts.parts if p.kind == "features"]
    if features:
        config = features[0].provenance.get("config") or {}
        flags = " -e " + ",".join(p.name for p in features)
        if isinstance(config, dict) and config.get("fps"):
            flags += f" --fps {config['fps']:g}"
        ran = features[0].provenance.get("precision") or (
            config.get("precision") if isinstance(config, dict) else None
        )
        if ran:
            flags += f" --precision {ran}"
        commands.append(f"svm extract DATASET{flags}")
    splits = next((p for p in facts.parts if p.kind == "splits"), None)
    if splits is not None:
        config = splits.provenance.get("config") or {}
        flags = ""
        if isinstance(config, dict):
            if isinstance(config.get("ratios"), list):
                flags += " --ratios " + ",".join(f"{r:g}" for r in config["ratios"])
            if config.get("seed") is not None:
                flags += f" --seed {config['seed']}"
            if isinstance(config.get("group_by"), list):
                flags += " --group-by " + ",".join(config["group_by"])
        commands.append(f"svm splits make DATASET{flags}")
    commands.append("svm card DATASET")
    return [
        "## Rebuild",
        "",
        "Every stage resumes where it stopped; each file's Parquet metadata (`svm_toolkit` key) "
        "holds the full config of the stage that wrote it.",
        "",
        "```sh",
        *commands,
        "```",
        "",
        *files,
        f"Card written by svm_toolkit {__version__}.",
    ]


def _download_flags(part: Part) -> str:
    config = part.provenance.get("config")
    if not isinstance(config, dict):
        return ""
    flags = ""
    if config.get("format"):
        flags += f" --format {shlex.quote(str(config['format']))}"
    elif config.get("audio_only"):
        flags += " --audio-only"
    elif config.get("max_height"):
        flags += f" --max-height {config['max_height']}"
    if config.get("max_file_mb"):
        flags += f" --max-file-mb {config['max_file_mb']:g}"
    return flags


def _config_file(part: Part, name: str, out: list[str]) -> str:
    """Append ``name``'s YAML (the stage's recorded config) to ``out``; return the flag."""
    config = part.provenance.get("config")
    if not isinstance(config, dict):
        return ""
    kept = {k: v for k, v in config.items() if v is not None and v != [] and v != {}}
    text = yaml.safe_dump(kept, sort_keys=True, allow_unicode=True, width=100)
    out += [f"`{name}`:", "", "```yaml", text.rstrip("\n"), "```", ""]
    return f" --config {name}"


def _flatten(config: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out += _flatten(value, f"{name}.")
        elif value is not None and value != [] and value != {}:
            out.append((name, value))
    return out


def _value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, list | tuple):
        return ", ".join(_value(v) for v in value) or "none"
    return _cell(value)


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"


def _cell(value: object) -> str:
    """Text safe in a Markdown table cell and in inline code: no pipes, no line breaks."""
    return " ".join(str(value).split()).replace("|", "\\|").replace("`", "'")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


# -- the file ---------------------------------------------------------------------------------


def write_card(dataset: Path) -> CardSummary:
    """Write or refresh ``DATASET/README.md``: the ``configs:`` block and the datasheet.

    The user's text outside the markers and the user's YAML keys (all but ``configs``) are
    kept, as are ``configs`` entries the toolkit did not write. The file is rewritten only when
    its text changes (atomically: temp file, then rename), under a lock so two stages ending at
    once do not interleave.

    Raises:
        InputError: the card's YAML front matter does not parse or is not a mapping, its
            ``configs`` is not a list, or a ``<!-- svm:begin -->`` marker has no end marker;
            or a committed file of the dataset is damaged.
    """
    root = Path(dataset)
    path = root / CARD_FILE
    lock_path = root / ".card.lock"
    with lock_path.open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _write_card(root, path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_card(root: Path, path: Path) -> CardSummary:
    old = path.read_text(encoding="utf-8") if path.exists() else None
    front, body = _split_front_matter(old or "")
    meta = _parse_front(front, path)
    ours_before = _generated_names(body)
    facts = card_facts(root)
    ours = {p.name for p in facts.parts}
    existing = meta.get(OWNED_KEY) or []
    if not isinstance(existing, list):
        raise InputError(
            f"{path}: its YAML '{OWNED_KEY}' is not a list; fix or delete that key and run "
            "`svm card DATASET` again"
        )
    kept = [
        c
        for c in existing
        if not (isinstance(c, dict) and (c.get("config_name") in ours_before | ours))
    ]
    user_default = any(isinstance(c, dict) and c.get("default") for c in kept)
    configs = kept + hf_configs(facts, default=not user_default)
    default = next(
        (str(c.get("config_name")) for c in configs if isinstance(c, dict) and c.get("default")),
        None,
    )
    front = _replace_key(front, OWNED_KEY, configs)
    if yaml.safe_load(front) != {**meta, OWNED_KEY: configs}:  # YAML the line edit cannot keep
        front = yaml.safe_dump({**meta, OWNED_KEY: configs}, sort_keys=False, allow_unicode=True)
    generated = f"{BEGIN}\n{render_datasheet(facts, default=default)}{END}"
    if old is None:
        body = f"\n# {root.resolve().name}\n\n{generated}\n"
    else:
        body = _replace_generated(body, generated, path)
    text = f"---\n{front}---\n{body}"
    changed = text != old
    if changed:
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
        logger.info("card: wrote %s (%d configs)", path, len(facts.parts))
    return CardSummary(
        path=path,
        configs=tuple(p.name for p in facts.parts),
        kept=tuple(str(c.get("config_name")) for c in kept if isinstance(c, dict)),
        changed=changed,
        default=default,
    )


def refresh_card(dataset: Path) -> CardSummary | None:
    """Refresh the card at the end of a stage; never fails the stage.

    Returns:
        What was written, or ``None`` when the card could not be written (a warning is logged
        that says why and how to see the full error: ``svm card DATASET``).
    """
    try:
        return write_card(dataset)
    except (SvmError, OSError, ValueError, yaml.YAMLError, pa.ArrowException) as exc:
        logger.warning(
            "%s not refreshed: %s (run `svm card %s` after fixing it)",
            Path(dataset) / CARD_FILE,
            exc,
            dataset,
        )
        return None


def _split_front_matter(text: str) -> tuple[str, str]:
    """``(front matter YAML text, the rest)``; the YAML ends with a newline or is empty."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        return "", ("\n" + text if text and not text.startswith("\n") else text)
    front = match.group(1)
    return front, text[match.end() :]


def _parse_front(front: str, path: Path) -> dict[str, Any]:
    try:
        meta = yaml.safe_load(front) if front.strip() else {}
    except yaml.YAMLError as exc:
        raise InputError(
            f"{path}: its YAML front matter (between the '---' lines) does not parse: "
            f"{' '.join(str(exc).split())}; fix it and run `svm card DATASET` again"
        ) from None
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise InputError(
            f"{path}: its YAML front matter is not a mapping of keys; fix it and run "
            "`svm card DATASET` again"
        )
    return meta


def _replace_key(front: str, key: str, value: Any) -> str:
    """Replace the top-level ``key`` block of a YAML text (or append it), keeping the rest."""
    block = yaml.safe_dump({key: value}, sort_keys=False, allow_unicode=True, width=1000)
    lines = front.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    start = next((i for i, line in enumerate(lines) if re.match(rf"{key}\s*:", line)), None)
    if start is None:
        return "".join(lines) + block
    end = start + 1
    while end < len(lines) and not _TOP_KEY.match(lines[end]):
        end += 1
    return "".join(lines[:start]) + block + "".join(lines[end:])


def _generated_names(body: str) -> set[str]:
    start = body.find(BEGIN)
    if start < 0:
        return set()
    match = _OURS.search(body, start)
    return set(match.group(1).split()) if match else set()


def _replace_generated(body: str, generated: str, path: Path) -> str:
    start = body.find(BEGIN)
    if start < 0:
        return body.rstrip("\n") + "\n\n" + generated + "\n"
    end = body.find(END, start)
    if end < 0:
        raise InputError(
            f"{path}: '{BEGIN}' has no '{END}' after it; put the end marker back (or delete "
            "the generated part from the begin marker on) and run `svm card DATASET` again"
        )
    return body[:start] + generated + body[end + len(END) :]


__all__ = [
    "BEGIN",
    "CARD_FILE",
    "END",
    "SPLIT",
    "CardFacts",
    "CardSummary",
    "Part",
    "card_facts",
    "hf_configs",
    "refresh_card",
    "render_datasheet",
    "write_card",
]
