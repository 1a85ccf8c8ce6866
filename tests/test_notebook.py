"""The walkthrough notebook runs from top to bottom."""
import os

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_walkthrough_runs(tmp_path):
    path = os.path.join(ROOT, "notebooks", "walkthrough.ipynb")
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": os.path.join(ROOT, "notebooks")}})
    client.execute()
    outputs = [o.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
               for o in cell.get("outputs", [])]
    text = "".join(outputs)
    assert "notebook_out/samplernn_1.wav" in text
    assert "notebook_out/interpolation.mid" in text
