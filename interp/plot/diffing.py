"""Figures of model diffing without a probe: the activation-difference lens (:mod:`interp.adl`)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .theme import (
    OKABE_ITO,
    _fig,
)


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


def adl_steering(steering, rows: dict[str, dict],
                 title: str = "Steering the base with the difference, within a coherence bound") -> go.Figure:
    """Left: the perplexity ratio on neutral text per steering strength (× δ, log scale), the bound
    and the chosen strength. Right: toxicity on the test prompts per scorer — base, aligned, the
    base steered with δ and with a random direction of the same norm and strength
    (:class:`interp.adl.Steering` and the reproduction's per-scorer rows)."""
    from plotly.subplots import make_subplots

    from .theme import ALIGNED, BASE, CONTROL, TEMPLATE

    fig = make_subplots(rows=1, cols=2, column_widths=[0.45, 0.55], horizontal_spacing=0.12,
                        subplot_titles=("coherence: perplexity ratio on neutral text", "toxicity on test prompts"))
    fig.update_layout(template=TEMPLATE, title=title, width=1100, height=500,
                      legend=dict(orientation="h", yanchor="top", y=-0.2, x=0), margin=dict(b=120))
    fig.add_scatter(x=steering.strengths, y=steering.ppl_ratio, mode="lines+markers", name="steered with δ",
                    line=dict(color=OKABE_ITO[2], width=2.5), marker=dict(size=9), row=1, col=1)
    if steering.chosen is not None and steering.control_ppl_ratio is not None:
        fig.add_scatter(x=[steering.chosen], y=[steering.control_ppl_ratio], mode="markers", name="random direction",
                        marker=dict(color=CONTROL, size=11, symbol="diamond"), row=1, col=1)
        fig.add_vline(x=steering.chosen, line=dict(color="#444", width=1, dash="dash"), row=1, col=1)
    fig.add_hline(y=steering.max_ratio, line=dict(color="#444", width=1, dash="dot"), row=1, col=1,
                  annotation_text=f"bound {steering.max_ratio}")
    fig.update_xaxes(type="log", title="strength (× δ)", row=1, col=1)
    fig.update_yaxes(title="perplexity steered / unsteered", row=1, col=1)
    colours = {"base": BASE, "aligned": ALIGNED, "steered": OKABE_ITO[2], "control": CONTROL}
    names = {"base": "base", "aligned": "aligned", "steered": "base + δ", "control": "base + random"}
    scorers = list(rows)
    for arm, colour in colours.items():
        fig.add_bar(x=scorers, y=[rows[s]["rates"][arm] for s in scorers], name=names[arm], marker_color=colour,
                    row=1, col=2, showlegend=True)
    fig.update_yaxes(title="toxic share of samples", row=1, col=2)
    fig.update_layout(barmode="group")
    return fig


def crosscoder_latents(a, title: str = "Crosscoder: which latents only the aligned model uses, and are they its own?") -> go.Figure:
    """Left: the latents' relative decoder norm Δ (0 base-only, ½ shared, 1 aligned-only; the
    class bands shaded; empty bins not drawn). Right: for the aligned-only latents, the
    latent-scaling ratios ν^ε and ν^r (base / aligned; near 0: the aligned model's own, near 1: the
    base carries it too), the box where a latent counts as specific, marker size by firing rate; where
    none is aligned-only, the latents leaning furthest toward the aligned model (open markers).
    ``a``: a :class:`interp.crosscoder.CrosscoderAnalysis` or its ``to_dict()`` (a report's JSON)."""
    from plotly.subplots import make_subplots

    from ..crosscoder import ALIGNED_ONLY, BASE_ONLY, NU_MAX, SHARED
    from .theme import ALIGNED, BASE, CONTROL, TEMPLATE

    d = a if isinstance(a, dict) else a.to_dict()
    fig = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45], horizontal_spacing=0.12,
                        subplot_titles=("relative decoder norm Δ of every latent",
                                        "aligned-only latents: latent scaling"))
    fig.update_layout(template=TEMPLATE, title=title, width=1100, height=500, showlegend=False)
    counts = np.asarray(d["delta_histogram"])
    width = 1 / len(counts)
    centres = (np.arange(len(counts)) + 0.5) * width
    keep = counts > 0
    colour = [ALIGNED if c > ALIGNED_ONLY[0] else BASE if c < BASE_ONLY[1] else CONTROL for c in centres[keep]]
    fig.add_bar(x=centres[keep], y=counts[keep], marker_color=colour, width=width, row=1, col=1,
                hovertemplate="Δ %{x:.3f}: %{y:.0f} latents<extra></extra>")
    for (lo, hi), label in ((BASE_ONLY, "base-only"), (SHARED, "shared"), (ALIGNED_ONLY, "aligned-only")):
        fig.add_vrect(x0=lo, x1=hi, fillcolor="#999", opacity=0.08, line_width=0, row=1, col=1,
                      annotation_text=f"{label}: {d['classes'].get(label, 0)}", annotation_position="top left")
    fig.update_xaxes(title="Δ = ½((‖d_aligned‖ − ‖d_base‖)/max + 1)", range=[0, 1], row=1, col=1)
    top = float(np.log10(max(counts.max(), 1)))
    fig.update_yaxes(title="latents (log)", type="log", range=[-0.3, top + 0.25], dtick=1, row=1, col=1)
    lats = d["aligned_only"]
    if lats:
        freq = np.array([lat["freq"] for lat in lats])
        size = 6 + 18 * np.sqrt(freq / max(freq.max(), 1e-12))
        fig.add_scatter(x=[lat["nu_eps"] for lat in lats], y=[lat["nu_r"] for lat in lats], mode="markers",
                        marker=dict(size=size, color=[ALIGNED if lat["specific"] else CONTROL for lat in lats],
                                    line=dict(color="#333", width=0.5)),
                        text=[f"latent {lat['index']}: Δ {lat['delta']:.2f}, fires on {lat['freq']:.2%}<br>promotes "
                              + ", ".join(w.strip() for w in lat["promotes"][:6]) for lat in lats],
                        hovertemplate="%{text}<br>ν^ε %{x:.2f}, ν^r %{y:.2f}<extra></extra>", row=1, col=2)
    else:
        lean = d.get("leaning") or []
        if lean:  # where the dictionary does see the change: the latents leaning furthest toward aligned
            fig.add_scatter(x=[lat["nu_eps"] for lat in lean], y=[lat["nu_r"] for lat in lean], mode="markers",
                            marker=dict(size=10, symbol="circle-open", color=CONTROL, line=dict(width=2)),
                            text=[f"latent {lat['index']}: Δ {lat['delta']:.2f}, fires on {lat['freq']:.2%}<br>promotes "
                                  + ", ".join(w.strip() for w in lat["promotes"][:6]) for lat in lean],
                            hovertemplate="%{text}<br>ν^ε %{x:.2f}, ν^r %{y:.2f}<extra></extra>", row=1, col=2)
        fig.add_annotation(text="no aligned-only latent fires" + (f";<br>open: the {len(lean)} leaning furthest toward "
                                                                  "aligned (Δ ≤ 0.9)" if lean else ""),
                           xref="x2 domain", yref="y2 domain", x=0.98, y=0.02, xanchor="right", yanchor="bottom",
                           align="right", showarrow=False, font=dict(size=13, color="#555"))
    fig.add_shape(type="rect", x0=-NU_MAX, x1=NU_MAX, y0=-NU_MAX, y1=NU_MAX, line=dict(color=ALIGNED, dash="dash"),
                  row=1, col=2)
    fig.add_annotation(text=f"specific: |ν| < {NU_MAX}", x=NU_MAX, y=NU_MAX, xanchor="left", yanchor="bottom",
                       showarrow=False, font=dict(color=ALIGNED), row=1, col=2)
    pts = [v for lat in (lats or d.get("leaning") or []) for v in (lat["nu_eps"], lat["nu_r"]) if np.isfinite(v)]
    hi = max([1.5] + [v + 0.2 for v in pts])
    lo = min([-0.5] + [v - 0.2 for v in pts])
    fig.update_xaxes(title="ν^ε (error): base / aligned", range=[lo, hi], row=1, col=2)
    fig.update_yaxes(title="ν^r (reconstruction): base / aligned", range=[lo, hi], row=1, col=2)
    return fig
