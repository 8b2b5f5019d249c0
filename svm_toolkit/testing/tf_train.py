"""Reference ``tf.train`` message classes built with the ``protobuf`` package (a second parser).

Used by the tests (to check :mod:`svm_toolkit.yt8m.proto` against protobuf) and by the YT8M
parsing benchmark (as its baseline). The classes are defined in :mod:`svm_toolkit.yt8m.messages`,
which the full decode of frame-level records also uses.
"""

from __future__ import annotations

from svm_toolkit.yt8m.messages import tf_train_messages

__all__ = ["tf_train_messages"]
