"""Figures of the pretraining-data reproduction: repetition and extraction."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .theme import (
    ACCENT,
    ALIGNED,
    BASE,
    CONTROL,
    TEMPLATE,
    _fig,
)


def repetition(rows: list[dict]) -> go.Figure:
    """Validation loss on fresh documents (left) and zero-shot fact recall (right) per repetition
    arm of one seed (E copies of each unique document, the same budget), with 95% CIs; the
    duplicated stream as a separate marker."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=("validation loss on fresh documents", "fact recall (zero-shot cloze)"))
    rep = [r for r in rows if r.get("repeats")]
    dup = [r for r in rows if not r.get("repeats")]
    x = [r["repeats"] for r in rep]

    def band(key):
        return dict(type="data", symmetric=False, array=[r[key]["hi"] - r[key]["value"] for r in rep],
                    arrayminus=[r[key]["value"] - r[key]["lo"] for r in rep], color="#444")

    fig.add_scatter(x=x, y=[r["val_loss"]["value"] for r in rep], error_y=band("val_loss"), mode="lines+markers",
                    name="E copies of each unique document", line=dict(color=BASE, width=2.5), row=1, col=1)
    fig.add_scatter(x=x, y=[r["recall"]["value"] for r in rep], error_y=band("recall"), mode="lines+markers",
                    name="recall, every phrasing", line=dict(color=ALIGNED, width=2.5), row=1, col=2)
    fig.add_scatter(x=x, y=[r["recall_seen"]["value"] for r in rep], mode="lines+markers",
                    name="recall, phrasings the stream used", line=dict(color=ALIGNED, dash="dot", width=1.5),
                    row=1, col=2)
    for r in dup:
        fig.add_scatter(x=[1], y=[r["val_loss"]["value"]], mode="markers", name=r["arm"] + " (E=1 budget)",
                        marker=dict(color=ACCENT, size=12, symbol="diamond"), row=1, col=1)
    for col in (1, 2):
        fig.update_xaxes(type="log", tickvals=x, title="E (copies of each unique document; U·E fixed)", row=1, col=col)
    fig.update_yaxes(title="nats per token", row=1, col=1)
    fig.update_yaxes(title="share of facts", range=[0, 1.02], row=1, col=2)
    fig.update_layout(template=TEMPLATE, title="Repetition at a fixed budget of documents", width=1150, height=480,
                      legend=dict(orientation="h", y=-0.22))
    return fig


def extraction(arms: dict) -> go.Figure:
    """Per biography arm (1 vs 5 phrasings): what is stored, what a probe reads at the name, and
    what QA fine-tuning extracts on held-out people."""
    measures = [("stored", "biography continued"), ("name_cloze", "name-first cloze"),
                ("probe", "probe at the name"), ("extraction", "QA extraction (held-out people)")]
    fig = _fig("Rephrased biographies and knowledge extraction", width=1000, height=460,
               barmode="group", legend=dict(x=1.02, xanchor="left", y=1))
    for colour, (arm, e) in zip((CONTROL, ACCENT, BASE, ALIGNED), arms.items()):
        fig.add_bar(x=[m[1] for m in measures], y=[e[m[0]] for m in measures], name=arm, marker_color=colour,
                    text=[f"{e[m[0]]:.0%}" for m in measures], textposition="outside")
    if arms:
        fig.add_hline(y=next(iter(arms.values()))["chance"], line=dict(color="#444", dash="dash", width=1),
                      annotation_text="chance (first token)", annotation_position="top right")
    fig.update_yaxes(title="share of held-out people's facts", range=[0, 1.1], tickformat=".0%")
    return fig
