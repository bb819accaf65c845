"""Writing figures: interactive HTML always, PNG through kaleido in one child process with a time limit."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import plotly.graph_objects as go


def png_available() -> bool:
    """Whether kaleido can find a browser to render PNGs (Chrome/Chromium on PATH or BROWSER_PATH)."""
    import os

    if os.environ.get("BROWSER_PATH"):
        return True
    return any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome",
                                         "chromium-headless-shell", "chrome"))


#: Seconds a child process may take to render one call's PNGs (``INTERP_PNG_TIMEOUT`` overrides).
PNG_TIMEOUT_S = 300.0

_PNG_CHILD = """
import json, sys
import plotly.io as pio
jobs = json.load(open(sys.argv[1]))
figs = [pio.from_json(j["fig"]) for j in jobs]
# plotly 7's batch export draws every figure at the default 700x500 unless told each one's size
pio.write_images(figs, [j["path"] for j in jobs], format="png", scale=float(sys.argv[2]),
                 width=[f.layout.width for f in figs], height=[f.layout.height for f in figs])
"""


class _PngFailed(RuntimeError):
    pass


def write_pngs(figures: dict[str, go.Figure], stems: dict[str, Path], *, scale: float = 2.0,
               timeout: float | None = None) -> list[Path]:
    """Render ``figures[name]`` to ``stems[name].png`` in one child process with a time limit.

    kaleido waits on its Chromium without a limit of its own; here the child (and the browser
    it started, in the same process group) is killed after ``timeout`` seconds
    (:data:`PNG_TIMEOUT_S`, or ``INTERP_PNG_TIMEOUT``). A failure or a time-out costs the PNGs of
    this call only: a warning names the figures, nothing half-written is left, and the caller's
    HTML and JSON are untouched. Returns the PNGs written."""
    import contextlib
    import json
    import os
    import signal
    import subprocess
    import sys
    import tempfile

    from ..io import atomic_path

    if not figures:
        return []
    if not png_available():
        warnings.warn("no Chrome/Chromium for kaleido: PNG skipped (apt-get install chromium)", stacklevel=3)
        return []
    timeout = float(os.environ.get("INTERP_PNG_TIMEOUT", PNG_TIMEOUT_S) if timeout is None else timeout)
    finals = {name: Path(stems[name]).with_suffix(".png") for name in figures}
    try:
        with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as work:
            tmps = {name: stack.enter_context(atomic_path(path)) for name, path in finals.items()}
            jobs = Path(work) / "jobs.json"
            pending = list(figures)
            for _ in range(2):  # a browser under load can drop an image: the missing ones are asked for once more
                jobs.write_text(json.dumps([{"fig": figures[n].to_json(), "path": str(tmps[n])} for n in pending]))
                child = subprocess.Popen([sys.executable, "-c", _PNG_CHILD, str(jobs), str(scale)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                         start_new_session=True)
                try:
                    _, err = child.communicate(timeout=timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child.pid, signal.SIGKILL)
                    child.communicate()
                    raise _PngFailed(f"timed out after {timeout:g} s (INTERP_PNG_TIMEOUT)") from None
                if child.returncode != 0:
                    raise _PngFailed(f"the renderer exited with {child.returncode}: "
                                     + (err.strip().splitlines() or ["no message"])[-1])
                pending = [n for n in pending if not tmps[n].exists() or tmps[n].stat().st_size == 0]
                if not pending:
                    break
            if pending:
                raise _PngFailed(f"no image came back for {', '.join(pending)}")
    except _PngFailed as e:
        warnings.warn(f"PNG export of {', '.join(str(p) for p in finals.values())} skipped: {e}; "
                      "the HTML is written", stacklevel=3)
        return []
    return list(finals.values())


def save(fig: go.Figure, stem: str | Path, *, png: bool = True, scale: float = 2.0) -> list[Path]:
    """Write ``stem.html`` (always) and ``stem.png`` (when a browser is available; rendered by
    :func:`write_pngs` under a time limit). Atomic."""
    stem = Path(stem)
    out = [_save_html(fig, stem)]
    if png:
        out += write_pngs({stem.name: fig}, {stem.name: stem}, scale=scale)
    return out


def _save_html(fig: go.Figure, stem: Path) -> Path:
    from ..io import atomic_path

    stem.parent.mkdir(parents=True, exist_ok=True)
    html = stem.with_suffix(".html")
    with atomic_path(html) as tmp:
        # plotly.js is written once beside the HTML files, so they open offline.
        fig.write_html(str(tmp), include_plotlyjs="directory", full_html=True)
    return html
