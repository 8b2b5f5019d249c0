"""``python -m svm_toolkit`` runs the ``svm`` CLI."""

from svm_toolkit.entry import main

main()
