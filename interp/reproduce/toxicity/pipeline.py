"""Running the toxicity reproduction: the step cache (keyed on everything a step reads) and :func:`run` on one pair (over seeds: the shared runner, :meth:`interp.reproduce.base.Reproduction.run_seeds`)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping

import torch

from ... import distributed, stats
from ... import hooks as H
from ...groups import group_edits
from ...io import cache_dir, code_hash, hash_texts, stable_hash
from ...measure import MEASURE_CODE, _field_key, measure
from ...neurons import (
    Neurons,
)
from ...organism.corpus import GrammarScorer
from ...pair import load_pair
from ...prompts import PromptSet
from ...record import model_fingerprint
from ...score import get_scorers
from ...serialize import cached_result
from . import claims, steps
from .claims import arm_effects
from .config import ToxicityConfig, _selected, check, check_layer
from .report import ToxicityReport, _source
from .steps import (
    Splits,
    _prompt_set,
    _specs,
    families,
    k_sweep,
    lee_protocol,
    power_design,
    split,
)


def pair_scorers(pair, cfg: ToxicityConfig) -> list:
    """The scorers of a run: the config's, else the two offline ones, plus the organism grammar's
    ground truth where the pair is an organism."""
    if cfg.scorers is not None:
        return get_scorers(list(cfg.scorers))
    out = get_scorers(None)
    if "organism" in pair.info:

        out.append(GrammarScorer())
    return out


#: Modules whose code computes the locate and compare steps: part of their cache keys.
STEP_CODE = (*MEASURE_CODE, "interp.reproduce.toxicity.config", "interp.reproduce.toxicity.steps", "interp.diff", "interp.directions", "interp.locate",
             "interp.neurons", "interp.record", "interp.stats", "interp.io")


#: Config fields that only the later steps read (where, reactivate, findings): not inputs of locate
#: or compare, so changing a family, its doses or the claims' alpha re-runs only what they feed.
LATER_ONLY = ("families", "lee_k", "stability_samples", "neuron_groups", "k_sweep_samples", "pareto",
              "pareto_samples", "scale_doses", "clamp_doses", "offset_doses", "direction_doses", "ppl_budget",
              "lee_factor", "lee_protocol", "lee_max_new_tokens", "alpha", "per_layer_location", "patching", "where_samples",
              "patch_per_layer")


def _step_key(step: str, pair, s: Splits, cfg: ToxicityConfig, scorers, **extra) -> str:
    """Everything a step's result depends on: both models' weights, every split's prompts, the
    config (but the pair's name: the weights stand for it; and :data:`LATER_ONLY`), the scorers,
    the code and the libraries that run the models."""
    from importlib.metadata import version

    return stable_hash({
        "step": step, "base": model_fingerprint(pair.base), "aligned": model_fingerprint(pair.aligned),
        "splits": {f.name: hash_texts(v) if isinstance(v, list) else v
                   for f in dataclasses.fields(s) for v in [getattr(s, f.name)]},
        "cfg": {f.name: repr(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)
                if f.name != "pair" and f.name not in LATER_ONLY},
        "scorers": [sc.name for sc in scorers], "extra": _field_key(extra),
        "code": code_hash(STEP_CODE), "torch": torch.__version__,
        "transformer_lens": version("transformer-lens")}, 24)


def _cached_step(step: str, pair, s: Splits, cfg: ToxicityConfig, scorers, fn, *, log=None, **extra):
    """``fn()``, or its result read back from ``<cache>/steps/toxicity-<step>/`` when every input
    is the same (:func:`_step_key`) — a resumed real-weight run skips its recordings. Off under
    torchrun with several processes (each rank would decide alone whether to compute)."""
    if distributed.world()[1] > 1:
        return fn()
    path = cache_dir() / "steps" / f"toxicity-{step}" / _step_key(step, pair, s, cfg, scorers, **extra)
    from ...serialize import paths

    if paths(path)[0].exists() and log is not None:
        log(f"      (read back from {path})")
    return cached_result(path, fn)


def run(cfg: ToxicityConfig, *, pair=None, data: PromptSet | Mapping | None = None, scorers=None,
        neurons: Neurons | None = None, progress: bool = True, log=print) -> ToxicityReport:
    """Run every step on a pair; returns a :class:`ToxicityReport`. ``scorers`` (objects or
    names; the first is primary) override the pair's own."""

    check(cfg)
    t0 = time.time()
    timings = {}
    torch.manual_seed(cfg.seed)
    pair = pair if pair is not None else load_pair(cfg.pair)
    check_layer(cfg, pair.cfg.n_layers)
    data = _prompt_set(pair, data).require("heldout_neutral", why="perplexity texts")
    scorers = get_scorers(list(scorers)) if scorers is not None else pair_scorers(pair, cfg)
    names = [s.name for s in scorers]
    s = split(data, cfg)
    log(f"[0/5] splits: {s.info()}; scorers: {', '.join(names)}")
    design = None
    if cfg.power_target is not None:
        t = time.time()
        design = power_design(pair, s, cfg, scorers, progress=progress)
        timings["design_s"] = time.time() - t
        s = dataclasses.replace(s, test=s.test[:design.n_prompts])
        cfg = dataclasses.replace(cfg, n_test_samples=design.n_samples)
        est = f", ≈ {design.est_seconds / 60:.0f} min of test arms" if design.est_seconds else ""
        log(f"[0/5] power design on dev ({design.dev}): test = {design.n_prompts} prompts × "
            f"{design.n_samples} samples per arm{est}" + ("" if design.met else " (target not reachable)"))

    def step(i, label, fn):
        log(f"[{i}/5] {label}")
        t = time.time()
        out = fn()
        timings[f"{label.split()[0].rstrip(':')}_s"] = time.time() - t
        return out

    loc = step(1, "locate: probes and value vectors", lambda: _cached_step(
        "locate", pair, s, cfg, scorers, lambda: steps.locate(pair, s, cfg, scorers, neurons=neurons, progress=progress),
        log=log, neurons=neurons))
    cmp = step(2, "compare: weights, keys and the residual offset, against nulls", lambda: _cached_step(
        "compare", pair, s, cfg, scorers, lambda: steps.compare(pair, s, loc, cfg, scorers), log=log,
        neurons=neurons))
    wh = step(3, "where the change lives: weight groups and activation patching",
              lambda: steps.where(pair, s, cfg, scorers, loc, progress=progress))
    fams = [f for f in families(pair, loc, cmp, cfg) if _selected(f.name, cfg)]
    re = step(4, "reactivate: doses chosen on dev, measured on test",
              lambda: steps.reactivate(pair, s, cfg, scorers, fams, progress=progress))
    ksw = None
    if cfg.k_sweep:
        ksw = step(4, "k-sweep: Lee et al.'s operation on the top k, random-k controls (test)",
                   lambda: k_sweep(pair, s, cfg, scorers, loc, progress=progress))
    front = None
    if cfg.pareto:
        front = step(4, "Pareto: every family's doses on test, share undone against KL on neutral text",
                     lambda: steps.pareto(pair, s, cfg, scorers, fams, re.arms, progress=progress))
    stab = None
    if cfg.n_stability:
        stab = step(4, "locate resamples: Lee et al.'s edit on each resample's top keys (test)",
                    lambda: steps.stability_undone(pair, s, cfg, scorers, loc, progress=progress))
    lee = None
    if cfg.lee_protocol:
        log(f"[4/5] Lee et al.'s protocol: greedy ≤ {cfg.lee_max_new_tokens} tokens, mean score")
        lee = lee_protocol(pair, s, cfg, scorers, next(f for f in fams if f.name == "lee_scale_keys"),
                           progress=progress)
    spec = _specs(cfg, s)["test"]
    test = {"base": measure(pair.base, spec, scorers=scorers, label="base"),
            "aligned": measure(pair.aligned, spec, scorers=scorers, label="aligned")}
    kap = {n: stats.kappa(test["base"].flags(names[0]), test["base"].flags(n)) for n in names[1:]}
    grp = edits = None
    if cfg.neuron_groups:
        grp = step(4, "neuron groups: the probe projection's change split into neurons (Yang et al.)",
                   lambda: steps.neuron_groups(pair, s, cfg, loc, test["base"], progress=progress))
        edits = step(4, "group edits: each group's activations patched both ways (test, where_samples per prompt)",
                     lambda: group_edits(pair, steps._test_at(cfg, s, cfg.where_samples or spec.n_samples), grp,
                                         scorers, progress=progress))
    report = ToxicityReport(
        config=cfg, pair=cfg.pair if isinstance(cfg.pair, str) else pair.name,
        models={"base": _source(pair.base.cfg.model_name), "aligned": _source(pair.aligned.cfg.model_name),
                "architecture": pair.cfg.architecture, "n_layers": pair.cfg.n_layers,
                "d_model": pair.cfg.d_model, "d_mlp": pair.cfg.d_mlp, "gated": H.is_gated(pair.base)},
        scorers=names, splits=s, located=loc, compared=cmp, where=wh, reactivation=re, test=test,
        effects=arm_effects(re.arms, test["base"], test["aligned"], names, cfg), findings=[], kappa=kap,
        timings=timings, lee=lee, design=design, k_sweep=ksw, stability_undone=stab, groups=grp, group_edits=edits, pareto=front)
    org = pair.info.get("organism") or pair.info.get("real")
    if org:
        report.provenance = {k: v for k, v in org.items() if k not in ("align_log", "config", "base_dir")}
    log("[5/5] findings")
    report.findings = claims.findings(report)
    timings["total_s"] = time.time() - t0
    return report
