"""Where a stage's per-sample work runs: ``local`` (threads and processes) or ``ray`` (Ray Data).

Both engines run the same stage objects and hand each result back to the stage's runner, which
writes the ledger and the shards itself; so the outputs, the resume logic and the statuses are
the same whichever engine ran the work.
"""

from svm_toolkit.engines.config import ENGINES, EngineConfig

__all__ = ["ENGINES", "EngineConfig"]
