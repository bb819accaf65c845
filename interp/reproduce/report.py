"""Writing a reproduction's report: JSON, markdown, figures and the page that shows them."""

from __future__ import annotations

from pathlib import Path

from .. import plot
from ..io import write_json, write_text


def write_report(out_dir: str | Path, stem: str, data: dict, markdown: str, *, figures=None,
                 title: str = "", config: dict | None = None) -> list[Path]:
    """``<out>/<stem>.json`` and ``<stem>.md``, and — given ``figures`` (a callable returning
    the report's figures by name) — every figure and the ``index.html`` page showing them."""

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / f"{stem}.json", data)
    write_text(out / f"{stem}.md", markdown)
    written = [out / f"{stem}.json", out / f"{stem}.md"]
    if figures is not None:
        written += plot.save_report(out, figures(), title, markdown, config)
    return written


def without_timings(report):
    """A report's JSON without its wall-clock ``timings`` (at any depth): what two runs of the same
    work — one process or several, CPU or GPU — must agree on."""
    if isinstance(report, dict):
        return {k: without_timings(v) for k, v in report.items() if k != "timings"}
    if isinstance(report, list):
        return [without_timings(v) for v in report]
    return report
