"""Figures of token shift (:mod:`interp.shift`) and instruction alignment."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .theme import (
    ALIGNED,
    BASE,
    TEMPLATE,
    _fig,
)

SHIFT_COLOURS = {"unshifted": "#009E73", "marginal": "#E69F00", "shifted": "#D55E00"}


def shift_shares(shifts: dict, reference: dict | None = None, title: str = "Token shift") -> go.Figure:
    """Stacked shares of unshifted / marginal / shifted positions, one bar per comparison.

    ``shifts`` maps a label to a :class:`interp.shift.TokenShift`; ``reference`` adds a bar of
    published shares (e.g. Lin et al.'s).
    """
    labels, rows = [], []
    if reference:
        labels.append("Lin et al. (Llama-2-7b vs chat)")
        rows.append(reference)
    for k, ts in shifts.items():
        labels.append(k)
        rows.append(ts.shares())
    fig = _fig(title, width=900, height=420, barmode="stack")
    for cls in ("unshifted", "marginal", "shifted"):
        fig.add_bar(y=labels, x=[r[cls] for r in rows], name=cls, orientation="h",
                    marker_color=SHIFT_COLOURS[cls], text=[f"{r[cls]:.1%}" for r in rows],
                    textposition="inside", insidetextanchor="middle")
    fig.update_xaxes(title="share of decoded positions", range=[0, 1], tickformat=".0%")
    fig.update_layout(legend=dict(orientation="h", y=-0.25, x=0), margin=dict(b=120))
    return fig


def shift_profile(ts) -> go.Figure:
    """Shares per decoding step: where in the answer the shifted tokens sit."""
    prof = ts.position_profile()
    fig = _fig("Token shift by position in the answer", width=900, height=450, barmode="stack")
    for cls in ("unshifted", "marginal", "shifted"):
        fig.add_bar(x=prof["step"], y=prof[cls], name=cls, marker_color=SHIFT_COLOURS[cls])
    fig.update_xaxes(title="decoding step (0 = first generated token)")
    fig.update_yaxes(title="share of positions", tickformat=".0%", range=[0, 1])
    return fig


def shifted_tokens(ts, k: int = 15) -> go.Figure:
    """The tokens the aligned model chose most often where the base ranked them beyond 3."""
    top = ts.top_shifted(k)
    fig = _fig("Most often shifted tokens", width=800, height=max(360, 30 * len(top) + 140))
    fig.add_bar(y=[repr(t)[1:-1] for t, _ in top][::-1], x=[n for _, n in top][::-1], orientation="h",
                marker_color=ALIGNED, showlegend=False)
    fig.update_xaxes(title="shifted occurrences")
    return fig


def shift_by_type(ts) -> go.Figure:
    """Stacked shares per token type (end of sequence, openers, connectives, …): which kinds of
    token the aligned model chose where the base would not have."""
    by = ts.shares_by_type()
    types = list(by)
    fig = _fig("Token shift by token type", width=900, height=440, barmode="stack",
               legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"))
    for cls in ("unshifted", "marginal", "shifted"):
        fig.add_bar(x=[f"{t}<br>(n={by[t]['n']})" for t in types], y=[by[t][cls] for t in types], name=cls,
                    marker_color=SHIFT_COLOURS[cls])
    fig.update_yaxes(title="share of the type's positions", tickformat=".0%", range=[0, 1])
    return fig


def kl_profile(ts, first: int | None = None, min_prompts: int = 20) -> go.Figure:
    """Mean KL(aligned ‖ base) per response position with its 95% band over prompts (the
    shallow-alignment curve); ``first`` shades the first few positions. Positions fewer than
    ``min_prompts`` responses reach are not drawn (their means are a handful of answers)."""
    prof = ts.kl_profile()
    keep = [i for i, n in enumerate(prof["n"]) if n >= min_prompts]
    prof = {k: [v[i] for i in keep] for k, v in prof.items()}
    fig = _fig("How deep alignment goes: KL(aligned ‖ base) by response position", width=900, height=440)
    if first:
        fig.add_vrect(x0=-0.5, x1=first - 0.5, fillcolor="#f2f2f2", line_width=0, layer="below",
                      annotation_text=f"first {first}", annotation_position="top left")
    fig.add_scatter(x=prof["step"] + prof["step"][::-1], y=prof["hi"] + prof["lo"][::-1], fill="toself",
                    fillcolor="rgba(213,94,0,0.18)", line=dict(width=0), hoverinfo="skip", showlegend=False)
    fig.add_scatter(x=prof["step"], y=prof["kl"], mode="lines+markers", line=dict(color=ALIGNED, width=2.5),
                    name="mean KL", customdata=prof["n"],
                    hovertemplate="position %{x}: KL %{y:.3f} over %{customdata} prompts<extra></extra>")
    fig.update_xaxes(title="response position (0 = first generated token)")
    fig.update_yaxes(title="KL(aligned ‖ base), nats", rangemode="tozero")
    return fig


def instruction_arms(rows: list[dict], title: str = "Instruction following") -> go.Figure:
    """Per arm (a row of :func:`interp.reproduce.instruction.arms_table`): the share of test
    questions followed (answers and stops) with its 95% CI over people, and beside it the share
    of the SFT model's tokens the arm ranks first."""
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=("follows the instruction (answers and stops)",
                                        "SFT's tokens the arm ranks first"))
    names = [r["arm"] for r in rows][::-1]
    for col, key, colour in ((1, "follows", ALIGNED), (2, "unshifted_vs_sft", BASE)):
        v = [r[key] for r in rows][::-1]
        fig.add_bar(y=names, x=[e["value"] for e in v], orientation="h", marker_color=colour, showlegend=False,
                    error_x=dict(type="data", symmetric=False, array=[e["hi"] - e["value"] for e in v],
                                 arrayminus=[e["value"] - e["lo"] for e in v], color="#444"),
                    text=[f"{e['value']:.0%}" for e in v], textposition="inside", insidetextanchor="start",
                    row=1, col=col)
        fig.update_xaxes(range=[0, 1.05], tickformat=".0%", row=1, col=col)
    fig.update_layout(template=TEMPLATE, title=title, width=1100, height=max(380, 42 * len(rows) + 160))
    return fig
