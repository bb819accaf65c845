"""A report's HTML page: its markdown, every figure, interactive, and its config."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go

from . import export

PAGE_STYLE = """
body { font-family: Helvetica, Arial, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; vertical-align: top; }
th { background: #f4f4f4; }
code { background: #f4f4f4; padding: 0 3px; }
.figure { margin: 2em 0; }
details pre { background: #f8f8f8; padding: 1em; overflow-x: auto; font-size: 12px; }
"""


def report_page(path: str | Path, title: str, markdown_text: str, figures: dict[str, go.Figure] | None = None,
                config: dict | None = None) -> Path:
    """One self-contained HTML page: a report's markdown (tables rendered), then every figure,
    interactive, then the config. ``plotly.min.js`` is written beside it once, so the page opens
    offline. Atomic."""
    import html
    import json

    import mistune
    from plotly.offline import get_plotlyjs

    from ..io import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    js = path.parent / "plotly.min.js"
    if not js.exists():
        with atomic_path(js) as tmp:
            tmp.write_text(get_plotlyjs())
    body = mistune.create_markdown(plugins=["table"])(markdown_text)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{PAGE_STYLE}</style><script src='plotly.min.js'></script></head><body>", body]
    for name, fig in (figures or {}).items():
        parts.append(f"<div class='figure' id='fig-{html.escape(name)}'><h3>{html.escape(name)}</h3>"
                     + fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"plot-{name}") + "</div>")
    if config is not None:
        parts.append("<details><summary>config</summary><pre>"
                     + html.escape(json.dumps(config, indent=2, default=str)) + "</pre></details>")
    parts.append("</body></html>")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(parts))
    return path


def save_report(out_dir: str | Path, figures: dict[str, go.Figure], title: str, markdown_text: str,
                config: dict | None = None) -> list[Path]:
    """Every figure as ``<out_dir>/<name>.html`` and ``.png`` (all PNGs in one child process,
    :func:`~interp.plot.export.write_pngs`), and the report's
    page ``<out_dir>/index.html`` (:func:`report_page`) showing them all."""
    out = Path(out_dir)
    written = [export._save_html(fig, out / name) for name, fig in figures.items()]
    written += export.write_pngs(figures, {name: out / name for name in figures})
    written.append(report_page(out / "index.html", title, markdown_text, figures, config))
    return written
