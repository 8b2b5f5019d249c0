"""The notebooks: committed without outputs, and they run end to end on a small demo dataset."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
#: Run order: the quickstart builds the demo dataset the inspection notebook reads.
ORDER = ("00-quickstart.ipynb", "01-inspect-dataset.ipynb")
KERNEL = "svm-toolkit-tests"


def _outputs(nb: Any) -> list[str]:
    """Every output's text (streams and text/plain), in cell order."""
    texts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output["output_type"] == "stream":
                texts.append(output["text"])
            elif "data" in output:
                texts.append(output["data"].get("text/plain", ""))
    return texts


def _images(nb: Any) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in nb.cells
        for output in cell.get("outputs", [])
    )


@pytest.mark.parametrize("name", ORDER)
def test_committed_without_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [], f"{name}: a cell has outputs; clear them before committing"
        assert cell.execution_count is None, f"{name}: a cell has an execution count"


@pytest.mark.parametrize("name", ORDER)
def test_notebooks_import_only_the_public_api(name: str) -> None:
    import svm_toolkit

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("svm_toolkit"):
                assert node.module == "svm_toolkit", f"{name}: imports {node.module}"
                assert {a.name for a in node.names} <= set(svm_toolkit.__all__), name
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("svm_toolkit."), f"{name}: {alias.name}"


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec that runs this interpreter, found first through ``JUPYTER_PATH``."""
    from ipykernel.kernelspec import install
    from jupyter_client.kernelspec import KernelSpecManager

    prefix = tmp_path / "jupyter"
    install(kernel_name=KERNEL, prefix=str(prefix))
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    assert KernelSpecManager().get_kernel_spec(KERNEL).argv[0] == sys.executable
    return KERNEL


@pytest.mark.slow
def test_notebooks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel: str) -> None:
    from nbclient import NotebookClient

    # The kernel inherits this environment: one small demo folder for both notebooks.
    monkeypatch.setenv("SVM_NOTEBOOK_DIR", str(tmp_path / "svm-notebook"))
    monkeypatch.setenv("SVM_NOTEBOOK_CLIPS", "40")
    monkeypatch.setenv("SVM_NOTEBOOK_EPOCHS", "5")
    executed = {}
    for name in ORDER:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        NotebookClient(
            nb, timeout=600, kernel_name=kernel, resources={"metadata": {"path": str(tmp_path)}}
        ).execute()
        nbformat.write(nb, tmp_path / name)  # kept for a look when the test fails later on
        executed[name] = nb

    quickstart = "\n".join(_outputs(executed["00-quickstart.ipynb"]))
    for stage in ("corpus", "manifest", "download", "preprocess", "extract", "splits"):
        assert f"\n{stage} " in f"\n{quickstart}", f"no {stage} line"
    assert "test split" in quickstart
    assert "video→music" in quickstart and "chance" in quickstart
    assert _images(executed["00-quickstart.ipynb"]) == 2  # curves.png and recall.png

    inspect = "\n".join(_outputs(executed["01-inspect-dataset.ipynb"]))
    for expected in ("download", "preprocess", "efficientnet_lite0", "vmnet_music", "test"):
        assert expected in inspect
    assert _images(executed["01-inspect-dataset.ipynb"]) == 2  # durations and speech ratio
