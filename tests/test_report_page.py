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


@pytest.mark.skipif(_chromium() is None, reason="no Chromium (bash run.sh test installs Debian's)")
def test_save_report_writes_every_png_in_one_child_process(tmp_path):
    import plotly.graph_objects as go

    from interp import plot

    figs = {"a": go.Figure(go.Bar(x=[1, 2], y=[3, 4])).update_layout(width=900, height=620),
            "b": go.Figure(go.Scatter(x=[1, 2], y=[2, 1]))}
    written = plot.save_report(tmp_path, figs, "t", "# t")
    for name in figs:
        png = tmp_path / f"{name}.png"
        assert png in written and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    size = lambda p: (int.from_bytes(p.read_bytes()[16:20], "big"), int.from_bytes(p.read_bytes()[20:24], "big"))  # noqa: E731
    assert size(tmp_path / "a.png") == (1800, 1240)  # the figure's own size, at scale 2


def test_a_png_export_that_hangs_is_killed_and_leaves_the_html(tmp_path, monkeypatch):
    """kaleido can wait on its browser forever: the child is killed at the limit, a warning names
    the figure, no PNG or temporary file is left, and the HTML is written."""
    import os
    import time

    import plotly.graph_objects as go

    from interp import plot
    from interp.plot import export

    monkeypatch.setattr(export, "png_available", lambda: True)
    monkeypatch.setattr(export, "_PNG_CHILD", "import time\ntime.sleep(600)")  # a renderer that never answers
    monkeypatch.setenv("INTERP_PNG_TIMEOUT", "1")
    t0 = time.monotonic()
    with pytest.warns(UserWarning, match=r"fig\.png skipped: timed out after 1 s"):
        written = plot.save(go.Figure(go.Bar(x=[1], y=[1])), tmp_path / "fig")
    assert time.monotonic() - t0 < 30
    assert written == [tmp_path / "fig.html"] and (tmp_path / "fig.html").exists()
    assert sorted(p for p in os.listdir(tmp_path) if not p.startswith("plotly")) == ["fig.html"]
    monkeypatch.setattr(export, "_PNG_CHILD", "raise SystemExit('no browser answered')")
    with pytest.warns(UserWarning, match="exited with 1: no browser answered"):
        assert plot.write_pngs({"g": go.Figure()}, {"g": tmp_path / "g"}) == []
    assert not (tmp_path / "g.png").exists()


#: Tokens a real model's vocabulary holds (Gemma-3: 262k entries in many scripts).
SCRIPTS = {"CJK": "中文字符", "Japanese": "ひらがな", "Korean": "한국어", "Cyrillic": "русский", "Greek": "ελληνικά",
           "Arabic": "العربية", "Hebrew": "עברית", "Devanagari": "हिन्दी", "Thai": "ภาษาไทย"}


@pytest.mark.skipif(_chromium() is None, reason="no Chromium (bash run.sh test installs Debian's)")
def test_figures_draw_non_latin_tokens_not_empty_boxes(tmp_path):
    """A figure labelled with tokens of each script must not render like the same number of
    private-use characters, which no font has (each drawn as the same missing-glyph box)."""
    import plotly.graph_objects as go

    from interp import plot

    def fig(text):
        f = go.Figure(go.Bar(y=[text, text[::-1]], x=[1, 2], orientation="h", text=[text, text], textposition="outside"))
        return f.update_layout(width=400, height=200, margin=dict(l=150, r=80, t=10, b=10))

    figs = {}
    for name, text in SCRIPTS.items():
        figs[name] = fig(text)
        figs[f"{name}-boxes"] = fig("".join(chr(0xE000 + i) for i in range(len(text))))
    figs["again-boxes"] = figs["CJK-boxes"]
    plot.write_pngs(figs, {n: tmp_path / n for n in figs})
    png = {n: (tmp_path / f"{n}.png").read_bytes() for n in figs}
    assert png["again-boxes"] == png["CJK-boxes"]  # the comparison can see sameness
    missing = [n for n in SCRIPTS if png[n] == png[f"{n}-boxes"]]
    assert not missing, f"no font draws {missing} (install fonts-noto-cjk and fonts-noto-core)"


def test_every_report_says_what_machine_its_timings_come_from(tmp_path):
    import json

    from interp.reproduce.report import machine, without_timings, write_report

    write_report(tmp_path, "r", {"x": 1, "timings": {"total_s": 2.0}}, "# r\n")
    d = json.loads((tmp_path / "r.json").read_text())
    m = d["machine"]
    assert m == machine() and m["cores"] >= 1 and m["torch_threads"] >= 1 and m["processor"]
    assert without_timings(d) == {"x": 1}  # what two runs of the same work must agree on
