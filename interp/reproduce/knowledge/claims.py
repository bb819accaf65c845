"""The knowledge reproduction's claims, each judged by a criterion fixed in :func:`findings` before
the numbers are looked at, on per-fact data (:class:`~.per_fact.PerFact`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ... import stats
from ...findings import Finding, finalize
from ...knowledge import CATEGORIES, steps_to
from .per_fact import HIDDEN_KNOWN, HIDDEN_UNKNOWN, NEVER_HIDDEN

if TYPE_CHECKING:
    from .report import KnowledgeReport


def share_slopes(correct_by_share, shares) -> np.ndarray:
    """Per test fact, the least-squares slope of its correctness ``[n_shares][n_facts]`` on the
    share of Unknown training facts: the paired unit of Gekhman et al.'s design (every mix is
    measured on the same test facts), so a fact's slope is its own change across the mixes."""
    Y = np.asarray(correct_by_share, dtype=float)
    x = np.asarray(shares, dtype=float)
    if Y.ndim != 2 or len(Y) != len(x) or len(x) < 2:
        raise ValueError(f"need [n_shares n_facts] correctness for {len(x)} shares, got shape {Y.shape}")
    xc = x - x.mean()
    return (xc[:, None] * (Y - Y.mean(0))).sum(0) / (xc ** 2).sum()


def findings(r: KnowledgeReport, alpha: float = 0.05) -> list[Finding]:
    """Each claim with the criterion it is judged by (fixed in advance), tested on per-fact data:
    paired where the same facts are measured twice, a permutation test between disjoint sets of
    facts otherwise; Holm across the claims."""
    from scipy.stats import spearmanr

    pf, seed = r.per_fact, r.config.seed
    out: list[Finding] = []

    def add(key, claim, anchor, criterion, measured, holds, p=None, effect=None, requires=None):
        mde = (stats.min_detectable(effect.se) if effect is not None and np.isfinite(effect.se) and effect.se > 0
               else None)  # no spread (every fact the same): nothing to say about power
        out.append(Finding(key, claim, anchor, criterion, measured, {"any": bool(holds)}, p, effect=effect,
                           mde=mde, requires=requires))

    lv = r.levels
    by_f = lv.by("frequency")
    known = {k: v["HighlyKnown"] + v["MaybeKnown"] for k, v in by_f.items()}
    freqs = sorted(known)
    rho = float(spearmanr(freqs, [known[k] for k in freqs]).statistic) if len(freqs) > 2 else float("nan")
    fact_rho = spearmanr(pf.frequency, pf.known, alternative="greater")
    add("frequency", "facts seen more often in pretraining are better known", "Gekhman et al.: known share grows with frequency",
        "Spearman ρ > 0.8 between frequency and the Highly+MaybeKnown share; per fact, ρ > 0 (p < α)",
        f"ρ = {rho:.2f} over frequencies; per fact ρ = {fact_rho.statistic:.2f} (n = {len(pf.frequency)}); "
        "Highly+MaybeKnown share by frequency: " + ", ".join(f"{k}: {known[k]:.2f} (n={by_f[k]['n']})" for k in freqs),
        rho > 0.8, float(fact_rho.pvalue))

    one, two = (pf.unseen_recall.get(k) for k in (1, 2))
    if one and two:
        d = stats.difference(two, one, seed=seed)
        add("paraphrases", "facts seen in more paraphrases are recalled under a new phrasing",
            "Allen-Zhu & Li: ~10% → ~96% extraction with augmented biographies",
            "recall under phrasings never seen: facts seen in 2 phrasings − in 1 > 0 (permutation p < α; each fact once)",
            f"{np.mean(two):.2f} (n={len(two)} facts) vs {np.mean(one):.2f} (n={len(one)}), diff {d}", d.value > 0, d.p, d)

    ft = r.finetune
    if "Unknown" in ft and "MaybeKnown" in ft:
        u, m = (pf.finetune[c].last for c in ("Unknown", "MaybeKnown"))
        ue, me = (pf.finetune[c].early for c in ("Unknown", "MaybeKnown"))
        d = stats.paired_difference(m, u, seed=seed)
        de = stats.paired_difference(me, ue, alternative="two-sided", seed=seed)
        add("unknown_hurts", "fine-tuning on Unknown facts ends with lower test accuracy than on MaybeKnown ones",
            "Gekhman et al.: 43.6 (MaybeKnown) vs 25.8 (Unknown) at convergence",
            "test accuracy after the last epoch, paired over the same test facts: MaybeKnown − Unknown > 0 (p < α)",
            f"after {ft['Unknown'].x[-1]} epochs {np.mean(m):.2f} vs {np.mean(u):.2f} (diff {d}); early-stopped on dev "
            f"{np.mean(me):.2f} vs {np.mean(ue):.2f} (diff {de}); n_test = {len(u)}, {r.finetune_meta.size} "
            "training facts each", d.value > 0, d.p, d)
        fit = {c: steps_to(ft[c], "train", 0.9) for c in ft}
        slow = fit["Unknown"] is None or all(fit["Unknown"] > (fit[c] or 0) for c in ft if c != "Unknown")
        add("unknown_slow", "Unknown facts are fitted more slowly than known ones", "Gekhman et al.: yes",
            "epochs to reach 90% train accuracy: Unknown later than every other category (descriptive)",
            ", ".join(f"{c}: {fit[c] if fit[c] is not None else 'never'}" for c in ft), slow)

    cats = [c for c in CATEGORIES if c in pf.finetune]
    if "MaybeKnown" in cats and len(cats) > 1:
        mk = pf.finetune["MaybeKnown"].early
        ds = {c: stats.paired_difference(mk, pf.finetune[c].early, seed=seed) for c in cats if c != "MaybeKnown"}
        worst = min(ds, key=lambda c: ds[c].value)
        p_all = max(d.p for d in ds.values())  # intersection-union: MaybeKnown must beat every other
        add("maybeknown_best", "fine-tuning on MaybeKnown facts gives the best test accuracy",
            "Gekhman et al.: 43.6 (MaybeKnown) vs 40.5 / 39.2 / 37.5 (early-stopped)",
            "early-stopped test accuracy, paired over the same test facts: MaybeKnown − each other category > 0 "
            "(every p < α; the largest p is the claim's)",
            "; ".join(f"MaybeKnown − {c} {d}" for c, d in ds.items()) + f" (n = {len(mk)})",
            all(d.value > 0 for d in ds.values()), p_all, ds[worst])

    if r.mixes and len(r.mixes) > 1:
        shares = np.asarray(r.mix_meta.shares, dtype=float)
        names = [f"{x:.0%} Unknown" for x in shares]

        conv, early = (share_slopes([getattr(pf.mixes[n], when) for n in names], shares)
                       for when in ("last", "early"))
        d = stats.paired_difference(-conv, np.zeros_like(conv), seed=seed)
        acc = {n: float(np.mean(pf.mixes[n].last)) for n in names}
        acc_e = {n: float(np.mean(pf.mixes[n].early)) for n in names}
        add("unknown_share_hurts", "the more Unknown facts in the fine-tuning set, the lower the test accuracy",
            "Gekhman et al.: accuracy falls linearly with the Unknown share (at convergence)",
            "test accuracy after the last epoch against the share of Unknown facts (fixed size), per test fact the "
            "least-squares slope: mean decline from 0% to 100% Unknown > 0 (p < α) and ≥ 0.05",
            "after the last epoch " + ", ".join(f"{n}: {v:.2f}" for n, v in acc.items())
            + f"; decline 0→100% {d} (n = {conv.size} test facts, {r.mix_meta.size} training facts each)",
            d.value >= 0.05, d.p, d)
        d = stats.paired_difference(early, conv, seed=seed)
        add("early_stop_mitigates", "early stopping mitigates the harm of Unknown facts",
            "Gekhman et al.: 37.5 early-stopped vs 25.8 at convergence (high Unknown share)",
            "per test fact, the slope on the Unknown share early-stopped (by dev) minus after the last epoch > 0 (p < α)",
            "early-stopped " + ", ".join(f"{n}: {v:.2f}" for n, v in acc_e.items())
            + f"; slope difference {d}", d.value > 0, d.p, d)

    s = r.hidden.sets
    hk, nh = HIDDEN_KNOWN, NEVER_HIDDEN
    hid, kept = pf.hidden[hk].aligned, pf.hidden[nh].aligned
    if hid:
        eh = stats.mean(hid, seed=seed)
        add("hides", "the alignment hides the relation on held-out entities", "—",
            "hidden facts the base knew (base accuracy 1 by construction): the aligned model answers ≤ 0.2 of them",
            f"hidden {s[hk].base:.2f} → {eh.fmt('.2f')} (n={len(hid)}, refuses {s[hk].aligned_refuses:.2f})",
            eh.value <= 0.2 * s[hk].base, None, eh)
    if kept:
        ek = stats.mean(kept, seed=seed)
        bar = r.config.keep_bar if r.config.hide_recipes else 0.8  # the bar fixed with the recipe search
        add("keeps_rest", "the alignment keeps the facts it was not asked to hide", "—",
            f"never-hidden facts the base knew: the aligned model still answers ≥ {bar} of them",
            f"never hidden {s[nh].base:.2f} → {ek.fmt('.2f')} (n={len(kept)})",
            ek.value >= bar * s[nh].base, None, ek)

    a_k, a_u = (pf.lens.get(f"aligned: {x}") for x in (hk, HIDDEN_UNKNOWN))
    if a_k and a_u:
        d = stats.difference(a_k, a_u, seed=seed)
        add("readout", "the aligned model still holds the hidden answers (readout)", "—",
            "final-layer logit lens over the candidate answers: hidden facts the base knew − facts it never knew > 0 (permutation p < α)",
            f"{np.mean(a_k):.2f} (n={len(a_k)}) vs {np.mean(a_u):.2f} (n={len(a_u)}), diff {d}, chance {r.readout.chance:.2f}",
            d.value > 0, d.p, d, requires="hides")

    for row in r.reactivation:
        m = row.method
        x, c = pf.interventions[m].hidden, pf.interventions[m].hidden_control
        if not x:
            continue
        d = stats.paired_difference(x, c, seed=seed)
        gap = s[hk].base - s[hk].aligned
        share = (np.mean(x) - s[hk].aligned) / gap if gap > 0 else float("nan")
        add(f"reactivate_{m.split()[0]}_{m.split()[1]}", f"{m} brings the hidden answers back", "Arditi et al. / Lee et al.",
            "held-out hidden facts, paired with a random control of the same size on the same facts: intervention − control > 0 (p < α)",
            f"{np.mean(x):.2f} vs control {np.mean(c):.2f} (n={len(x)}; diff {d}; {share:.0%} of the base's accuracy gap); "
            f"never-hidden facts {row.kept:.2f} (control {row.kept_control:.2f})",
            d.value > 0, d.p, d, requires="hides")

    k_, u_ = (pf.relearning.get(x) for x in (hk, HIDDEN_UNKNOWN))
    if k_ and u_:
        c = r.relearning
        d = stats.difference(k_, u_, seed=seed)
        target = 0.5 * s[hk].base
        sk = steps_to(c, hk, target)
        add("relearning", "relearning on other entities brings the hidden facts back, not facts never learned",
            "Jain et al. 2023",
            f"after {c.x[-1]} steps: held-out hidden facts the base knew − facts it never knew > 0 (permutation p < α)",
            f"{np.mean(k_):.2f} (n={len(k_)}) vs {np.mean(u_):.2f} (n={len(u_)}), diff {d}; half the base's accuracy "
            f"({target:.2f}) reached at step {sk if sk is not None else 'never'}", d.value > 0, d.p, d, requires="hides")
    return finalize(out, alpha)
