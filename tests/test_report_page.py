"""A reproduction's HTML page opens in a real headless Chromium: every figure renders, and the
console stays free of errors."""

import shutil
import subprocess

import pytest


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-headless-shell") or shutil.which("google-chrome")


def _load(page):
    """The DOM after scripts ran, and the console lines Chromium logged."""
    out = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                          "--v=0", "--virtual-time-budget=15000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    return out.stdout, [line for line in out.stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.skipif(_chromium() is None, reason="no Chromium (bash run.sh test installs Debian's)")
def test_a_report_page_renders_every_figure_without_console_errors(tmp_path):
    import plotly.graph_objects as go

    from interp import plot
    from interp.findings import Finding, findings_table

    figs = {"effects": go.Figure(go.Scatter(x=[0.1, 0.5], y=["a", "b"], mode="markers")),
            "dose": go.Figure(go.Bar(x=["x", "y"], y=[1, 2]))}
    md = "# A report\n\n" + findings_table([Finding("k", "a claim", "", "criterion", "measured", {"s": True})])
    page = plot.report_page(tmp_path / "index.html", "A report", md, figs, {"seed": 0})
    dom, console = _load(page)
    assert not console, console
    assert "<table>" in dom and "a claim" in dom
    for name in figs:
        div = dom.split(f'id="plot-{name}"', 1)[1].split('class="figure"', 1)[0]
        assert "main-svg" in div, f"figure {name} did not render"
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    assert any("Uncaught" in line for line in _load(bad)[1])  # the check itself can fail
