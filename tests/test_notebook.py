"""The walkthrough notebook runs from top to bottom and shows its pictures and audio inline."""
import os

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Per file the notebook writes: whether its cell also plays it (audio) and shows a picture.
AUDIO = ["bach_0.wav", "bach_1.wav", "samplernn_0.wav", "samplernn_1.wav"]
MIDI = ["folk_3.mid", "folk_interpolation.mid", "sample_1.mid", "interpolation.mid"]
PICTURES = 8  # 2 shipped clips, shipped samples, shipped interpolation, 2 clips, samples, path


def kinds(cell):
    """Text printed by a code cell, and how many audio players and PNG images it shows."""
    text, players, images = "", 0, 0
    for output in cell.get("outputs", []):
        text += output.get("text", "")
        data = output.get("data", {})
        players += "<audio" in data.get("text/html", "")
        images += "image/png" in data
    return text, players, images


@pytest.mark.slow
def test_walkthrough_runs_and_shows_pictures_and_audio(tmp_path):
    path = os.path.join(ROOT, "notebooks", "walkthrough.ipynb")
    notebook = nbformat.read(path, as_version=4)
    assert not any(c.get("outputs") for c in notebook.cells if c.cell_type == "code"), \
        "the committed notebook keeps outputs: strip them"
    client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": os.path.join(ROOT, "notebooks")}})
    client.execute()
    cells = [kinds(c) for c in notebook.cells if c.cell_type == "code"]
    text = "".join(t for t, _, _ in cells)
    for name in AUDIO + MIDI:
        assert f"notebook_out/{name}" in text, f"the notebook did not write {name}"
    for name in AUDIO:
        _, players, images = next(c for c in cells if f"notebook_out/{name}" in c[0])
        assert players >= 2 and images >= 2, f"{name}: {players} players, {images} images"
    assert sum(p for _, p, _ in cells) == len(AUDIO)
    assert sum(i for _, _, i in cells) == PICTURES
