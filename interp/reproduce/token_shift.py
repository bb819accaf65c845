"""``interp reproduce token-shift``: Lin et al. (URIAL)'s token-distribution shift, Hewitt et al.'s
rule-based adapter, and where the shift lives — on any pair.

Writes ``token_shift.json``, ``token_shift.md`` and figures (shares, position profile, most
shifted tokens) into the output folder.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..evaluate import toxicity
from ..io import write_json, write_text
from ..shift import (
    URIAL_TEMPLATE,
    RuleAdapter,
    TokenShift,
    fit_adapter,
    shift_location,
    token_shift,
)

#: Lin et al. (2023), Llama-2-7b vs Llama-2-7b-chat, greedy decoding.
LIN_ET_AL = {"unshifted": 0.777, "marginal": 0.145, "shifted": 0.078}


@dataclass
class TokenShiftConfig:
    pair: str = "organism:small"
    n_prompts: int = 200
    max_new_tokens: int = 24
    template: str | None = None  # URIAL_TEMPLATE for instruction-style prompts
    n_boost_tokens: int = 15
    n_tox_samples: int = 2
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


def run(cfg: TokenShiftConfig, *, pair=None, data: dict | None = None, log=print) -> TokenShiftReport:
    from ..pair import load_pair

    pair = pair if pair is not None else load_pair(cfg.pair)
    data = data if data is not None else pair.info.get("data")
    if data is None:
        raise ValueError("this pair carries no prompt set; pass data={'train_prompts', 'eval_prompts'}")
    tok = pair.tokenizer
    train, ev = data["train_prompts"][: cfg.n_prompts], data["eval_prompts"][: cfg.n_prompts]
    template = cfg.template
    log("[1/4] token shift, aligned greedy vs base ranks")
    ts = token_shift(pair, ev, max_new_tokens=cfg.max_new_tokens, template=template)
    # The adapter (its ~15 boosted tokens and three strengths) is fitted on *training* prompts,
    # then measured on the held-out ones.
    log("[2/4] rule-based adapter (fitted on training prompts)")
    adapter, fit = fit_adapter(pair, train, n_boost_tokens=cfg.n_boost_tokens,
                               max_new_tokens=cfg.max_new_tokens, template=template)
    boost_ids = adapter.boost_tokens
    ats = token_shift(pair, ev, max_new_tokens=cfg.max_new_tokens, template=template, processor=adapter)
    log("[3/4] where the shift lives")
    loc = shift_location(pair, ts)
    log("[4/4] toxicity of base, base + rules, aligned")
    tox = {}
    prompts = data["eval_prompts"][: cfg.n_prompts]
    for label, model, proc in (("base", pair.base, None), ("base + rules", pair.base, adapter),
                               ("aligned", pair.aligned, None)):
        r = toxicity(model, prompts, n_samples=cfg.n_tox_samples, seed=cfg.seed + 5,
                     logits_processor=proc).rate
        tox[label] = asdict(r)
    return TokenShiftReport(cfg, ts, adapter, ats, [tok.decode([t]) for t in boost_ids], loc, tox,
                            {"pair": cfg.pair, "adapter_fit": fit})


def to_json(r: TokenShiftReport) -> dict:
    def summary(ts: TokenShift):
        return {"shares": ts.shares(), "by_type": ts.shares_by_type(),
                "position_profile": ts.position_profile(), "top_shifted": ts.top_shifted(20),
                "mean_kl": float(ts.kl.mean()) if len(ts) else None}
    a = r.adapter
    return {"config": asdict(r.config), "pair": r.meta["pair"], "lin_et_al": LIN_ET_AL,
            "base_vs_aligned": summary(r.shift), "base_plus_rules_vs_aligned": summary(r.adapter_shift),
            "adapter": {"eos_slope": a.eos_slope, "boost": a.boost, "repeat_penalty": a.repeat_penalty,
                        "boost_tokens": r.boost_tokens, "fit": r.meta.get("adapter_fit")},
            "where": r.location, "toxicity": r.toxicity,
            "examples": r.shift.completions[:8]}


def to_markdown(r: TokenShiftReport) -> str:
    j = to_json(r)
    s, sa = j["base_vs_aligned"]["shares"], j["base_plus_rules_vs_aligned"]["shares"]
    recovered = ((sa["unshifted"] - s["unshifted"]) / max(1 - s["unshifted"], 1e-12))
    lines = [f"# Token shift: {r.meta['pair']}", "",
             f"The aligned model decodes greedily (≤ {r.config.max_new_tokens} tokens) from "
             f"{r.shift.meta['n_prompts']} held-out prompts; at each position the base model ranks the "
             "aligned model's token given the same prefix (Lin et al., 2023). Unshifted = rank 1, "
             "marginal = 2–3, shifted = beyond.", "",
             "| comparison | unshifted | marginal | shifted | positions |", "|---|---|---|---|---|",
             f"| Lin et al.: Llama-2-7b vs -chat | {LIN_ET_AL['unshifted']:.1%} | {LIN_ET_AL['marginal']:.1%} | {LIN_ET_AL['shifted']:.1%} | |",
             f"| base vs aligned | {s['unshifted']:.1%} | {s['marginal']:.1%} | {s['shifted']:.1%} | {s['n']} |",
             f"| base + rules vs aligned | {sa['unshifted']:.1%} | {sa['marginal']:.1%} | {sa['shifted']:.1%} | {sa['n']} |",
             "", f"The rules (Hewitt et al., 2024; fitted on training prompts: EOS slope "
             f"{r.adapter.eos_slope:g} per token, +{r.adapter.boost:g} on {len(r.boost_tokens)} tokens "
             f"({', '.join(repr(t.strip()) for t in r.boost_tokens[:15])}), repetition penalty "
             f"{r.adapter.repeat_penalty:g}) close {recovered:.0%} of the gap between base and "
             "fully unshifted on held-out prompts.", "",
             "## By token type", "", "| type | unshifted | marginal | shifted | n |", "|---|---|---|---|---|"]
    for t, v in j["base_vs_aligned"]["by_type"].items():
        lines.append(f"| {t} | {v['unshifted']:.1%} | {v['marginal']:.1%} | {v['shifted']:.1%} | {v['n']} |")
    lines += ["", "## Most often shifted tokens", "",
              ", ".join(f"`{t.strip() or repr(t)}` ({n})" for t, n in j["base_vs_aligned"]["top_shifted"]) or "(none)",
              "", "## Toxicity (sampled, T = 1)", "", "| model | toxicity ± s.e. | n |", "|---|---|---|"]
    for k, v in r.toxicity.items():
        lines.append(f"| {k} | {v['rate']:.3f} ± {v['se']:.3f} | {v['n']} |")
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
        written += plot.save(plot.shifted_tokens(r.shift), out / "token_shift_tokens")
    return written


def template_for(name: str | None) -> str | None:
    return URIAL_TEMPLATE if name == "urial" else None
