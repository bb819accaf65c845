"""The summary across seeds: each claim's headline effect per seed."""

from __future__ import annotations

import textwrap

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .theme import (
    ACCENT,
    ALIGNED,
    TEMPLATE,
)


def seeds_forest(summaries, title: str = "Claims across seeds: the headline effect per seed (95% CI over prompts)") -> go.Figure:
    """One panel per claim that has an effect: its value and CI in each seed, filled where the
    claim held in that seed (every scorer, Holm-corrected). Takes
    :class:`interp.findings.SeedSummary` rows; each panel keeps its claim's own unit."""
    rows = [m for m in summaries if any(e is not None for e in m.effects)]
    titles = [textwrap.fill(f"{m.claim} — {m.verdict}", 90).replace("\n", "<br>") for m in rows]
    fig = make_subplots(rows=max(len(rows), 1), cols=1, subplot_titles=titles, vertical_spacing=0.5 / max(len(rows), 1))
    fig.update_layout(template=TEMPLATE, title=title, width=950, height=max(380, 150 * len(rows) + 140),
                      showlegend=False)
    for i, m in enumerate(rows, start=1):
        for s, e, held in zip(m.seeds, m.effects, m.holds):
            if e is None:
                continue
            fig.add_scatter(x=[e.value], y=[f"seed {s}"], mode="markers", row=i, col=1,
                            marker=dict(size=11, color=ACCENT if held else ALIGNED,
                                        symbol="circle" if held else "circle-open", line=dict(width=2)),
                            error_x=dict(type="data", symmetric=False, array=[e.hi - e.value],
                                         arrayminus=[e.value - e.lo]),
                            hovertemplate=f"seed {s}: %{{x:.3f}} [{e.lo:.3f}, {e.hi:.3f}]<extra></extra>")
        fig.add_vline(x=0, line=dict(color="#444", width=1), row=i, col=1)
        fig.update_yaxes(autorange="reversed", row=i, col=1)
    fig.update_annotations(font_size=13)
    return fig
