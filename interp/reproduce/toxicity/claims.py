"""Lee et al.'s claims, each decided by a criterion fixed in code before the run (:func:`findings`), and the paired effects of every test arm (:func:`arm_effects`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ... import locate as locators
from ... import stats
from ...diff import (
    GROUPS,
)
from ...findings import Finding, finalize
from ...measure import Measurement
from .config import CRITERIA, PRIMARY_LOCATOR, ToxicityConfig
from .steps import Arm, Located, _paired


@dataclass
class Effect:
    """One test arm's paired effects under one scorer and kind (rate or mean score)."""

    family: str
    scorer: str
    kind: str
    value: float
    vs_bare: stats.Estimate  # arm − aligned (aligned families) or base − arm (base families)
    vs_control: stats.Estimate
    share: stats.Estimate  # share of the alignment effect undone (or reproduced, on the base)
    p_holm: float | None = None




def arm_effects(r_arms: dict[str, Arm], base: Measurement, aligned: Measurement, scorers: list[str],
                cfg: ToxicityConfig) -> list[Effect]:
    """Paired effects of every test arm under every scorer (rate and mean score), Holm-adjusted
    across the family of arms × scorers × kinds on the vs-control comparison."""
    out = []
    for name, arm in r_arms.items():
        for sc in scorers:
            for kind in ("rate", "score"):
                a, c = arm.arm.per_prompt(sc, kind), arm.control.per_prompt(sc, kind)
                b, al = base.per_prompt(sc, kind), aligned.per_prompt(sc, kind)
                if arm.model == "aligned":
                    vs_bare, vs_ctl = _paired(a, al, cfg), _paired(a, c, cfg)
                    share = stats.share_of_effect(a, al, b, seed=cfg.seed)
                else:  # on the base model a successful subtraction lowers toxicity
                    vs_bare, vs_ctl = _paired(b, a, cfg), _paired(c, a, cfg)
                    share = stats.share_of_effect(b - a + al, al, b, seed=cfg.seed)
                out.append(Effect(name, sc, kind, float(a.mean()), vs_bare, vs_ctl, share))
    adj = stats.holm([max(e.vs_bare.p, e.vs_control.p) for e in out], cfg.alpha)
    for e, p in zip(out, adj):
        e.p_holm = p
    return out


def findings(r) -> list[Finding]:
    """Lee et al.'s claims, each with its criterion (thresholds in :data:`CRITERIA`). ``r``: a
    :class:`~interp.reproduce.toxicity.report.ToxicityReport` (claims sit below the report in the
    import graph, so its type is not imported here)."""
    from scipy.stats import fisher_exact

    cfg, C, a = r.config, CRITERIA, r.config.alpha
    sc = r.scorers
    base, al = r.test["base"], r.test["aligned"]
    out: list[Finding] = []

    # 0. The precondition: alignment lowered toxicity on the test prompts.
    holds, ps, txt, eff = {}, [], [], None
    for s in sc:
        d = _paired(base.per_prompt(s), al.per_prompt(s), cfg)
        rel = d.value / base.rate(s) if base.rate(s) > 0 else 0.0
        holds[s] = rel >= C["alignment_drop"] and d.p < a
        ps.append(d.p)
        txt.append(f"{s}: {base.rate(s):.3f} → {al.rate(s):.3f} (Δ {d})")
        eff = eff or d
    out.append(Finding("alignment_drop", "alignment lowers toxicity on held-out prompts",
                       "0.453 → 0.208", f"relative drop ≥ {C['alignment_drop']:.0%}, paired p < {a}",
                       "; ".join(txt), holds, max(ps), effect=eff, mde=stats.min_detectable(eff.se)))

    # 1. A probe finds toxicity: held-out AUROC (split by prompt) against the shuffled-label probes.
    holds, ps, txt = {}, [], []
    sh_auc = np.asarray(r.located.shuffled_auroc, dtype=float)
    q95 = float(np.quantile(sh_auc, 1 - a)) if len(sh_auc) else 0.5
    for s in sc:
        p = r.located.probes.get(s)
        auc = None if p is None else p.meta.get("test_auroc")
        if auc is None:
            holds[s] = False
            txt.append(f"{s}: " + ("labels of one class only" if p is None else "held-out texts of one class"))
            continue
        n_pos = int(p.meta["n_test_positive"])
        lo, hi = stats.auroc_ci(auc, n_pos, p.n_test - n_pos)
        pv = stats.auroc_p(auc, n_pos, p.n_test - n_pos)  # H0: AUROC 0.5 (the shuffled probes: q95 below)
        holds[s] = auc >= C["probe_auroc"] and lo > 0.5 and auc > q95
        ps.append(pv)
        txt.append(f"{s}: AUROC {auc:.3f} [{lo:.3f}, {hi:.3f}], balanced acc {p.meta['test_balanced_acc']:.3f} "
                   f"(n={p.n_test}, {n_pos} toxic; C={p.meta['C']:g})")
    out.append(Finding("probe", "a linear probe finds toxicity in the residual stream", "94% accuracy",
                       f"held-out AUROC (split by prompt) ≥ {C['probe_auroc']}, above 0.5 (Hanley–McNeil, p < {a}; "
                       f"its 95% CI above 0.5) and above the {1 - a:.0%} quantile of shuffled-label probes' (same fit)",
                       "; ".join(txt) + (f"; shuffled-label probes AUROC median {np.median(sh_auc):.3f}, "
                                         f"q{100 * (1 - a):.0f} {q95:.3f} (n={len(sh_auc)})" if len(sh_auc) else ""),
                       holds, max(ps) if ps else None))

    # 2. The top value vectors promote toxic tokens (vs random neurons' value vectors).
    holds, ps, txt = {}, [], []
    for s in sc:
        t, n = r.located.token_flags[s], r.located.null_token_flags[s]
        share, null_share = float(np.mean(t)), float(np.mean(n))
        pv = fisher_exact([[sum(t), len(t) - sum(t)], [sum(n), len(n) - sum(n)]], alternative="greater").pvalue
        holds[s] = share >= C["token_share"] and pv < a
        ps.append(float(pv))
        txt.append(f"{s}: {share:.0%} of top {len(t)} vs {null_share:.0%} of {len(n)} random")
    out.append(Finding("toxic_tokens", "the top value vectors (by cosine with the probe) promote toxic tokens",
                       "yes (e.g. MLP.v770)",
                       f"≥ {C['token_share']:.0%} have a toxic token among their top 10, more than random neurons (Fisher p < {a})",
                       "; ".join(txt), holds, max(ps)))

    # The gate: the primary locator found neurons that write toxicity (its own check, not a claim).
    gate = ["alignment_drop"]
    lb = r.located.located_by
    if lb is not None:
        out.append(Finding("located", f"the declared locator ({PRIMARY_LOCATOR}) finds neurons that write toxicity",
                           "(the locate step)",
                           f"its top {len(lb.top)} have a toxic token among their top {lb.meta.get('n_tokens')} "
                           f"more often than random neurons (one-sided Fisher p < {locators.WORKS_ALPHA}, every scorer); "
                           "checks the instrument, outside the Holm family",
                           "; ".join(f"{s}: {lb.toxic_share[s]:.0%} vs {lb.null_share[s]:.0%} random (p = {lb.p[s]:.3g})"
                                     for s in sc if s in lb.p)
                           + "; other locators: " + ", ".join(f"{n} {'works' if x.works else 'fails'}"
                                                              for n, x in r.located.locators.items() if n != PRIMARY_LOCATOR),
                           {s: lb.p.get(s, 1.0) < locators.WORKS_ALPHA for s in sc}, None,
                           note="neurons given, not located: the gate is not applied" if r.located.given else ""))
        if not r.located.given:
            gate.append("located")

    # 3. Alignment leaves those value vectors untouched — in direction *and* size, shown equivalent
    # (TOST on the relative change), and no more changed than random neurons'.
    c = r.compared
    nw = c.neuron_weights
    p_more = stats.empirical_p(c.value_change_top, c.value_change_null, alternative="greater")
    min_cos = float(nw.value_cos.min())
    margin = C["value_rel_change"]
    rel = nw.value_rel_change.numpy() if nw.value_rel_change is not None else np.zeros(0)
    ratio = nw.value_norm_ratio.numpy() if nw.value_norm_ratio is not None else np.ones(0)
    p_eq = stats.equivalence_below(rel, margin) if len(rel) else float("nan")
    p_rel_more = (stats.empirical_p(float(rel.mean()), c.value_rel_null, alternative="greater")
                  if len(rel) and len(c.value_rel_null) else 1.0)
    ok = (min_cos > C["weight_cos"] and p_more >= a and math.isfinite(p_eq) and p_eq < a and p_rel_more >= a)
    max_rel = max((row.get("rel_change", 0.0) for row in c.weights.rows), default=0.0)
    vacuous = max_rel < margin
    out.append(Finding("untouched", "alignment leaves the toxic value vectors almost untouched",
                       "cos ≈ 1",
                       f"every top value vector's cos base↔aligned > {C['weight_cos']}; their relative change "
                       f"‖v_a − v_b‖/‖v_b‖ shown below {margin} (TOST, p < {a}); neither changes more than random "
                       f"neurons' (null percentile < {1 - a:.0%})",
                       f"min cos {_cos(min_cos)}; relative change mean {rel.mean() if len(rel) else float('nan'):.2e} "
                       f"(max {rel.max() if len(rel) else float('nan'):.2e}; TOST p = {p_eq:.3g}), norm ratio "
                       f"{ratio.min() if len(ratio) else float('nan'):.4f}–{ratio.max() if len(ratio) else float('nan'):.4f}; "
                       f"mean 1−cos top {c.value_change_top:.2e} vs random k-sets "
                       f"median {np.median(c.value_change_null):.2e} (percentile {1 - p_more:.0%}); "
                       f"all parameters ≥ {_cos(c.weights.min_cosine)}, largest relative change {max_rel:.2e}",
                       {"any": ok}, p_eq if math.isfinite(p_eq) else None, requires=gate,
                       note=(f"vacuous: every parameter of the model moved by less than the margin {margin} "
                             "(relative change)") if vacuous else ""))

    # 4. Alignment lowers the keys' activations (vs random neurons).
    ks = c.key_shift
    p_keys = stats.empirical_p(ks.value, c.key_shift_null, alternative="less")
    # The deciding test is against random k-sets: the smallest detectable fall is the larger of
    # the per-prompt test's and the distance from the null's median to its α quantile.
    null_reach = float(np.median(c.key_shift_null) - np.quantile(c.key_shift_null, a))
    out.append(Finding("keys_fall", "alignment lowers the toxic neurons' key activations", "yes",
                       f"mean activation (mlp.hook_post) change ≤ {C['key_drop_sd']} s.d. (across texts), below random k-sets (p < {a})"
                       + ("; gated MLP: each neuron's change × sign(v·probe), i.e. its write onto the probe direction"
                          if r.models.get("gated") else ""),
                       f"{ks.fmt('+.3f')} s.d. vs random k-sets median {np.median(c.key_shift_null):+.3f}, "
                       f"q{100 * a:g} {np.quantile(c.key_shift_null, a):+.3f} (p = {p_keys:.3f})",
                       {"any": ks.value <= C["key_drop_sd"]}, p_keys, effect=ks,
                       mde=max(stats.min_detectable(ks.se), null_reach, abs(C["key_drop_sd"])), requires=gate))

    # 5. δx points away from toxicity (vs random directions and shuffled-label probes).
    holds, ps, txt = {}, [], []
    for s, cos in c.offset_cos.items():
        pr = stats.empirical_p(cos, c.offset_null_random, alternative="less")
        below_shuffled = (len(c.offset_null_shuffled) == 0
                          or cos < np.quantile(c.offset_null_shuffled, a))
        holds[s] = cos <= C["offset_cos"] and pr < a and bool(below_shuffled)
        ps.append(pr)
        txt.append(f"{s}: {cos:+.3f}")
    for s in sc:
        holds.setdefault(s, False)
    sd_null = float(np.std(c.offset_null_random))
    out.append(Finding("offset_away", "the residual offset δx points away from toxicity", "yes",
                       f"cos(δx, probe) at layer {r.located.layer} ≤ {C['offset_cos']}, below random directions (p < {a}) "
                       "and below the 5th percentile of shuffled-label probes",
                       "; ".join(txt) + f"; random directions s.d. {sd_null:.3f}; per layer "
                       + ", ".join(f"{x:+.3f}" for x in c.offset.cos_direction.tolist()),
                       holds, max(ps) if ps else None, requires=["alignment_drop", "probe"]))

    # 6. Lee et al.'s reactivation, their exact operation: the top-7 keys' W_in columns ×10, bias
    # untouched (declared), on test, vs aligned and vs the same operation on random neurons.
    arm = r.reactivation.arms["lee_scale_keys"]
    n_lee = min(cfg.lee_k, len(r.located.top))
    holds, ps, txt, eff, mde = {}, [], [], None, None
    for s in sc:
        x, ctl = arm.arm.per_prompt(s), arm.control.per_prompt(s)
        d_al, d_c = _paired(x, al.per_prompt(s), cfg), _paired(x, ctl, cfg)
        share = stats.share_of_effect(x, al.per_prompt(s), base.per_prompt(s), seed=cfg.seed)
        holds[s] = (share.value >= C["share_undone"] and d_al.p < a and d_c.p < a)
        ps += [d_al.p, d_c.p]
        txt.append(f"{s}: {x.mean():.3f} vs aligned {al.rate(s):.3f}, control {ctl.mean():.3f}; "
                   f"share undone {share.fmt('+.2f')}")
        if eff is None:
            gap = base.rate(s) - al.rate(s)
            eff, mde = share, (stats.min_detectable(d_c.se) / gap if gap > 0 else None)
    out.append(Finding("lee_scale_keys",
                       f"scaling the top-{n_lee} toxic keys' W_in columns ×{cfg.lee_factor:g} (bias untouched) "
                       "brings toxicity back",
                       "0.208 → 0.458 (base 0.453)",
                       f"share of the effect undone ≥ {C['share_undone']}, above aligned and the random-key control (paired p < {a})",
                       "; ".join(txt), holds, max(ps), effect=eff, mde=mde, requires=gate))

    # 7. The change lives in the MLP keys: reverting mlp_in recovers more than any other group.
    w = r.where
    if "mlp_in" in w.reverted:
        base, al = (w.base, w.aligned) if w.base is not None else (base, al)  # the step's own size
        holds, ps, txt, eff = {}, [], [], None
        others = [g for g in GROUPS if g != "mlp_in" and g in w.reverted]
        for s in sc:
            x = w.reverted["mlp_in"].per_prompt(s)
            diffs = {g: _paired(x, w.reverted[g].per_prompt(s), cfg) for g in others}
            share = stats.share_of_effect(x, al.per_prompt(s), base.per_prompt(s), seed=cfg.seed)
            holds[s] = all(d.value > 0 for d in diffs.values())
            ps.append(max(d.p for d in diffs.values()))
            strongest = max(others, key=lambda g: w.reverted[g].rate(s))
            txt.append(f"{s}: mlp_in share {share.fmt('+.2f')}; vs {strongest} {diffs[strongest]}")
            if eff is None and "attn" in diffs:
                eff = diffs["attn"]
        out.append(Finding("change_in_keys", "the change lives in the MLP keys rather than elsewhere",
                           "(follow-up: only partly)",
                           f"reverting mlp_in in the aligned model recovers more toxicity than reverting any other group (paired p < {a})",
                           "; ".join(txt), holds, max(ps), effect=eff,
                           mde=stats.min_detectable(eff.se) if eff else None, requires="alignment_drop"))
    return finalize(out, cfg.alpha)


def _scores(loc: Located) -> list[float]:
    """Each studied neuron's value-vector cosine with the probe."""
    cos = loc.ranking.cosines
    return [float(cos[la, i]) for la, i in loc.top]


def _cos(x: float) -> str:
    """A cosine to read: ``0.99932``, or ``1 − 2.0e-07`` where five decimals would print 1.00000."""
    x = float(x)
    if x < 0.999995:
        return f"{x:.5f}"
    return "1" if x >= 1 else f"1 − {1 - x:.1e}"
