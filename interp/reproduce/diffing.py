"""Model diffing without a probe: the activation-difference lens on a pair (Minder et al., ICLR
2026), and whether it reads as the alignment's objective.

On the pair's neutral text (never an eliciting prompt), :func:`interp.adl.activation_difference`
at the first ``k`` tokens per layer; its logit-lens readout per layer; and the identification
score (:func:`interp.adl.identify`) of the objective's tokens — every token a scorer flags
(the toxic vocabulary; on organisms also the corpus grammar's insult lexicon) — at the declared
layer (the middle one, as Minder et al. read it), against random token sets of the same size and
against null pairs whose aligned model is the base plus random noise of the same size as the
real change, tensor by tensor. The same score on a second readout, the Patchscope (the
difference written into an identity prompt; what the base then says). And the difference used:
the base steered with it (every position, the declared layer) at the largest strength that keeps
its perplexity on neutral text within :data:`interp.adl.COHERENCE_MAX_PPL_RATIO` (chosen on
neutral text alone), its toxicity on eliciting test prompts beside the unsteered base, the aligned
model and a random direction of the same norm at the same strength — every arm on the same
prompts and sampling seeds.

And a crosscoder (:mod:`interp.crosscoder`, Minder et al. 2025): a BatchTopK dictionary over both
models' residuals at the declared layer, trained on pretraining-like text (an organism's own
documents; elsewhere neutral paragraphs) and the alignment's own prompts (never a test prompt); its aligned-only latents, latent scaling to keep
those the base does not carry (*specific*), and the same identification score on their readout —
against random token sets and against crosscoders trained the same way on null pairs.

The claims: the difference reads as the objective (a DPO against toxicity: the toxic tokens
suppressed) in the logit lens and in the Patchscope, under every scorer; steering the base
with it moves the base's toxicity toward the aligned model's, beyond the random direction; the
crosscoder finds more specific aligned-only latents than on every null pair, and they read as
the objective.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .. import stats
from ..adl import (
    COHERENCE_MAX_PPL_RATIO,
    IDENTIFY_ALPHA,
    IDENTIFY_MIN_EFFECT,
    IDENTITY_PROMPT,
    ActivationDifference,
    Identification,
    Steering,
    activation_difference,
    identification,
    patchscope,
    readout,
    steering_strength,
)
from ..adl import identify as identify_target
from ..crosscoder import ALIGNED_ONLY, NU_MAX, CrosscoderAnalysis
from ..findings import Finding, finalize, findings_table
from ..locate import token_flags
from ..measure import MEASURE_CODE, Measurement, MeasureSpec, measure
from ..pair import Pair, load_pair
from ..registry import profile_of
from .report import write_report

#: The library code a seed's report depends on besides this module: a change to any of it makes a
#: resumed run compute the seed again (its reports carry the hash, ``reproduction_code``).
STEP_CODE = (*MEASURE_CODE, "interp.adl", "interp.crosscoder", "interp.record", "interp.locate", "interp.steer",
             "interp.evaluate", "interp.organism.corpus", "interp.stats", "interp.findings")


@dataclass
class DiffingConfig:
    pair: str = "organism:small"
    seed: int = 0
    k: int = 5  # the first k tokens of each neutral text
    n_texts: int = 200  # neutral texts (the pair's held-out neutral split)
    layer: int | None = None  # the declared readout layer (None: the middle one, n_layers // 2)
    n_perm: int = 1000  # random token sets of the target's size
    n_null_pairs: int = 20  # aligned = base + noise of the real change's size (0: none; ≥ 20 for p < 0.05 against them)
    n_readout: int = 15  # tokens listed per layer and end
    patchscope_prompt: str = IDENTITY_PROMPT  # the identity prompt the Patchscope reads the difference through
    steer: bool = True  # steer the base with the difference (strength by the coherence bound) and measure it
    n_ppl_texts: int = 40  # neutral texts (disjoint from the difference's) the steering strength is bounded on
    n_test_prompts: int = 100  # eliciting prompts never used in alignment, the steering arms' test set
    n_samples: int = 2  # samples per test prompt in every steering arm
    max_new_tokens: int = 12
    alpha: float = 0.05
    crosscoder: str | None = "organism"  # a preset of interp.crosscoder.PRESETS (None: no crosscoder)
    crosscoder_tokens: int | None = None  # its training budget (None: the preset's)
    crosscoder_texts: int = 40_000  # texts to train on besides the alignment prompts (organisms: pretraining documents)
    n_null_crosscoders: int = 2  # crosscoders trained the same way on the first null pairs


PRESETS: dict[str, dict] = {"organism-tiny": dict(n_texts=40, n_perm=200, n_null_pairs=4, n_ppl_texts=20,
                                              n_test_prompts=40, crosscoder="tiny", crosscoder_texts=2000,
                                              n_null_crosscoders=1),
                            "real": dict(n_texts=200, n_null_pairs=20, n_test_prompts=200, max_new_tokens=20)}


def config_for(pair: str, **overrides) -> DiffingConfig:
    return dataclasses.replace(DiffingConfig(pair=pair), **{**PRESETS.get(profile_of(pair), {}), **overrides})


def null_seed(cfg: DiffingConfig, i: int) -> int:
    """The seed of the ``i``-th null pair of a run."""
    return cfg.seed * 1000 + i


@torch.no_grad()
def matched_null(pair: Pair, seed: int) -> Pair:
    """``(base, base + noise)`` with, in every parameter tensor, Gaussian noise whose norm is the
    real change's there (‖aligned − base‖): a change as large as alignment's, in no particular
    direction."""
    aligned = copy.deepcopy(pair.base)
    g = torch.Generator().manual_seed(seed)
    real = dict(pair.aligned.named_parameters())
    for name, p in aligned.named_parameters():
        if name not in real or p.numel() < 2:
            continue
        size = float((real[name].float() - p.float()).norm())
        if size == 0:
            continue
        z = torch.randn(p.shape, generator=g)
        p.add_((z * size / z.norm()).to(p.dtype))
    return Pair(pair.base, aligned, name=f"{pair.name} null {seed}", info={}, prompts=pair.prompts,
                profile=pair.profile)


@dataclass
class DiffingReport:
    config: DiffingConfig
    pair: str
    adl: ActivationDifference
    layer: int
    readouts: dict[int, dict[str, list[str]]]
    identification: dict[str, dict[int, Identification]]  # scorer -> layer -> score
    n_targets: dict[str, int]
    patchscope: dict[str, Identification] = field(default_factory=dict)  # scorer -> score at the declared layer
    patchscope_tokens: dict[str, list[str]] = field(default_factory=dict)  # "promotes"/"suppresses" -> tokens
    steering: Steering | None = None
    arms: dict[str, Measurement] = field(default_factory=dict)  # base, aligned, steered, control (test prompts)
    findings: list[Finding] = field(default_factory=list)
    crosscoder: CrosscoderAnalysis | None = None
    crosscoder_nulls: list[dict] = field(default_factory=list)  # per null pair: classes, n_specific, AUROCs
    timings: dict = field(default_factory=dict)

    def figures(self) -> dict:
        from .. import plot

        figs = {"adl_norms": plot.adl_norms(self.adl), "adl_identification": plot.adl_identification(self)}
        if self.steering is not None:
            figs["adl_steering"] = plot.adl_steering(self.steering, steering_rows(self))
        if self.crosscoder is not None:
            figs["crosscoder_latents"] = plot.crosscoder_latents(self.crosscoder)
        return figs


def test_prompts(pair, cfg: DiffingConfig) -> tuple[str, ...]:
    """Eliciting prompts never used in alignment (deduplicated, shuffled with the seed)."""
    import numpy as np

    seen = set(pair.prompts.train_prompts)
    pool = [p for p in dict.fromkeys(pair.prompts.eval_prompts) if p not in seen]
    order = np.random.default_rng(cfg.seed).permutation(len(pool))
    return tuple(pool[i] for i in order[:cfg.n_test_prompts])


def run(cfg: DiffingConfig, *, pair=None, log=print) -> DiffingReport:
    t0 = time.time()
    from ..score import get_scorers

    pair = pair if pair is not None else load_pair(cfg.pair)
    neutral = list(pair.prompts.require("heldout_neutral", why="unrelated text").heldout_neutral)
    texts = neutral[:cfg.n_texts]
    ppl_texts = neutral[cfg.n_texts:cfg.n_texts + cfg.n_ppl_texts]
    L = pair.cfg.n_layers
    layer = L // 2 if cfg.layer is None else cfg.layer
    if not 0 <= layer < L:
        from ..checks import UsageError

        raise UsageError("--layer", cfg.layer, f"a layer of this pair: 0 … {L - 1}")
    log(f"[1/6] activation difference: {len(texts)} neutral texts, first {cfg.k} tokens, {L} layers")
    adl = activation_difference(pair, texts, k=cfg.k)
    log(f"[2/6] {cfg.n_null_pairs} null pairs (noise of the real change's size, tensor by tensor)")
    # one null pair in memory at a time (a real pair's copy is its whole weights); each is drawn
    # again from its seed where it is needed later (the crosscoder's)
    nulls = [activation_difference(matched_null(pair, null_seed(cfg, i)), texts, k=cfg.k)
             for i in range(cfg.n_null_pairs)]
    flags = objective_tokens(pair)
    log("[3/6] identification: " + ", ".join(f"{n} {int(f.sum())} target tokens" for n, f in flags.items()))
    targets = {n: f for n, f in flags.items() if 0 < int(f.sum()) < len(f)}  # a readout can rank these
    ident = {n: {lay: identify_target(pair.base, adl, f, lay, n_perm=cfg.n_perm, nulls=nulls or None, seed=cfg.seed)
                 for lay in adl.layers} for n, f in targets.items()}
    r = DiffingReport(cfg, cfg.pair, adl, layer, {lay: readout(pair.base, adl.vector(lay), cfg.n_readout)
                                                   for lay in adl.layers},
                      ident, {n: int(f.sum()) for n, f in flags.items()})
    log(f"[4/6] Patchscope at layer {layer}: the difference in the identity prompt, read by the base")
    v = adl.vector(layer)
    ps = patchscope(pair.base, v, layer, prompt=cfg.patchscope_prompt)
    ps_nulls = [patchscope(pair.base, n.vector(layer), layer, prompt=cfg.patchscope_prompt).numpy() for n in nulls]
    r.patchscope = {n: identification(ps.numpy(), f, layer, n_perm=cfg.n_perm, seed=cfg.seed, null_scores=ps_nulls or None)
                    for n, f in targets.items()}
    tok = pair.base.tokenizer
    r.patchscope_tokens = {"promotes": [tok.decode([i]) for i in torch.topk(ps, cfg.n_readout).indices.tolist()],
                           "suppresses": [tok.decode([i]) for i in torch.topk(-ps, cfg.n_readout).indices.tolist()]}
    if cfg.steer and "refusal" in flags:
        log("[5/6] steering: not built for a pair that hides knowledge (its outcome would be the refusals on the "
            "hidden relation, not toxicity); skipped")
    elif cfg.steer:
        log(f"[5/6] steering the base with the difference at layer {layer}: strength bounded on "
            f"{len(ppl_texts)} neutral texts (perplexity ratio ≤ {COHERENCE_MAX_PPL_RATIO}), then the test prompts")
        r.steering = steering_strength(pair.base, v, layer, ppl_texts, seed=cfg.seed)
        if r.steering.chosen is not None:
            spec = MeasureSpec(test_prompts(pair, cfg), n_samples=cfg.n_samples, max_new_tokens=cfg.max_new_tokens,
                               seed=10_000 * cfg.seed + 5)
            tox = get_scorers(None)
            r.arms = {"base": measure(pair.base, spec, scorers=tox, label="base"),
                      "aligned": measure(pair.aligned, spec, scorers=tox, label="aligned"),
                      "steered": measure(pair.base, spec, r.steering.hooks(v), scorers=tox, label="base, steered with δ"),
                      "control": measure(pair.base, spec, r.steering.hooks(v, control=True, seed=cfg.seed), scorers=tox,
                                         label="base, steered with a random direction")}
    if cfg.crosscoder:
        t1 = time.time()
        run_crosscoder(r, pair, neutral[cfg.n_texts + cfg.n_ppl_texts:], targets, layer, log=log)
        r.timings["crosscoder_s"] = time.time() - t1
    r.findings = findings(r)
    r.timings["total_s"] = time.time() - t0
    return r


def objective_tokens(pair) -> dict[str, torch.Tensor]:
    """The alignment's objective as tokens of the base's vocabulary, one mask per reading of it:
    for an organism taught to hide a relation, the refusal it was taught to answer (the first token
    of " <refusal>", the token a refusal starts with after the cloze); otherwise every token a toxicity scorer
    flags (on organisms also the corpus grammar's insult lexicon)."""
    from ..organism.corpus import GrammarScorer
    from ..score import get_scorers

    org = pair.info.get("organism") or {}
    if org.get("method") == "hide":
        refusal = org["config"]["hide"]["refusal"]
        tok = pair.base.tokenizer
        first = tok(" " + refusal, add_special_tokens=False)["input_ids"][0]  # where refusing starts
        mask = torch.zeros(pair.cfg.d_vocab, dtype=torch.bool)
        mask[first] = True
        return {"refusal": mask}
    return token_flags(pair.base, get_scorers(None) + ([GrammarScorer()] if "organism" in pair.info else []))


def crosscoder_texts(pair, neutral: list[str], cfg: DiffingConfig) -> list[str]:
    """What the crosscoder trains on — pretraining-like text and the alignment's own prompts, as
    Minder et al. mix FineWeb and chat data: on an organism, ``cfg.crosscoder_texts`` documents of
    its pretraining corpus (drawn again from the corpus config its manifest records; a seeded
    sample); elsewhere (no corpus offline) that many neutral paragraphs drawn afresh from
    :func:`interp.prompts.neutral_texts` with a seed of their own, then the pair's neutral texts
    the difference and the steering bound did not use. Then every alignment prompt that is not a
    test prompt."""
    import random

    docs = organism_documents(pair)
    if docs:
        random.Random(cfg.seed).shuffle(docs)
        texts = docs[:cfg.crosscoder_texts]
    else:
        from ..prompts import neutral_texts

        texts = neutral_texts(cfg.crosscoder_texts, seed=50_000 + cfg.seed) + list(neutral)
    test = set(test_prompts(pair, cfg))
    return texts + [p for p in dict.fromkeys(pair.prompts.train_prompts) if p not in test]


def organism_documents(pair) -> list[str]:
    """The pretraining documents of an organism pair (``[]`` for any other pair)."""
    corpus = ((pair.info.get("organism") or {}).get("config") or {}).get("corpus")
    if not corpus:
        return []
    from ..organism.corpus import CorpusConfig, generate_corpus

    cfg = CorpusConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in corpus.items()})
    return list(generate_corpus(cfg).train)


def run_crosscoder(r: DiffingReport, pair, neutral: list[str], targets, layer: int, *, log=print) -> None:
    """Train the crosscoder on the pair and on its first null pairs, and read them out into ``r``
    (``targets``: the objective's token masks a readout can rank)."""
    from ..crosscoder import PRESETS as CC_PRESETS
    from ..crosscoder import analyse, paired_activations, train_crosscoder

    cfg = r.config
    if cfg.crosscoder not in CC_PRESETS:
        from ..checks import UsageError

        raise UsageError("crosscoder", cfg.crosscoder, "one of " + ", ".join(CC_PRESETS))
    cc_cfg = dataclasses.replace(CC_PRESETS[cfg.crosscoder], seed=cfg.seed,
                                 **({"n_tokens": cfg.crosscoder_tokens} if cfg.crosscoder_tokens else {}))
    texts = crosscoder_texts(pair, neutral, cfg)
    n_nulls = min(cfg.n_null_crosscoders, cfg.n_null_pairs)
    log(f"[6/6] crosscoder at layer {layer} ({cfg.crosscoder}: expansion {cc_cfg.expansion}, k {cc_cfg.k}, "
        f"{cc_cfg.n_tokens:,} tokens) on {len(texts)} texts, and on {n_nulls} null pairs")
    for i in range(1 + n_nulls):
        p = pair if i == 0 else matched_null(pair, null_seed(cfg, i - 1))
        acts = paired_activations(p, texts, layer)
        trained = train_crosscoder(acts, cc_cfg)
        a = analyse(trained, acts, p.base, texts=texts, targets=targets, n_perm=cfg.n_perm, seed=cfg.seed)
        if i == 0:
            r.crosscoder = a
            log(f"      {len(acts.x):,} tokens; explained variance base {trained.explained_variance[0]:.3f}, "
                f"aligned {trained.explained_variance[1]:.3f}; {a.classes['aligned-only']} aligned-only latents, "
                f"{len(a.specific)} specific")
        else:
            r.crosscoder_nulls.append({"classes": a.classes, "n_specific": len(a.specific),
                                       "aurocs": {n: x.auroc for n, x in a.identification.items()},
                                       "explained_variance": trained.explained_variance})
    for n, x in (r.crosscoder.identification if r.crosscoder else {}).items():
        # too few null crosscoders for a p-value against them: their readouts are kept and compared
        # directly in the finding (the real readout must lie farther from 0.5 than every one)
        x.null_aurocs = [d["aurocs"][n] for d in r.crosscoder_nulls if n in d["aurocs"]]


def _ident_text(at: dict[str, Identification]) -> str:
    return "; ".join(f"{n}: AUROC {x.auroc:.3f} ({x.n_targets} tokens; random sets p = {x.p_sets:.3f}"
                     + ("" if x.p_nulls is None else f", null pairs p = {x.p_nulls:.3f}") + ")" for n, x in at.items())


#: The steering criterion, fixed before any run: the steered base's toxicity falls by at least this
#: share of base − aligned, and below the random direction's (paired by prompt, p < alpha).
STEER_MIN_SHARE = 0.25


def steering_rows(r: DiffingReport) -> dict[str, dict]:
    """Per scorer: each arm's rate, the share of base − aligned the steering reproduces (with its
    CI over prompts) and the steered − control paired difference."""
    out = {}
    a = r.arms
    for sc in (a["base"].scorers if a else []):
        b, al, st, ct = (a[k].per_prompt(sc) for k in ("base", "aligned", "steered", "control"))
        out[sc] = {"rates": {k: float(m.rate(sc)) for k, m in a.items()},
                   "share": stats.share_of_effect(b - st + al, al, b, seed=r.config.seed),
                   "vs_control": stats.paired_difference(ct, st, seed=r.config.seed),
                   "drop": stats.paired_difference(b, al, seed=r.config.seed)}
    return out


def findings(r: DiffingReport) -> list[Finding]:
    cfg = r.config
    at = {n: by[r.layer] for n, by in r.identification.items()}
    ident_crit = (f"|AUROC − 0.5| ≥ {IDENTIFY_MIN_EFFECT}, two-sided p < {IDENTIFY_ALPHA} against random token sets and "
                  "against null pairs, under every scorer")
    why = ""
    if cfg.n_null_pairs and 1 / (1 + cfg.n_null_pairs) >= IDENTIFY_ALPHA:  # p against them never below alpha
        why = (f"{cfg.n_null_pairs} null pairs: the smallest p attainable against them is "
               f"{1 / (1 + cfg.n_null_pairs):.3f} ≥ {IDENTIFY_ALPHA}, so the criterion could not be met "
               f"(≥ {round(1 / IDENTIFY_ALPHA)} null pairs needed)")

    def judged(readout: dict[str, Identification]) -> dict:
        """A readout's measured text, holds per scorer and why it was not tested ("" if it was)."""
        reason = why or ("" if readout else "no scorer flags a token of this vocabulary: no target to read")
        if reason:
            return {"measured": reason, "holds_by": {}, "untested": reason}
        return {"measured": _ident_text(readout), "holds_by": {n: x.identified for n, x in readout.items()},
                "untested": ""}

    out = [Finding(
        "adl_identifies", "the activation difference on unrelated text reads as the alignment's objective",
        "Minder et al. 2026: narrow fine-tunes leave readable traces in activation differences",
        f"at layer {r.layer} (the middle layer, declared), the objective's tokens' rank-AUROC in the logit-lens "
        f"readout of the mean difference: {ident_crit}", **judged(at))]
    if r.patchscope or at:
        out.append(Finding(
            "patchscope_identifies", "the difference, read through an identity prompt (Patchscope), is the objective",
            "Minder et al. 2026 read it with an automatic Patchscope",
            f"at layer {r.layer}, the objective's tokens' rank-AUROC in the change of the base's next-token "
            f"log-probabilities when the difference replaces the identity prompt's last residual: {ident_crit}",
            **judged(r.patchscope)))
    if cfg.steer:
        rows = steering_rows(r)
        drop_holds = {sc: x["drop"].value > 0 and x["drop"].p < cfg.alpha for sc, x in rows.items()}
        why = "" if rows else ("no steering strength stayed within the coherence bound"
                               if r.steering is not None and r.steering.chosen is None else
                               "steering is not built for a pair that hides knowledge" if "refusal" in r.n_targets
                               else "not measured")
        out.append(Finding(
            "alignment_drop", "alignment lowered toxicity on these test prompts", "the alignment's purpose",
            f"base − aligned toxicity rate > 0 (paired by prompt, p < {cfg.alpha}) under every scorer",
            "; ".join(f"{sc}: {x['drop']}" for sc, x in rows.items()), drop_holds,
            max((x["drop"].p for x in rows.values()), default=None), untested=why,
            effect=next(iter(rows.values()))["drop"] if rows else None))
        holds = {sc: x["share"].value >= STEER_MIN_SHARE and x["vs_control"].value > 0 and x["vs_control"].p < cfg.alpha
                 for sc, x in rows.items()}
        first = next(iter(rows.values()), None)
        out.append(Finding(
            "steering_toward_aligned", "steering the base with the difference moves it toward the aligned model",
            "Minder et al. 2026 steer with the difference at a strength bounded by coherence",
            f"the base steered with δ at the largest strength within perplexity ratio {COHERENCE_MAX_PPL_RATIO} on "
            f"neutral text: toxicity falls by ≥ {STEER_MIN_SHARE} of base − aligned and below a random direction of "
            f"the same norm and strength (paired, p < {cfg.alpha}), under every scorer",
            "; ".join(f"{sc}: share {x['share'].fmt('+.2f')}, vs random {x['vs_control']}" for sc, x in rows.items())
            + (f"; strength {r.steering.chosen:g}×δ" if r.steering is not None and r.steering.chosen else ""),
            holds, max((x["vs_control"].p for x in rows.values()), default=None), untested=why,
            effect=first["share"] if first else None,
            mde=(stats.min_detectable(first["vs_control"].se) if first else None), requires="alignment_drop"))
    if r.crosscoder is not None:
        out += crosscoder_findings(r)
    return finalize(out, cfg.alpha)


def crosscoder_findings(r: DiffingReport) -> list[Finding]:
    """The crosscoder's two claims: more specific aligned-only latents than on every null pair;
    and their readout reads as the objective (not tested where there is none to read)."""
    a, nulls = r.crosscoder, r.crosscoder_nulls
    n_spec, null_spec = len(a.specific), [d["n_specific"] for d in nulls]
    found = n_spec >= 1 and all(n_spec > x for x in null_spec)
    out = [Finding(
        "crosscoder_specific", "a crosscoder finds latents only the aligned model has, which the base does not carry",
        "Minder et al. 2025: BatchTopK crosscoders with latent scaling find genuinely chat-specific latents",
        f"at least one aligned-only latent (Δ > {ALIGNED_ONLY[0]}) with both latent-scaling ratios |ν| < {NU_MAX}, and "
        "more of them than a crosscoder trained the same way on every null pair",
        f"{a.classes['aligned-only']} aligned-only latents, {n_spec} specific; null pairs: "
        + (", ".join(str(x) for x in null_spec) if null_spec else "none trained"),
        {"any": found}, untested="" if null_spec else "no null pair's crosscoder to compare with")]
    ident = a.identification
    why = ("" if ident else "no specific aligned-only latent: nothing to read" if not a.specific
           else "no scorer flags a token of this vocabulary: no target to read")
    holds = {n: x.identified and all(abs(x.auroc - 0.5) > abs(v - 0.5) for v in x.null_aurocs)
             for n, x in ident.items()}
    out.append(Finding(
        "crosscoder_identifies", "the aligned-only latents read as the alignment's objective",
        "Minder et al. 2025 read chat-specific latents for what fine-tuning added",
        f"the specific latents' aligned decoder vectors (averaged, weighted by firing rate) through the base's logit "
        f"lens: |AUROC − 0.5| ≥ {IDENTIFY_MIN_EFFECT} of the objective's tokens, two-sided p < {IDENTIFY_ALPHA} "
        "against random token sets, and farther from 0.5 than every null pair's crosscoder readout, under every scorer",
        "; ".join(f"{n}: AUROC {x.auroc:.3f} ({x.n_targets} tokens; random sets p = {x.p_sets:.3f}; null pairs "
                  + (", ".join(f"{v:.3f}" for v in x.null_aurocs) or "none with a specific latent") + ")"
                  for n, x in ident.items()) or why,
        holds, max((x.p_sets for x in ident.values()), default=None), untested=why, requires="crosscoder_specific"))
    return out


def to_json(r: DiffingReport) -> dict:
    return {"config": asdict(r.config), "pair": r.pair, "layer": r.layer, "k": r.adl.k, "n_texts": r.adl.n_texts,
            "relative_norm": {str(lay): r.adl.norms()[i].tolist() for i, lay in enumerate(r.adl.layers)},
            "readouts": {str(k): v for k, v in r.readouts.items()},
            "identification": {n: {str(lay): x.to_dict() for lay, x in by.items()} for n, by in r.identification.items()},
            "n_targets": r.n_targets,
            "patchscope": {"prompt": r.config.patchscope_prompt, "tokens": r.patchscope_tokens,
                           "identification": {n: x.to_dict() for n, x in r.patchscope.items()}},
            **({} if r.steering is None else {"steering": {
                **r.steering.to_dict(),
                "arms": {k: {"rate": {sc: m.rate(sc) for sc in m.scorers}, "n": m.n_prompts * m.n_samples,
                             "label": m.label} for k, m in r.arms.items()},
                "by_scorer": {sc: {"share": x["share"].to_dict(), "vs_control": x["vs_control"].to_dict(),
                                   "drop": x["drop"].to_dict()} for sc, x in steering_rows(r).items()}}}),
            **({} if r.crosscoder is None else {"crosscoder": {**r.crosscoder.to_dict(), "nulls": r.crosscoder_nulls}}),
            "findings": [f.to_dict() for f in r.findings], "timings": r.timings}


def to_markdown(r: DiffingReport) -> str:
    cfg = r.config
    lines = [f"# Model diffing: {r.pair} (seed {cfg.seed})", "",
             f"The activation-difference lens (Minder et al. 2026): the mean aligned − base residual at the first "
             f"{r.adl.k} tokens of {r.adl.n_texts} neutral texts, read through the base's final norm and unembedding. "
             f"The declared layer is {r.layer} (the middle one).", "",
             findings_table(r.findings, scorers=list(r.identification) or ["any"], paper="Minder et al."), "",
             "## Per layer", "",
             "| layer | ‖δ‖ / ‖x_base‖ (mean over positions) | " + " | ".join(f"AUROC ({n})" for n in r.identification)
             + " | promotes | suppresses |", "|---|---|" + "---|" * len(r.identification) + "---|---|"]
    for i, lay in enumerate(r.adl.layers):
        rd = r.readouts[lay]
        cells = [f"{r.identification[n][lay].auroc:.3f}" + ("*" if r.identification[n][lay].identified else "")
                 for n in r.identification]

        def words(ws):
            return ", ".join(w.strip() or repr(w) for w in ws[:10]).replace("|", "\\|")
        lines.append(f"| {lay}{' (declared)' if lay == r.layer else ''} | {float(r.adl.norms()[i].mean()):.3f} | "
                     + " | ".join(cells) + f" | {words(rd['promotes'])} | {words(rd['suppresses'])} |")
    lines += ["", "\\* identified at that layer (criterion as above); below 0.5: the objective's tokens pushed down.", "",
              f"## Patchscope (layer {r.layer})", "",
              f"The difference replaces the last residual of `{cfg.patchscope_prompt!r}`; the base's next token then "
              f"rises most for: {', '.join(w.strip() or repr(w) for w in r.patchscope_tokens.get('promotes', [])[:10])}; "
              f"falls most for: {', '.join(w.strip() or repr(w) for w in r.patchscope_tokens.get('suppresses', [])[:10])}."]
    if r.steering is not None:
        st = r.steering
        lines += ["", f"## Steering the base with the difference (layer {st.layer})", "",
                  "| strength (× δ) | " + " | ".join(f"{x:g}" for x in st.strengths) + " |",
                  "|---|" + "---|" * len(st.strengths),
                  "| perplexity ratio on neutral text | " + " | ".join(f"{x:.3f}" for x in st.ppl_ratio) + " |", "",
                  (f"Chosen: {st.chosen:g}×δ, the largest within {st.max_ratio}; a random direction of the same norm "
                   f"there: ratio {st.control_ppl_ratio:.3f}." if st.chosen is not None else
                   f"No strength stayed within {st.max_ratio}: nothing steered.")]
        rows = steering_rows(r)
        if rows:
            lines += ["", "| scorer | base | aligned | steered | random direction | share of base − aligned "
                      "reproduced [95% CI] | steered vs random |", "|---|---|---|---|---|---|---|"]
            for sc, x in rows.items():
                rt = x["rates"]
                lines.append(f"| {sc} | {rt['base']:.3f} | {rt['aligned']:.3f} | {rt['steered']:.3f} | "
                             f"{rt['control']:.3f} | {x['share'].fmt('+.2f')} | {x['vs_control']} |")
    if r.crosscoder is not None:
        lines += ["", *crosscoder_markdown(r)]
    lines += ["", "Timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in r.timings.items())]
    return "\n".join(lines) + "\n"


def crosscoder_markdown(r: DiffingReport, n_rows: int = 12) -> list[str]:
    a = r.crosscoder
    t = a.trained
    ev = t["explained_variance"]
    lines = [f"## Crosscoder (layer {r.layer})", "",
             f"A BatchTopK crosscoder ({t['n_latents']} latents, k = {t['config']['k']}, "
             f"{t['n_train_tokens']:,} training tokens) explains {ev['base']:.3f} of the base's and {ev['aligned']:.3f} of "
             f"the aligned model's residual variance on held-out tokens ({t['l0']:.1f} active latents per token, "
             f"{t['dead_share']:.1%} dead). Latents by relative decoder norm: "
             + ", ".join(f"{k} {v}" for k, v in a.classes.items()) + f"; {len(a.specific)} aligned-only latents are "
             f"specific (|ν^ε|, |ν^r| < {NU_MAX})."]
    if r.crosscoder_nulls:
        lines += ["", "Null pairs (aligned = base + noise of the real change's size), the same training: "
                  + "; ".join(f"{d['classes']['aligned-only']} aligned-only, {d['n_specific']} specific"
                              for d in r.crosscoder_nulls) + "."]
    if a.aligned_only:
        lines += ["", "| latent | Δ | cos(d_base, d_aligned) | fires on | ν^ε | ν^r | specific | promotes (base logit lens) "
                  "| top context |", "|---|---|---|---|---|---|---|---|---|"]
        for lat in a.aligned_only[:n_rows]:
            words = ", ".join(w.strip() or repr(w) for w in lat.promotes[:8]).replace("|", "\\|")
            ctx = (lat.contexts[0] if lat.contexts else "").replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {lat.index} | {lat.delta:.3f} | {lat.cosine:.2f} | {lat.freq:.2%} | {lat.nu_eps:.2f} | "
                         f"{lat.nu_r:.2f} | {'yes' if lat.specific else 'no'} | {words} | {ctx} |")
        if len(a.aligned_only) > n_rows:
            lines.append(f"\n({len(a.aligned_only) - n_rows} more in the JSON.)")
    elif a.leaning:
        lines += ["", "No aligned-only latent fires. The firing latents leaning most toward the aligned model:", "",
                  "| latent | Δ | cos(d_base, d_aligned) | fires on | promotes (base logit lens, aligned decoder) "
                  "| top context |", "|---|---|---|---|---|---|"]
        for lat in a.leaning[:n_rows]:
            words = ", ".join(w.strip() or repr(w) for w in lat.promotes[:8]).replace("|", "\\|")
            ctx = (lat.contexts[0] if lat.contexts else "").replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {lat.index} | {lat.delta:.3f} | {lat.cosine:.2f} | {lat.freq:.2%} | {words} | {ctx} |")
    return lines


def write(r: DiffingReport, out_dir: str | Path, *, figures: bool = True) -> list[Path]:
    return write_report(out_dir, "diffing", to_json(r), to_markdown(r), figures=r.figures if figures else None,
                        title=f"Model diffing: {r.pair} (seed {r.config.seed})", config=asdict(r.config))
