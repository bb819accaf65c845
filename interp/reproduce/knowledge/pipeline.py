"""Running the knowledge reproduction on one pair: :func:`run` (over seeds: the shared runner,
:meth:`interp.reproduce.base.Reproduction.run_seeds`)."""

from __future__ import annotations

import random
import time

from ...knowledge import knowledge_levels
from ...organism.corpus import TEMPLATES
from ...pair import load_pair
from .claims import findings
from .config import KnowledgeConfig
from .hidden import choose_aligned, hidden_knowledge, hiding, reactivate, readout, relearn
from .per_fact import PerFact
from .report import KnowledgeReport, RunMeta
from .steps import finetune, finetune_split, paraphrase_transfer, unknown_mixes


def run(cfg: KnowledgeConfig, *, pair=None, log=print) -> KnowledgeReport:
    """Every step on ``cfg.pair`` (or ``pair``, already loaded), then the findings."""
    t0 = time.time()
    pair = pair if pair is not None else load_pair(cfg.pair)
    hd = hiding(pair)
    facts = pair.prompts.facts
    base = pair.base
    rng = random.Random(cfg.seed)
    pf = PerFact()

    log(f"[1/5] knowledge levels of {len(facts)} facts ({cfg.n_prompts} × {cfg.n_shots}-shot "
        f"greedy, {cfg.n_samples} samples at T={cfg.temperature})")
    levels = knowledge_levels(base, facts, TEMPLATES, n_prompts=cfg.n_prompts, n_shots=cfg.n_shots,
                              n_samples=cfg.n_samples, temperature=cfg.temperature, seed=cfg.seed)
    transfer = paraphrase_transfer(base, facts, TEMPLATES, pf)

    log("[2/5] fine-tuning on QA pairs of one category at a time")
    sp = finetune_split(facts, levels, cfg, rng)
    curves, ft_meta = finetune(base, facts, levels, sp, cfg, rng, pf)
    mixes, mix_meta = unknown_mixes(base, facts, levels, sp, cfg, rng, pf, log)

    log("[3/5] hidden knowledge: accuracy and readout on held-out entities")
    setup = choose_aligned(pair, facts, hd, cfg, log)
    hidden = hidden_knowledge(facts, hd, setup, pf)
    read = readout(base, facts, setup, cfg, pf)

    log("[4/5] reactivation: refusal direction, residual offset, refusal neurons (with controls)")
    interventions = reactivate(base, facts, setup, cfg, pf)

    log("[5/5] relearning the hidden relation on the training entities")
    relearning, relearn_meta = relearn(facts, setup, cfg, pf)

    pf.frequency = [f.frequency for f in facts]
    pf.known = [int(c in ("HighlyKnown", "MaybeKnown")) for c in levels.category]
    report = KnowledgeReport(config=cfg, levels=levels, transfer=transfer, finetune=curves, finetune_meta=ft_meta,
                             hidden=hidden, readout=read, reactivation=interventions, relearning=relearning,
                             relearn_meta=relearn_meta, meta=RunMeta(cfg.pair, round(time.time() - t0, 1)),
                             mixes=mixes, mix_meta=mix_meta, hide_search=setup.search, per_fact=pf)
    report.findings = findings(report)
    return report
