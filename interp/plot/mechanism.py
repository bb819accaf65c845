"""Figures of the mechanism steps — locate (value vectors, probes), compare (weights, keys,
residual offset, PCA), where (weight groups, neuron groups) and reactivate (doses, effects,
k-sweep, Pareto) — one function per result dataclass."""

from __future__ import annotations

import math
import textwrap

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .theme import (
    ACCENT,
    ALIGNED,
    BASE,
    CONTROL,
    OKABE_ITO,
    ROLE_COLOURS,
    TEMPLATE,
    _fig,
    log_ticks,
)


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
    from ..groups import YANG_ET_AL_TOXIC_SHARE

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


def group_edits(rows: dict[str, dict], scorer: str,
                title: str = "Editing the neuron groups: which carry the behaviour") -> go.Figure:
    """Per group (neurons in brackets): the share of base − aligned undone by patching its base
    activations into the aligned model (vermillion) and reproduced by patching the aligned model's
    into the base (blue), 95% CIs over prompts, ``scorer``'s rates; the perplexity ratio each edit
    costs in the hover. Takes the report's ``group_edit_rows``
    (:meth:`interp.groups.GroupEdits.rows`)."""
    names = list(rows)
    labels = [f"{g} ({rows[g]['n_neurons']:,})" for g in names]
    fig = _fig(f"{title} ({scorer})", width=950, height=max(420, 60 * len(names) + 240), margin=dict(l=330, b=150),
               legend=dict(orientation="h", yanchor="top", y=-0.25, x=0))
    for key, name, colour, ppl in (("share_undone", "reverted in the aligned model (base activations)", ALIGNED,
                                    "ppl_ratio_reverted"),
                                   ("share_reproduced", "applied to the base (aligned activations)", BASE,
                                    "ppl_ratio_applied")):
        est = [rows[g]["by_scorer"][scorer][key] for g in names]
        fig.add_scatter(x=[e.value for e in est], y=labels, mode="markers", name=name,
                        marker=dict(size=11, color=colour),
                        error_x=dict(type="data", symmetric=False, array=[e.hi - e.value for e in est],
                                     arrayminus=[e.value - e.lo for e in est]),
                        customdata=[rows[g][ppl] for g in names],
                        hovertemplate="%{x:.2f} of the effect; perplexity ×%{customdata:.3f}<extra></extra>")
    fig.add_vline(x=0, line=dict(color="#444", width=1))
    fig.add_vline(x=1, line=dict(color="#444", width=1, dash="dash"))
    fig.update_xaxes(title="share of base − aligned (1 = all of it)")
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
