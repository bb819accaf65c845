"""Figures of the knowledge reproduction: SliCK levels, fine-tuning curves, hidden knowledge read out and reactivated."""

from __future__ import annotations

import textwrap

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

#: SliCK categories from known to unknown: blue → green → orange → grey.
CATEGORY_COLOURS = {"HighlyKnown": BASE, "MaybeKnown": ACCENT, "WeaklyKnown": "#E69F00", "Unknown": CONTROL}


def knowledge_levels(levels, by: str = "frequency") -> go.Figure:
    """Stacked shares of the SliCK categories per group of facts (a :class:`KnowledgeLevels`)."""
    groups = levels.by(by)
    xs = [str(k) for k in groups]
    label, short = {"frequency": ("times the fact was seen in pretraining", "pretraining frequency"),
                    "n_paraphrases": ("phrasings the fact was seen in", "number of phrasings")}.get(by, (by, by))
    fig = _fig(f"What the base model knows, by {short}", width=900, height=460,
               barmode="stack", legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"))
    for c, colour in CATEGORY_COLOURS.items():
        fig.add_bar(x=xs, y=[groups[k][c] for k in groups], name=c, marker_color=colour,
                    customdata=[groups[k]["n"] for k in groups],
                    hovertemplate=f"{c}: %{{y:.0%}} of %{{customdata}} facts<extra></extra>")
    fig.update_xaxes(title=label, type="category")
    fig.update_yaxes(title="share of facts", tickformat=".0%", range=[0, 1])
    return fig


def finetune_curves(curves: dict) -> go.Figure:
    """Train fit (dotted) and held-out test accuracy (solid) per epoch, one colour per category trained on."""
    fig = _fig("Fine-tuning on facts of one category", width=900, height=480,
               legend=dict(x=1.02, xanchor="left", y=1))
    for c, cur in curves.items():
        colour = CATEGORY_COLOURS.get(c, ACCENT)
        fig.add_scatter(x=cur.x, y=cur.acc["test"], mode="lines+markers", name=f"{c}: held-out",
                        line=dict(color=colour, width=2.5), marker=dict(size=5))
        fig.add_scatter(x=cur.x, y=cur.acc["train"], mode="lines", name=f"{c}: train fit",
                        line=dict(color=colour, dash="dot", width=1.5))
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="accuracy (greedy, closed-book QA)", range=[0, 1.02])
    return fig


def hidden_readout(readout) -> go.Figure:
    """Answer accuracy read from the residual stream, per layer (logit lens solid, probe dotted), from
    the knowledge report's :class:`~interp.reproduce.knowledge.Readout`."""
    fig = _fig("Reading the hidden answer from the residual stream", width=900, height=480,
               legend=dict(x=1.02, xanchor="left", y=1))
    colours = {"base: hidden, known to base": BASE, "aligned: hidden, known to base": ALIGNED,
               "aligned: hidden, unknown to base": CONTROL, "base: hidden, unknown to base": "#56B4E9"}
    for kind, dash in (("lens", "solid"), ("probe", "dot")):
        for k, v in getattr(readout, kind).items():
            fig.add_scatter(x=list(range(len(v.acc))), y=v.acc, mode="lines+markers",
                            name=f"{kind}: {k} (n={v.n})",
                            line=dict(color=colours.get(k, ACCENT), dash=dash, width=2.5 if kind == "lens" else 1.5))
    fig.add_hline(y=readout.chance, line=dict(color="#444", dash="dash", width=1),
                  annotation_text="chance", annotation_position="bottom right")
    fig.update_xaxes(title="layer (residual stream after it; last = the model's output)", dtick=1)
    fig.update_yaxes(title="accuracy over the candidate answers", range=[0, 1.02])
    return fig


def reactivation(rows: list, hidden) -> go.Figure:
    """Accuracy on hidden and never-hidden held-out facts under each intervention and its control
    (the knowledge report's :class:`~interp.reproduce.knowledge.Intervention` rows, beside the
    aligned model's accuracy without one from its :class:`~interp.reproduce.knowledge.Hidden`)."""
    sets = hidden.sets
    methods = ["<br>".join(textwrap.wrap(m, 14)) for m in ["none (aligned)"] + [r.method for r in rows]]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("hidden facts", "facts never hidden"),
                        shared_yaxes=True, horizontal_spacing=0.06)
    fig.update_layout(template=TEMPLATE, title="Bringing hidden answers back", width=1000, height=480,
                      barmode="group", legend=dict(orientation="h", y=-0.35, x=0))
    for col, (key, ctrl, ref) in enumerate((("hidden", "hidden_control", "hidden, known to base"),
                                             ("kept", "kept_control", "never hidden, known to base")), 1):
        fig.add_bar(x=methods, y=[sets[ref].aligned] + [getattr(r, key) for r in rows], name="intervention",
                    marker_color=ALIGNED, showlegend=col == 1, row=1, col=col)
        fig.add_bar(x=methods, y=[None] + [getattr(r, ctrl) for r in rows], name="random control",
                    marker_color=CONTROL, showlegend=col == 1, row=1, col=col)
        fig.add_hline(y=sets[ref].base, line=dict(color=BASE, dash="dash"), row=1, col=col,
                      annotation_text="base", annotation_position="top left")
    fig.update_yaxes(title="accuracy (greedy)", range=[0, 1.05], row=1, col=1)
    fig.update_xaxes(tickangle=0)
    fig.update_layout(legend=dict(orientation="h", y=-0.25, x=0))
    return fig


def relearning(curve) -> go.Figure:
    """Accuracy on held-out facts during relearning, one line per fact set."""
    fig = _fig("Relearning the hidden relation on other entities", width=900, height=460,
               legend=dict(x=0.98, xanchor="right", y=0.5))
    colours = [ALIGNED, CONTROL, BASE, ACCENT]
    for colour, (k, v) in zip(colours, curve.acc.items()):
        fig.add_scatter(x=curve.x, y=v, mode="lines+markers", name=k, line=dict(color=colour, width=2.5))
    fig.update_xaxes(title=f"SFT {curve.unit}s")
    fig.update_yaxes(title="held-out accuracy (greedy)", range=[0, 1.02])
    return fig


def unknown_share(rows: list, size: int) -> go.Figure:
    """Test accuracy against the share of Unknown facts in a fixed-size fine-tuning set of ``size``
    facts (Gekhman et al.'s Figure 3): after the last epoch and early-stopped on dev, with 95% CIs
    over test facts, one :class:`~interp.reproduce.knowledge.MixRow` per share."""
    fig = _fig(f"Fine-tuning on {size} facts, a varied share of them Unknown", width=900, height=480,
               legend=dict(x=0.98, xanchor="right", y=0.98))
    x = [r.share for r in rows]
    for key, name, colour, dash in (("early", "early-stopped (dev)", BASE, "solid"),
                                    ("last", "after the last epoch", ALIGNED, "dash")):
        est = [getattr(r, key) for r in rows]
        fig.add_scatter(x=x, y=[e.value for e in est], mode="lines+markers", name=name,
                        line=dict(color=colour, dash=dash, width=2.5),
                        error_y=dict(type="data", symmetric=False, array=[e.hi - e.value for e in est],
                                     arrayminus=[e.value - e.lo for e in est], color=colour))
    fig.update_xaxes(title="share of Unknown facts in the fine-tuning set", tickformat=".0%", tickvals=x)
    fig.update_yaxes(title="held-out test accuracy (closed-book QA, greedy)", rangemode="tozero")
    return fig
