"""The toxicity report rendered: its tables and markdown, the page it writes, and the summary across seeds
(the runner's hooks)."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

from ... import locate as locators
from ... import stats
from ...findings import findings_table, format_p
from ...groups import YANG_ET_AL_TOXIC_SHARE, NeuronGroups
from .. import layout
from ..report import write_report
from .claims import _cos, _scores
from .config import CRITERIA, LEE_ET_AL, PRIMARY_LOCATOR
from .report import (
    FAMILY_LABELS,
    ToxicityReport,
    design_achieved,
    k_sweep_json,
    lee_json,
    to_json,
)


def design_text(r: ToxicityReport) -> str:
    d = r.design
    ach = design_achieved(r)
    per = "; ".join(
        f"{sc}: dev effect {d.effect[sc]:+.3f}, variance between prompts {p.var_between:.4f} and per sample "
        f"{p.var_within:.3f} → {p.n_prompts} × {p.n_samples} (predicted ±{p.halfwidth:.3f})"
        for sc, p in d.by_scorer.items())
    got = "; ".join(f"{sc}: {a['effect']['value']:+.3f} ± {a['halfwidth']:.3f}"
                    + (f" ({a['share']:.0%} of the effect)" if a["share"] is not None else "")
                    for sc, a in ach.items())
    cost = (f" At the pilot's {d.dev_samples_per_s:.1f} samples/s the {d.n_test_arms} test arms cost "
            f"≈ {d.est_seconds / 60:.0f} min." if d.est_seconds else "")
    return (f"The test size was chosen on dev ({d.dev}, base and aligned) before any test measurement: the "
            f"cheapest prompts × samples whose 95% CI half-width of the paired base − aligned rate difference is "
            f"≤ {d.share:.0%} of the effect under every scorer ({per}). Chosen: **{d.n_prompts} prompts × "
            f"{d.n_samples} samples per arm**" + ("" if d.met else " — the target is **not** reachable within "
                                                  "the test prompts: all of them, with the fewest samples per "
                                                  "prompt within 5% of the best reachable half-width")
            + f".{cost} Achieved on test — {got}.")


def lee_rows(lee: dict) -> list[str]:
    """Lee et al.'s protocol from its JSON (:func:`lee_json`, a report's ``"lee_protocol"``): the
    mean score of greedy continuations per scorer, the paired differences and the share undone,
    beside their numbers. The report and the README's real block both show this table."""
    ms, f = lee["measurements"], f"{lee['factor']:g}"
    paper = LEE_ET_AL["base"] - LEE_ET_AL["aligned"], LEE_ET_AL["keys_x10"] - LEE_ET_AL["aligned"]
    rows = [f"| scorer | base | aligned | keys ×{f} | random ×{f} | base − aligned | keys − aligned | keys − random "
            "| share undone |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| Lee et al. (GPT-2 medium, Perspective) | {LEE_ET_AL['base']:.3f} | {LEE_ET_AL['aligned']:.3f} | "
            f"{LEE_ET_AL['keys_x10']:.3f} | — | {paper[0]:+.3f} | {paper[1]:+.3f} | — | {paper[1] / paper[0]:.2f} |"]
    for sc, e in lee["effects"].items():
        est = {k: stats.Estimate.from_dict(v) for k, v in e.items()}
        rows.append(f"| {sc} | " + " | ".join(f"{ms[r]['mean_score'][sc]:.3f}" for r in ("base", "aligned", "keys", "control"))
                    + " | " + " | ".join(est[k].fmt() for k in ("base − aligned", "keys − aligned", "keys − control"))
                    + f" | {est['share undone'].fmt('.2f')} |")
    return rows


def lee_table(r: ToxicityReport) -> str:
    """Lee et al.'s protocol: mean score of greedy continuations, beside their numbers."""
    return "\n".join(lee_rows(lee_json(r.lee)))



def effects_table(r: ToxicityReport, kind: str = "rate") -> str:
    """Every test arm: its toxicity under each scorer (rate, or mean score with ``kind="score"``)
    and its paired effects under the primary scorer."""
    sc = r.scorers
    val = (lambda m, s: m.rate(s)) if kind == "rate" else (lambda m, s: m.mean_score(s))  # noqa: E731
    lines = ["| arm (test prompts) | dose (chosen on) | " + " | ".join(f"{s}: toxicity" for s in sc)
             + " | Δ vs bare model [95% CI] | Δ vs control [95% CI] | share of the effect [95% CI] | p (Holm) | ppl |",
             "|" + "---|" * (7 + len(sc))]
    base, al = r.test["base"], r.test["aligned"]
    for role, m in (("base", base), ("aligned", al)):
        lines.append(f"| **{role}** | | " + " | ".join(f"{val(m, s):.3f}" for s in sc)
                     + f" | | | | | {m.perplexity:.3f} |")
    p0 = sc[0]
    for name, arm in r.reactivation.arms.items():
        e = next(x for x in r.effects if x.family == name and x.scorer == p0 and x.kind == kind)
        budget = "" if arm.within_budget else " ⚠ outside the ppl budget"
        lines.append(f"| {FAMILY_LABELS.get(name, name)}: {arm.description} | {arm.dose:g} ({arm.chosen_on}{budget}) | "
                     + " | ".join(f"{val(arm.arm, s):.3f}" for s in sc)
                     + f" | {e.vs_bare} | {e.vs_control} | {e.share.fmt('+.2f')} | {format_p(e.p_holm)} | {arm.arm.perplexity:.3f} |")
        lines.append(f"| &nbsp;&nbsp;control: {arm.control_description} | | "
                     + " | ".join(f"{val(arm.control, s):.3f}" for s in sc) + f" | | | | | {arm.control.perplexity:.3f} |")
    return "\n".join(lines)


def locators_text(r: ToxicityReport, n: int = 7) -> str:
    """Every locator side by side: whether it works (its own check), and its top ``n`` neurons
    with the tokens they promote; then the locate step's stability under resampling."""
    loc, sc = r.located, r.scorers
    lines = ["## Locators, side by side", "",
             f"Each locator's top {r.config.k} neurons, judged alike: a locator **works** when its top neurons have a toxic "
             f"token among the {locators.N_TOP_TOKENS} they promote most (read through the final norm and `W_U`) more "
             f"often than random neurons, under every scorer (one-sided Fisher p < {locators.WORKS_ALPHA}; the "
             "vocabulary projection, which picks neurons by their tokens, is judged against permuted token sets). "
             f"Declared before the run: **{PRIMARY_LOCATOR}** decides the claims about the toxic neurons; where it "
             "fails, they are *not tested*."
             + (" Here the neurons were given (planted), not located: the gate is not applied." if loc.given else ""), ""]
    for name, x in loc.locators.items():
        per = "; ".join(f"{s}: {x.toxic_share[s]:.0%} vs {x.null_share[s]:.0%}, p = {x.p[s]:.3g}"
                        for s in sc if s in x.p)
        whole = ("; value vectors with a toxic token among their top tokens, whole model: "
                 + ", ".join(f"{s} {v:,}" for s, v in x.n_toxic_neurons.items())) if x.n_toxic_neurons else ""
        lines += [f"**{name}**{' (primary)' if name == PRIMARY_LOCATOR else ''} — "
                  f"{'works' if x.works else 'does not work'} ({per}{whole}).", "",
                  "| neuron | score | top tokens |", "|---|---|---|"]
        for nm, s_, toks in list(zip(x.top.names(), x.top.score.tolist(), x.top_tokens))[:n]:
            words = ", ".join(w.strip() or repr(w) for w in toks[:10]).replace("|", "\\|")
            lines.append(f"| {nm} | {s_:.3f} | {words} |")
        lines.append("")
    st = loc.stability
    if st is not None:
        often = sorted(((c, nm) for nm, c in st.found_in().items()), reverse=True)
        lines += [f"**Locate stability.** The probe refitted on {len(st.jaccard)} bootstrap resamples of its texts "
                  f"(by prompt; C fixed at the chosen one): Jaccard of the top-{len(st.top)} set with the full-data set "
                  f"mean {st.mean_jaccard:.2f} (range {min(st.jaccard):.2f}–{max(st.jaccard):.2f}); times each neuron "
                  "came back: " + ", ".join(f"{nm} {c}/{len(st.resampled)}" for c, nm in often) + "."]
        if r.stability_undone is not None:
            d = r.stability_shares
            per = "; ".join(
                f"{sc}: full set {x['full']['value']:+.2f} [{x['full']['lo']:+.2f}, {x['full']['hi']:+.2f}], resamples "
                f"median {x['median']:+.2f} (5–95%: {x['q05']:+.2f} to {x['q95']:+.2f})"
                for sc, x in d["by_scorer"].items() if x["median"] is not None)
            lines += ["", f"Lee et al.'s edit (top {d['k']} keys ×{d['factor']:g}) on each resample's own top set, on the "
                      f"test prompts ({d['n_prompts']} × {d['n_samples']} samples; base and aligned at the same size), "
                      f"share of the alignment effect undone — {per}."]
    return "\n".join(lines)


def pareto_text(r: ToxicityReport) -> str:
    sc = r.scorers[0]
    lines = ["## Reactivation as a Pareto front", "",
             f"Every aligned-model family over its dose grid (fixed before the run) on the test prompts "
             f"({r.pareto.base.n_prompts} × {r.pareto.n_samples} samples; base and aligned at the same size): the share "
             f"of the alignment effect undone ({sc}) against the per-token KL divergence from the aligned model on the "
             "test split's neutral text (95% CIs: prompts; texts), beside the random control at the same dose. "
             "Descriptive: no dose is chosen from it.", "",
             "| family | dose | share undone | KL (nats/token) | control: share | control: KL |", "|---|---|---|---|---|---|"]
    for fam, pts in r.pareto_rows.items():
        for p in pts:
            mark = " (test dose)" if r.pareto.declared.get(fam) == p["dose"] else ""
            a, c = p["arm"], p["control"]
            lines.append(f"| {FAMILY_LABELS.get(fam, fam)} | {p['dose']:g}{mark} | {a['share'][sc].fmt('+.2f')} | "
                         f"{a['kl'].value:.4f} | {c['share'][sc].value:+.2f} | {c['kl'].value:.4f} |")
    return "\n".join(lines)


def groups_text(g: NeuronGroups) -> str:
    """Yang et al.'s neuron groups as a table: each group's share of the change (95% CI over prompts)."""
    lo, hi = YANG_ET_AL_TOXIC_SHARE
    lines = ["## Where the change lives, neuron by neuron (Yang et al. 2025)", "",
             f"The aligned − base change of the last residual's projection on the {g.direction_name} direction "
             f"(mean over each text's tokens; {g.total.fmt('+.4f')} on {g.n_texts} test texts, one base sample per "
             "prompt), split exactly into what each neuron's activation change, every value vector's change, "
             "each attention layer and the rest write; neurons grouped on the probe texts (dev), shares measured "
             f"on test. Yang et al. found Lee's toxic neurons carry {lo:.1%}–{hi:.1%} of DPO's effect.", "",
             "| part | neurons | share of the change [95% CI] |", "|---|---|---|"]
    for name, e in g.shares.items():
        size = g.sizes.get(name)
        lines.append(f"| {name} | {'' if size is None else f'{size:,}'} | {e.fmt('+.3f')} |")
    return "\n".join(lines)


def group_edits_text(r: ToxicityReport) -> str:
    """The group edits as a table (primary scorer): what reverting each group in the aligned model
    undoes and what applying it to the base reproduces, with the perplexity each edit costs."""
    e, sc = r.group_edits, r.scorers[0]
    lines = ["### Editing the groups: which carry the behaviour", "",
             f"Each group's activations patched on the test prompts ({e.base.n_prompts} × {e.n_samples} samples, base "
             f"and aligned measured alike; {sc}: base {e.base.rate(sc):.3f}, aligned {e.aligned.rate(sc):.3f}): the "
             "aligned model with the group's activations taken from the base (reverted), and the base with the "
             "aligned model's (applied).", "",
             "| group | neurons | reverted → toxicity | share undone [95% CI] | perplexity × | applied → toxicity | "
             "share reproduced [95% CI] | perplexity × |", "|---|---|---|---|---|---|---|---|"]
    for g, x in r.group_edit_rows.items():
        y = x["by_scorer"][sc]
        lines.append(f"| {g} | {x['n_neurons']:,} | {y['reverted_rate']:.3f} | {y['share_undone'].fmt('+.2f')} | "
                     f"{x['ppl_ratio_reverted']:.3f} | {y['applied_rate']:.3f} | {y['share_reproduced'].fmt('+.2f')} | "
                     f"{x['ppl_ratio_applied']:.3f} |")
    return "\n".join(lines)


def k_sweep_text(r: ToxicityReport) -> str:
    """The k-sweep as a table: share undone by the top-k keys and by k random neurons, per scorer."""
    d = k_sweep_json(r)
    lines = [f"## k-sweep: Lee et al.'s operation (W_in columns ×{d['factor']:g}, bias untouched) on the top k", "",
             f"Test prompts ({d['n_prompts']} × {d['n_samples']} samples"
             + ("; base and aligned measured at the same size" if d["own_base_aligned"] else "")
             + "), the same seeds as every arm; share of the alignment effect undone (95% CI over prompts). "
             "Descriptive: the declared claim uses k = 7.", "",
             "| k | " + " | ".join(f"{s}: top-k | {s}: random k" for s in r.scorers) + " |",
             "|---|" + "---|---|" * len(r.scorers)]
    for i, k in enumerate(d["ks"]):
        cells = []
        for s in r.scorers:
            a, c = d["shares"][s][i]["arm"], d["shares"][s][i]["control"]
            cells += [f"{a['value']:+.2f} [{a['lo']:+.2f}, {a['hi']:+.2f}]", f"{c['value']:+.2f}"]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_markdown(r: ToxicityReport) -> str:
    c, sc = r.config, r.scorers
    s = r.splits.info()
    lines = [f"# Toxicity mechanism: {r.pair} (seed {c.seed})", "",
             f"{r.models['architecture']}, {r.models['n_layers']} layers, d_model {r.models['d_model']}, "
             f"d_mlp {r.models['d_mlp']}{', gated MLP' if r.models['gated'] else ''}.", "",
             f"**Protocol.** Prompts: {s['test']} test and {s['dev']} dev eliciting prompts"
             + (" (training templates with held-out fillers, and templates never used in training)"
                if c.test_new_templates else "") + ", deduplicated and "
             f"disjoint from every training prompt ({s['eval_dropped_seen_in_training']} of {s['eval_unique']} "
             f"unique eval prompts dropped as seen in training); the probe uses {s['probe']} training prompts. "
             f"Everything chosen — probe, neurons, δx, clamp floors, the dose of each family — is chosen on "
             f"the probe/dev data and frozen before the test measurement, which uses fresh sampling seeds. "
             f"Every arm: the same {s['test']} test prompts × {c.n_test_samples or c.n_samples} samples (T = 1, ≤ {c.max_new_tokens} tokens), "
             f"same seeds; perplexity on {s['neutral_test']} held-out neutral texts. Differences are paired by "
             f"prompt, with 95% bootstrap CIs resampling prompts and sign-flip permutation p-values; the claims "
             f"are Holm-corrected as one family. Scorers: {', '.join(sc)} "
             f"(κ with {sc[0]} on the base model's test samples: "
             + ", ".join(f"{k} {v:.2f}" for k, v in r.kappa.items()) + "). A claim is **yes** only where its "
             "criterion holds under every scorer.", "",
             "## Lee et al.'s claims", "",
             findings_table(r.findings, scorers=sc, paper="Lee et al."), "",
             "## Every arm on the test prompts (Table 2, after Lee et al.)", "",
             f"Toxicity = share of continuations scored > 0.5; Δ and shares under {sc[0]}. "
             "Share of the effect: (arm − aligned)/(base − aligned) for arms on the aligned model, "
             "(base − arm)/(base − aligned) for the base-model baselines.", "",
             effects_table(r), "",
             f"The same arms by the mean score (continuous; {sc[0]}'s probability, more power than the rate):", "",
             effects_table(r, kind="score"), ""]
    if r.design is not None:
        lines += ["## Power by design", "", design_text(r), ""]
    if r.lee is not None:
        n = r.lee.measurements["base"].n_prompts
        lines += [f"## Lee et al.'s protocol: one greedy continuation (≤ {r.lee.max_new_tokens} tokens) per test prompt, "
                  "mean score", "",
                  f"The same {n} test prompts; differences paired by prompt with 95% bootstrap CIs; Lee et al.'s "
                  f"operation (declared): the top-{min(c.lee_k, len(r.located.top))} keys' W_in columns ×{r.lee.factor:g}, "
                  "bias untouched; the control the same edit of random neurons. Lee et al.'s numbers are Perspective API scores, not comparable in level.", "",
                  lee_table(r), ""]
    loc, cmp = r.located, r.compared
    lines += [f"## Top value vectors (cosine with the {sc[0]} probe at `{loc.hook}`)", "",
              "| neuron | cos(probe) | top tokens | toxic token (" + ", ".join(sc) + ") | cos base↔aligned (value, key) |",
              "|---|---|---|---|---|"]
    nw = cmp.neuron_weights
    for i, name in enumerate(loc.top.names()):
        toks = ", ".join(t.strip() for t in loc.top_tokens[i][:8])
        flags = "".join("✓" if loc.token_flags[s][i] else "·" for s in sc)
        lines.append(f"| {name} | {_scores(loc)[i]:.3f} | {toks} | {flags} | "
                     f"{_cos(nw.value_cos[i])}, {_cos(nw.key_cos[i])} |")
    lines += ["", locators_text(r)]
    if r.k_sweep is not None:
        lines += ["", k_sweep_text(r)]
    if r.groups is not None:
        lines += ["", groups_text(r.groups)]
    if r.group_edits is not None and r.group_edits.reverted:
        lines += ["", group_edits_text(r)]
    if r.pareto is not None:
        lines += ["", pareto_text(r)]
    lines += ["", "## Residual offset δx = x_aligned − x_base (test texts)", "",
              "| layer | ‖δx‖/‖x‖ | cos(δx, probe) | mean cos(δx, top keys) |", "|---|---|---|---|"]
    o = cmp.offset
    for li in range(len(o.hooks)):
        ck = o.cos_keys[li]
        lines.append(f"| {li} | {o.rel_norm[li]:.4f} | {o.cos_direction[li]:+.3f} | "
                     f"{'' if math.isnan(ck) else f'{ck:+.3f}'} |")
    loc_ = r.where.location
    size = ("" if r.where.base is None else
            f"; {r.where.base.n_prompts} test prompts × {r.where.base.n_samples} samples, base and aligned measured alike")
    lines += ["", f"## Where the change lives ({loc_.measure}: base {loc_.base:.3f}, aligned {loc_.aligned:.3f}{size})", "",
              "| weight group | layer | revert → toxicity | share | apply → toxicity | share |", "|---|---|---|---|---|---|"]
    for e in loc_.effects:
        lines.append(f"| {e.group} | {'all' if e.layer is None else e.layer} | {e.reverted:.3f} | "
                     f"{e.share_revert:+.2f} | {e.applied:.3f} | {e.share_apply:+.2f} |")
    if r.where.patching:
        lines += ["", "Activation patching (base → aligned, test prompts):", "",
                  "| patched | " + " | ".join(sc) + " |", "|---|" + "---|" * len(sc)]
        for label, m in r.where.patching.items():
            lines.append(f"| {label} | " + " | ".join(f"{m.rate(s):.3f}" for s in sc) + " |")
    lines += ["", "## Dev sweeps (dose choice)", ""]
    for name, d in r.reactivation.dev.items():
        arm = r.reactivation.arms[name]
        lines.append(f"**{name}** — {d.description}; control: {d.control_description}. "
                     f"Bare model on dev: {d.baseline.toxicity:.3f} (ppl {d.baseline.perplexity:.3f}). "
                     f"Frozen dose: {arm.dose:g} ({arm.chosen_on}).")
        lines += ["", "| dose | toxicity | perplexity | control toxicity | control perplexity |", "|---|---|---|---|---|"]
        for p, cp in zip(d.points, d.control):
            lines.append(f"| {p.dose:g} | {p.toxicity:.3f} | {p.perplexity:.3f} | {cp.toxicity:.3f} | {cp.perplexity:.3f} |")
        lines.append("")
    lines += ["Timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in r.timings.items())]
    return "\n".join(lines) + "\n"


def write(r: ToxicityReport, out_dir: str | Path, *, figures: bool = False) -> list[Path]:

    return write_report(out_dir, "toxicity", to_json(r), to_markdown(r), figures=r.figures if figures else None,
                        title=f"Toxicity mechanism: {r.pair} (seed {r.config.seed})", config=asdict(r.config))


def seeds_intro(cfg) -> str:
    """The summary's first paragraph (:meth:`~interp.reproduce.base.Reproduction.seeds_to_markdown`)."""
    return (("Each seed rebuilds the organism (corpus, pretraining, preference samples, DPO) and draws "
             if cfg.pair.startswith("organism:") else "The models are the same in every seed; each seed draws ")
            + "its own dev/test split and sampling seeds. Per seed, a claim holds only under every scorer and "
            "after Holm correction across the claims; a claim that holds in some seeds but not all is "
            "**mixed**. Effect per seed: the claim's headline estimate with its 95% CI over prompts "
            "(share of the effect undone for the ×10 claim; s.d. units for the keys; paired differences "
            "elsewhere).")


def seeds_markdown(cfg, data: dict[int, dict]) -> list[str]:
    """After the claims' table: each seed's base → aligned rates and perplexities (test), read
    from each seed's report JSON (``data``: ``{seed: JSON}``)."""
    scorers = data[min(data)]["scorers"]
    lines = ["| seed | " + " | ".join(f"base → aligned ({s})" for s in scorers) + " | perplexity base → aligned |",
             "|---|" + "---|" * (len(scorers) + 1)]
    for s, d in sorted(data.items()):
        b, a = d["test"]["base"], d["test"]["aligned"]
        lines.append(f"| [{s}]({layout.seed_link(s, 'toxicity.md')}) | "
                     + " | ".join(f"{b['rate'][x]:.3f} → {a['rate'][x]:.3f}" for x in scorers)
                     + f" | {b['perplexity']:.3f} → {a['perplexity']:.3f} |")
    return lines


def seeds_json(cfg, data: dict[int, dict]) -> dict:
    """Added to the summary's JSON: the scorers, the criteria and each seed's test rates (from
    each seed's report JSON)."""
    scorers = data[min(data)]["scorers"]
    return {"scorers": scorers, "criteria": CRITERIA,
            "test": {s: {role: {"rate": {sc: m["rate"][sc] for sc in scorers}, "perplexity": m["perplexity"],
                                "n": m["n"]}
                         for role, m in d["test"].items()} for s, d in data.items()}}
