"""The house style: Okabe–Ito colours (base always blue, aligned always vermillion), the ``"interp"``
plotly template, and small helpers every figure module shares."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import plotly.io as pio

# Okabe & Ito (2008): distinguishable with every common colour-vision deficiency.
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
BASE, ALIGNED, CONTROL, ACCENT = "#0072B2", "#D55E00", "#8C8C8C", "#009E73"
ROLE_COLOURS = {"base": BASE, "aligned": ALIGNED}

pio.templates["interp"] = go.layout.Template(
    layout=go.Layout(
        font=dict(family="Helvetica, Arial, sans-serif", size=14, color="#222"),
        title=dict(font=dict(size=18), x=0.02, xanchor="left"),
        colorway=OKABE_ITO,
        paper_bgcolor="white",
        plot_bgcolor="white",
        xaxis=dict(showline=True, linecolor="#444", ticks="outside", gridcolor="#ececec", zeroline=False,
                   automargin=True, title=dict(standoff=12)),
        yaxis=dict(showline=True, linecolor="#444", ticks="outside", gridcolor="#ececec", zeroline=False,
                   automargin=True, title=dict(standoff=12)),
        legend=dict(bgcolor="rgba(255,255,255,0.85)", bordercolor="#ccc", borderwidth=1),
        margin=dict(l=80, r=40, t=80, b=70),
    )
)
TEMPLATE = "interp"


def _fig(title: str, **layout) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(template=TEMPLATE, title=title, **layout)
    return fig


def log_ticks(lo: float, hi: float, most: int = 8) -> tuple[list[float], list[str]]:
    """Ticks for a log axis from ``lo`` to ``hi`` (plotly's own land on odd values on a secondary
    axis): 1-2-5 within three decades; beyond, powers of ten, every k-th so at most ``most``
    (a dose that wrecks the model can take perplexity to 1e21)."""
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    if b - a <= 3:
        vals = [m * 10 ** e for e in range(a, b + 1) for m in (1, 2, 5) if lo / 1.5 <= m * 10 ** e <= hi * 1.5]
    else:
        step = math.ceil((b - a + 1) / most)
        vals = [10.0 ** e for e in range(a, b + 1, step)]
    return vals, [f"{v:,.0f}" if v < 1e6 else f"1e{round(math.log10(v))}" for v in vals]
