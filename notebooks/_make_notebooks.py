"""Writes each notebook of this folder from its source, the jupytext percent script beside it
(``01_quickstart.py`` → ``01_quickstart.ipynb``, stored without outputs):

    python notebooks/_make_notebooks.py

Edit the ``.py`` (ruff lints it like the library); a test fails when an ``.ipynb`` is not what
its script renders."""

import hashlib
import sys
from pathlib import Path

import jupytext
import nbformat

HERE = Path(__file__).resolve().parent


def render(script: Path) -> str:
    """The notebook ``script`` renders to, as nbformat JSON: its cells, the Python 3 kernel, and
    cell ids derived from the file name and position (regenerating changes nothing that did not change)."""
    nb = jupytext.read(script, fmt="py:percent")
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    for i, cell in enumerate(nb.cells):
        cell["id"] = hashlib.sha256(f"notebooks/{script.stem}.ipynb:{i}".encode()).hexdigest()[:8]
        cell["metadata"] = {}
        if cell.cell_type == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return nbformat.writes(nb) + "\n"


def scripts() -> list[Path]:
    return sorted(p for p in HERE.glob("[0-9][0-9]_*.py"))


def main() -> list[Path]:
    written = []
    for script in scripts():
        out = script.with_suffix(".ipynb")
        text = render(script)
        if not out.exists() or out.read_text() != text:
            out.write_text(text)
            written.append(out)
    return written


if __name__ == "__main__":
    print(*main(), sep="\n")
    sys.exit(0)
