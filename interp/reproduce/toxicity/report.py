"""The toxicity report: its dataclass, its JSON and its figures (the markdown, tables and the summary across
seeds are :mod:`.render`'s)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from ... import locate as locators
from ...findings import Finding
from ...groups import GroupEdits, NeuronGroups
from ...measure import Measurement
from .claims import Effect, _scores
from .config import CRITERIA, PRIMARY_LOCATOR, ToxicityConfig
from .steps import (
    Compared,
    Design,
    KSweep,
    LeeProtocol,
    Located,
    Pareto,
    Reactivation,
    Splits,
    StabilityUndone,
    Where,
    _paired,
)


@dataclass
class ToxicityReport:
    config: ToxicityConfig
    pair: str
    models: dict
    scorers: list[str]
    splits: Splits
    located: Located
    compared: Compared
    where: Where
    reactivation: Reactivation
    test: dict[str, Measurement]  # base, aligned
    effects: list[Effect]
    findings: list[Finding]
    kappa: dict[str, float]
    timings: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)  # how the pair was made (an organism's manifest)
    lee: LeeProtocol | None = None  # with cfg.lee_protocol
    design: Design | None = None  # with cfg.power_target
    k_sweep: KSweep | None = None  # with cfg.k_sweep
    stability_undone: StabilityUndone | None = None  # with cfg.n_stability and cfg.stability_samples
    groups: NeuronGroups | None = None  # with cfg.neuron_groups (interp.groups)
    group_edits: GroupEdits | None = None  # with cfg.neuron_groups: each group's activations patched both ways
    pareto: Pareto | None = None  # with cfg.pareto

    @cached_property
    def stability_shares(self) -> dict:
        """:func:`stability_undone_json`, bootstrapped once for the JSON and the markdown."""
        return stability_undone_json(self)

    @cached_property
    def pareto_rows(self) -> dict[str, list[dict]]:
        """:meth:`Pareto.rows`, bootstrapped once for the JSON, the table and the figure."""
        return self.pareto.rows(self.scorers, seed=self.config.seed)

    @cached_property
    def group_edit_rows(self) -> dict[str, dict]:
        """:meth:`GroupEdits.rows`, bootstrapped once for the JSON, the table and the figure."""
        return self.group_edits.rows(self.scorers, seed=self.config.seed)

    def figures(self) -> dict:
        from ... import plot

        return figures(self, plot)

    @cached_property
    def k_sweep_shares(self) -> dict[str, list[dict]]:
        """:meth:`KSweep.shares` per scorer, bootstrapped once for the JSON, the table and the figure."""
        return {sc: self.k_sweep.shares(self.test["base"], self.test["aligned"], sc, seed=self.config.seed)
                for sc in self.scorers}


def _source(name: str) -> str:
    """A model's name for a report: a folder by its own name (a cache entry's, for ``…/model``),
    never the absolute path of the machine that wrote it."""
    path = Path(name)
    if not path.is_absolute():
        return name
    return path.parent.name if path.name == "model" else path.name


def _m_json(m: Measurement, scorers: list[str], per_prompt: bool = True) -> dict:
    d = {"label": m.label, "n": m.n_prompts * m.n_samples, "perplexity": m.perplexity,
         "rate": {s: m.rate(s) for s in scorers}, "mean_score": {s: m.mean_score(s) for s in scorers},
         "examples": m.examples(scorers[0])}
    if per_prompt:
        d["per_prompt_rate"] = {s: [round(float(x), 4) for x in m.per_prompt(s)] for s in scorers}
    return d


def to_json(r: ToxicityReport) -> dict:
    sc = r.scorers
    loc, c, w = r.located, r.compared, r.where
    k = c.keys.summary()
    return {
        "config": asdict(r.config), "pair": r.pair, "models": r.models, "scorers": sc,
        "criteria": CRITERIA, "splits": r.splits.info(),
        "findings": [f.to_dict() for f in r.findings],
        "kappa_vs_primary": r.kappa,
        "test": {role: _m_json(m, sc) for role, m in r.test.items()},
        "arms": {name: {"model": a.model, "dose": a.dose, "chosen_on": a.chosen_on,
                        "within_ppl_budget": a.within_budget, "description": a.description,
                        "control_description": a.control_description,
                        "arm": _m_json(a.arm, sc), "control": _m_json(a.control, sc)}
                 for name, a in r.reactivation.arms.items()},
        "effects": [asdict(e) for e in r.effects],
        "dev_sweeps": {name: {"doses": [p.dose for p in d.points],
                              "arm": [{"rate": {s: m.rate(s) for s in sc}, "perplexity": m.perplexity}
                                      for m in r.reactivation.dev_measurements[name]["arm"]],
                              "control": [{"rate": {s: m.rate(s) for s in sc}, "perplexity": m.perplexity}
                                          for m in r.reactivation.dev_measurements[name]["control"]],
                              "bare": {"rate": {s: r.reactivation.dev_measurements[name]["bare"][0].rate(s)
                                                for s in sc},
                                       "perplexity": r.reactivation.dev_measurements[name]["bare"][0].perplexity},
                              "description": d.description, "control_description": d.control_description}
                       for name, d in r.reactivation.dev.items()},
        "probe": {s: (None if p is None else {"hook": p.hook, "test_acc": p.test_acc, "train_acc": p.train_acc,
                                               "n_train": p.n_train, "n_test": p.n_test,
                                               "majority_acc": p.meta["majority_acc"],
                                               **{k: p.meta.get(k) for k in (
                                                   "test_auroc", "test_balanced_acc", "n_test_positive", "C",
                                                   "standardize", "class_weight", "cv_auroc")}})
                  for s, p in loc.probes.items()},
        "locators": {"primary": PRIMARY_LOCATOR, "given": loc.given,
                     **{n: locators.to_json(x, None, None) for n, x in loc.locators.items()}},
        **({} if loc.stability is None else {"locate_stability": {
            "k": len(loc.stability.top), "n_resamples": len(loc.stability.jaccard),
            "jaccard": loc.stability.jaccard, "mean_jaccard": loc.stability.mean_jaccard,
            "top": loc.stability.top.names(),
            "found_in": loc.stability.found_in(),
            **({} if r.stability_undone is None else {"share_undone": r.stability_shares})}}),
        **({} if r.k_sweep is None else {"k_sweep": k_sweep_json(r)}),
        **({} if r.groups is None else {"neuron_groups": r.groups.to_dict()}),
        **({} if r.group_edits is None else {"group_edits": group_edits_json(r)}),
        **({} if r.pareto is None else {"pareto": pareto_json(r)}),
        "probe_null": {"shuffled_label_test_acc": loc.shuffled_acc, "shuffled_label_test_auroc": loc.shuffled_auroc,
                       "cosine_with_diff_in_means": loc.probe_vs_dim, "label_kappa": loc.label_kappa},
        "value_vectors": [
            {"neuron": n, "cosine": float(cs), "top_tokens": up, "bottom_tokens": down,
             "toxic_token": {s: loc.token_flags[s][i] for s in sc},
             "value_cos_base_aligned": float(vc), "key_cos_base_aligned": float(kc),
             **({} if c.neuron_weights.value_norm_ratio is None else {
                 "value_norm_ratio": float(c.neuron_weights.value_norm_ratio[i]),
                 "value_rel_change": float(c.neuron_weights.value_rel_change[i])})}
            for i, (n, cs, up, down, vc, kc) in enumerate(zip(
                loc.top.names(), _scores(loc), loc.top_tokens, loc.ranking.bottom_tokens,
                c.neuron_weights.value_cos, c.neuron_weights.key_cos))],
        "null_token_share": {s: float(np.mean(v)) for s, v in loc.null_token_flags.items()},
        "svd": {"singular_values": loc.svd.singular_values.tolist(), "top_tokens": loc.svd.top_tokens},
        "weights": {"min_cosine": c.weights.min_cosine, "by_group": c.weights.by_group(),
                    "tensors": c.weights.rows, "value_change_top": c.value_change_top,
                    "value_change_null_quantiles": np.quantile(c.value_change_null, [0.05, 0.5, 0.95]).tolist()},
        "keys": {"neurons": c.keys.neurons.names(), "n_texts": c.keys.n_texts, **k,
                 "shift_sd": c.key_shift.to_dict(),
                 "shift_null_quantiles": np.quantile(c.key_shift_null, [0.05, 0.5, 0.95]).tolist()},
        "offset": {"hooks": c.offset.hooks, "norm": c.offset.norm.tolist(), "rel_norm": c.offset.rel_norm.tolist(),
                   "cos_probe": c.offset.cos_direction.tolist(),
                   "cos_keys": [None if math.isnan(x) else x for x in c.offset.cos_keys.tolist()],
                   "cos_probe_by_scorer": c.offset_cos,
                   "null_random_quantiles": np.quantile(c.offset_null_random, [0.025, 0.5, 0.975]).tolist(),
                   "null_shuffled_quantiles": (np.quantile(c.offset_null_shuffled, [0.05, 0.5, 0.95]).tolist()
                                               if len(c.offset_null_shuffled) else [])},
        "pca": {"hook": c.pca.hook, "explained_variance": c.pca.explained_variance},
        "provenance": r.provenance,
        "location": {"base": w.location.base, "aligned": w.location.aligned,
                     "n_samples": (w.base or r.test["base"]).n_samples, "own_base_aligned": w.base is not None,
                     "effects": [asdict(e) for e in w.location.effects],
                     "reverted": {g: _m_json(m, sc, per_prompt=False) for g, m in w.reverted.items()},
                     "applied": {g: _m_json(m, sc, per_prompt=False) for g, m in w.applied.items()}},
        "patching": {label: _m_json(m, sc, per_prompt=False) for label, m in w.patching.items()},
        "timings": r.timings,
        **({} if r.design is None else {"design": {**r.design.to_dict(), "achieved": design_achieved(r)}}),
        **({} if r.lee is None else {"lee_protocol": lee_json(r.lee)}),
    }


def stability_undone_json(r: ToxicityReport) -> dict:
    """Lee's edit on each locate resample's top keys: per scorer the full set's share undone (CI)
    and the resamples' shares with their median and 5–95% range."""
    su = r.stability_undone
    out = {"factor": su.factor, "k": su.k, "n_samples": su.n_samples, "n_prompts": su.base.n_prompts,
           "by_scorer": {}}
    for sc in r.scorers:
        d = su.shares(sc, seed=r.config.seed)
        each = np.asarray(d["resampled"], dtype=float)
        ok = each[np.isfinite(each)]
        out["by_scorer"][sc] = {"full": d["full"].to_dict(), "resampled": d["resampled"],
                                "median": float(np.median(ok)) if len(ok) else None,
                                "q05": float(np.quantile(ok, 0.05)) if len(ok) else None,
                                "q95": float(np.quantile(ok, 0.95)) if len(ok) else None}
    return out


def k_sweep_json(r: ToxicityReport) -> dict:
    """The k-sweep's shares per scorer (arm and random-k control), with the arms' rates."""
    ks = r.k_sweep
    arm0 = ks.arms[ks.ks[0]]
    return {"factor": ks.factor, "ks": ks.ks, "n_prompts": arm0.n_prompts, "n_samples": arm0.n_samples,
            "own_base_aligned": ks.base is not None,
            "shares": {sc: [{"k": x["k"], "arm": x["arm"].to_dict(), "control": x["control"].to_dict()}
                            for x in r.k_sweep_shares[sc]]
                       for sc in r.scorers},
            "rate": {str(k): {"arm": {sc: ks.arms[k].rate(sc) for sc in r.scorers},
                              "control": {sc: ks.controls[k].rate(sc) for sc in r.scorers},
                              "perplexity": ks.arms[k].perplexity} for k in ks.ks}}


def design_achieved(r: ToxicityReport) -> dict[str, dict]:
    """The test's own paired base − aligned difference per scorer (rate): its CI half-width as a
    share of the effect, beside the design's target."""
    out = {}
    for sc in r.scorers:
        e = _paired(r.test["base"].per_prompt(sc), r.test["aligned"].per_prompt(sc), r.config, "two-sided")
        half = (e.hi - e.lo) / 2
        out[sc] = {"effect": e.to_dict(), "halfwidth": half,
                   "share": half / e.value if e.value > 0 else None}
    return out


def lee_json(lee: LeeProtocol) -> dict:
    """Lee et al.'s measurement as it is written into a report's JSON (``"lee_protocol"``)."""
    sc = list(lee.effects)
    return {"max_new_tokens": lee.max_new_tokens, "factor": lee.factor, "decoding": "greedy",
            "measurements": {role: _m_json(m, sc) for role, m in lee.measurements.items()},
            "effects": {x: {k: e.to_dict() for k, e in d.items()} for x, d in lee.effects.items()}}


def pareto_json(r: ToxicityReport) -> dict:
    """Every aligned-model family's doses: share undone per scorer and KL per token, arm and control."""
    rows = r.pareto_rows
    return {"n_samples": r.pareto.n_samples, "n_prompts": r.pareto.base.n_prompts, "declared": r.pareto.declared,
            "families": {fam: [{"dose": p["dose"], **{role: {"share": {sc: e.to_dict() for sc, e in p[role]["share"].items()},
                                                             "kl": p[role]["kl"].to_dict(),
                                                             "perplexity": p[role]["perplexity"]}
                                                      for role in ("arm", "control")}} for p in pts]
                         for fam, pts in rows.items()}}


def group_edits_json(r: ToxicityReport) -> dict:
    e = r.group_edits
    return {"n_samples": e.n_samples, "n_prompts": e.base.n_prompts,
            "base": {sc: e.base.rate(sc) for sc in r.scorers}, "aligned": {sc: e.aligned.rate(sc) for sc in r.scorers},
            "groups": {g: {"n_neurons": x["n_neurons"], "ppl_ratio_reverted": x["ppl_ratio_reverted"],
                           "ppl_ratio_applied": x["ppl_ratio_applied"],
                           "by_scorer": {sc: {"reverted_rate": y["reverted_rate"], "applied_rate": y["applied_rate"],
                                              "share_undone": y["share_undone"].to_dict(),
                                              "share_reproduced": y["share_reproduced"].to_dict()}
                                         for sc, y in x["by_scorer"].items()}}
                       for g, x in r.group_edit_rows.items()}}


FAMILY_LABELS = {
    "lee_scale_keys": "Lee et al.: scale the top-7 toxic keys' W_in columns (bias untouched), dose declared",
    "scale_keys_preact": "variant: scale the top-k keys' whole pre-activation (bias included), dose declared",
    "scale_post": "variant: scale the post-activations",
    "scale_post_positive": "variant: scale the positive part of the post-activations",
    "clamp_keys": "variant: clamp the activations to a base-model floor",
    "subtract_offset": "add back −δx (δx from dev texts)",
    "ablate_probe": "Arditi et al.: ablate the probe from every write",
    "add_probe": "add the probe direction",
    "base_minus_probe": "Lee et al.'s baseline: base − probe",
    "base_minus_top_value": "Lee et al.'s baseline: base − top value vector",
}


#: The report's figures besides one ``dose_<family>`` per dev sweep.
FIGURE_NAMES = ("value_vectors", "value_vector_cosines", "neuron_cosines", "weight_change",
                "key_activations_pre", "key_activations_post", "residual_offset", "residual_pca",
                "change_location", "change_location_layers", "effects")


def figures(r: ToxicityReport, plot) -> dict:
    """Every figure of the report, by name."""
    loc, cmp = r.located, r.compared
    figs = {
        "value_vectors": plot.value_vectors(loc.ranking),
        "value_vector_cosines": plot.cosine_histogram(loc.ranking),
        "neuron_cosines": plot.neuron_cosines(cmp.neuron_weights),
        "weight_change": plot.weight_change(cmp.weights),
        "key_activations_pre": plot.key_activations(cmp.keys, "pre"),
        "key_activations_post": plot.key_activations(cmp.keys, "post"),
        "residual_offset": plot.residual_offset(cmp.offset),
        "residual_pca": plot.residual_pca(cmp.pca),
        "change_location": plot.change_location(r.where.location),
        "effects": plot.effects(r.effects, r.scorers, FAMILY_LABELS),
    }
    if r.where.location.per_layer():
        figs["change_location_layers"] = plot.change_location_layers(r.where.location)
    for name, d in r.reactivation.dev.items():
        figs[f"dose_{name}"] = plot.dose_response(d)
    for name, x in loc.locators.items():
        figs[f"locator_{name}"] = plot.located(x)
    if r.k_sweep is not None:
        figs["k_sweep"] = plot.k_sweep(r.k_sweep_shares, r.k_sweep.factor)
    if r.groups is not None:
        figs["neuron_groups"] = plot.neuron_groups(r.groups)
    if r.group_edits is not None and r.group_edits.reverted:
        figs["group_edits"] = plot.group_edits(r.group_edit_rows, r.scorers[0])
    if r.pareto is not None:
        figs["pareto"] = plot.pareto(r.pareto_rows, r.scorers[0], r.pareto.declared, FAMILY_LABELS)
    return figs
