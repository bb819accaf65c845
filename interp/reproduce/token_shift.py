"""``interp reproduce token-shift``: Lin et al. (URIAL)'s token-distribution shift, Hewitt et al.'s
rule-based adapter, and where the shift lives — on any pair.

Writes ``token_shift.json``, ``token_shift.md`` and figures (shares, position profile, most
shifted tokens) into the output folder.

Under the verdict protocol of the toxicity work: held-out prompts are deduplicated and disjoint
from the training prompts the rules are fitted on; shares carry 95% intervals that resample
prompts (positions of one response are not independent); the share of the shift the rules close
is paired by prompt (the same prompts decoded with and without them); toxicity of base, base +
rules and aligned is measured on the same prompts and seeds under both scorers, as paired
differences.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import stats
from ..evaluate import toxicity
from ..io import write_json, write_text
from ..organism.instruct import InstructConfig, sft_examples
from ..pair import load_pair
from ..prompts import PromptSet
from ..shift import (
    URIAL_TEMPLATE,
    RuleAdapter,
    TokenShift,
    fit_adapter,
    shift_location,
    token_shift,
)
from .toxicity.steps import _prompt_set

#: Lin et al. (2023), Llama-2-7b vs Llama-2-7b-chat, greedy decoding.
LIN_ET_AL = {"unshifted": 0.777, "marginal": 0.145, "shifted": 0.078}


@dataclass
class TokenShiftConfig:
    pair: str = "organism:small"
    n_prompts: int = 200
    max_new_tokens: int = 24
    template: str | None = None  # "urial" (Lin et al.'s prompt format), a format string with {prompt}, or none
    n_boost_tokens: int = 15
    n_tox_samples: int = 2
    n_shots: int = 3  # the instruction organism's URIAL: its in-context examples
    seed: int = 0


@dataclass
class TokenShiftReport:
    config: TokenShiftConfig
    shift: TokenShift
    adapter: RuleAdapter
    adapter_shift: TokenShift
    boost_tokens: list[str]
    location: dict
    toxicity: dict
    meta: dict = field(default_factory=dict)


def run(cfg: TokenShiftConfig, *, pair=None, data: PromptSet | Mapping | None = None,
        log=print) -> TokenShiftReport:

    pair = pair if pair is not None else load_pair(cfg.pair)
    data = _prompt_set(pair, data)
    tok = pair.tokenizer
    train = list(dict.fromkeys(data.train_prompts))[: cfg.n_prompts]
    seen = set(data.train_prompts)  # held-out prompts never served fitting (nor alignment)
    ev = [p for p in dict.fromkeys(data.eval_prompts) if p not in seen][: cfg.n_prompts]
    template, ref_template = template_for(cfg.template), None
    if cfg.template == "urial" and pair.info.get("organism", {}).get("method") == "instruct":
        # The instruction organism has its own Q/A format: URIAL is its in-context examples (three
        # alignment examples, each closed by the end-of-sequence token) given to the base alone,
        # which then ranks the aligned model's answers to the plain prompts.
        template, ref_template = None, instruct_urial(pair, cfg.seed, cfg.n_shots)
    log("[1/4] token shift, aligned greedy vs base ranks")
    ts = token_shift(pair, ev, max_new_tokens=cfg.max_new_tokens, template=template,
                     reference_template=ref_template)
    # The adapter (its ~15 boosted tokens and three strengths) is fitted on *training* prompts,
    # then measured on the held-out ones.
    log("[2/4] rule-based adapter (fitted on training prompts)")
    adapter, fit = fit_adapter(pair, train, n_boost_tokens=cfg.n_boost_tokens,
                               max_new_tokens=cfg.max_new_tokens, template=template,
                               reference_template=ref_template)
    boost_ids = adapter.boost_tokens
    ats = token_shift(pair, ev, max_new_tokens=cfg.max_new_tokens, template=template, processor=adapter,
                      reference_template=ref_template)
    log("[3/4] where the shift lives")
    loc = shift_location(pair, ts)
    log("[4/4] toxicity of base, base + rules, aligned (same prompts and seeds, both scorers)")
    tox, per_prompt = {}, {}
    for label, model, proc in (("base", pair.base, None), ("base + rules", pair.base, adapter),
                               ("aligned", pair.aligned, None)):
        ev_t = toxicity(model, ev, scorer=["profanity", "lexicon"], n_samples=cfg.n_tox_samples,
                        seed=cfg.seed + 5, logits_processor=proc)
        tox[label] = asdict(ev_t.rate)
        per_prompt[label] = {s_: ev_t.per_prompt(s_) for s_ in ev_t.by_scorer}
    tox["paired"] = {s_: {f"{a} − {b}": stats.paired_difference(per_prompt[a][s_], per_prompt[b][s_],
                                                                  alternative="two-sided", seed=cfg.seed).to_dict()
                          for a, b in (("base", "base + rules"), ("base + rules", "aligned"), ("base", "aligned"))}
                     for s_ in per_prompt["base"]}
    return TokenShiftReport(cfg, ts, adapter, ats, [tok.decode([t]) for t in boost_ids], loc, tox,
                            {"pair": cfg.pair, "adapter_fit": fit, "heldout_prompts": ev,
                             "fit_prompts": train})


def urial_shots(align: list, tokenizer, n_shots: int, seed: int, pool: int = 50) -> list[dict]:
    """URIAL's in-context examples: the ``n_shots`` shortest (in tokens) of ``pool`` alignment
    examples drawn at random — short, as Lin et al.'s are, so that the examples, a question and
    its answer fit the organism's context window."""
    cands = sft_examples(align, InstructConfig(seed=seed + 7, n_examples=min(pool, len(align))))
    size = [len(tokenizer(x["prompt"] + x["completion"], add_special_tokens=False)["input_ids"]) for x in cands]
    order = sorted(range(len(cands)), key=lambda i: (size[i], i))[:n_shots]
    return [cands[i] for i in sorted(order)]


def instruct_urial(pair, seed: int = 0, n_shots: int = 3) -> str:
    """The instruction organism's URIAL: ``n_shots`` of its alignment examples as in-context
    examples (the template :mod:`interp.reproduce.instruction` gives the base)."""
    from ..organism.build import base_dir_of, load_questions
    from ..organism.instruct import urial_template

    qs = load_questions(base_dir_of(pair.info["organism"]))
    shots = urial_shots([q for q in qs if q.split == "align"], pair.tokenizer, n_shots, seed)
    return urial_template(shots, pair.tokenizer.eos_token or "")


def _per_prompt(ts: TokenShift, n_prompts: int) -> dict[str, np.ndarray]:
    """Per prompt: positions, and positions in each band (the cluster unit of the intervals)."""
    p = ts.prompt.cpu().numpy()
    r = ts.rank.cpu().numpy()
    count = lambda m: np.bincount(p[m], minlength=n_prompts).astype(float)  # noqa: E731
    return {"n": count(np.ones_like(r, dtype=bool)), "unshifted": count(r == 1),
            "marginal": count((r >= 2) & (r <= 3)), "shifted": count(r > 3)}


def share_intervals(ts: TokenShift, n_prompts: int, seed: int = 0) -> dict[str, dict]:
    """Each band's share of positions with a 95% interval resampling prompts."""
    c = _per_prompt(ts, n_prompts)
    return {k: stats.ratio_of_sums(c[k], c["n"], seed=seed).to_dict() for k in ("unshifted", "marginal", "shifted")}


def gap_closed(base: TokenShift, rules: TokenShift, n_prompts: int, seed: int = 0) -> dict:
    """Share of the gap to fully unshifted that the rules close, ``(u_rules − u) / (1 − u)``,
    with a 95% interval resampling prompts jointly (both decodings are of the same prompts)."""
    a, b = _per_prompt(base, n_prompts), _per_prompt(rules, n_prompts)

    def closed(ua, na, ub, nb, axis=-1):
        u0, u1 = ua.sum(axis) / na.sum(axis), ub.sum(axis) / nb.sum(axis)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (u1 - u0) / (1 - u0)

    arrays = (a["unshifted"], a["n"], b["unshifted"], b["n"])
    value = float(closed(*arrays))
    if not np.isfinite(value):
        return stats.Estimate(value, value, value, float("nan"), n_prompts).to_dict()
    lo, hi, se = stats._ci(arrays, closed, seed, 0.95)
    return stats.Estimate(value, lo, hi, se, n_prompts).to_dict()


def to_json(r: TokenShiftReport) -> dict:
    n = r.shift.meta["n_prompts"]

    def summary(ts: TokenShift):
        return {"shares": ts.shares(), "share_intervals": share_intervals(ts, n, r.config.seed),
                "by_type": ts.shares_by_type(),
                "position_profile": ts.position_profile(), "kl_profile": ts.kl_profile(seed=r.config.seed),
                "top_shifted": ts.top_shifted(20),
                "mean_kl": float(ts.kl.mean()) if len(ts) else None}
    a = r.adapter
    return {"config": asdict(r.config), "pair": r.meta["pair"], "lin_et_al": LIN_ET_AL,
            "base_vs_aligned": summary(r.shift), "base_plus_rules_vs_aligned": summary(r.adapter_shift),
            "adapter": {"eos_slope": a.eos_slope, "boost": a.boost, "repeat_penalty": a.repeat_penalty,
                        "boost_tokens": r.boost_tokens, "fit": r.meta.get("adapter_fit")},
            "rules_close": gap_closed(r.shift, r.adapter_shift, n, r.config.seed),
            "where": r.location, "toxicity": r.toxicity,
            "examples": r.shift.completions[:8]}


def to_markdown(r: TokenShiftReport) -> str:
    j = to_json(r)
    s, sa = j["base_vs_aligned"]["shares"], j["base_plus_rules_vs_aligned"]["shares"]
    ci, cia = j["base_vs_aligned"]["share_intervals"], j["base_plus_rules_vs_aligned"]["share_intervals"]
    rc = j["rules_close"]

    def pct(e):
        return f"{e['value']:.1%} [{e['lo']:.1%}, {e['hi']:.1%}]"

    ctx = (" The base reads the organism's own in-context examples (URIAL) before each prompt; the aligned "
           "model answers the plain prompt." if r.shift.meta.get("reference_template") else "")
    lines = [f"# Token shift: {r.meta['pair']}", "",
             f"The aligned model decodes greedily (≤ {r.config.max_new_tokens} tokens) from "
             f"{r.shift.meta['n_prompts']} held-out prompts (deduplicated, none among the training prompts "
             "the rules are fitted on); at each position the base model ranks the aligned model's token "
             "given the same prefix (Lin et al., 2023). Unshifted = rank 1, marginal = 2–3, shifted = beyond. "
             "Brackets: 95% intervals resampling prompts." + ctx, "",
             "| comparison | unshifted | marginal | shifted | positions |", "|---|---|---|---|---|",
             f"| Lin et al.: Llama-2-7b vs -chat | {LIN_ET_AL['unshifted']:.1%} | {LIN_ET_AL['marginal']:.1%} | {LIN_ET_AL['shifted']:.1%} | |",
             f"| base vs aligned | {pct(ci['unshifted'])} | {pct(ci['marginal'])} | {pct(ci['shifted'])} | {s['n']} |",
             f"| base + rules vs aligned | {pct(cia['unshifted'])} | {pct(cia['marginal'])} | {pct(cia['shifted'])} | {sa['n']} |",
             "", f"The rules (Hewitt et al., 2024; fitted on training prompts: EOS slope "
             f"{r.adapter.eos_slope:g} per token, +{r.adapter.boost:g} on {len(r.boost_tokens)} tokens "
             f"({', '.join(repr(t.strip()) for t in r.boost_tokens[:15])}), repetition penalty "
             f"{r.adapter.repeat_penalty:g}) close {pct(rc)} of the gap between base and "
             "fully unshifted on held-out prompts (paired by prompt).", "",
             "## By token type", "", "| type | unshifted | marginal | shifted | n |", "|---|---|---|---|---|"]
    for t, v in j["base_vs_aligned"]["by_type"].items():
        lines.append(f"| {t} | {v['unshifted']:.1%} | {v['marginal']:.1%} | {v['shifted']:.1%} | {v['n']} |")
    lines += ["", "## Most often shifted tokens", "",
              ", ".join(f"`{t.strip() or repr(t)}` ({n})" for t, n in j["base_vs_aligned"]["top_shifted"]) or "(none)",
              "", "## Toxicity (sampled, T = 1; same prompts and seeds)", "", "| model | toxicity (alt-profanity-check) | n |", "|---|---|---|"]
    for k, v in r.toxicity.items():
        if k != "paired":
            lines.append(f"| {k} | {v['rate']:.3f} | {v['n']} |")
    if "paired" in r.toxicity:
        lines += ["", "| paired difference (per prompt) | " + " | ".join(r.toxicity["paired"]) + " |",
                  "|---|" + "---|" * len(r.toxicity["paired"])]
        for comp in next(iter(r.toxicity["paired"].values())):
            lines.append(f"| {comp} | " + " | ".join(
                f"{d[comp]['value']:+.3f} [{d[comp]['lo']:+.3f}, {d[comp]['hi']:+.3f}]"
                for d in r.toxicity["paired"].values()) + " |")
    w = r.location
    lines += ["", "## Where the shift lives", "",
              f"Residual offset ‖x_aligned − x_base‖ / ‖x_base‖ at the predicting position, {w['n_shifted']} shifted positions:", "",
              "| layer | shifted | unshifted |", "|---|---|---|"]
    for layer, a, b in zip(w["layers"], w["offset_shifted"], w["offset_unshifted"]):
        lines.append(f"| {layer} | {a:.3f} | {b:.3f} |")
    if w["top_neurons"]:
        lines += ["", "MLP neurons whose activations differ most at shifted positions (beyond unshifted ones): "
                  + ", ".join(f"{n['neuron']} (+{n['extra_abs_diff']:.3f})" for n in w["top_neurons"])]
    return "\n".join(lines) + "\n"


def write(r: TokenShiftReport, out_dir: str | Path, figures: bool = True) -> list[Path]:
    from .. import plot

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "token_shift.json", to_json(r))
    write_text(out / "token_shift.md", to_markdown(r))
    written = [out / "token_shift.json", out / "token_shift.md"]
    if figures:
        name = r.meta["pair"]
        written += plot.save(plot.shift_shares({"base vs aligned": r.shift,
                                                "base + rules vs aligned": r.adapter_shift},
                                               reference=LIN_ET_AL, title=f"Token shift on {name}"),
                             out / "token_shift_shares")
        written += plot.save(plot.shift_profile(r.shift), out / "token_shift_profile")
        written += plot.save(plot.shift_by_type(r.shift), out / "token_shift_by_type")
        written += plot.save(plot.kl_profile(r.shift, first=3), out / "token_shift_kl_profile")
        written += plot.save(plot.shifted_tokens(r.shift), out / "token_shift_tokens")
    return written


#: Named prompt templates (``TokenShiftConfig.template``).
TEMPLATES = {"urial": URIAL_TEMPLATE}


def template_for(name: str | None) -> str | None:
    """A template's text: a name from :data:`TEMPLATES`, a format string holding ``{prompt}``, or
    ``None``/``"none"`` for the plain prompt."""
    if name in (None, "none"):
        return None
    if name in TEMPLATES:
        return TEMPLATES[name]
    if "{prompt}" not in name:
        raise ValueError(f"template {name!r}: give one of {sorted(TEMPLATES)}, 'none', or a format "
                         "string with {prompt}")
    return name
