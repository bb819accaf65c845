"""Model diffing without a probe: the activation-difference lens on a pair (Minder et al., ICLR
2026), and whether it reads as the alignment's objective.

On the pair's neutral text (never an eliciting prompt), :func:`interp.adl.activation_difference`
at the first ``k`` tokens per layer; its logit-lens readout per layer; and the identification
score (:func:`interp.adl.identify`) of the objective's tokens — every token a scorer flags
(the toxic vocabulary; on organisms also the corpus grammar's insult lexicon) — at the declared
layer (the middle one, as Minder et al. read it), against random token sets of the same size and
against null pairs whose aligned model is the base plus random noise of the same size as the
real change, tensor by tensor. The claim: the difference reads as the objective (a DPO against
toxicity: the toxic tokens suppressed) under every scorer.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..adl import (
    IDENTIFY_ALPHA,
    IDENTIFY_MIN_EFFECT,
    ActivationDifference,
    Identification,
    activation_difference,
    readout,
)
from ..adl import identify as identify_target
from ..findings import Finding, finalize, findings_table
from ..locate import token_flags
from ..pair import Pair, load_pair
from ..registry import profile_of
from .report import write_report


@dataclass
class DiffingConfig:
    pair: str = "organism:small"
    seed: int = 0
    k: int = 5  # the first k tokens of each neutral text
    n_texts: int = 200  # neutral texts (the pair's held-out neutral split)
    layer: int | None = None  # the declared readout layer (None: the middle one, n_layers // 2)
    n_perm: int = 1000  # random token sets of the target's size
    n_null_pairs: int = 10  # aligned = base + noise of the real change's size (0: none)
    n_readout: int = 15  # tokens listed per layer and end


PRESETS: dict[str, dict] = {"organism-tiny": dict(n_texts=40, n_perm=200, n_null_pairs=4),
                            "real": dict(n_texts=200, n_null_pairs=5)}


def config_for(pair: str, **overrides) -> DiffingConfig:
    return dataclasses.replace(DiffingConfig(pair=pair), **{**PRESETS.get(profile_of(pair), {}), **overrides})


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
    findings: list[Finding] = field(default_factory=list)
    timings: dict = field(default_factory=dict)

    def figures(self) -> dict:
        from .. import plot

        return {"adl_norms": plot.adl_norms(self.adl), "adl_identification": plot.adl_identification(self)}


def run(cfg: DiffingConfig, *, pair=None, log=print) -> DiffingReport:
    t0 = time.time()
    from ..organism.corpus import GrammarScorer
    from ..score import get_scorers

    pair = pair if pair is not None else load_pair(cfg.pair)
    texts = list(pair.prompts.require("heldout_neutral", why="unrelated text").heldout_neutral[:cfg.n_texts])
    L = pair.cfg.n_layers
    layer = L // 2 if cfg.layer is None else cfg.layer
    if not 0 <= layer < L:
        from ..checks import UsageError

        raise UsageError("--layer", cfg.layer, f"a layer of this pair: 0 … {L - 1}")
    log(f"[1/3] activation difference: {len(texts)} neutral texts, first {cfg.k} tokens, {L} layers")
    adl = activation_difference(pair, texts, k=cfg.k)
    log(f"[2/3] {cfg.n_null_pairs} null pairs (noise of the real change's size, tensor by tensor)")
    nulls = [activation_difference(matched_null(pair, cfg.seed * 1000 + i), texts, k=cfg.k)
             for i in range(cfg.n_null_pairs)]
    scorers = get_scorers(None) + ([GrammarScorer()] if "organism" in pair.info else [])
    flags = token_flags(pair.base, scorers)
    log("[3/3] identification: " + ", ".join(f"{n} {int(f.sum())} target tokens" for n, f in flags.items()))
    ident = {n: {lay: identify_target(pair.base, adl, f, lay, n_perm=cfg.n_perm, nulls=nulls or None, seed=cfg.seed)
                 for lay in adl.layers} for n, f in flags.items() if 0 < int(f.sum()) < len(f)}
    r = DiffingReport(cfg, cfg.pair, adl, layer, {lay: readout(pair.base, adl.vector(lay), cfg.n_readout)
                                                   for lay in adl.layers},
                      ident, {n: int(f.sum()) for n, f in flags.items()})
    r.findings = findings(r)
    r.timings = {"total_s": time.time() - t0}
    return r


def findings(r: DiffingReport) -> list[Finding]:
    at = {n: by[r.layer] for n, by in r.identification.items()}
    measured = "; ".join(f"{n}: AUROC {x.auroc:.3f} ({x.n_targets} tokens; random sets p = {x.p_sets:.3f}"
                         + ("" if x.p_nulls is None else f", null pairs p = {x.p_nulls:.3f}") + ")"
                         for n, x in at.items())
    return finalize([Finding(
        "adl_identifies", "the activation difference on unrelated text reads as the alignment's objective",
        "Minder et al. 2026: narrow fine-tunes leave readable traces in activation differences",
        f"at layer {r.layer} (the middle layer, declared), the objective's tokens' rank-AUROC in the logit-lens "
        f"readout of the mean difference: |AUROC − 0.5| ≥ {IDENTIFY_MIN_EFFECT}, two-sided p < {IDENTIFY_ALPHA} "
        "against random token sets and against null pairs, under every scorer",
        measured or "no scorer flags any token of the vocabulary",
        {n: x.identified for n, x in at.items()},
        untested="" if at else "no scorer flags a token of this vocabulary: no target to read")])


def to_json(r: DiffingReport) -> dict:
    return {"config": asdict(r.config), "pair": r.pair, "layer": r.layer, "k": r.adl.k, "n_texts": r.adl.n_texts,
            "relative_norm": {str(lay): r.adl.norms()[i].tolist() for i, lay in enumerate(r.adl.layers)},
            "readouts": {str(k): v for k, v in r.readouts.items()},
            "identification": {n: {str(lay): x.to_dict() for lay, x in by.items()} for n, by in r.identification.items()},
            "n_targets": r.n_targets, "findings": [f.to_dict() for f in r.findings], "timings": r.timings}


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
    lines += ["", "\\* identified at that layer (criterion as above); below 0.5: the objective's tokens pushed down.",
              "", "Timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in r.timings.items())]
    return "\n".join(lines) + "\n"


def write(r: DiffingReport, out_dir: str | Path, *, figures: bool = True) -> list[Path]:
    return write_report(out_dir, "diffing", to_json(r), to_markdown(r), figures=r.figures if figures else None,
                        title=f"Model diffing: {r.pair} (seed {r.config.seed})", config=asdict(r.config))
