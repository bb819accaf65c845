"""The knowledge reproduction's first steps, each a function with a typed result: the levels'
paraphrase transfer (:func:`paraphrase_transfer`), fine-tuning on one category at a time
(:func:`finetune_split`, :func:`finetune`) and on mixes of Unknown and known facts
(:func:`unknown_mixes`). Each step also fills its part of the per-fact record
(:class:`~.per_fact.PerFact`), the unit every claim is tested on. Steps 3–5 (the hidden knowledge)
are in :mod:`.hidden`."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from ... import hooks as H
from ...evaluate import fact_recall
from ...knowledge import CATEGORIES, Curve, KnowledgeLevels, cloze, correct, train_and_measure
from ...record import record
from .config import KnowledgeConfig
from .per_fact import FinetuneFacts, PerFact

# ----------------------------------------------------------------------------- helpers


def _last_resid(model, prompts, hook_fn=H.resid) -> torch.Tensor:
    """Residual stream at each prompt's last token, every layer ``[n_layers, n, d_model]``."""
    names = [hook_fn(layer) for layer in range(model.cfg.n_layers)]
    rec = record(model, prompts, names, reduction="last", batch_size=128, progress=False)
    return torch.stack([rec[n] for n in names])


def _qa(f) -> dict:
    return {"prompt": f"Q: {f.question} A:", "completion": f" {f.answer}."}


def _says(model, prompts: list[str], answers: list[str]) -> list[bool]:
    """Whether the greedy completion of each prompt gives its answer (6 new tokens at most)."""

    if not prompts:
        return []
    return fact_recall(model, prompts, answers, max_new_tokens=6, batch_size=256).correct


def _mean(xs) -> float:
    """The mean of ``xs``; NaN for none."""
    return float(np.mean(xs)) if xs else float("nan")


def facts_ans(x: dict) -> str:
    """The answer of a QA example (its completion without the full stop)."""
    return x["completion"].strip().rstrip(".")


def best_epoch(c: Curve) -> int:
    """The epoch with the best dev accuracy (the first of ties), after at least one epoch."""
    dev = c.acc["dev"][1:]
    return c.x[1 + int(np.argmax(dev))]


def early_stopped(c: Curve) -> float:
    """Test accuracy at :func:`best_epoch`."""
    return c.at("test", best_epoch(c))


# ----------------------------------------------------------------------------- 1. levels


@dataclass
class PhrasingRecall:
    """Zero-shot recall of the facts seen ≥ 8 times in pretraining, in ``n_paraphrases``
    phrasings, asked in a phrasing they were seen in (``phrasing_seen``) or not: ``acc`` the share
    answered right of ``n`` fact × phrasing pairs, from ``n_facts`` facts."""

    n_paraphrases: int
    phrasing_seen: bool
    acc: float
    n: int
    n_facts: int

    @property
    def key(self) -> str:
        """The row's name in the report's JSON, e.g. ``"2|unseen"``."""
        return f"{self.n_paraphrases}|{'seen' if self.phrasing_seen else 'unseen'}"


def paraphrase_transfer(model, facts, templates, pf: PerFact) -> list[PhrasingRecall]:
    """Zero-shot recall under each phrasing, for facts seen ≥ 8 times: was this phrasing seen in
    pretraining, and in how many phrasings was the fact seen? Returns one row per (number of
    paraphrases, phrasing seen or not), and puts in ``pf.unseen_recall`` per fact (counted once)
    its recall averaged over the phrasings it never saw, by its number of paraphrases."""
    out: dict = {}
    unseen: dict[int, dict[int, list[bool]]] = {}
    frequent = [f for f in facts if f.frequency >= 8]
    n_templates = min(len(v) for v in templates.values())
    for t in range(n_templates):
        prompts = [cloze(f, templates, t) for f in frequent]
        g = _says(model, prompts, [f.answer for f in frequent])
        for i, (f, ok) in enumerate(zip(frequent, g)):
            seen = t in f.templates
            out.setdefault((f.n_paraphrases, seen), {}).setdefault(i, []).append(ok)
            if not seen:
                unseen.setdefault(f.n_paraphrases, {}).setdefault(i, []).append(ok)
    pf.unseen_recall = {k: [float(np.mean(v)) for v in d.values()] for k, d in sorted(unseen.items())}
    return [PhrasingRecall(n_paraphrases=k, phrasing_seen=s, acc=float(np.mean([x for v in d.values() for x in v])),
                           n=sum(len(v) for v in d.values()), n_facts=len(d))
            for (k, s), d in sorted(out.items())]


# ----------------------------------------------------------------------------- 2. fine-tuning


@dataclass
class FinetuneSplit:
    """The facts of the fine-tuning experiments, as indices into the fact table: ``test`` (every
    fine-tuned model is measured on them), ``dev`` (the epoch to stop at), ``rest`` (what training
    sets are drawn from) and ``pools``, the rest by SliCK category."""

    test: list[int]
    dev: list[int]
    rest: list[int]
    pools: dict[str, list[int]]


@dataclass
class FinetuneMeta:
    """The fine-tuning on one category at a time: ``size`` training facts per category, ``n_test``
    test and ``n_dev`` dev facts, the categories ``skipped`` (fewer facts than ``size``), and the
    test facts' ``test_shares`` by category."""

    size: int
    n_test: int
    n_dev: int
    skipped: list[str]
    test_shares: dict[str, float]


@dataclass
class MixMeta:
    """Gekhman et al.'s design: ``size`` fine-tuning facts per mix, drawn from pools of
    ``n_known_pool`` known and ``n_unknown_pool`` Unknown facts, at each of ``shares`` (the share
    of Unknown facts, 0 to 1)."""

    size: int
    n_known_pool: int
    n_unknown_pool: int
    shares: list[float]


def finetune_split(facts, levels: KnowledgeLevels, cfg: KnowledgeConfig, rng: random.Random) -> FinetuneSplit:
    """Every fact (never-seen ones are the purest Unknown) shuffled by ``rng``: the first
    ``cfg.ft_test`` are the test facts, the next ``cfg.ft_dev`` the dev ones, the rest the pools."""
    order = list(range(len(facts)))
    rng.shuffle(order)
    rest = order[cfg.ft_test + cfg.ft_dev:]
    return FinetuneSplit(order[: cfg.ft_test], order[cfg.ft_test: cfg.ft_test + cfg.ft_dev], rest,
                         {c: [i for i in rest if levels.category[i] == c] for c in CATEGORIES})


def _finetune(base, train_q: list[dict], evals: dict[str, list[dict]], cfg: KnowledgeConfig) -> tuple[Curve, FinetuneFacts]:
    """Fine-tune a copy of ``base`` on ``train_q`` (closed-book QA), measuring accuracy on the
    training examples and on every set of ``evals`` (``"dev"`` and ``"test"`` among them; an empty
    set reads NaN) after every epoch. Returns the curve and the test facts' correctness after the
    last epoch and at the epoch chosen on dev (:func:`best_epoch`)."""
    test_ok: list[list[bool]] = []

    def measure(m):
        ok = {name: correct(m, [x["prompt"] for x in qs], [facts_ans(x) for x in qs])
              for name, qs in (("train", train_q), *evals.items())}
        test_ok.append(ok["test"])
        return {name: float(np.mean(v)) if v else float("nan") for name, v in ok.items()}

    curve = train_and_measure(base, train_q, measure, lr=cfg.ft_lr, batch_size=cfg.ft_batch,
                              epochs=cfg.ft_epochs, seed=cfg.seed)
    at = curve.x.index(best_epoch(curve))
    return curve, FinetuneFacts([int(x) for x in test_ok[-1]], [int(x) for x in test_ok[at]])


def finetune(base, facts, levels: KnowledgeLevels, sp: FinetuneSplit, cfg: KnowledgeConfig, rng: random.Random,
             pf: PerFact) -> tuple[dict[str, Curve], FinetuneMeta]:
    """Fine-tune the base on closed-book QA pairs of one category at a time (the same number of
    facts each, drawn by ``rng``), measured on the same test facts. Returns the curve per category
    and what was trained; each category's test facts go in ``pf.finetune``."""
    size = min([cfg.ft_size] + [len(v) for v in sp.pools.values() if len(v) >= 8])
    test_q = [_qa(facts[i]) for i in sp.test]
    dev_q = [_qa(facts[i]) for i in sp.dev]
    curves: dict[str, Curve] = {}
    meta = FinetuneMeta(size=size, n_test=len(sp.test), n_dev=len(sp.dev), skipped=[],
                        test_shares=levels.shares(sp.test))
    for c in CATEGORIES:
        if len(sp.pools[c]) < size:
            meta.skipped.append(c)
            continue
        train_idx = rng.sample(sp.pools[c], size)
        curves[c], pf.finetune[c] = _finetune(base, [_qa(facts[i]) for i in train_idx],
                                              {"dev": dev_q, "test": test_q}, cfg)
    return curves, meta


def unknown_mixes(base, facts, levels: KnowledgeLevels, sp: FinetuneSplit, cfg: KnowledgeConfig, rng: random.Random,
                  pf: PerFact, log=print) -> tuple[dict[str, Curve], MixMeta | None]:
    """Gekhman et al.'s design: fine-tuning sets of one size whose share of Unknown facts is each
    of ``cfg.shares`` (nested draws: each mix takes the first facts of one shuffled order of each
    pool), measured on the test facts. Returns the curve per mix (``"25% Unknown"``) and the
    design, or nothing without ``cfg.shares``; each mix's test facts go in ``pf.mixes``."""
    if not cfg.shares:
        return {}, None
    known_pool = [i for i in sp.rest if levels.category[i] != "Unknown"]
    unknown_pool = list(sp.pools["Unknown"])
    n_mix = min(cfg.mix_size, len(known_pool), len(unknown_pool))
    log(f"[2/5] Gekhman's design: {n_mix} fine-tuning facts, {', '.join(f'{x:.0%}' for x in cfg.shares)} "
        "of them Unknown")
    rng.shuffle(known_pool)
    rng.shuffle(unknown_pool)
    meta = MixMeta(size=n_mix, n_known_pool=len(known_pool), n_unknown_pool=len(unknown_pool), shares=list(cfg.shares))
    test_q = [_qa(facts[i]) for i in sp.test]
    dev_q = [_qa(facts[i]) for i in sp.dev]
    curves: dict[str, Curve] = {}
    for share in cfg.shares:
        k = round(share * n_mix)
        unk, kn = unknown_pool[:k], known_pool[: n_mix - k]
        name = f"{share:.0%} Unknown"
        curves[name], pf.mixes[name] = _finetune(
            base, [_qa(facts[i]) for i in unk + kn],
            {"dev": dev_q, "test": test_q, "train known": [_qa(facts[i]) for i in kn],
             "train unknown": [_qa(facts[i]) for i in unk]}, cfg)
    return curves, meta
