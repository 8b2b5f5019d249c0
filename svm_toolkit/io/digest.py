"""File digests: the SHA-256 that weights provenance, release checksums and links files name."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path, *, block: int = 1 << 20) -> str:
    """The hex SHA-256 of a file, read in ``block``-byte pieces (1 MiB)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


__all__ = ["file_sha256"]
