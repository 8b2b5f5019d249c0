"""Keep a stage's data shards and its ledger in agreement after any fault.

A stage that writes data (``svm preprocess``: fingerprints and Mel units; ``svm extract``:
features) commits each sample's data rows before the ledger row that records it. A fault
between the two commits (a full disk, a kill, a crash; or a data shard that filled up and was
committed on its own) leaves data rows that no ledger row accounts for. The rule that keeps a
re-run from writing such a sample twice:

1. **A data writer never writes a sample id it already holds** (:attr:`ShardWriter.done_ids`):
   committed data rows are complete, so a sample redone for any reason only adds what is missing.
2. **Data held by a sample the ledger does not account for is an orphan**: its run stopped
   between the two commits. ``svm extract`` writes a feature row only for a success, so a
   feature row without an ``ok`` ledger row is an orphan (:func:`orphans`), and extract writes
   the missing ``ok`` row from it when it opens (the row holds everything the ledger records).
   ``svm preprocess`` redoes a sample with data rows only when it has **no ledger row at all**
   (its ledger row holds probe facts and scores that only the video gives) and, by rule 1,
   writes only the ledger row and any output still missing. A preprocess sample with data rows
   whose newest ledger row is a failure (an orphan redone to ``too_long`` after lowering
   ``--max-media-s``, or to a worker crash) is not an orphan: the ledger holds the truth, the
   data rows are harmless (as those of an ``ok`` sample later redone to a filter status), and
   ``--retry <status>`` redoes it, adding only what is missing. Otherwise such a sample would
   be redone, and fail again, on every run: a re-run must be a no-op.
3. **An ``ok`` ledger row whose data are gone is redone**: a data shard deleted because it was
   corrupt is rebuilt by a plain re-run.

A sample's feature rows are accounted for by any ``ok`` row in its ledger history, not only by
the newest one; a preprocess sample's data rows by any ledger row at all. Either way a sample
that was ``ok`` and later redone to a filter status keeps its old rows and is not redone again
on every run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from svm_toolkit.io.shards import read_shards
from svm_toolkit.schema import COL, Status


@dataclass(frozen=True, slots=True)
class LedgerState:
    """What a stage's committed ledger shards say about each sample.

    Attributes:
        latest: each sample's newest status.
        ever_ok: samples with an ``ok`` row anywhere in their history.
    """

    latest: Mapping[str, str]
    ever_ok: frozenset[str]


def ledger_state(directory: Path, prefix: str) -> LedgerState:
    """Read the newest status and the ``ok`` history of every sample in a ledger.

    Args:
        directory: the ledger directory (``DATASET/ledger``).
        prefix: the stage's ledger shard prefix (``preprocess``, ``extract_<name>``).

    Returns:
        The state; empty before the first commit.
    """
    table = read_shards(directory, prefix, columns=[COL.status], latest=False)
    if table is None:
        return LedgerState({}, frozenset())
    ids = table.column(COL.sample_id).to_pylist()
    statuses = table.column(COL.status).to_pylist()
    latest = dict(zip(ids, statuses, strict=True))
    ever_ok = frozenset(i for i, s in zip(ids, statuses, strict=True) if s == Status.OK.value)
    return LedgerState(latest, ever_ok)


def orphans(held: Iterable[str], state: LedgerState) -> list[str]:
    """Sample ids whose data rows are committed but that no ``ok`` ledger row records.

    The rule of a stage whose data rows exist only for successes (``svm extract``'s features,
    see rule 2 above).

    Args:
        held: ids a data writer holds (its :attr:`ShardWriter.done_ids`).
        state: the stage's ledger.

    Returns:
        The orphaned ids, sorted.
    """
    return sorted(set(held) - state.ever_ok)
