"""Every nbval marker written in a notebook is one nbval recognises.

nbval only honours a marker comment that is exactly its name (``# NBVAL_IGNORE_OUTPUT``); any
text after it on the line silently turns the marker off, and the cell's machine-specific output
(warnings naming a venv path, timestamps) is then compared, and fails on every other machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nbval.plugin import comment_markers, find_comment_markers

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(
    p.relative_to(ROOT)
    for folder in ("tutorials", "notebooks", "tests")
    for p in (ROOT / folder).rglob("*.ipynb")
    if ".ipynb_checkpoints" not in p.parts
)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=str)
def test_nbval_markers_are_exact(path):
    cells = json.loads((ROOT / path).read_text())["cells"]
    for i, cell in enumerate(cells):
        source = "".join(cell["source"])
        comments = (line.strip().lstrip("#").strip() for line in source.splitlines()
                    if line.strip().startswith("#"))
        written = {c.split()[0] for c in comments if c.startswith("NBVAL_")}
        honoured = dict(find_comment_markers(source))
        for marker in written:
            assert marker in comment_markers, f"{path} cell {i}: unknown nbval marker {marker}"
        assert len(honoured) == len(written), (
            f"{path} cell {i}: nbval ignores a marker here; write it alone on its line "
            f"(found {sorted(written)}, honoured {sorted(honoured)})"
        )
