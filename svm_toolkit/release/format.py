"""The release format: what ``svm release`` writes and ``svm rebuild`` / ``svm compare`` read.

A release is a folder another lab can rebuild a dataset from, and check the rebuild against.
It holds no media and nothing derived from the media that could stand in for it (no cropped
copies, no Mel spectrograms, no full feature vectors): only ids, URLs, public metadata, the
splits, and small per-sample check facts.

Format ``svm-release``, version 1::

    RELEASE/
      release.json           format, version, toolkit version, created (UTC), counts, the
                             configs of the stages to re-run, each extractor's provenance and
                             check, and every other file with its size and sha256
      SHA256SUMS             ``sha256sum -c`` lines for every file but itself
      README.md              the dataset card (datasheet) and how to rebuild
      samples.parquet        one row per released sample (SAMPLES_SCHEMA): ids, URL, clip
                             bounds, public metadata, split and group, and the media facts a
                             rebuild is checked against (duration, size, crop box)
      fingerprints.parquet   the audio and picture fingerprints ``svm preprocess`` stored
                             (``preprocess/fingerprints``), every column as it was
      features/<extractor>.parquet             sample_id, check: the pooled feature centred
                                               and projected to CHECK_DIMS dimensions
      features/<extractor>.projection.parquet  the centring mean and the projection matrix,
                                               one row per input dimension (PROJECTION_SCHEMA)

The feature check: the pooled vector ``x`` (D values) becomes ``(x - mean) @ W`` with ``W`` a
fixed Gaussian random matrix (D x CHECK_DIMS, seed :data:`PROJECTION_SEED`, scaled by
``1/sqrt(CHECK_DIMS)``), both stored. Cosines of the projections approximate the cosines of the
centred vectors (Johnson-Lindenstrauss); centring removes the component all features of an
extractor share, so unrelated videos score near 0 and the same video re-extracted near 1.

Readers check ``format`` and ``version`` first: a release of a newer version is refused
with a message naming the file and the toolkit version to install.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from svm_toolkit.errors import InputError
from svm_toolkit.io.checked import read_schema, read_table
from svm_toolkit.io.digest import file_sha256
from svm_toolkit.io.paths import id_problem
from svm_toolkit.schema import COL, MANIFEST_SCHEMA, column_problems

FORMAT_NAME: Final = "svm-release"
FORMAT_VERSION: Final = 1

RELEASE_JSON: Final = "release.json"
CHECKSUMS: Final = "SHA256SUMS"
CARD: Final = "README.md"
SAMPLES: Final = "samples.parquet"
FINGERPRINTS: Final = "fingerprints.parquet"
FEATURES_DIR: Final = "features"

#: Dimensions of each extractor's per-sample check vector.
CHECK_DIMS: Final = 32
#: Seed of the random projection (the matrix itself is stored; the seed documents it).
PROJECTION_SEED: Final = 20_260_101

#: Columns of ``samples.parquet`` that are not in the manifest schema.
MEDIA_DURATION: Final = "media_duration_s"
WIDTH: Final = "width"
HEIGHT: Final = "height"

#: Columns every released row has (the manifest allows them empty).
_REQUIRED: Final = frozenset({COL.sample_id, COL.url, COL.source, COL.split})

#: ``samples.parquet``: one row per released sample.
SAMPLES_SCHEMA: Final = pa.schema(
    [
        # the manifest's public columns, as the manifest types them (URL and split required here)
        *(
            MANIFEST_SCHEMA.field(name).with_nullable(name not in _REQUIRED)
            for name in (
                COL.sample_id,
                COL.video_id,
                COL.url,
                COL.source,
                COL.start_s,
                COL.end_s,
                COL.likes,
                COL.theme,
                COL.author,
                COL.duration_s,
                COL.music_id,
                COL.split,
            )
        ),
        pa.field(COL.group, pa.string(), nullable=False),
        pa.field(MEDIA_DURATION, pa.float64()),
        pa.field(WIDTH, pa.int32()),
        pa.field(HEIGHT, pa.int32()),
        pa.field(COL.crop_x, pa.int32()),
        pa.field(COL.crop_y, pa.int32()),
        pa.field(COL.crop_w, pa.int32()),
        pa.field(COL.crop_h, pa.int32()),
    ]
)

CHECK: Final = "check"
MEAN: Final = "mean"
WEIGHTS: Final = "weights"


def check_schema(dims: int = CHECK_DIMS) -> pa.Schema:
    """``features/<extractor>.parquet``: ``sample_id`` and the ``check`` vector (float32)."""
    return pa.schema(
        [
            pa.field(COL.sample_id, pa.string(), nullable=False),
            pa.field(CHECK, pa.list_(pa.float32(), dims), nullable=False),
        ]
    )


def projection_schema(dims: int = CHECK_DIMS) -> pa.Schema:
    """``features/<extractor>.projection.parquet``: per input dimension, mean and weights."""
    return pa.schema(
        [
            pa.field(MEAN, pa.float32(), nullable=False),
            pa.field(WEIGHTS, pa.list_(pa.float32(), dims), nullable=False),
        ]
    )


def check_path(extractor: str) -> str:
    """The release-relative path of an extractor's check vectors."""
    return f"{FEATURES_DIR}/{extractor}.parquet"


def projection_path(extractor: str) -> str:
    """The release-relative path of an extractor's projection."""
    return f"{FEATURES_DIR}/{extractor}.projection.parquet"


#: The hex sha256 of a file (the checksums of ``release.json`` and ``SHA256SUMS``).
sha256_file = file_sha256


@dataclass(frozen=True, slots=True)
class Release:
    """A release folder whose checksums and version were verified.

    Attributes:
        root: the folder.
        meta: ``release.json`` as read.
    """

    root: Path
    meta: dict[str, Any]

    @property
    def extractors(self) -> dict[str, dict[str, Any]]:
        """Extractor name -> its entry in ``release.json`` (provenance, dim, check)."""
        return dict(self.meta.get("extractors", {}))

    @property
    def stages(self) -> dict[str, Any]:
        """The stage configs recorded at release time (``preprocess``, ``splits``, ...)."""
        return dict(self.meta.get("stages", {}))

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        """Release-relative file name -> its ``bytes``, ``sha256`` (and ``rows``)."""
        return dict(self.meta.get("files", {}))

    def has(self, name: str) -> bool:
        """Whether ``name`` is one of the files ``release.json`` lists."""
        return name in self.files

    def path(self, name: str) -> Path:
        """The path of a file listed in ``release.json`` (checked and hashed when read).

        Raises:
            InputError: ``name`` is not listed in ``files`` (or is absolute or climbs out
                with ``..``): a name taken from ``release.json`` never opens another file.
        """
        if not isinstance(name, str) or not self.has(name) or not _inside(name):
            raise InputError(
                f"{self.root / RELEASE_JSON}: {name!r} is not one of the files it lists; "
                "the release was edited or damaged, get it again"
            )
        return self.root / name

    def samples(self, columns: list[str] | None = None) -> pa.Table:
        """``samples.parquet`` (or ``columns`` of it), its columns checked.

        Raises:
            InputError: the file lacks a column of :data:`SAMPLES_SCHEMA` that is read, holds
                it with another type, or leaves a required one empty (the file, the columns and
                the first such row are named).
        """
        return read_checked(self.path(SAMPLES), SAMPLES_SCHEMA, "samples", columns=columns)


def read_checked(
    path: Path,
    schema: pa.Schema,
    what: str,
    *,
    columns: list[str] | None = None,
    id_column: str | None = COL.sample_id,
) -> pa.Table:
    """Read a release file (or ``columns`` of it), checked against ``schema``.

    Args:
        path: the file.
        schema: the columns it must hold, their types and which may be empty.
        what: the kind of file, for messages (``samples``, ``check``...).
        columns: the columns to read (all of ``schema``'s when ``None``).
        id_column: the sample-id column, its ids checked (``None``: none).

    Raises:
        InputError: a column read is missing, of another type or empty where it may not be
            (the file, the columns and the first such row are named), or an unsafe id.
    """
    wanted = [f for f in schema if columns is None or f.name in columns]
    missing, wrong = column_problems(read_schema(path), wanted)
    if missing or wrong:
        problems = ", ".join([*(f"missing column {m}" for m in missing), *wrong])
        raise InputError(
            f"{path}: {problems}; not a {FORMAT_NAME} {what} file, get the release again"
        )
    table = read_table(path, columns=columns, id_column=id_column)
    for f in wanted:
        values = table.column(f.name)
        if not f.nullable and values.null_count:
            row = values.is_null().to_pylist().index(True)
            raise InputError(
                f"{path} row {row}: {f.name} is empty, which a {FORMAT_NAME} {what} file "
                "never leaves it; the release was edited or damaged, get it again"
            )
    return table


def _inside(name: str) -> bool:
    """Whether a release-relative name stays inside the release (relative, no ``..``)."""
    path = Path(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts


def read_release(root: Path, *, verify: bool = True) -> Release:
    """Open a release: check its format and version, then (``verify``) every file's sha256.

    Raises:
        InputError: no ``release.json`` or ``SHA256SUMS``, not this format, a newer version,
            ``release.json`` of another shape (:func:`check_shape`), a file listed that is
            missing or whose checksum differs, or a file listed in only one of ``release.json``
            and ``SHA256SUMS`` (each message names the file and the fix). Files in the folder
            that neither lists are not looked for; readers open only listed files.
    """
    root = Path(root)
    meta_path = root / RELEASE_JSON
    if not meta_path.is_file():
        raise InputError(
            f"{meta_path}: not found; {root} is not a release (make one with "
            "'svm release DATASET -o DIR')"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise InputError(f"{meta_path}: not valid JSON ({exc}); get the release again") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise InputError(
            f"{meta_path}: not an {FORMAT_NAME} file (format "
            f"{meta.get('format') if isinstance(meta, dict) else None!r}); get the release again"
        )
    version = meta.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        from svm_toolkit import __version__

        raise InputError(
            f"{meta_path}: {FORMAT_NAME} version {version!r}, this svm_toolkit {__version__} "
            f"reads versions 1 to {FORMAT_VERSION}; install the svm_toolkit that wrote it "
            f"({meta.get('toolkit_version', 'unknown')}) or newer"
        )
    check_shape(meta_path, meta)
    if verify:
        verify_checksums(root, meta)
    return Release(root, meta)


def check_shape(meta_path: Path, meta: dict[str, Any]) -> None:
    """Check the parts of ``release.json`` that readers index into.

    ``files`` is an object of objects, each with a ``sha256`` string, and lists
    ``samples.parquet``; ``stages`` and ``extractors`` are objects of objects; each extractor
    has a name that can be a folder name and a ``check`` object naming its ``file`` and
    ``projection``.

    Raises:
        InputError: naming the file and the field that has another shape.
    """

    def bad(field: str, what: str) -> InputError:
        return InputError(f"{meta_path}: {field} {what}; the release is damaged, get it again")

    files = meta.get("files")
    if not isinstance(files, dict):
        raise bad("files", "is not an object of file name -> size and sha256")
    for name, entry in files.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise bad(f"files[{name!r}]", "is not an object with a sha256 string")
    if SAMPLES not in files:
        raise bad("files", f"does not list {SAMPLES}")
    for key in ("stages", "extractors"):
        value = meta.get(key, {})
        if not isinstance(value, dict):
            raise bad(key, "is not an object")
        for name, entry in value.items():
            if not isinstance(entry, dict):
                raise bad(f"{key}[{name!r}]", "is not an object")
    for name, entry in meta.get("extractors", {}).items():
        if id_problem(name):  # the name becomes a folder of the rebuilt dataset
            raise bad(f"extractors[{name!r}]", f"is not an extractor name ({id_problem(name)})")
        check = entry.get("check")
        if not isinstance(check, dict) or not all(
            isinstance(check.get(k), str) for k in ("file", "projection")
        ):
            raise bad(f"extractors[{name!r}].check", "is not an object naming file and projection")


def verify_checksums(root: Path, meta: dict[str, Any]) -> None:
    """Check ``SHA256SUMS`` against the files, and ``release.json``'s list against it.

    Raises:
        InputError: a listed file is missing or differs, or a file is listed in only one of
            ``release.json`` and ``SHA256SUMS`` (the folder is not scanned for other files).
    """
    sums_path = root / CHECKSUMS
    if not sums_path.is_file():
        raise InputError(f"{sums_path}: not found; the release is incomplete, get it again")
    expected: dict[str, str] = {}
    for number, line in enumerate(sums_path.read_text(encoding="utf-8").splitlines(), 1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not name:
            raise InputError(
                f"{sums_path} line {number}: not '<sha256>  <file>'; get the release again"
            )
        expected[name] = digest
    listed = dict(meta.get("files", {}))
    for name in sorted({*expected, *listed} - {RELEASE_JSON}):
        if name not in expected or name not in listed:
            raise InputError(
                f"{root / name}: listed in {RELEASE_JSON if name in listed else CHECKSUMS} "
                f"only; the release is inconsistent, get it again"
            )
    if RELEASE_JSON not in expected:
        raise InputError(f"{sums_path}: does not list {RELEASE_JSON}; get the release again")
    for name in sorted(expected):
        if ".." in Path(name).parts or Path(name).is_absolute():
            raise InputError(f"{sums_path}: {name!r} points outside the release")
        if not (root / name).is_file():
            raise InputError(f"{root / name}: missing from the release; get the release again")
        if (root / name).is_symlink():  # a link could hash (and later open) a file elsewhere
            raise InputError(
                f"{root / name}: a symbolic link, which a release never holds; copy the "
                "release as plain files, or get it again"
            )
    for name, digest in sorted(expected.items()):
        path = root / name
        actual = sha256_file(path)
        if actual != digest or (name != RELEASE_JSON and actual != listed[name].get("sha256")):
            raise InputError(
                f"{path}: sha256 {actual[:16]}... does not match {CHECKSUMS} "
                f"({digest[:16]}...): the file was changed or damaged; get the release again"
            )
