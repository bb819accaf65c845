"""Plotting: one function per analysis result, each returning a ``plotly.graph_objects.Figure``.

Functions only draw what an analysis returned (no computation beyond arranging numbers). One
house template (``"interp"``), the Okabe–Ito colour-blind-safe palette, and the same two
colours for base and aligned everywhere. :func:`save` writes interactive HTML and, where a
Chrome/Chromium is available to kaleido, a static PNG.
"""

from __future__ import annotations

import math
import shutil
import textwrap
import warnings
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

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


# ---------------------------------------------------------------- locate ---------------------

def value_vectors(ranking, n: int = 10, n_tokens: int = 6) -> go.Figure:
    """Top value vectors by cosine with the direction, labelled with the tokens they promote.

    Takes a :class:`interp.neurons.ValueVectorRanking`.
    """
    top = ranking.top[:n]
    names = top.names()
    toks = [", ".join(t.strip() for t in ranking.top_tokens[i][:n_tokens]) for i in range(len(names))]
    fig = _fig(f"Top value vectors by cosine with the {ranking.direction_kind.replace('_', ' ')}",
               height=max(360, 48 * len(names) + 140), width=900)
    fig.add_bar(y=names[::-1], x=top.score.tolist()[::-1], orientation="h", marker_color=BASE,
                text=toks[::-1], textposition="outside", cliponaxis=False,
                hovertemplate="%{y}: cos %{x:.3f}<br>%{text}<extra></extra>", showlegend=False)
    xmax = float(top.score.max())
    fig.update_xaxes(title="cosine(value vector, direction)", range=[0, xmax * 2.1])
    fig.update_yaxes(title=dict(text="neuron (layer.index)", standoff=12))
    fig.update_layout(margin=dict(l=140))
    return fig


def located(loc, n: int = 10, n_tokens: int = 8) -> go.Figure:
    """A locator's top neurons (:class:`interp.locate.LocatedNeurons`): each one's score, labelled
    with the tokens its value vector promotes; the title says whether the locator works."""
    names = loc.top.names()[:n]
    score = loc.top.score.tolist()[:n] if loc.top.score is not None else [1.0] * len(names)
    toks = [", ".join(t.strip() or repr(t) for t in row[:n_tokens]) for row in loc.top_tokens[:n]]
    per = "; ".join(f"{s} p = {p:.3g}" for s, p in loc.p.items())
    title = f"{loc.name.replace('_', ' ')}: {'works' if loc.works else 'does not work'} ({per})"
    fig = _fig(title, height=max(360, 48 * len(names) + 140), width=1000)
    fig.add_bar(y=names[::-1], x=score[::-1], orientation="h", marker_color=BASE if loc.works else CONTROL,
                text=toks[::-1], textposition="outside", cliponaxis=False,
                hovertemplate="%{y}: %{x:.3f}<br>%{text}<extra></extra>", showlegend=False)
    fig.update_xaxes(title=loc.meta.get("score", "score"), range=[0, max(score + [1e-9]) * 2.4])
    fig.update_yaxes(title=dict(text="neuron (layer.index)", standoff=12))
    fig.update_layout(margin=dict(l=140))
    return fig


def cosine_histogram(ranking, max_overlaid: int = 6, bins: int = 60) -> go.Figure:
    """Distribution of every value vector's cosine with the direction, per layer.

    Up to ``max_overlaid`` layers: one step line per layer on a log count axis. Deeper models:
    a layer × cosine heatmap of the counts (log colour scale), since 30 overlaid histograms
    cannot be told apart.
    """
    cos = np.asarray(ranking.cosines, dtype=float)  # [n_layers d_mlp]
    n_layers = cos.shape[0]
    edges = np.linspace(float(cos.min()), float(cos.max()), bins + 1)
    counts = np.stack([np.histogram(cos[layer], bins=edges)[0] for layer in range(n_layers)])
    centres = (edges[:-1] + edges[1:]) / 2
    title = "Cosine of every MLP value vector with the direction"
    if n_layers <= max_overlaid:
        fig = _fig(title, width=900, height=450)
        for layer in range(n_layers):
            # Empty bins drawn below the axis (log scale), so the outline drops to it like a bar.
            y = np.where(counts[layer] > 0, counts[layer], 0.1)
            fig.add_scatter(x=centres.tolist(), y=y.tolist(), name=f"layer {layer}", mode="lines",
                            line=dict(shape="hvh", width=2), customdata=counts[layer].tolist(),
                            hovertemplate=f"layer {layer}<br>cos %{{x:.3f}}<br>%{{customdata}} neurons<extra></extra>")
        fig.update_xaxes(title="cosine(value vector, direction)")
        fig.update_yaxes(title="neurons", type="log", dtick=1,
                         range=[math.log10(0.7), math.log10(max(2.0, counts.max() * 1.5))])
        return fig
    fig = _fig(title, width=900, height=max(420, 16 * n_layers + 160))
    z = np.where(counts > 0, np.log10(np.maximum(counts, 1)), np.nan)
    top_z = max(1, int(math.ceil(np.nanmax(z))))
    fig.add_heatmap(x=centres.tolist(), y=list(range(n_layers)), z=z.tolist(), colorscale="Viridis",
                    zmin=0, zmax=top_z, customdata=counts.tolist(),
                    colorbar=dict(title="neurons", tickvals=list(range(top_z + 1)),
                                  ticktext=[f"{10 ** t:,}" for t in range(top_z + 1)]),
                    hovertemplate="layer %{y}<br>cos %{x:.3f}<br>%{customdata} neurons<extra></extra>")
    fig.update_xaxes(title="cosine(value vector, direction)")
    fig.update_yaxes(title="layer", autorange="reversed", dtick=max(1, n_layers // 10))
    return fig


# ---------------------------------------------------------------- compare --------------------

def neuron_cosines(nwd) -> go.Figure:
    """1 − cosine (base vs aligned) of keys and values: located neurons vs random ones (log scale).

    Takes a :class:`interp.diff.NeuronWeightDiff`.
    """
    fig = _fig("Alignment barely moves the neurons' weights", width=900, height=480)
    parts = [("key (W_in column)", nwd.key_cos, nwd.random_key_cos),
             ("value (W_out row)", nwd.value_cos, nwd.random_value_cos)]
    if nwd.gate_cos is not None:
        parts.insert(1, ("gate (W_gate column)", nwd.gate_cos, nwd.random_gate_cos))
    for i, (_label, located, rnd) in enumerate(parts):
        for vals, name, colour, dx in ((located, "located neurons", ALIGNED, -0.15),
                                       (rnd, "random neurons", CONTROL, 0.15)):
            y = np.clip(1 - vals.double().cpu().numpy(), 1e-9, None)
            fig.add_scatter(x=np.full(len(y), i + dx), y=y, mode="markers", name=name,
                            marker=dict(color=colour, size=9, line=dict(width=0.5, color="#333")),
                            showlegend=i == 0, legendgroup=name)
    fig.update_xaxes(tickvals=list(range(len(parts))), ticktext=[p[0] for p in parts],
                     range=[-0.6, len(parts) - 0.4])
    fig.update_yaxes(title="1 − cosine(base, aligned)", type="log", exponentformat="power")
    return fig


def weight_change(wd) -> go.Figure:
    """Relative change ‖aligned − base‖/‖base‖ of each parameter tensor, by group and layer.

    Takes a :class:`interp.diff.WeightDiff`.
    """
    fig = _fig("Relative weight change per tensor", width=950, height=480)
    groups = sorted({r["group"] for r in wd.rows})
    for gi, g in enumerate(groups):
        rows = [r for r in wd.rows if r["group"] == g]
        fig.add_bar(x=[r["name"].replace("transformer.", "").replace("model.", "") for r in rows],
                    y=[r["rel_change"] for r in rows], name=g,
                    marker_color=OKABE_ITO[gi % len(OKABE_ITO)],
                    customdata=[r["cosine"] for r in rows],
                    hovertemplate="%{x}<br>rel. change %{y:.2e}<br>cosine %{customdata:.6f}<extra></extra>")
    if len(wd.rows) <= 60:
        fig.update_xaxes(title="parameter tensor", tickangle=45, tickfont=dict(size=9))
        fig.update_layout(margin=dict(b=180))
    else:  # hundreds of names overprint one another: the colours say the group, hover the name
        fig.update_xaxes(title=f"parameter tensor ({len(wd.rows)}, by group; hover for the name)",
                         showticklabels=False)
    fig.update_yaxes(title="‖aligned − base‖ / ‖base‖", type="log", exponentformat="power")
    return fig


def key_activations(kac, point: str = "pre", max_points: int = 4000) -> go.Figure:
    """Distributions of the located neurons' activations on every token, base vs aligned.

    Takes a :class:`interp.diff.KeyActivationChange`; ``point`` is ``"pre"`` (before the
    nonlinearity) or ``"post"`` (what multiplies the value vector).
    """
    data = kac.pre if point == "pre" else kac.post
    label = "pre-activation (mlp.hook_pre)" if point == "pre" else "activation (mlp.hook_post)"
    names = kac.neurons.names()
    fig = _fig(f"Key activations of the located neurons: {label}", width=1000, height=480)
    rng = np.random.default_rng(0)
    for role in ("base", "aligned"):
        x = data[role].float().cpu().numpy()
        rows = rng.choice(len(x), min(max_points, len(x)), replace=False) if len(x) > max_points else slice(None)
        xs = x[rows]
        fig.add_violin(x=np.tile(names, xs.shape[0]), y=xs.ravel(), name=role,
                       legendgroup=role, scalegroup=role, side="negative" if role == "base" else "positive",
                       line_color=ROLE_COLOURS[role], meanline_visible=True, points=False, spanmode="hard")
    fig.add_hline(y=0, line=dict(color="#444", width=1, dash="dot"))
    fig.update_layout(violinmode="overlay", violingap=0.1)
    fig.update_xaxes(title="neuron (layer.index)")
    fig.update_yaxes(title=label)
    return fig


def residual_offset(off) -> go.Figure:
    """Size of the residual offset δx per layer (bars) and its cosine with the probe (line).

    Takes a :class:`interp.diff.ResidualOffset`.
    """
    layers = list(range(len(off.hooks)))
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.update_layout(template=TEMPLATE, title="Residual offset δx = x_aligned − x_base", width=900,
                      height=480)
    fig.add_bar(x=layers, y=off.rel_norm.tolist(), name="‖δx‖ / ‖x_base‖", marker_color=ALIGNED,
                opacity=0.75, secondary_y=False)
    if off.cos_direction is not None:
        fig.add_scatter(x=layers, y=off.cos_direction.tolist(), name="cos(δx, probe)", mode="lines+markers",
                        line=dict(color=BASE, width=3), marker=dict(size=10), secondary_y=True)
    if off.cos_keys is not None:
        ck = [None if math.isnan(v) else v for v in off.cos_keys.tolist()]
        fig.add_scatter(x=layers, y=ck, name="mean cos(δx, located keys)", mode="markers",
                        marker=dict(color=ACCENT, size=12, symbol="diamond"), secondary_y=True)
    fig.add_hline(y=0, line=dict(color="#444", width=1, dash="dot"), secondary_y=True)
    fig.update_xaxes(title="layer", tickvals=layers)
    fig.update_yaxes(title="relative size of δx", secondary_y=False)
    fig.update_yaxes(title="cosine", range=[-1, 1], tickmode="linear", dtick=0.5, tickformat=".1f",
                     secondary_y=True, showgrid=False)
    return fig


def residual_pca(pca) -> go.Figure:
    """Both models' residuals in one PCA; colour = model, symbol = the text's label."""
    fig = _fig(f"PCA of the residual stream at {pca.hook}", width=800, height=600)
    coords = pca.coords.cpu().numpy()
    labels = pca.label or ["text"] * len(pca.model)
    symbols = {lab: s for lab, s in zip(sorted(set(labels)), ["circle", "x", "diamond", "square"])}
    for role in ("base", "aligned"):
        for lab in sorted(set(labels)):
            idx = [i for i, (m, la) in enumerate(zip(pca.model, labels)) if m == role and la == lab]
            if not idx:
                continue
            fig.add_scatter(x=coords[idx, 0], y=coords[idx, 1], mode="markers", name=f"{role}, {lab}",
                            marker=dict(color=ROLE_COLOURS[role], symbol=symbols[lab], size=7, opacity=0.6))
    ev = pca.explained_variance
    fig.update_xaxes(title=f"PC1 ({ev[0]:.0%} of variance)")
    fig.update_yaxes(title=f"PC2 ({ev[1]:.0%} of variance)")
    return fig


# ---------------------------------------------------------------- where ----------------------

def change_location(loc, n: int | None = None) -> go.Figure:
    """Share of the alignment effect carried by each weight group: reverted in the aligned model,
    or applied alone to the base. Takes a :class:`interp.attribution.ChangeLocation`; with ``n``
    (samples behind each toxicity rate) the bars carry ± 1 s.e. (:meth:`ChangeLocation.share_se`)."""
    whole = loc.whole_groups()
    fig = _fig(f"Where the change lives ({loc.measure}: base {loc.base:.3f}, aligned {loc.aligned:.3f})",
               width=900, height=480)
    x = [e.group for e in whole]
    se = [loc.share_se(e, n) for e in whole] if n else None
    fig.add_bar(x=x, y=[e.share_revert for e in whole], name="revert group to base (in aligned)",
                marker_color=BASE,
                error_y=dict(type="data", array=[s[0] for s in se], visible=True) if se else None)
    fig.add_bar(x=x, y=[e.share_apply for e in whole], name="apply group alone (to base)",
                marker_color=ALIGNED,
                error_y=dict(type="data", array=[s[1] for s in se], visible=True) if se else None)
    fig.add_hline(y=1, line=dict(color="#444", width=1, dash="dash"),
                  annotation_text="whole effect", annotation_position="top left")
    fig.add_hline(y=0, line=dict(color="#444", width=1))
    fig.update_layout(barmode="group")
    fig.update_xaxes(title="weight group")
    fig.update_yaxes(title="share of the alignment effect")
    return fig


def change_location_layers(loc) -> go.Figure:
    """Per layer × group: share of the effect removed when only that block is applied to the base."""
    per = loc.per_layer()
    groups = sorted({e.group for e in per})
    layers = sorted({e.layer for e in per})
    z = [[next((e.share_apply for e in per if e.group == g and e.layer == la), None) for la in layers]
         for g in groups]
    fig = _fig("Share of the effect per layer (apply only this block's aligned weights to the base)",
               width=900, height=420)
    fig.add_heatmap(z=z, x=[f"layer {la}" for la in layers], y=groups, colorscale="Cividis",
                    zmid=None, text=[[f"{v:+.2f}" if v is not None else "" for v in row] for row in z],
                    texttemplate="%{text}", colorbar=dict(title="share"))
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


def _single_dose(resp, title: str | None) -> go.Figure:
    """One declared dose: no intervention, the intervention and its control side by side, toxicity
    (± s.e.) in one panel and perplexity in the other — a dose axis with one tick says nothing."""
    dose = resp.points[0].dose
    arms = [("no intervention", resp.baseline, BASE), (f"intervention<br>at {dose:g}", resp.points[0], ALIGNED)]
    if resp.control:
        arms.append((f"random control<br>at {resp.control[0].dose:g}", resp.control[0], CONTROL))
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14,
                        subplot_titles=("toxicity rate (± s.e.)", "held-out perplexity"))
    fig.update_layout(template=TEMPLATE, title=title or resp.title or resp.description, width=950,
                      height=520, showlegend=False, margin=dict(b=110))
    names = [a for a, _, _ in arms]
    for name, pt, colour in arms:
        fig.add_scatter(x=[name], y=[pt.toxicity], mode="markers", marker=dict(size=14, color=colour),
                        error_y=dict(type="data", array=[pt.se], visible=True, color=colour, thickness=2),
                        row=1, col=1)
        fig.add_scatter(x=[name], y=[pt.perplexity], mode="markers",
                        marker=dict(size=14, color=colour, symbol="square"), row=1, col=2)
    ppl = [pt.perplexity for _, pt, _ in arms]
    log_ppl = min(ppl) > 0 and max(ppl) / min(ppl) >= 5
    fig.update_xaxes(categoryorder="array", categoryarray=names)
    fig.update_xaxes(title=resp.dose_label, row=1, col=1)
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    fig.update_yaxes(type="log" if log_ppl else "linear", tickformat=None if log_ppl else ".1f", row=1, col=2)
    return fig


def dose_response(resp, title: str | None = None) -> go.Figure:
    """Toxicity (± s.e.) against dose for an intervention and its random control, with perplexity
    on a second axis. Takes a :class:`interp.steer.DoseResponse`. A family swept at one declared
    dose (Lee et al.'s ×10) is drawn as three arms, toxicity and perplexity in two panels."""
    if len({p.dose for p in resp.points + list(resp.control or [])}) == 1:
        return _single_dose(resp, title)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.update_layout(template=TEMPLATE, title=title or resp.title or resp.description, width=950,
                      height=560, legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
                      margin=dict(b=150))
    def add(points, name, colour, dash):
        d = [p.dose for p in points]
        fig.add_scatter(x=d, y=[p.toxicity for p in points], name=f"{name}: toxicity",
                        error_y=dict(type="data", array=[p.se for p in points], visible=True),
                        line=dict(color=colour, width=3, dash=dash), mode="lines+markers", secondary_y=False)
        fig.add_scatter(x=d, y=[p.perplexity for p in points], name=f"{name}: perplexity",
                        line=dict(color=colour, width=1.5, dash="dot"), mode="lines+markers",
                        marker=dict(symbol="square-open"), secondary_y=True)
    add(resp.points, "intervention", ALIGNED, "solid")
    if resp.control:
        add(resp.control, "random control", CONTROL, "dash")
    fig.add_hline(y=resp.baseline.toxicity, line=dict(color=BASE, width=1, dash="dash"),
                  annotation_text="no intervention", annotation_position="bottom right")
    doses = [p.dose for p in resp.points + list(resp.control or [])]
    ppl = [p.perplexity for p in resp.points + list(resp.control or [])] + [resp.baseline.perplexity]
    # Log axes where the numbers span decades (log-spaced doses; perplexity blown up by a dose).
    log_x = min(doses) > 0 and max(doses) / min(doses) >= 10
    log_ppl = min(ppl) > 0 and max(ppl) / min(ppl) >= 5
    fig.update_xaxes(title=resp.dose_label, type="log" if log_x else "linear",
                     **(dict(tickmode="array", tickvals=sorted(set(doses)),
                             ticktext=[f"{d:g}" for d in sorted(set(doses))]) if log_x else {}))
    fig.update_yaxes(title="toxicity rate (± s.e.)", rangemode="tozero", secondary_y=False)
    ticks = dict(tickmode="auto", nticks=7)
    if log_ppl:
        vals, text = log_ticks(min(ppl), max(ppl))
        ticks = dict(tickmode="array", tickvals=vals, ticktext=text)
    fig.update_yaxes(title="held-out perplexity" + (" (log)" if log_ppl else ""), secondary_y=True,
                     showgrid=False, type="log" if log_ppl else "linear",
                     tickformat=None if log_ppl else ".2f", **ticks)
    return fig


SCORER_SYMBOLS = ["circle", "diamond", "square", "triangle-up"]


def effects(effects, scorers: list[str], labels: dict | None = None,
            title: str = "Share of the alignment effect each test arm undoes (95% CI over prompts)") -> go.Figure:
    """Forest plot of :class:`interp.reproduce.toxicity.Effect` rows (rate kind): per arm, the
    share of the alignment effect with its bootstrap CI, one marker per scorer; an arm whose
    control comparison survives Holm is drawn filled, otherwise open."""
    labels = labels or {}
    rows = [e for e in effects if e.kind == "rate"]
    fams = list(dict.fromkeys(e.family for e in rows))
    fig = _fig(title, width=1000, height=max(420, 70 * len(fams) + 180))
    for j, sc in enumerate(scorers):
        pts = [next((e for e in rows if e.family == f and e.scorer == sc), None) for f in fams]
        y = [textwrap.fill(labels.get(f, f), 48).replace("\n", "<br>") for f in fams]
        ok = [p is not None and p.p_holm is not None and p.p_holm < 0.05 and p.vs_control.value > 0 for p in pts]
        sym = SCORER_SYMBOLS[j % len(SCORER_SYMBOLS)]
        fig.add_scatter(
            x=[p.share.value if p else None for p in pts], y=y, mode="markers", name=sc,
            marker=dict(size=12, color=OKABE_ITO[j], symbol=[sym if o else sym + "-open" for o in ok],
                        line=dict(width=2, color=OKABE_ITO[j])),
            error_x=dict(type="data", symmetric=False,
                         array=[(p.share.hi - p.share.value) if p else 0 for p in pts],
                         arrayminus=[(p.share.value - p.share.lo) if p else 0 for p in pts]),
            offsetgroup=str(j), hovertemplate="%{y}<br>share %{x:.2f}<extra>" + sc + "</extra>")
    fig.add_vline(x=0, line=dict(color="#444", width=1))
    fig.add_vline(x=1, line=dict(color="#444", width=1, dash="dash"), annotation_text="whole effect",
                  annotation_position="top")
    fig.update_layout(scattermode="group", legend=dict(title="scorer (filled: beats its control, Holm p < 0.05)"))
    fig.update_xaxes(title="share of the alignment effect undone (base rows: reproduced)")
    fig.update_yaxes(autorange="reversed")
    return fig


def k_sweep(rows: dict[str, list[dict]], factor: float,
            title: str = "Lee et al.'s operation on the top k toxic keys: share of the alignment effect undone") -> go.Figure:
    """Share undone (95% CI over prompts) against k, per scorer, for the top-k keys and for k random
    neurons scaled alike. ``rows[scorer]``: :meth:`interp.reproduce.toxicity.KSweep.shares`."""
    fig = _fig(title + f" (×{factor:g}, test prompts)", width=950, height=520,
               legend=dict(orientation="h", yanchor="top", y=-0.18, x=0), margin=dict(b=130))
    for j, (sc, rs) in enumerate(rows.items()):
        ks = [r["k"] for r in rs]
        for role, dash, sym in (("arm", "solid", "circle"), ("control", "dot", "circle-open")):
            est = [r[role] for r in rs]
            fig.add_scatter(x=ks, y=[e.value for e in est], mode="lines+markers",
                            name=f"{sc}: {'top-k keys' if role == 'arm' else 'random k (control)'}",
                            line=dict(color=OKABE_ITO[j % len(OKABE_ITO)], dash=dash, width=2.5 if role == "arm" else 1.5),
                            marker=dict(symbol=sym, size=9),
                            error_y=dict(type="data", symmetric=False, array=[e.hi - e.value for e in est],
                                         arrayminus=[e.value - e.lo for e in est], visible=role == "arm"))
    fig.add_hline(y=0, line=dict(color="#444", width=1))
    fig.add_hline(y=1, line=dict(color="#444", width=1, dash="dash"), annotation_text="whole effect",
                  annotation_position="top left")
    all_k = sorted({r["k"] for rs in rows.values() for r in rs})
    fig.update_xaxes(title="k (neurons scaled)", type="log", tickmode="array", tickvals=all_k,
                     ticktext=[str(k) for k in all_k])
    fig.update_yaxes(title="share of the alignment effect undone")
    return fig


def neuron_groups(g, title: str = "Where the change lives: shares of the toxic projection's change") -> go.Figure:
    """Each part's share of the aligned − base change of the probe projection (95% CI over
    prompts): Yang et al.'s neuron groups (activation part), Lee's located neurons, every value
    vector's change, attention, the rest; Yang et al.'s range for the toxic neurons shaded.
    Takes :class:`interp.groups.NeuronGroups`."""
    from .groups import YANG_ET_AL_TOXIC_SHARE

    names = [n for n in g.shares if not (n == "unchanged" and g.sizes.get(n, 0) == 0 or
                                         n == "unchanged" and abs(g.shares[n].value) < 1e-12)]
    est = [g.shares[n] for n in names]
    labels = [f"{n} ({g.sizes[n]:,})" if n in g.sizes else n for n in names]
    fig = _fig(f"{title} ({g.direction_name}; {g.n_prompts} test prompts)", width=950,
               height=max(380, 46 * len(names) + 160), margin=dict(l=330))
    fig.add_vrect(x0=YANG_ET_AL_TOXIC_SHARE[0], x1=YANG_ET_AL_TOXIC_SHARE[1], fillcolor=ACCENT, opacity=0.15,
                  line_width=0, annotation_text="Yang et al.: toxic neurons", annotation_position="top left")
    fig.add_scatter(x=[e.value for e in est], y=labels, mode="markers", marker=dict(size=11, color=ALIGNED),
                    error_x=dict(type="data", symmetric=False, array=[e.hi - e.value for e in est],
                                 arrayminus=[e.value - e.lo for e in est]), showlegend=False)
    fig.add_vline(x=0, line=dict(color="#444", width=1))
    fig.add_vline(x=1, line=dict(color="#444", width=1, dash="dash"))
    fig.update_xaxes(title="share of the change (1 = all of it)")
    fig.update_yaxes(autorange="reversed")
    return fig


def pareto(rows: dict[str, list[dict]], scorer: str, declared: dict[str, float], labels: dict | None = None,
           title: str = "Reactivation: what it undoes against what it costs") -> go.Figure:
    """Per family, its doses as a path: share of the alignment effect undone (``scorer``; 95% CI
    over prompts) against the per-token KL from the aligned model on neutral text (log axis);
    the random control at each dose dotted; the test dose starred. ``rows``:
    :meth:`interp.reproduce.toxicity.Pareto.rows`."""
    labels = labels or {}
    fig = _fig(f"{title} (test prompts; {scorer})", width=1000, height=600,
               legend=dict(orientation="h", yanchor="top", y=-0.16, x=0), margin=dict(b=170))
    for j, (fam, pts) in enumerate(rows.items()):
        colour = OKABE_ITO[j % len(OKABE_ITO)]
        name = textwrap.shorten(labels.get(fam, fam), 60)
        for role, dash, sym in (("arm", "solid", "circle"), ("control", "dot", "circle-open")):
            xs = [max(p[role]["kl"].value, 1e-6) for p in pts]
            es = [p[role]["share"][scorer] for p in pts]
            fig.add_scatter(x=xs, y=[e.value for e in es], mode="lines+markers",
                            name=name + ("" if role == "arm" else " — random control"),
                            text=[f"dose {p['dose']:g}" for p in pts], hovertemplate="%{text}<br>KL %{x:.4f}<br>share %{y:.2f}",
                            line=dict(color=colour, dash=dash, width=2.5 if role == "arm" else 1.2),
                            marker=dict(symbol=sym, size=8),
                            error_y=dict(type="data", symmetric=False, array=[e.hi - e.value for e in es],
                                         arrayminus=[e.value - e.lo for e in es], visible=role == "arm"),
                            showlegend=role == "arm" or j == 0)
        star = [p for p in pts if declared.get(fam) == p["dose"]]
        if star:
            p = star[0]
            fig.add_scatter(x=[max(p["arm"]["kl"].value, 1e-6)], y=[p["arm"]["share"][scorer].value], mode="markers",
                            marker=dict(symbol="star", size=16, color=colour, line=dict(color="#222", width=1)),
                            name="test dose", showlegend=j == 0)
    fig.add_hline(y=0, line=dict(color="#444", width=1))
    fig.add_hline(y=1, line=dict(color="#444", width=1, dash="dash"), annotation_text="whole effect",
                  annotation_position="top left")
    fig.update_xaxes(title="KL from the aligned model on neutral text (nats/token, log)", type="log")
    fig.update_yaxes(title="share of the alignment effect undone")
    return fig


def adl_norms(adl, title: str = "Activation difference on neutral text: its size per layer") -> go.Figure:
    """‖mean aligned − base residual‖ relative to the base's residual norm, per layer, one line per
    token position (:class:`interp.adl.ActivationDifference`)."""
    fig = _fig(title, width=900, height=480)
    norms = adl.norms()
    for p in range(adl.k):
        fig.add_scatter(x=adl.layers, y=norms[:, p].tolist(), mode="lines+markers", name=f"token {p}",
                        line=dict(color=OKABE_ITO[p % len(OKABE_ITO)]))
    fig.update_xaxes(title="layer", tickmode="array", tickvals=adl.layers)
    fig.update_yaxes(title="‖δ‖ / ‖x_base‖")
    return fig


def adl_identification(r, title: str = "Does the difference read as the objective? Target tokens' AUROC in the readout") -> go.Figure:
    """Per layer and scorer, the objective's tokens' rank-AUROC in the logit-lens readout of the
    activation difference (below 0.5: pushed down), beside the 5–95% range of random token sets
    (shaded) and the null pairs' values (open markers); the declared layer marked."""
    fig = _fig(title, width=950, height=520, legend=dict(orientation="h", yanchor="top", y=-0.18, x=0),
               margin=dict(b=130))
    for j, (name, by) in enumerate(r.identification.items()):
        colour = OKABE_ITO[j % len(OKABE_ITO)]
        layers = sorted(by)
        lo = [float(np.quantile(by[x].set_aurocs, 0.05)) for x in layers]
        hi = [float(np.quantile(by[x].set_aurocs, 0.95)) for x in layers]
        fig.add_scatter(x=layers + layers[::-1], y=hi + lo[::-1], fill="toself", fillcolor=colour, opacity=0.15,
                        line=dict(width=0), name=f"{name}: random token sets (5–95%)", hoverinfo="skip")
        fig.add_scatter(x=layers, y=[by[x].auroc for x in layers], mode="lines+markers", name=f"{name}: target tokens",
                        line=dict(color=colour, width=2.5), marker=dict(size=9))
        nx = [x for x in layers for _ in by[x].null_aurocs]
        ny = [v for x in layers for v in by[x].null_aurocs]
        if ny:
            fig.add_scatter(x=nx, y=ny, mode="markers", name=f"{name}: null pairs",
                            marker=dict(symbol="circle-open", size=7, color=colour))
    fig.add_hline(y=0.5, line=dict(color="#444", width=1))
    fig.add_vline(x=r.layer, line=dict(color="#444", width=1, dash="dash"), annotation_text="declared layer")
    fig.update_xaxes(title="layer", tickmode="array", tickvals=r.adl.layers)
    fig.update_yaxes(title="AUROC of the objective's tokens (0.5: no signal)", range=[0, 1])
    return fig


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


# ---------------------------------------------------------------- token shift ----------------

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


# ---------------------------------------------------------------- saving ---------------------

# ---------------------------------------------------------------- knowledge ------------------

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


def hidden_readout(readout: dict) -> go.Figure:
    """Answer accuracy read from the residual stream, per layer (logit lens solid, probe dotted)."""
    fig = _fig("Reading the hidden answer from the residual stream", width=900, height=480,
               legend=dict(x=1.02, xanchor="left", y=1))
    colours = {"base: hidden, known to base": BASE, "aligned: hidden, known to base": ALIGNED,
               "aligned: hidden, unknown to base": CONTROL, "base: hidden, unknown to base": "#56B4E9"}
    for kind, dash in (("lens", "solid"), ("probe", "dot")):
        for k, v in readout.get(kind, {}).items():
            fig.add_scatter(x=list(range(len(v["acc"]))), y=v["acc"], mode="lines+markers",
                            name=f"{kind}: {k} (n={v['n']})",
                            line=dict(color=colours.get(k, ACCENT), dash=dash, width=2.5 if kind == "lens" else 1.5))
    fig.add_hline(y=readout["chance"], line=dict(color="#444", dash="dash", width=1),
                  annotation_text="chance", annotation_position="bottom right")
    fig.update_xaxes(title="layer (residual stream after it; last = the model's output)", dtick=1)
    fig.update_yaxes(title="accuracy over the candidate answers", range=[0, 1.02])
    return fig


def reactivation(rows: list[dict], hidden: dict) -> go.Figure:
    """Accuracy on hidden and never-hidden held-out facts under each intervention and its control."""
    sets = hidden["sets"]
    methods = ["<br>".join(textwrap.wrap(m, 14)) for m in ["none (aligned)"] + [r["method"] for r in rows]]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("hidden facts", "facts never hidden"),
                        shared_yaxes=True, horizontal_spacing=0.06)
    fig.update_layout(template=TEMPLATE, title="Bringing hidden answers back", width=1000, height=480,
                      barmode="group", legend=dict(orientation="h", y=-0.35, x=0))
    for col, (key, ctrl, ref) in enumerate((("hidden", "hidden_control", "hidden, known to base"),
                                             ("kept", "kept_control", "never hidden, known to base")), 1):
        fig.add_bar(x=methods, y=[sets[ref]["aligned"]] + [r[key] for r in rows], name="intervention",
                    marker_color=ALIGNED, showlegend=col == 1, row=1, col=col)
        fig.add_bar(x=methods, y=[None] + [r[ctrl] for r in rows], name="random control",
                    marker_color=CONTROL, showlegend=col == 1, row=1, col=col)
        fig.add_hline(y=sets[ref]["base"], line=dict(color=BASE, dash="dash"), row=1, col=col,
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


def unknown_share(rows: list[dict], size: int) -> go.Figure:
    """Test accuracy against the share of Unknown facts in a fixed-size fine-tuning set (Gekhman et
    al.'s Figure 3): after the last epoch and early-stopped on dev, with 95% CIs over test facts."""
    fig = _fig(f"Fine-tuning on {size} facts, a varied share of them Unknown", width=900, height=480,
               legend=dict(x=0.98, xanchor="right", y=0.98))
    x = [r["share"] for r in rows]
    for key, name, colour, dash in (("early", "early-stopped (dev)", BASE, "solid"),
                                    ("last", "after the last epoch", ALIGNED, "dash")):
        fig.add_scatter(x=x, y=[r[key]["value"] for r in rows], mode="lines+markers", name=name,
                        line=dict(color=colour, dash=dash, width=2.5),
                        error_y=dict(type="data", symmetric=False, array=[r[key]["hi"] - r[key]["value"] for r in rows],
                                     arrayminus=[r[key]["value"] - r[key]["lo"] for r in rows], color=colour))
    fig.update_xaxes(title="share of Unknown facts in the fine-tuning set", tickformat=".0%", tickvals=x)
    fig.update_yaxes(title="held-out test accuracy (closed-book QA, greedy)", rangemode="tozero")
    return fig


# ---------------------------------------------------------------- pretraining data -----------


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

    from .io import atomic_path

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
            jobs.write_text(json.dumps([{"fig": figures[n].to_json(), "path": str(tmps[n])} for n in figures]))
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
            empty = [n for n, t in tmps.items() if not t.exists() or t.stat().st_size == 0]
            if empty:
                raise _PngFailed(f"no image came back for {', '.join(empty)}")
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
    from .io import atomic_path

    stem.parent.mkdir(parents=True, exist_ok=True)
    html = stem.with_suffix(".html")
    with atomic_path(html) as tmp:
        # plotly.js is written once beside the HTML files, so they open offline.
        fig.write_html(str(tmp), include_plotlyjs="directory", full_html=True)
    return html


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

    from .io import atomic_path

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
    :func:`write_pngs`), and the report's
    page ``<out_dir>/index.html`` (:func:`report_page`) showing them all."""
    out = Path(out_dir)
    written = [_save_html(fig, out / name) for name, fig in figures.items()]
    written += write_pngs(figures, {name: out / name for name in figures})
    written.append(report_page(out / "index.html", title, markdown_text, figures, config))
    return written
