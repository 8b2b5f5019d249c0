"""The Mel units ``svm preprocess`` stored, handed to the audio extractors instead of recomputing.

An audio extractor whose contract names a Mel recipe (``imagebind_audio``: ``imagebind``,
``vggish``: ``vggish``) computes its units with the same function ``svm preprocess --mel`` does.
When the dataset holds that recipe's shards, :func:`attach_mel` reads each video's units from them
and attaches them to its job, so the decode worker neither decodes the soundtrack nor computes
the spectrogram again. Jobs are reordered to follow the shards, and at most two shards per recipe
are held in memory, so a run reads each shard about once whatever the dataset's size.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa

from svm_toolkit.data.mel import mel_units, unit_shape
from svm_toolkit.extract.base import Extractor, Units
from svm_toolkit.extract.prepare import ExtractJob
from svm_toolkit.io.checked import read_schema, read_table
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import committed_shards
from svm_toolkit.schema import COL

logger = logging.getLogger(__name__)

SHARDS_HELD: Final = 2


class _Recipe:
    """One recipe's committed shards: where each sample's row is, and a small shard cache."""

    def __init__(self, shards: list[Path]) -> None:
        self.shards = shards
        self.where: dict[str, tuple[int, int]] = {}
        for index, shard in enumerate(shards):  # a later row (a redone sample) wins
            ids = read_table(shard, columns=[COL.sample_id]).column(0).to_pylist()
            self.where.update((sid, (index, row)) for row, sid in enumerate(ids))
        self.shape = unit_shape(read_schema(shards[0]), where=str(shards[0]))
        self._held: OrderedDict[int, pa.Table] = OrderedDict()

    def units(self, sample_id: str) -> Units | None:
        """The sample's units, or ``None`` when it has none stored (no row, or no audio)."""
        place = self.where.get(sample_id)
        if place is None:
            return None
        index, row = place
        table = self._table(index)
        data = mel_units(table.column(COL.mel).slice(row, 1), self.shape)[0]  # either layout
        if not len(data):
            return None
        times = table.column(COL.timestamps_s)[row].values.to_numpy(zero_copy_only=False)
        return Units(data, np.asarray(times, np.float32))

    def _table(self, index: int) -> pa.Table:
        if index in self._held:
            self._held.move_to_end(index)
        else:
            self._held[index] = read_table(self.shards[index], columns=[COL.mel, COL.timestamps_s])
            if len(self._held) > SHARDS_HELD:
                self._held.popitem(last=False)
        return self._held[index]


def attach_mel(
    jobs: list[ExtractJob], layout: DatasetLayout, extractors: Mapping[str, Extractor]
) -> Iterable[ExtractJob]:
    """The jobs, in shard order, each with the stored units of its Mel-reading extractors.

    Extractors without a recipe, recipes without shards and samples without stored units are
    left to the decode worker, which computes their units from the soundtrack as before.
    """
    recipes: dict[str, _Recipe] = {}
    for name, extractor in extractors.items():
        recipe = extractor.contract.recipe
        if recipe is None:
            continue
        shards = committed_shards(layout.mel_dir(recipe), "part")
        if shards:
            recipes[name] = _Recipe(shards)
    if not recipes:
        return jobs
    logger.info("extract: %s read their Mel units from svm preprocess", ", ".join(recipes))
    return _with_units(jobs, recipes)


def _with_units(jobs: list[ExtractJob], recipes: Mapping[str, _Recipe]) -> Iterator[ExtractJob]:
    first = next(iter(recipes.values()))
    unplaced = (len(first.shards), 0)
    ordered = sorted(jobs, key=lambda job: first.where.get(job.sample_id, unplaced))
    for job in ordered:
        mel = {}
        for name, recipe in recipes.items():
            if name in job.extractors and (units := recipe.units(job.sample_id)) is not None:
                mel[name] = units
        yield dataclasses.replace(job, mel=mel) if mel else job
