"""``interp reproduce instruction``: where instruction alignment shifts the model, how shallow the
shift is, and how little it takes — on the instruction organism (``organism:<size>:instruct``).

The pair: a base pretrained with run-on Q/A pages and its SFT to answer politely and stop
(:mod:`interp.organism.instruct`). Measured on the *test* people's questions (never seen in
alignment, nor any question about them), greedy, every arm on the same questions:

1. **token shift** (Lin et al., 2023): where the base ranks the SFT model's tokens — the three
   shares, by token type (end of sequence, openers, connectives, punctuation, function and
   content words), and the per-position KL(SFT ‖ base) (Qi et al., 2025: is alignment only a
   few tokens deep?);
2. **how little it takes** (Zhou et al. 2023; Hewitt et al. 2024; Lin et al. 2023): SFT on 10 /
   100 / 1,000 examples against SFT on all of them; clean against noisy answers at equal count;
   response tuning (the answers alone); the base with Hewitt et al.'s three rules (fitted on
   alignment questions); the base with three in-context examples (URIAL). Each is scored by
   instruction following (:func:`interp.organism.instruct.follows`) and by how many of the SFT
   model's tokens it ranks first.

Every claim is judged by a criterion fixed in :func:`findings` before the run, with an effect
size: shares against a threshold, "nearly matches" as a non-inferiority test (the arm reaches at
least ``1 − margin`` of the SFT model's gain over the base, one-sided, paired by person),
paired differences per person (a person's questions share their fact, so people are the
clusters the intervals resample), Holm across the claims, ``--seeds`` rebuilding the organism
(and every arm) per seed.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats as _st

from .. import stats
from ..attribution import locate_change
from ..evaluate import token_losses
from ..findings import Finding, finalize, findings_table
from ..io import read_json
from ..organism.build import base_dir_of, build_organism, load_questions, parse_spec
from ..organism.following import InstructionEval, instruction_following
from ..organism.instruct import Question, clean_answer, urial_template
from ..organism.presets import instruct_preset
from ..organism.selfalign import sample_answers
from ..pair import Pair, load_model, load_pair
from ..shift import TokenShift, fit_adapter, token_shift
from .report import write_report
from .token_shift import LIN_ET_AL, share_intervals, urial_shots

#: Token types whose shift Lin et al. call stylistic.
STYLISTIC = ("eos", "opener", "connective", "punctuation")


@dataclass
class InstructionConfig:
    pair: str = "organism:small:instruct"
    amounts: tuple[int, ...] = (10, 100, 1000)  # SFT arms on that many alignment examples
    noisy_n: int = 1000  # clean vs noisy at this count
    noisy_share: float = 0.5  # share of defective answers in the noisy arm
    n_shots: int = 3  # URIAL's in-context examples
    n_fit: int = 300  # alignment questions the rules are fitted on
    max_new_tokens: int = 24
    shallow_steps: int = 3  # "the first few response tokens" (Qi et al.)
    margin: float = 0.1  # non-inferiority: an arm "nearly matches" if it reaches ≥ 1 − margin of SFT's gain
    judges: tuple[str, ...] = ("external", "self", "gold")  # DPO on the base's own answers, per judge
    k_base: int = 8  # base samples per question for "what alignment cannot add"
    n_locate: int = 120  # test questions the weight-group attribution measures on
    unknown_margin: float = 0.05  # "gains nothing": the gain's upper 95% bound stays below this
    seed: int = 0


#: Each measurement profile's changes to the defaults: the tiny organism has 126 alignment questions.
PRESETS: dict[str, dict] = {"organism-tiny": dict(amounts=(10, 50), noisy_n=50, n_fit=40, n_shots=2, n_locate=40)}


def config_for(pair: str, **overrides) -> InstructionConfig:
    from ..registry import profile_of

    return dataclasses.replace(InstructionConfig(pair=pair), **{**PRESETS.get(profile_of(pair), {}), **overrides})


@dataclass
class Arm:
    """One way of getting instruction following, measured on the test questions."""

    name: str
    description: str
    eval: InstructionEval
    shift_vs_sft: dict  # unshifted/marginal/shifted shares (95% CIs) of the SFT model's tokens under this arm
    n_examples: int | None = None


@dataclass
class InstructionReport:
    config: InstructionConfig
    shift: TokenShift  # base vs SFT (all examples)
    arms: dict[str, Arm]
    findings: list[Finding]
    meta: dict = field(default_factory=dict)
    location: dict = field(default_factory=dict)  # arm -> weight-group attribution (ChangeLocation as dict)
    cannot_add: dict = field(default_factory=dict)  # what alignment cannot add (see :func:`cannot_add`)


def _people(ev: InstructionEval, name: str = "follows") -> tuple[list[str], np.ndarray]:
    per = ev.per_entity(name)
    people = sorted(per)
    return people, np.array([per[p] for p in people])


def _shift_vs(pair, reference, prompts: list[str], cfg: InstructionConfig, **kw) -> dict:
    ts = token_shift(pair, prompts, max_new_tokens=cfg.max_new_tokens, reference=reference, **kw)
    return share_intervals(ts, len(prompts), cfg.seed)


def run(cfg: InstructionConfig, *, pair=None, log=print) -> InstructionReport:
    timings: dict[str, float] = {}
    t0 = time.time()
    pair = pair if pair is not None else load_pair(cfg.pair)
    manifest = pair.info.get("organism", {})
    if manifest.get("method") != "instruct":
        raise ValueError(f"{cfg.pair}: not an instruction organism (use organism:<size>:instruct)")
    size, _, seed = parse_spec(cfg.pair)
    qs: list[Question] = load_questions(base_dir_of(manifest))
    test = [q for q in qs if q.split == "test"]
    align = [q for q in qs if q.split == "align"]
    prompts = [q.prompt for q in test]
    eos_text = pair.tokenizer.eos_token or ""
    timings["load_s"] = time.time() - t0

    log(f"[1/3] token shift: the SFT model's greedy answers to {len(test)} test questions, ranked by the base")
    t = time.time()
    ts = token_shift(pair, prompts, max_new_tokens=cfg.max_new_tokens)
    timings["token_shift_s"] = time.time() - t

    log("[2/3] arms: the base, in-context examples, rules, SFT on less or noisier data, response tuning")
    t = time.time()
    arms: dict[str, Arm] = {}

    def add(name, desc, model, *, template=None, processor=None, n=None):
        ev = instruction_following(model, test, template=template, logits_processor=processor,
                                   max_new_tokens=cfg.max_new_tokens)
        sh = _shift_vs(pair, model, prompts, cfg, processor=processor, reference_template=template)
        arms[name] = Arm(name, desc, ev, sh, n)

    add("base", "the base model, plain prompt", pair.base)
    shots = urial_shots(align, pair.tokenizer, cfg.n_shots, cfg.seed)
    add("base + URIAL", f"the base with {cfg.n_shots} in-context alignment examples (Lin et al.)", pair.base,
        template=urial_template(shots, eos_text))
    fit_prompts = [q.prompt for q in align][: cfg.n_fit]
    adapter, fit = fit_adapter(pair, fit_prompts, max_new_tokens=cfg.max_new_tokens)
    add("base + rules", f"the base with Hewitt et al.'s three rules, fitted on {len(fit_prompts)} alignment "
        f"questions (EOS slope {adapter.eos_slope:g}, +{adapter.boost:g} on {len(adapter.boost_tokens)} tokens, "
        f"repetition penalty {adapter.repeat_penalty:g})", pair.base, processor=adapter)

    def variant(label, desc, n=None, **instruct):
        oc = instruct_preset(size, seed, n_examples=n, **instruct)
        folder = build_organism(size, config=oc, progress=False, log=log)
        add(label, desc, load_model(str(folder / "model"), name=f"{cfg.pair}:{label}"), n=n)

    n_all = len(align)
    for n in cfg.amounts:
        if n < n_all:
            variant(f"SFT {n}", f"SFT on {n} alignment examples (same steps)", n)
    add("SFT all", f"SFT on all {n_all} alignment examples (the pair's aligned model)", pair.aligned, n=n_all)
    if f"SFT {cfg.noisy_n}" not in arms:
        variant(f"SFT {cfg.noisy_n}", f"SFT on {cfg.noisy_n} alignment examples (same steps)", cfg.noisy_n)
    variant(f"SFT {cfg.noisy_n} noisy", f"SFT on {cfg.noisy_n} examples, {cfg.noisy_share:.0%} defective "
            "(wrong answer, no opener, or running on)", cfg.noisy_n, noisy=cfg.noisy_share)
    variant("response tuning", f"SFT on the {n_all} answers alone, after 'A:' (Hewitt et al.)", None,
            response_only=True)
    timings["arms_s"] = time.time() - t

    log("[3/5] self-alignment: DPO on the base's own answers, judged from outside and by its own residual stream")
    t = time.time()
    judges, dpo_models = {}, {}
    for judge in cfg.judges:
        oc = instruct_preset(size, seed, judge=judge)
        folder = build_organism(size, config=oc, progress=False, log=log)
        label = f"DPO, {judge} judge"
        dpo_models[label] = load_model(str(folder / "model"), name=f"{cfg.pair}:{label}")
        judges[judge] = read_json(folder / "manifest.json")["pairs"]
        add(label, f"DPO on {judges[judge]['n_pairs']} pairs of the base's own answers, best over worst by the "
            f"{judge} judge", dpo_models[label])
    loc_qs = test[: cfg.n_locate]
    location = {}
    for label, model in [("SFT all", pair.aligned)] + [(k, v) for k, v in dpo_models.items()
                                                      if k in ("DPO, external judge", "DPO, self judge")]:
        sub = Pair(pair.base, model, name=label)
        location[label] = asdict(locate_change(
            sub, lambda m: -instruction_following(m, loc_qs, max_new_tokens=cfg.max_new_tokens).rate(),
            measure_name="− follows", progress=False))
    timings["self_align_s"] = time.time() - t

    log("[4/5] what alignment cannot add: the base's own samples and likelihood of the aligned answers")
    t = time.time()
    cannot = cannot_add(pair, test, align, {k: v for k, v in [("SFT all", pair.aligned), *dpo_models.items()]},
                        arms, cfg)
    timings["cannot_add_s"] = time.time() - t

    log("[5/5] claims")
    report = InstructionReport(cfg, ts, arms, [], {
        "pair": cfg.pair, "n_test_questions": len(test), "n_test_people": len({q.entity for q in test}),
        "n_align_questions": n_all, "adapter_fit": fit, "shots": shots, "judges": judges,
        "timings": timings}, location, cannot)
    report.findings = findings(report)
    timings["total_s"] = time.time() - t0
    return report


def _content(text: str) -> str:
    """An answer's content: its first sentence after an opener (what it says, not how)."""
    from ..organism.following import _OPENER_PREFIXES, _sentences

    sents = _sentences(text)
    if sents and sents[0].lower().startswith(_OPENER_PREFIXES):
        sents = sents[1:]
    return sents[0] if sents else ""


def _logprob_per_token(model, prompts: list[str], continuations: list[str]) -> np.ndarray:
    """Mean log-probability per token the model gives each continuation after its prompt."""
    full, n_full = token_losses(model, [p + c for p, c in zip(prompts, continuations)])
    pre, n_pre = token_losses(model, prompts)
    n = (n_full - n_pre).clamp(min=1)
    return (-(full - pre) / n).double().numpy()


def cannot_add(pair, test: list[Question], align: list[Question], models: dict, arms: dict[str, Arm],
               cfg: InstructionConfig) -> dict:
    """What alignment cannot add, on the base's own terms.

    * per test question, whether each aligned model's greedy answer content (first sentence after
      an opener) is among the contents of ``k_base`` samples of the base, and the base's mean
      log-probability per token of that answer (end of sequence included where it stopped),
      beside the base's log-probability of the reference answer (opener + answer sentence);
    * on the *alignment* questions whose fact the base never names correctly in ``k_base``
      samples ("never produced") and on the others, each model's greedy correctness — the gold
      judge's DPO could prefer a right answer only where the base produced one.
    """
    import random

    eos = pair.tokenizer.eos_token or ""
    base_s = sample_answers(pair.base, test, k=cfg.k_base, seed=cfg.seed + 11, max_new_tokens=cfg.max_new_tokens)
    contents = [{_content(r) for r in base_s.responses[j * cfg.k_base:(j + 1) * cfg.k_base]} for j in range(len(test))]
    prompts = [q.prompt for q in test]
    rng = random.Random(cfg.seed + 12)
    ref = [clean_answer(q, rng) + eos for q in test]
    out = {"k_base": cfg.k_base, "base_sample_follows": float(base_s.truth["follows"].mean()),
           "reference_logprob": _logprob_per_token(pair.base, prompts, ref).tolist(), "models": {}}
    for label in models:
        ev = arms[label].eval
        conts = [r + (eos if st else "") for r, st in zip(ev.responses, ev.stopped)]
        out["models"][label] = {
            "within_base_samples": [(_content(r) in c) and bool(_content(r)) for r, c in zip(ev.responses, contents)],
            "logprob": _logprob_per_token(pair.base, prompts, conts).tolist()}
    align_s = sample_answers(pair.base, align, k=cfg.k_base, seed=cfg.seed + 13, max_new_tokens=cfg.max_new_tokens)
    produced = [bool(align_s.truth["correct"][j * cfg.k_base:(j + 1) * cfg.k_base].any()) for j in range(len(align))]
    out["align_produced"] = produced
    out["align_people"] = [q.entity for q in align]
    out["align_correct"] = {"base": instruction_following(pair.base, align, max_new_tokens=cfg.max_new_tokens)
                            .criteria["correct"].tolist()}
    for label, model in models.items():
        out["align_correct"][label] = instruction_following(model, align, max_new_tokens=cfg.max_new_tokens
                                                            ).criteria["correct"].tolist()
    return out


def _by_person(values, people, mask=None) -> dict[str, float]:
    out: dict[str, list] = {}
    for v, p, m in zip(values, people, mask if mask is not None else [True] * len(people)):
        if m:
            out.setdefault(p, []).append(float(v))
    return {p: float(np.mean(v)) for p, v in out.items()}


# ---- claims -----------------------------------------------------------------------------------

def _wald_p(e: stats.Estimate, null: float = 0.0) -> float:
    """One-sided p that the statistic exceeds ``null``, from its bootstrap standard error (used
    where the statistic is a ratio of sums over prompts and no permutation test applies)."""
    if not (e.se and math.isfinite(e.se)) or e.se <= 0:
        return 0.0 if e.value > null else 1.0
    return float(_st.norm.sf((e.value - null) / e.se))


def stylistic_excess(ts: TokenShift, n_prompts: int, seed: int = 0) -> stats.Estimate:
    """Shifted rate among stylistic positions (:data:`STYLISTIC`) minus the shifted rate among
    the other positions, with a 95% interval resampling prompts."""
    p = ts.prompt.cpu().numpy()
    shifted = (ts.rank > 3).cpu().numpy()
    sty = np.array([t in STYLISTIC for t in ts.type], bool)
    c = lambda m: np.bincount(p[m], minlength=n_prompts).astype(float)  # noqa: E731
    arrays = (c(shifted & sty), c(sty), c(shifted & ~sty), c(~sty))

    def stat(a, b, x, y, axis=-1):
        with np.errstate(divide="ignore", invalid="ignore"):
            return a.sum(axis) / b.sum(axis) - x.sum(axis) / y.sum(axis)

    value = float(stat(*arrays))
    if not math.isfinite(value):
        return stats.Estimate(value, value, value, float("nan"), n_prompts)
    lo, hi, se = stats._ci(arrays, stat, seed, 0.95)
    return stats.Estimate(value, lo, hi, se, n_prompts)


def shallow_excess(ts: TokenShift, n_prompts: int, k: int, seed: int = 0) -> tuple[stats.Estimate, float]:
    """Per prompt, mean KL over the first ``k`` response positions minus twice the mean over the
    later ones (prompts with both), paired; > 0 means the first few carry ≥ 2× the KL of the rest.
    Also returns the ratio of the two means."""
    p, s, kl = ts.prompt.cpu().numpy(), ts.step.cpu().numpy(), ts.kl.double().cpu().numpy()
    early, late = [], []
    for i in range(n_prompts):
        m = p == i
        e, la = kl[m & (s < k)], kl[m & (s >= k)]
        if len(e) and len(la):
            early.append(e.mean())
            late.append(la.mean())
    early, late = np.array(early), np.array(late)
    if not len(early):
        nan = float("nan")
        return stats.Estimate(nan, nan, nan, nan, 0), nan
    est = stats.paired_difference(early, 2 * late, seed=seed)
    return est, float(early.mean() / late.mean()) if late.mean() > 0 else float("inf")


def non_inferior(arm: np.ndarray, sft: np.ndarray, base: np.ndarray, margin: float, seed: int) -> tuple[stats.Estimate, stats.Estimate]:
    """Non-inferiority of an arm to SFT, per person: H1 ``mean(sft − arm) < margin × mean(sft − base)``
    (one-sided permutation test on ``arm + δ − sft``). Returns (that test, the share of SFT's gain
    over the base the arm reaches, with its CI)."""
    delta = margin * float(sft.mean() - base.mean())
    test = stats.paired_difference(arm + delta, sft, seed=seed)
    share = stats.share_of_effect(arm, base, sft, seed=seed)
    return test, share


def findings(r: InstructionReport) -> list[Finding]:
    cfg, ts, arms = r.config, r.shift, r.arms
    n = r.meta["n_test_questions"]
    out = []
    sh = share_intervals(ts, n, cfg.seed)
    u = stats.Estimate.from_dict(sh["unshifted"])
    out.append(Finding(
        "shift_few", "most of the aligned model's tokens are the base's first choice",
        f"{LIN_ET_AL['unshifted']:.1%} unshifted", "unshifted share ≥ 50% (one-sided, 95% interval over prompts)",
        f"unshifted {u.fmt('.3f')}, marginal {sh['marginal']['value']:.3f}, shifted {sh['shifted']['value']:.3f} "
        f"(n = {n} prompts, {len(ts)} positions)",
        {"any": u.value >= 0.5}, p=_wald_p(u, 0.5), effect=u))
    sty = stylistic_excess(ts, n, cfg.seed)
    by = ts.shares_by_type()
    shifted_sty = sum(by[t]["shifted"] * by[t]["n"] for t in STYLISTIC if t in by)
    n_shifted = max(int((ts.rank > 3).sum()), 1)
    out.append(Finding(
        "shift_stylistic", "the shifted tokens are stylistic: openers, connectives, end of sequence",
        "mostly stylistic", "shifted rate at stylistic positions − at the others ≥ 0.20 (95% CI over prompts)",
        f"shifted rate stylistic − other {sty.fmt()}; {shifted_sty / n_shifted:.0%} of shifted positions are "
        "stylistic; by type: " + ", ".join(f"{t} {v['shifted']:.2f} (n={v['n']})" for t, v in by.items()),
        {"any": sty.value >= 0.20}, p=_wald_p(sty), effect=sty))
    sh_est, ratio = shallow_excess(ts, n, cfg.shallow_steps, cfg.seed)
    out.append(Finding(
        "shallow", f"KL(aligned ‖ base) concentrates on the first {cfg.shallow_steps} response tokens",
        "Qi et al.: a few tokens deep",
        f"mean KL over the first {cfg.shallow_steps} positions ≥ 2 × over later ones (paired by prompt)",
        f"mean KL first {cfg.shallow_steps} / later = {ratio:.2f}; first − 2 × later {sh_est.fmt()}",
        {"any": ratio >= 2.0}, p=sh_est.p, effect=sh_est))
    people, sft = _people(arms["SFT all"].eval)
    base = np.array([arms["base"].eval.per_entity()[p] for p in people])

    def arm_vals(name):
        per = arms[name].eval.per_entity()
        return np.array([per[p] for p in people])

    for key, name, anchor, claim in (
            ("lima", f"SFT {cfg.amounts[-1]}", "Zhou et al. (LIMA): 1,000 examples suffice",
             f"SFT on {cfg.amounts[-1]} examples nearly matches SFT on all"),
            ("response_tuning", "response tuning", "Hewitt et al.: response tuning follows instructions",
             "response tuning (answers only) nearly matches SFT"),
            ("rules", "base + rules", "Hewitt et al.: three rules on the base",
             "three hand rules on the base nearly match SFT"),
            ("urial", "base + URIAL", "Lin et al. (URIAL): in-context examples come close",
             f"{cfg.n_shots} in-context examples on the base nearly match SFT")):
        if name not in arms:
            continue
        test, share = non_inferior(arm_vals(name), sft, base, cfg.margin, cfg.seed)
        out.append(Finding(
            key, claim, anchor,
            f"reaches ≥ {1 - cfg.margin:.0%} of SFT's gain over the base in instruction following "
            "(non-inferiority, one-sided, paired by person)",
            f"follows {arms[name].eval.rate():.3f} vs SFT {arms['SFT all'].eval.rate():.3f}, base "
            f"{arms['base'].eval.rate():.3f}; share of SFT's gain {share.fmt('.2f')} (n = {len(people)} people)",
            {"any": bool(share.value >= 1 - cfg.margin)}, p=test.p, effect=share))
    clean, noisy = f"SFT {cfg.noisy_n}", f"SFT {cfg.noisy_n} noisy"
    if clean in arms and noisy in arms:
        d = stats.paired_difference(arm_vals(clean), arm_vals(noisy), seed=cfg.seed)
        out.append(Finding(
            "quality", "quality beats quantity: clean answers beat noisy ones at equal count",
            "Zhou et al. (LIMA): quality matters",
            "follows(clean) − follows(noisy) ≥ 0.05 at equal count (paired by person)",
            f"{arms[clean].eval.rate():.3f} vs {arms[noisy].eval.rate():.3f}: Δ {d.fmt()} "
            f"(correct: {arms[clean].eval.rate('correct'):.3f} vs {arms[noisy].eval.rate('correct'):.3f})",
            {"any": d.value >= 0.05}, p=d.p, effect=d, mde=stats.min_detectable(d.se)))
    ext, slf = "DPO, external judge", "DPO, self judge"
    if ext in arms and slf in arms:
        test, share = non_inferior(arm_vals(slf), arm_vals(ext), base, cfg.margin, cfg.seed)
        j = r.meta.get("judges", {}).get("self", {})
        out.append(Finding(
            "self_align", "a model judged by its own residual stream aligns itself nearly as well as an outside judge",
            "Self-Rewarding LMs: self-judged preferences improve the model",
            f"self-judged DPO reaches ≥ {1 - cfg.margin:.0%} of externally judged DPO's gain over the base "
            "(non-inferiority, one-sided, paired by person)",
            f"follows {arms[slf].eval.rate():.3f} (self) vs {arms[ext].eval.rate():.3f} (external), base "
            f"{arms['base'].eval.rate():.3f}; share {share.fmt('.2f')}; the self judge's ρ with the ground truth "
            f"{j.get('judge_spearman', float('nan')):.2f} on answers it was not fitted on",
            {"any": bool(share.value >= 1 - cfg.margin)}, p=test.p, effect=share))
    ca = r.cannot_add
    gold = "DPO, gold judge"
    if ca and gold in ca.get("align_correct", {}):
        never = [not x for x in ca["align_produced"]]
        pe = ca["align_people"]
        who = sorted(_by_person(never, pe, never))

        def corr(label):
            d = _by_person(ca["align_correct"][label], pe, never)
            return np.array([d[p] for p in who])

        b = corr("base")
        if len(who) >= 2:
            g = corr(gold)
            eq = stats.paired_difference(b + cfg.unknown_margin, g, seed=cfg.seed)
            gain = stats.paired_difference(g, b, alternative="two-sided", seed=cfg.seed)
            out.append(Finding(
                "dpo_no_new_facts", "DPO on the model's own answers cannot teach a fact it never produces",
                "RL only raises what the model can already produce",
                f"on alignment questions whose answer none of the base's {ca['k_base']} samples names, the gold-judged "
                f"DPO's gain in correct answers stays below {cfg.unknown_margin} (upper 95% bound; one-sided test, "
                "paired by person)",
                f"correct {g.mean():.3f} vs base {b.mean():.3f}: gain {gain.fmt()} ({len(who)} people, "
                f"{sum(never)} questions never produced)",
                {"any": bool(gain.hi < cfg.unknown_margin)}, p=eq.p, effect=gain))
            sf = corr("SFT all")
            d = stats.paired_difference(sf, b, seed=cfg.seed)
            out.append(Finding(
                "sft_new_facts", "SFT on the answers does teach them",
                "SFT adds what RL cannot", "SFT's gain in correct answers on the same questions ≥ 0.10 (paired by person)",
                f"correct {sf.mean():.3f} vs base {b.mean():.3f}: gain {d.fmt()}",
                {"any": d.value >= 0.10}, p=d.p, effect=d))
        if ext in ca["models"] and "SFT all" in ca["models"]:
            w_ext = np.array(ca["models"][ext]["within_base_samples"], float)
            w_sft = np.array(ca["models"]["SFT all"]["within_base_samples"], float)
            tp = [q.entity for q in arms["base"].eval.questions]
            de, ds = _by_person(w_ext, tp), _by_person(w_sft, tp)
            ppl = sorted(de)
            d = stats.paired_difference(np.array([de[p] for p in ppl]), np.array([ds[p] for p in ppl]), seed=cfg.seed)
            out.append(Finding(
                "dpo_within_base", "DPO's answers are ones the base already produces; SFT's less so",
                "RL only raises what the model can already produce",
                f"share of answers whose content is among {ca['k_base']} base samples: DPO (external judge) − SFT ≥ 0.10 "
                "(paired by person)",
                f"DPO {w_ext.mean():.3f} vs SFT {w_sft.mean():.3f}: Δ {d.fmt()}; base log-prob per token of the "
                f"answers: DPO {np.mean(ca['models'][ext]['logprob']):.2f}, SFT {np.mean(ca['models']['SFT all']['logprob']):.2f}, "
                f"reference {np.mean(ca['reference_logprob']):.2f}",
                {"any": d.value >= 0.10}, p=d.p, effect=d))
    for f in out:
        if f.mde is None and f.effect is not None and math.isfinite(f.effect.se) and f.effect.se > 0:
            f.mde = stats.min_detectable(f.effect.se)
    return finalize(out)


# ---- output -----------------------------------------------------------------------------------

def arms_table(r: InstructionReport) -> list[dict]:
    """Per arm: its instruction-following rates (95% CIs over people) and its token shift vs SFT."""
    rows = []
    for a in r.arms.values():
        _, v = _people(a.eval)
        rows.append({"arm": a.name, "description": a.description, "n_examples": a.n_examples,
                     "follows": stats.mean(v, seed=r.config.seed).to_dict(),
                     **{k: a.eval.rate(k) for k in ("answers", "stops", "correct", "opener")},
                     "unshifted_vs_sft": a.shift_vs_sft["unshifted"],
                     "examples": a.eval.responses[:3]})
    return rows


def to_json(r: InstructionReport) -> dict:
    n = r.meta["n_test_questions"]
    ts = r.shift
    return {"config": asdict(r.config), "pair": r.meta["pair"], "lin_et_al": LIN_ET_AL,
            "token_shift": {"shares": ts.shares(), "share_intervals": share_intervals(ts, n, r.config.seed),
                            "by_type": ts.shares_by_type(), "position_profile": ts.position_profile(),
                            "kl_profile": ts.kl_profile(seed=r.config.seed), "top_shifted": ts.top_shifted(20),
                            "examples": ts.completions[:8]},
            "arms": arms_table(r), "findings": [f.to_dict() for f in r.findings],
            "location": r.location, "cannot_add": r.cannot_add,
            "meta": {k: v for k, v in r.meta.items() if k != "timings"}, "timings": r.meta["timings"]}


def to_markdown(r: InstructionReport) -> str:
    j = to_json(r)
    t = j["token_shift"]
    ci = t["share_intervals"]

    def pct(e):
        return f"{e['value']:.1%} [{e['lo']:.1%}, {e['hi']:.1%}]"

    m = r.meta
    lines = [f"# Instruction alignment: {m['pair']} (seed {r.config.seed})", "",
             f"{m['n_test_questions']} test questions about {m['n_test_people']} people never seen in "
             f"alignment ({m['n_align_questions']} alignment questions); greedy, ≤ {r.config.max_new_tokens} tokens. "
             "Brackets: 95% intervals resampling prompts (token shift) or people (instruction following).", "",
             "## Claims", "", findings_table(r.findings, scorers=["any"], paper="the literature")
             .replace("| any |", "| criterion met |"), "",
             "## Token shift: the SFT model's tokens ranked by the base", "",
             "| comparison | unshifted | marginal | shifted |", "|---|---|---|---|",
             f"| Lin et al.: Llama-2-7b vs -chat | {LIN_ET_AL['unshifted']:.1%} | {LIN_ET_AL['marginal']:.1%} | {LIN_ET_AL['shifted']:.1%} |",
             f"| base vs SFT | {pct(ci['unshifted'])} | {pct(ci['marginal'])} | {pct(ci['shifted'])} |", "",
             "| token type | unshifted | marginal | shifted | positions |", "|---|---|---|---|---|"]
    for k, v in t["by_type"].items():
        lines.append(f"| {k} | {v['unshifted']:.1%} | {v['marginal']:.1%} | {v['shifted']:.1%} | {v['n']} |")
    kp = t["kl_profile"]
    lines += ["", "Per-position KL(SFT ‖ base) (mean over prompts that reached the position, 95% CI):", "",
              "| position | " + " | ".join(str(s) for s in kp["step"][:16]) + " |",
              "|---|" + "---|" * len(kp["step"][:16]),
              "| KL | " + " | ".join(f"{k:.2f}" for k in kp["kl"][:16]) + " |",
              "| 95% CI | " + " | ".join(f"[{lo:.2f}, {hi:.2f}]" for lo, hi in zip(kp["lo"][:16], kp["hi"][:16])) + " |",
              "| prompts | " + " | ".join(str(x) for x in kp["n"][:16]) + " |", "",
              "Most often shifted: " + ", ".join(f"`{tok.strip() or repr(tok)}` ({c})" for tok, c in t["top_shifted"][:12]),
              "", "## How little it takes", "",
              "| arm | follows (answers and stops) | answers | stops | correct | opener | SFT's tokens ranked first |",
              "|---|---|---|---|---|---|---|"]
    for a in j["arms"]:
        f, u = a["follows"], a["unshifted_vs_sft"]
        lines.append(f"| {a['arm']} ({a['description']}) | {f['value']:.3f} [{f['lo']:.3f}, {f['hi']:.3f}] | "
                     f"{a['answers']:.3f} | {a['stops']:.3f} | {a['correct']:.3f} | {a['opener']:.3f} | "
                     f"{pct(u)} |")
    judges = m.get("judges", {})
    if judges:
        lines += ["", "## Self-alignment: DPO on the base's own answers", "",
                  f"Per alignment question the base samples {next(iter(judges.values()))['n_samples'] // max(m['n_align_questions'], 1)} "
                  "answers; the judge's best is preferred over its worst. The self judge is a ridge probe on the base's "
                  "last-layer residual, fitted on a few answers scored by the ground truth.", "",
                  "| judge | pairs | answers following (all samples) | chosen answers following | chosen answers correct | self judge vs ground truth |",
                  "|---|---|---|---|---|---|"]
        for k, v in judges.items():
            agree = (f"ρ {v['judge_spearman']:.2f}, orders {v['judge_pair_order_agreement']:.0%} of pairs right "
                     f"({v['judge_n_label']} labels)") if "judge_spearman" in v else ""
            lines.append(f"| {k} | {v['n_pairs']} | {v['sample_follows']:.3f} | {v['chosen_follows']:.3f} | "
                         f"{v['chosen_correct']:.3f} | {agree} |")
    if r.location:
        groups = [e["group"] for e in next(iter(r.location.values()))["effects"] if e["layer"] is None]
        lines += ["", "Where the change lives: share of each model's gain in instruction following undone by "
                  f"reverting one weight group to the base ({r.config.n_locate} test questions):", "",
                  "| model | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
        for label, loc in r.location.items():
            eff = {e["group"]: e for e in loc["effects"] if e["layer"] is None}
            lines.append(f"| {label} | " + " | ".join(f"{eff[g]['share_revert']:+.2f}" if g in eff else ""
                                                      for g in groups) + " |")
    ca = r.cannot_add
    if ca:
        lines += ["", "## What alignment cannot add", "",
                  f"| model | answer content among {ca['k_base']} base samples | base log-prob per token of its answers |",
                  "|---|---|---|"]
        for label, v in ca["models"].items():
            lines.append(f"| {label} | {np.mean(v['within_base_samples']):.3f} | {np.mean(v['logprob']):.2f} |")
        lines.append(f"| reference answers (opener + answer sentence) | | {np.mean(ca['reference_logprob']):.2f} |")
        never = [not x for x in ca["align_produced"]]
        lines += ["", f"Correct answers on alignment questions, by whether any of the base's {ca['k_base']} samples "
                  f"named the answer ({sum(never)} never, {len(never) - sum(never)} at least once):", "",
                  "| model | never produced | produced |", "|---|---|---|"]
        for label, v in ca["align_correct"].items():
            v = np.array(v, float)
            nv = np.array(never)
            lines.append(f"| {label} | {v[nv].mean() if nv.any() else float('nan'):.3f} | "
                         f"{v[~nv].mean() if (~nv).any() else float('nan'):.3f} |")
    lines += ["", "Examples (first test question):", ""]
    for a in j["arms"]:
        lines.append(f"- **{a['arm']}**: `{a['examples'][0].strip()[:100]}`")
    return "\n".join(lines) + "\n"


FIGURE_NAMES = ("instruction_arms", "instruction_shift_by_type", "instruction_kl_profile", "instruction_shift_shares")


def figures(r: InstructionReport) -> dict:
    from .. import plot

    return {"instruction_arms": plot.instruction_arms(arms_table(r), title=f"Instruction following on {r.meta['pair']}"),
            "instruction_shift_by_type": plot.shift_by_type(r.shift),
            "instruction_kl_profile": plot.kl_profile(r.shift, first=r.config.shallow_steps),
            "instruction_shift_shares": plot.shift_shares({"base vs SFT": r.shift}, reference=LIN_ET_AL,
                                                          title=f"Token shift on {r.meta['pair']}")}


_figures = figures  # write()'s flag shadows the name


def write(r: InstructionReport, out_dir: str | Path, *, figures: bool = True) -> list[Path]:
    return write_report(out_dir, "instruction", to_json(r), to_markdown(r),
                        figures=(lambda: _figures(r)) if figures else None,
                        title=f"Instruction alignment: {r.meta['pair']} (seed {r.config.seed})",
                        config=asdict(r.config))
