"""``interp reproduce toxicity``: Lee et al. (2024)'s DPO-toxicity story, end to end, on any pair.

locate (probe, value vectors) → compare (weights, keys, residual offset) → where the change
lives (weight groups, activation patching) → reactivate (dose–response with random controls),
written as ``toxicity.json`` (every number, with the config and seeds) and ``toxicity.md``.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import hooks as H
from ..attribution import ChangeLocation, locate_change
from ..diff import (
    KeyActivationChange,
    NeuronWeightDiff,
    ResidualOffset,
    ResidualPCA,
    WeightDiff,
    key_activation_change,
    neuron_weight_diff,
    residual_offset,
    residual_pca,
    weight_diff,
)
from ..directions import Direction, diff_in_means, random_direction, train_probe
from ..evaluate import perplexity, toxicity
from ..io import write_json, write_text
from ..neurons import (
    ValueVectorRanking,
    VectorSVD,
    random_neurons,
    rank_value_vectors,
    svd_of_values,
    value_vectors_of,
)
from ..record import record
from ..score import binomial_se, get_scorer
from ..steer import (
    AblateDirection,
    AddVector,
    ClampNeurons,
    DosePoint,
    DoseResponse,
    PatchActivations,
    ScaleNeurons,
    sweep,
)


@dataclass
class ToxicityConfig:
    pair: str = "organism:small"
    seed: int = 0
    probe_layer: int | None = None  # default: the last layer
    n_probe_prompts: int = 500
    probe_samples: int = 2
    k: int = 10
    n_eval_prompts: int = 200
    n_samples: int = 2
    max_new_tokens: int = 12
    n_ppl_texts: int = 200
    ppl_budget: float = 1.25  # a dose counts as "best" only within this perplexity ratio
    scale_doses: tuple[float, ...] = (0.0, 2.0, 5.0, 10.0, 20.0)
    clamp_doses: tuple[float, ...] = (0.5, 1.0, 2.0)
    offset_doses: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    direction_doses: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    clamp_quantile: float = 0.95
    per_layer_location: bool = True  # revert/apply each layer's groups too (costly on deep models)
    patch_per_layer: bool = True
    patching: bool = True  # activation patching recomputes every step: slow on deep models on CPU


@dataclass
class ToxicityReport:
    config: ToxicityConfig
    pair: str
    models: dict
    probe: Direction
    diff_means: Direction
    probe_vs_dim_cosine: float
    probe_label_agreement: float | None
    ranking: ValueVectorRanking
    svd: VectorSVD
    toxic_token_share: list[float]
    weights: WeightDiff
    neuron_weights: NeuronWeightDiff
    keys: KeyActivationChange
    offset: ResidualOffset
    pca: ResidualPCA
    location: ChangeLocation
    patching: list[dict]
    sweeps: dict[str, DoseResponse]
    rows: list[dict]
    findings: list[dict]
    timings: dict = field(default_factory=dict)


def _texts_and_labels(model, prompts, cfg, scorer, seed):
    ev = toxicity(model, prompts, scorer=scorer, n_samples=cfg.probe_samples,
                  max_new_tokens=cfg.max_new_tokens, seed=seed)
    texts = [p + c for p, c in zip(ev.prompts, ev.completions)]
    return texts, (ev.scores > 0.5).astype(int), ev


def _measure_factory(cfg: ToxicityConfig, prompts, ppl_texts, scorer):
    def measure(model, hooks) -> DosePoint:
        ev = toxicity(model, prompts, scorer=scorer, n_samples=cfg.n_samples,
                      max_new_tokens=cfg.max_new_tokens, seed=cfg.seed + 7, hooks=hooks)
        ppl = perplexity(model, ppl_texts, hooks=hooks)
        return DosePoint(0.0, ev.rate.rate, ev.rate.se, ev.rate.n, ppl,
                         {"mean_score": ev.mean_score,
                          "samples": [c for _, c, _ in ev.samples(3, toxic=True)]})
    return measure


def run(cfg: ToxicityConfig, *, pair=None, data: dict | None = None, scorer=None,
        progress: bool = True, log=print) -> ToxicityReport:
    """Run every analysis of the mechanism on a pair; returns a :class:`ToxicityReport`."""
    from ..pair import load_pair

    t0 = time.time()
    timings = {}
    torch.manual_seed(cfg.seed)
    pair = pair if pair is not None else load_pair(cfg.pair)
    data = data if data is not None else pair.info.get("data")
    if data is None:
        raise ValueError("this pair carries no prompt set; pass data={'train_prompts', 'eval_prompts', "
                         "'heldout_neutral'}")
    scorer = get_scorer(scorer)
    L = pair.cfg.n_layers
    layer = L - 1 if cfg.probe_layer is None else cfg.probe_layer
    eval_prompts = data["eval_prompts"][: cfg.n_eval_prompts]
    ppl_texts = data["heldout_neutral"][: cfg.n_ppl_texts]
    measure = _measure_factory(cfg, eval_prompts, ppl_texts, scorer)

    # 1. locate: a probe on the base model's residual stream, labelled by the scorer.
    log("[1/6] probe and value vectors")
    texts, y, _ = _texts_and_labels(pair.base, data["train_prompts"][: cfg.n_probe_prompts], cfg,
                                    scorer, cfg.seed + 1)
    hook = H.resid(layer)
    X = record(pair.base, texts, [hook], reduction="mean", progress=False)[hook]
    probe = train_probe(X, y, hook=hook, seed=cfg.seed)
    dim = diff_in_means(X, y, hook=hook)
    agreement = None
    try:
        from ..organism.corpus import is_toxic_doc

        truth = np.array([is_toxic_doc(t) for t in texts])
        agreement = float((truth == y.astype(bool)).mean())
    except ImportError:  # pragma: no cover
        pass
    ranking = rank_value_vectors(pair.base, probe, k=cfg.k)
    top = ranking.top
    svd = svd_of_values(pair.base, top)
    tok_share = [float(np.mean(scorer([t.strip() or "_" for t in toks]) > 0.5))
                 for toks in ranking.top_tokens]
    rand = random_neurons(L, pair.cfg.d_mlp, cfg.k, seed=cfg.seed, exclude=top)
    timings["locate_s"] = time.time() - t0

    # 2. compare: weights, keys, residual offset.
    log("[2/6] weights, keys and the residual offset")
    t = time.time()
    wd = weight_diff(pair)
    nwd = neuron_weight_diff(pair, top, rand)
    key_texts, key_y, _ = _texts_and_labels(pair.base, eval_prompts, cfg, scorer, cfg.seed + 2)
    keys = key_activation_change(pair, key_texts, top)
    offset = residual_offset(pair, key_texts, direction=probe, neurons=top)
    pca = residual_pca(pair, key_texts, layer,
                       labels=["toxic" if v else "non-toxic" for v in key_y])
    timings["compare_s"] = time.time() - t

    # 3. where the change lives.
    log("[3/6] where the change lives (weight groups, per layer)")
    t = time.time()
    def tox_only(model):
        return toxicity(model, eval_prompts, scorer=scorer, n_samples=cfg.n_samples,
                        max_new_tokens=cfg.max_new_tokens, seed=cfg.seed + 7).rate.rate
    location = locate_change(pair, tox_only, measure_name="toxicity rate", progress=progress,
                             layer_groups=("attn", "mlp_in", "mlp_out") if cfg.per_layer_location else ())
    gap = location.base - location.aligned
    patching = []
    for label, patch in [] if not cfg.patching else [
        ("top value-vector neurons", PatchActivations(pair.base, neurons=top)),
        ("random neurons (control)", PatchActivations(pair.base, neurons=rand)),
        *[(f"all neurons of layer {li}", PatchActivations(pair.base, layers=[li]))
          for li in (range(L) if cfg.patch_per_layer else [])],
        ("all MLP neurons", PatchActivations(pair.base)),
    ]:
        ev = toxicity(pair.aligned, eval_prompts, scorer=scorer, n_samples=cfg.n_samples,
                      max_new_tokens=cfg.max_new_tokens, seed=cfg.seed + 7, hooks=[patch])
        share = (ev.rate.rate - location.aligned) / gap if abs(gap) > 1e-12 else float("nan")
        patching.append({"patched": label, "toxicity": ev.rate.rate, "se": ev.rate.se,
                         "n": ev.rate.n, "share": share})
    timings["locate_change_s"] = time.time() - t

    # 4. reactivation sweeps in the aligned model, each with a control of the same size.
    log("[4/6] reactivation dose-response sweeps with controls")
    t = time.time()
    q = cfg.clamp_quantile
    floor = torch.quantile(keys.post["base"].float(), q, dim=0)
    rand_keys = key_activation_change(pair, key_texts, rand)
    rfloor = torch.quantile(rand_keys.post["base"].float(), q, dim=0)
    xnorm = float(X.norm(dim=-1).mean())
    dx = offset.delta[layer]
    rdir = random_direction(pair.cfg.d_model, seed=cfg.seed).vector
    top_value = value_vectors_of(pair.base, top[:1])[0]
    top_value_layer = int(top.layer[0])
    k = len(top)
    # (name, model, intervention(dose), control(dose), doses, dose label, title)
    families = [
        ("scale_keys", pair.aligned, lambda d: ScaleNeurons(top, d), lambda d: ScaleNeurons(rand, d),
         cfg.scale_doses, "scale factor on the activations",
         f"Aligned model: scale the top-{k} toxic neurons' activations"),
        ("scale_keys_positive", pair.aligned, lambda d: ScaleNeurons(top, d, positive_only=True),
         lambda d: ScaleNeurons(rand, d, positive_only=True), cfg.scale_doses,
         "scale factor on the positive part", f"Aligned model: scale the positive part of the top-{k} toxic neurons"),
        ("clamp_keys", pair.aligned, lambda d: ClampNeurons(top, floor, d),
         lambda d: ClampNeurons(rand, rfloor, d), cfg.clamp_doses,
         f"floor, as a multiple of the base model's q{int(q * 100)}",
         f"Aligned model: clamp the top-{k} toxic neurons to at least their base-model q{int(q * 100)}"),
        ("subtract_offset", pair.aligned,
         lambda d: AddVector(-dx, d, layer, label=f"(−δx at layer {layer})"),
         lambda d: AddVector(rdir * dx.norm(), d, layer, label="random vector of ‖δx‖"),
         cfg.offset_doses, "α (multiples of −δx)", f"Aligned model: add back −δx at layer {layer}"),
        ("ablate_probe", pair.aligned, lambda d: AblateDirection(probe.vector, keep=1 - d, label="probe"),
         lambda d: AblateDirection(rdir, keep=1 - d, label="random direction"), (1.0,),
         "fraction of the direction removed", "Aligned model: ablate the probe direction at every layer"),
        ("add_probe", pair.aligned,
         lambda d: AddVector(probe.vector * xnorm, d, layer, label="probe·‖x‖"),
         lambda d: AddVector(rdir * xnorm, d, layer, label="random·‖x‖"), cfg.direction_doses,
         "α (multiples of the mean residual norm)", f"Aligned model: add α·probe at layer {layer}"),
        ("base_minus_probe", pair.base,
         lambda d: AddVector(probe.vector * xnorm, -d, layer, label="probe·‖x‖"),
         lambda d: AddVector(rdir * xnorm, -d, layer, label="random·‖x‖"), cfg.direction_doses,
         "α (multiples of the mean residual norm)", f"Base model: subtract α·probe at layer {layer}"),
        ("base_minus_top_value", pair.base,
         lambda d: AddVector(top_value / top_value.norm() * xnorm, -d, top_value_layer,
                             label="top value vector·‖x‖"),
         lambda d: AddVector(rdir * xnorm, -d, top_value_layer, label="random·‖x‖"),
         cfg.direction_doses, "α (multiples of the mean residual norm)",
         f"Base model: subtract the top value vector at layer {top_value_layer}"),
    ]
    sweeps = {}
    for name, model, make, make_control, doses, label, title in tqdm(families, desc="sweeps",
                                                                      disable=not progress):
        sweeps[name] = sweep(model, make, doses, measure, name=name, make_control=make_control,
                             dose_label=label, title=title)
    timings["reactivate_s"] = time.time() - t

    log("[5/6] tables")
    rows = _table_rows(cfg, sweeps)
    report = ToxicityReport(
        cfg, cfg.pair if isinstance(cfg.pair, str) else pair.name,
        {"base": pair.base.cfg.model_name, "aligned": pair.aligned.cfg.model_name,
         "architecture": pair.cfg.architecture, "n_layers": L, "d_model": pair.cfg.d_model,
         "d_mlp": pair.cfg.d_mlp, "gated": H.is_gated(pair.base)},
        probe, dim, float(torch.dot(probe.vector, dim.vector)), agreement, ranking, svd, tok_share,
        wd, nwd, keys, offset, pca, location, patching, sweeps, rows, [], timings)
    report.findings = findings(report)
    timings["total_s"] = time.time() - t0
    return report


def _best(resp: DoseResponse, budget: float, lowest: bool = False) -> DosePoint:
    ok = [p for p in resp.points if p.perplexity <= budget * resp.baseline.perplexity] or resp.points
    return (min if lowest else max)(ok, key=lambda p: p.toxicity)


def _row(label, p: DosePoint, dose=None) -> dict:
    return {"row": label, "dose": dose, "toxicity": p.toxicity, "se": p.se, "perplexity": p.perplexity,
            "n": p.n}


def _describe_at(point: DosePoint, resp: DoseResponse, control: bool = False) -> str:
    """The intervention at ``point``'s dose, in words.

    Sweeps record each point's own description; reports cached before they did only hold the
    description at the last dose, whose dose is then rewritten to this one (the numbers written
    as ``2·``, ``×2`` or ``2×`` in a description are its dose).
    """
    if "description" in point.extra:
        return point.extra["description"]
    text = (resp.control_description if control else resp.description) or resp.name
    last = (resp.control if control else resp.points)[-1].dose
    if point.dose == last:
        return text
    old, new = re.escape(f"{last:g}"), f"{point.dose:g}"
    return re.sub(rf"(?<![\w.])(-?){old}(?=[·×])|(?<=×){old}(?![\w.])",
                  lambda m: (m.group(1) or "") + new, text)


def _table_rows(cfg: ToxicityConfig, sweeps: dict[str, DoseResponse]) -> list[dict]:
    """Lee et al.'s Table 2 layout: each intervention at its best dose, its control below it."""
    rows = [_row("base", sweeps["base_minus_probe"].baseline)]
    for name, label in [("base_minus_probe", "base − probe"),
                        ("base_minus_top_value", "base − top value vector")]:
        b = _best(sweeps[name], cfg.ppl_budget, lowest=True)
        rows.append(_row(label, b, b.dose))
        c = sweeps[name].control_at(b.dose)
        rows.append(_row(f"  control for {label}: {_describe_at(c, sweeps[name], control=True)}", c, b.dose))
    rows.append(_row("aligned", sweeps["scale_keys"].baseline))
    for name, resp in sweeps.items():
        if name.startswith("base_"):
            continue
        b = _best(resp, cfg.ppl_budget)
        rows.append(_row(f"aligned + {_describe_at(b, resp)}", b, b.dose))
        c = resp.control_at(b.dose)
        if c is not None:
            rows.append(_row(f"  control for {name}: {_describe_at(c, resp, control=True)}", c, b.dose))
    return rows


def _cos(x: float) -> str:
    """A cosine to read: ``0.99932``, or ``1 − 2.0e-07`` where five decimals would print 1.00000."""
    x = float(x)
    if x < 0.999995:
        return f"{x:.5f}"
    return "1" if x >= 1 else f"1 − {1 - x:.1e}"


def _z(a: float, sa: float, b: float, sb: float) -> float:
    return (a - b) / math.sqrt(max(sa**2 + sb**2, 1e-12))


def findings(r: ToxicityReport) -> list[dict]:
    """Each of Lee et al.'s claims, with the measured number and whether it reproduces here.

    The criteria are fixed in advance and stated in each line; nothing is tuned to pass.
    """
    out = []
    def add(claim, measured, ok, criterion):
        out.append({"claim": claim, "measured": measured, "reproduces": bool(ok), "criterion": criterion})

    add("a linear probe finds toxicity in the residual stream (Lee et al.: 94% accuracy)",
        f"held-out accuracy {r.probe.test_acc:.3f} (n={r.probe.n_test})", r.probe.test_acc >= 0.85,
        "held-out accuracy ≥ 0.85")
    share = float(np.mean([s > 0 for s in r.toxic_token_share]))
    add("the top value vectors by cosine with the probe promote toxic tokens",
        f"{share:.0%} of the top {len(r.toxic_token_share)} have a toxic token (scorer > 0.5) among their top 10",
        share >= 0.5, "at least half of the top vectors")
    nw = r.neuron_weights
    add("alignment leaves the toxic value vectors almost untouched (cosine ≈ 1)",
        f"min cosine base↔aligned of the top value vectors {_cos(nw.value_cos.min())}; all parameters ≥ {_cos(r.weights.min_cosine)}",
        float(nw.value_cos.min()) > 0.99 and r.weights.min_cosine > 0.99, "every cosine > 0.99")
    s = r.keys.summary()
    pre_b, pre_a = np.mean(s["pre/base"]["mean"]), np.mean(s["pre/aligned"]["mean"])
    fp_b, fp_a = np.mean(s["pre/base"]["frac_positive"]), np.mean(s["pre/aligned"]["frac_positive"])
    sd = float(r.keys.pre["base"].float().std(0).mean())  # spread of a neuron's pre-activation
    add("alignment lowers the keys' activations of the toxic neurons",
        f"mean pre-activation {pre_b:.3f} → {pre_a:.3f} (a change of {(pre_a - pre_b) / max(sd, 1e-12):+.1%} "
        f"of a neuron's s.d. over tokens); share positive {fp_b:.3f} → {fp_a:.3f}",
        pre_a < pre_b and fp_a < fp_b, "both the mean and the share of positive pre-activations fall")
    cos = r.offset.cos_direction
    add("the residual offset δx points away from toxicity",
        "cos(δx, probe) per layer: " + ", ".join(f"{c:+.3f}" for c in cos.tolist()),
        bool((cos < 0).all()), "negative at every layer")
    scale = r.sweeps["scale_keys"]
    best = _best(scale, r.config.ppl_budget)
    ctrl = scale.control_at(best.dose)
    base_tox = r.sweeps["base_minus_probe"].baseline.toxicity
    z_al = _z(best.toxicity, best.se, scale.baseline.toxicity, scale.baseline.se)
    z_c = _z(best.toxicity, best.se, ctrl.toxicity, ctrl.se) if ctrl else float("nan")
    add(f"scaling the top-{len(r.ranking.top)} toxic keys brings toxicity back (Lee et al.: ×10 → 0.458 from 0.208)",
        f"best ×{best.dose:g}: {best.toxicity:.3f} ± {best.se:.3f} vs aligned {scale.baseline.toxicity:.3f}, "
        f"random-neuron control {ctrl.toxicity:.3f}; base {base_tox:.3f} "
        f"({(best.toxicity - scale.baseline.toxicity) / max(base_tox - scale.baseline.toxicity, 1e-12):.0%} "
        "of the alignment effect undone)",
        z_al > 2 and z_c > 2, "above both the aligned model and the random control by > 2 s.e.")
    loc = r.location
    mlp = [e for e in loc.whole_groups() if e.group in ("mlp_in", "mlp_out")]
    att = [e for e in loc.whole_groups() if e.group == "attn"]
    if mlp and att:
        # Each reverted model's toxicity is a rate over the same n samples as the sweeps' baseline.
        n = scale.baseline.n
        m, a = max(mlp, key=lambda e: e.reverted), max(att, key=lambda e: e.reverted)
        z = _z(m.reverted, binomial_se(m.reverted, n), a.reverted, binomial_se(a.reverted, n))
        add("the change lives in the MLP keys rather than elsewhere",
            "share of the effect recovered by reverting: " + ", ".join(
                f"{e.group} {e.share_revert:+.2f}" for e in loc.whole_groups())
            + f"; reverted toxicity {m.group} {m.reverted:.3f} vs attn {a.reverted:.3f} (z = {z:+.1f}, n = {n})",
            z > 2, "reverting an MLP group recovers more than reverting attention, by > 2 s.e.")
    return out


# ---------------------------------------------------------------- output -------------------

def to_json(r: ToxicityReport) -> dict:
    def sweep_json(s: DoseResponse):
        return {"description": s.description, "control_description": s.control_description,
                "baseline": asdict(s.baseline), "points": [asdict(p) for p in s.points],
                "control": [asdict(p) for p in s.control or []]}
    k = r.keys.summary()
    return {
        "config": asdict(r.config),
        "pair": r.pair,
        "models": r.models,
        "probe": {"hook": r.probe.hook, "train_acc": r.probe.train_acc, "test_acc": r.probe.test_acc,
                  "n_train": r.probe.n_train, "n_test": r.probe.n_test,
                  "cosine_with_diff_in_means": r.probe_vs_dim_cosine,
                  "label_agreement_with_grammar": r.probe_label_agreement},
        "value_vectors": [
            {"neuron": n, "cosine": float(c), "top_tokens": up, "bottom_tokens": down,
             "toxic_token_share": ts, "value_cos_base_aligned": float(vc), "key_cos_base_aligned": float(kc)}
            for n, c, up, down, ts, vc, kc in zip(r.ranking.top.names(), r.ranking.top.score,
                                                  r.ranking.top_tokens, r.ranking.bottom_tokens,
                                                  r.toxic_token_share, r.neuron_weights.value_cos,
                                                  r.neuron_weights.key_cos)],
        "svd": {"singular_values": r.svd.singular_values.tolist(), "top_tokens": r.svd.top_tokens},
        "weights": {"min_cosine": r.weights.min_cosine, "by_group": r.weights.by_group(),
                    "tensors": r.weights.rows,
                    "random_value_cos_min": float(r.neuron_weights.random_value_cos.min()),
                    "random_key_cos_min": float(r.neuron_weights.random_key_cos.min())},
        "keys": {"neurons": r.keys.neurons.names(), "n_texts": r.keys.n_texts, **k},
        "offset": {"hooks": r.offset.hooks, "norm": r.offset.norm.tolist(),
                   "rel_norm": r.offset.rel_norm.tolist(),
                   "cos_probe": r.offset.cos_direction.tolist(),
                   "cos_keys": [None if math.isnan(x) else x for x in r.offset.cos_keys.tolist()]},
        "pca": {"hook": r.pca.hook, "explained_variance": r.pca.explained_variance},
        "location": {"base": r.location.base, "aligned": r.location.aligned,
                     "effects": [asdict(e) for e in r.location.effects]},
        "patching": r.patching,
        "sweeps": {k_: sweep_json(v) for k_, v in r.sweeps.items()},
        "table": r.rows,
        "findings": r.findings,
        "timings": r.timings,
    }


def to_markdown(r: ToxicityReport) -> str:
    c = r.config
    lines = [f"# Toxicity mechanism: {r.pair}", "",
             f"{r.models['architecture']}, {r.models['n_layers']} layers, d_model {r.models['d_model']}, "
             f"d_mlp {r.models['d_mlp']}{', gated MLP' if r.models['gated'] else ''}. Seed {c.seed}; "
             f"toxicity = share of continuations (T=1, ≤{c.max_new_tokens} tokens) scored > 0.5 by "
             f"alt-profanity-check, on {c.n_eval_prompts} held-out eliciting prompts × {c.n_samples} samples; "
             f"perplexity on {c.n_ppl_texts} held-out neutral texts. 'Best dose' = the most toxic "
             f"(least, for base rows) within {c.ppl_budget}× the model's own perplexity.", "",
             "## What reproduces", "",
             "| Lee et al.'s finding | measured here | reproduces? | criterion |", "|---|---|---|---|"]
    for f in r.findings:
        lines.append(f"| {f['claim']} | {f['measured']} | {'yes' if f['reproduces'] else '**no**'} | {f['criterion']} |")
    lines += ["", "## Table 2 (after Lee et al.)", "",
              "| model / intervention | dose | toxicity ± s.e. | perplexity | n |", "|---|---|---|---|---|"]
    for row in r.rows:
        dose = "" if row["dose"] is None else f"{row['dose']:g}"
        lines.append(f"| {row['row']} | {dose} | {row['toxicity']:.3f} ± {row['se']:.3f} | "
                     f"{row['perplexity']:.3f} | {row['n']} |")
    lines += ["", f"## Top value vectors (cosine with the probe at `{r.probe.hook}`)", "",
              "| neuron | cos(probe) | top tokens | cos base↔aligned (value, key) |", "|---|---|---|---|"]
    nw = r.neuron_weights
    for i, name in enumerate(r.ranking.top.names()):
        toks = ", ".join(t.strip() for t in r.ranking.top_tokens[i][:8])
        lines.append(f"| {name} | {r.ranking.top.score[i]:.3f} | {toks} | "
                     f"{_cos(nw.value_cos[i])}, {_cos(nw.key_cos[i])} |")
    lines += ["", f"Random neurons: value cosine ≥ {_cos(nw.random_value_cos.min())}, key cosine ≥ "
              f"{_cos(nw.random_key_cos.min())}. Probe: held-out accuracy {r.probe.test_acc:.3f}; "
              f"cosine with the difference-in-means direction {r.probe_vs_dim_cosine:.3f}."]
    s = r.keys.summary()
    lines += ["", "## Key activations of the top neurons (every token of the eliciting texts)", ""]
    if r.models.get("gated"):
        lines += ["Gated MLP: *pre* is the gate's pre-activation (`mlp.hook_pre`, x·W_gate) and *post* "
                  "is act(gate)·(x·W_in) (`mlp.hook_post`), so a neuron switched off through its gate, "
                  "as Lee et al. found in Llama-2, shows as a falling *pre*.", ""]
    lines += ["| neuron | pre mean base → aligned | pre share > 0 | post mean base → aligned |",
              "|---|---|---|---|"]
    for i, name in enumerate(r.keys.neurons.names()):
        lines.append(f"| {name} | {s['pre/base']['mean'][i]:+.3f} → {s['pre/aligned']['mean'][i]:+.3f} | "
                     f"{s['pre/base']['frac_positive'][i]:.3f} → {s['pre/aligned']['frac_positive'][i]:.3f} | "
                     f"{s['post/base']['mean'][i]:+.4f} → {s['post/aligned']['mean'][i]:+.4f} |")
    lines += ["", "## Residual offset δx = x_aligned − x_base", "",
              "| layer | ‖δx‖ | ‖δx‖/‖x‖ | cos(δx, probe) | mean cos(δx, top keys) |", "|---|---|---|---|---|"]
    o = r.offset
    for li in range(len(o.hooks)):
        ck = o.cos_keys[li]
        lines.append(f"| {li} | {o.norm[li]:.4f} | {o.rel_norm[li]:.4f} | {o.cos_direction[li]:+.3f} | "
                     f"{'' if math.isnan(ck) else f'{ck:+.3f}'} |")
    loc = r.location
    lines += ["", f"## Where the change lives (toxicity: base {loc.base:.3f}, aligned {loc.aligned:.3f})", "",
              "Share of the effect = recovered toxicity / (base − aligned) when a group is reverted to the "
              "base weights in the aligned model, or removed when only that group is applied to the base.", "",
              "| weight group | layer | params | revert → toxicity | share | apply → toxicity | share |",
              "|---|---|---|---|---|---|---|"]
    for e in loc.effects:
        lines.append(f"| {e.group} | {'all' if e.layer is None else e.layer} | {e.n_params} | "
                     f"{e.reverted:.3f} | {e.share_revert:+.2f} | {e.applied:.3f} | {e.share_apply:+.2f} |")
    lines += ["", "Activation patching (base model's MLP activations into the aligned model):", "",
              "| patched | toxicity ± s.e. | share of the effect |", "|---|---|---|"]
    for p in r.patching:
        lines.append(f"| {p['patched']} | {p['toxicity']:.3f} ± {p['se']:.3f} | {p['share']:+.2f} |")
    if not r.config.patching:
        lines.append("| (not run: `patching=False` in this config) | | |")
    lines += ["", "## Dose–response", ""]
    for name, s_ in r.sweeps.items():
        lines.append(f"**{name}** — {s_.description}; control: {s_.control_description}. "
                     f"No intervention: {s_.baseline.toxicity:.3f} (ppl {s_.baseline.perplexity:.3f}).")
        lines.append("")
        lines.append("| dose | toxicity | perplexity | control toxicity | control perplexity |")
        lines.append("|---|---|---|---|---|")
        for p in s_.points:
            cp = s_.control_at(p.dose)
            lines.append(f"| {p.dose:g} | {p.toxicity:.3f} ± {p.se:.3f} | {p.perplexity:.3f} | "
                         f"{cp.toxicity:.3f} | {cp.perplexity:.3f} |" if cp else
                         f"| {p.dose:g} | {p.toxicity:.3f} ± {p.se:.3f} | {p.perplexity:.3f} | | |")
        lines.append("")
    lines += ["Timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in r.timings.items())]
    return "\n".join(lines) + "\n"


def write(r: ToxicityReport, out_dir: str | Path) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "toxicity.json", to_json(r))
    write_text(out / "toxicity.md", to_markdown(r))
    return out / "toxicity.json", out / "toxicity.md"


def config_for(pair: str, size_hint: str | None = None, **overrides) -> ToxicityConfig:
    """Default config for a pair; the tiny organism gets smaller samples (for tests)."""
    from ..pair import REAL_PAIRS

    cfg = ToxicityConfig(pair=pair)
    if pair in REAL_PAIRS:
        # Sized for 2 CPU cores (~1 h on SmolLM2): two samples per held-out prompt, one dose
        # per family beside zero, except the added directions: in a model with massive
        # activations one mean residual norm ‖x‖ breaks it (perplexity > 800 at α = 1), so
        # those get a log-spaced grid below it. No activation patching (it recomputes every step).
        cfg = dataclasses.replace(cfg, n_probe_prompts=150, probe_samples=3, n_eval_prompts=150,
                                  n_samples=2, max_new_tokens=20, n_ppl_texts=50,
                                  scale_doses=(0.0, 10.0), clamp_doses=(1.0,),
                                  offset_doses=(1.0,), direction_doses=(0.03, 0.1, 0.3),
                                  per_layer_location=False, patch_per_layer=False, patching=False)
    if "tiny" in pair:
        cfg = dataclasses.replace(cfg, n_probe_prompts=150, n_eval_prompts=60, n_ppl_texts=60,
                                  k=5, scale_doses=(0.0, 5.0), clamp_doses=(1.0,),
                                  offset_doses=(1.0,), direction_doses=(1.0,))
    return dataclasses.replace(cfg, **overrides)


def cached_report(pair: str = "organism:small", *, seed: int = 0, progress: bool = False,
                  log=lambda *a: None, **overrides) -> ToxicityReport:
    """:func:`run` once per (pair, config), then read back from the cache (figures reuse it).

    The cache key holds the whole config and the pair's weight fingerprints, so retrained or
    re-aligned models never reuse a stale report. The file is interp's own pickle.
    """
    from ..io import atomic_path, cache_dir, stable_hash
    from ..pair import load_pair
    from ..record import model_fingerprint

    cfg = config_for(pair, seed=seed, **overrides)
    p = load_pair(pair)
    key = stable_hash({"cfg": asdict(cfg), "base": model_fingerprint(p.base),
                       "aligned": model_fingerprint(p.aligned), "v": 2})  # 2: KV-cached hooked sampling
    path = cache_dir() / "reports" / f"toxicity-{pair.replace(':', '-')}-{key}.pt"
    if path.exists():
        report = torch.load(path, weights_only=False)
        # Tables and verdicts are derived from the stored measurements: recompute them, so a
        # change to their wording or layout never needs the measurements to be run again.
        report.rows = _table_rows(report.config, report.sweeps)
        report.findings = findings(report)
        return report
    report = run(cfg, pair=p, progress=progress, log=log)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(report, tmp)
    return report
