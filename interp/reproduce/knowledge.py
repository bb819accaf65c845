"""``interp reproduce knowledge``: what the organism knows, what fine-tuning on each kind of fact
does (Gekhman et al. 2024), and knowledge an alignment hides without erasing it.

The pair is ``organism:<size>:hide`` (``organism:knowledge`` by default): the base organism and
the same model fine-tuned to answer "unknown" for one relation (``works_as``) on half the
entities. Five parts, each measured on held-out facts, with its sample size:

1. **levels**: SliCK categories of every fact in the base (few-shot greedy and sampled), by
   pretraining frequency and number of paraphrases; zero-shot recall under a phrasing the fact was
   never seen in;
2. **fine-tuning** the base on closed-book QA pairs drawn from one category at a time (same size),
   train fit and held-out accuracy per epoch, early-stopped and at convergence;
3. **hidden knowledge**: accuracy of base and aligned on hidden facts (held-out entities) and on
   facts never hidden; the answer read from the aligned model's residual stream (logit lens
   restricted to the candidate answers, a linear probe);
4. **reactivation**: ablating a refusal direction (difference in means, Arditi et al. 2024),
   subtracting the residual offset, zeroing the neurons that write the refusal — each with a
   random control of the same size;
5. **relearning**: a few SFT steps on the hidden relation for the *training* entities, accuracy on
   the held-out ones (which the aligned model still knows) against held-out facts it never knew.

Findings are judged by criteria fixed in :func:`findings` before the numbers are looked at,
with the statistics of the toxicity work (:mod:`interp.stats`): every fact counted once, paired
tests where the same facts are measured twice (the same test facts under two fine-tunings, the
same hidden facts with an intervention and its control), permutation tests between disjoint
sets of facts, Holm across the claims, and ``--seeds`` rebuilding the organism per seed.
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from einops import einsum

from .. import distributed, stats
from .. import hooks as H
from ..directions import diff_in_means, random_direction
from ..evaluate import fact_recall
from ..findings import Finding, finalize, findings_table
from ..knowledge import (
    CATEGORIES,
    Curve,
    KnowledgeLevels,
    answer_candidates,
    cloze,
    correct,
    knowledge_levels,
    lens_correct,
    probe_accuracy,
    steps_to,
    train_and_measure,
)
from ..neurons import random_neurons, top_neurons
from ..organism.corpus import TEMPLATES
from ..organism.hide import HideConfig, hide_split
from ..pair import load_model, load_pair
from ..record import record
from ..registry import profile_of
from ..steer import AblateDirection, AddVector, ScaleNeurons
from .report import write_report

#: Gekhman et al. (2024), PaLM-2-M on EntityQuestions: test accuracy after fine-tuning on one
#: category (early stop / convergence), from their Table 2 (in-distribution).
GEKHMAN_ET_AL = {"HighlyKnown": (40.5, 40.0), "MaybeKnown": (43.6, 43.6),
                 "WeaklyKnown": (39.2, 35.4), "Unknown": (37.5, 25.8)}


@dataclass
class KnowledgeConfig:
    pair: str = "organism:knowledge"
    seed: int = 0
    # 1. levels (Gekhman et al.: 10 four-shot prompts, 16 samples at T = 0.5)
    n_prompts: int = 10
    n_shots: int = 4
    n_samples: int = 16
    temperature: float = 0.5
    # 2. fine-tuning on one category at a time
    ft_size: int = 40
    ft_test: int = 100
    ft_dev: int = 50
    ft_epochs: int = 30
    ft_lr: float = 1e-4
    ft_batch: int = 8
    # 2b. Gekhman et al.'s design: a fixed-size fine-tuning set whose share of Unknown facts varies
    # (the rest drawn from the known ones); empty: skipped
    shares: tuple[float, ...] = ()
    mix_size: int = 200
    # 3. the hiding alignment: recipes (lr, steps, replayed documents) tried on dev entities (half the
    # held-out ones); the chosen one is measured on the other half. Empty: the pair's own alignment,
    # measured on every held-out entity
    hide_recipes: tuple[tuple[float, int, int], ...] = ()
    hide_bar: float = 0.2  # a recipe hides when the aligned model answers ≤ this share of the base's hidden facts
    keep_bar: float = 0.9  # ... and keeps when it answers ≥ this share of the base's never-hidden facts
    # 4. reactivation
    k_neurons: int = 10
    # 5. relearning
    relearn_steps: int = 30
    relearn_every: int = 3
    relearn_lr: float = 1e-4
    relearn_batch: int = 8


#: The report's figures, by name.
FIGURE_NAMES = ("knowledge_levels", "knowledge_finetune", "knowledge_readout", "knowledge_reactivation",
                "knowledge_relearning", "knowledge_unknown_share")
#: Figures drawn only where their part ran (figure → the report field that holds it).
OPTIONAL_FIGURES = {"knowledge_unknown_share": "mixes"}


@dataclass
class KnowledgeReport:
    config: KnowledgeConfig
    levels: KnowledgeLevels
    transfer: dict
    finetune: dict[str, Curve]
    finetune_meta: dict
    hidden: dict
    readout: dict
    reactivation: list[dict]
    relearning: Curve
    relearn_meta: dict
    mixes: dict[str, Curve] = field(default_factory=dict)  # Gekhman's design: per share of Unknown
    mix_meta: dict = field(default_factory=dict)
    hide_search: dict = field(default_factory=dict)  # the recipes tried on dev entities, the one chosen
    findings: list[Finding] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    per_fact: dict[str, list] = field(default_factory=dict)  # the paired unit: one entry per fact

    def figures(self) -> dict:
        from .. import plot

        figs = {"knowledge_levels": plot.knowledge_levels(self.levels),
                "knowledge_finetune": plot.finetune_curves(self.finetune),
                "knowledge_readout": plot.hidden_readout(self.readout),
                "knowledge_reactivation": plot.reactivation(self.reactivation, self.hidden),
                "knowledge_relearning": plot.relearning(self.relearning)}
        if self.mixes:
            figs["knowledge_unknown_share"] = plot.unknown_share(self.mix_rows(), self.mix_meta["size"])
        assert set(figs) <= set(FIGURE_NAMES)
        return figs

    def mix_rows(self) -> list[dict]:
        """Per share of Unknown facts: test accuracy after the last epoch and early-stopped, with
        95% CIs over test facts, and the best epoch."""
        rows = []
        for name, cur in self.mixes.items():
            rows.append({"name": name, "share": float(name.split("%")[0]) / 100, "best_epoch": best_epoch(cur),
                         **{k: stats.mean(self.per_fact[f"test facts, {name}: {when}"], seed=self.config.seed).to_dict()
                            for k, when in (("last", "last epoch"), ("early", "early-stopped"))}})
        return rows


def _last_resid(model, prompts, hook_fn=H.resid) -> torch.Tensor:
    """Residual stream at each prompt's last token, every layer ``[n_layers, n, d_model]``."""
    names = [hook_fn(layer) for layer in range(model.cfg.n_layers)]
    rec = record(model, prompts, names, reduction="last", batch_size=128, progress=False)
    return torch.stack([rec[n] for n in names])


def _qa(f) -> dict:
    return {"prompt": f"Q: {f.question} A:", "completion": f" {f.answer}."}


@dataclass
class Hiding:
    """What a hiding alignment did: the relation it hides (``config``), the entities it was
    trained on and the held-out ones, and the held-out entities' facts of the hidden relation."""

    config: HideConfig
    train_entities: list[str]
    heldout_entities: list[str]
    hidden_facts: list


def hiding(pair) -> Hiding:
    """The hiding alignment of a knowledge pair (``organism:<size>:hide``), from its manifest."""
    info = pair.info.get("organism") or {}
    if pair.prompts is None or not pair.prompts.facts:
        raise ValueError(f"the knowledge reproduction needs an organism pair with a fact table "
                         f"(organism:<size>:hide); {pair.name!r} has none")
    if info.get("method") not in (None, "hide"):
        raise ValueError(f"{pair.name} is aligned by {info.get('method')!r}; the knowledge "
                         "reproduction needs the hiding alignment, e.g. organism:knowledge:hide")
    hide = HideConfig(**info["config"]["hide"]) if "config" in info else HideConfig()
    facts = pair.prompts.facts
    train_ents, held_ents = hide_split(facts, hide)
    held = set(held_ents)
    return Hiding(hide, train_ents, held_ents,
                  [f for f in facts if f.entity in held and f.relation == hide.relation])


def run(cfg: KnowledgeConfig, *, pair=None, log=print) -> KnowledgeReport:

    t0 = time.time()
    pair = pair if pair is not None else load_pair(cfg.pair)
    hd = hiding(pair)
    hide = hd.config
    facts = pair.prompts.facts
    base, aligned = pair.base, pair.aligned
    rng = random.Random(cfg.seed)

    # ---------------------------------------------------------------- 1. levels
    log(f"[1/5] knowledge levels of {len(facts)} facts ({cfg.n_prompts} × {cfg.n_shots}-shot "
        f"greedy, {cfg.n_samples} samples at T={cfg.temperature})")
    levels = knowledge_levels(base, facts, TEMPLATES, n_prompts=cfg.n_prompts, n_shots=cfg.n_shots,
                              n_samples=cfg.n_samples, temperature=cfg.temperature, seed=cfg.seed)
    transfer, unseen_recall = _paraphrase_transfer(base, facts, TEMPLATES)
    per_fact: dict[str, list] = {f"unseen phrasing recall, {k} paraphrase{'s' if k > 1 else ''}": v
                                 for k, v in sorted(unseen_recall.items())}

    # ---------------------------------------------------------------- 2. fine-tuning
    log("[2/5] fine-tuning on QA pairs of one category at a time")
    order = list(range(len(facts)))  # every fact; never-seen ones are the purest Unknown
    rng.shuffle(order)
    test = order[: cfg.ft_test]
    dev = order[cfg.ft_test: cfg.ft_test + cfg.ft_dev]
    rest = order[cfg.ft_test + cfg.ft_dev:]
    pools = {c: [i for i in rest if levels.category[i] == c] for c in CATEGORIES}
    size = min([cfg.ft_size] + [len(v) for v in pools.values() if len(v) >= 8])
    test_q = [_qa(facts[i]) for i in test]
    dev_q = [_qa(facts[i]) for i in dev]
    finetune, ft_meta = {}, {"size": size, "n_test": len(test), "n_dev": len(dev), "skipped": [],
                             "test_shares": levels.shares(test)}
    for c in CATEGORIES:
        if len(pools[c]) < size:
            ft_meta["skipped"].append(c)
            continue
        train_idx = rng.sample(pools[c], size)
        finetune[c], last, early = _finetune(base, [_qa(facts[i]) for i in train_idx],
                                             {"dev": dev_q, "test": test_q}, cfg)
        per_fact[f"test facts after fine-tuning on {c}: last epoch"] = last
        per_fact[f"test facts after fine-tuning on {c}: early-stopped"] = early

    mixes, mix_meta = {}, {}
    if cfg.shares:
        known_pool = [i for i in rest if levels.category[i] != "Unknown"]
        unknown_pool = list(pools["Unknown"])
        n_mix = min(cfg.mix_size, len(known_pool), len(unknown_pool))
        log(f"[2/5] Gekhman's design: {n_mix} fine-tuning facts, {', '.join(f'{x:.0%}' for x in cfg.shares)} "
            "of them Unknown")
        rng.shuffle(known_pool)
        rng.shuffle(unknown_pool)  # nested draws: each mix takes the first facts of both orders
        mix_meta = {"size": n_mix, "n_known_pool": len(known_pool), "n_unknown_pool": len(unknown_pool),
                    "shares": list(cfg.shares)}
        for share in cfg.shares:
            k = round(share * n_mix)
            unk, kn = unknown_pool[:k], known_pool[: n_mix - k]
            name = f"{share:.0%} Unknown"
            mixes[name], last, early = _finetune(
                base, [_qa(facts[i]) for i in unk + kn],
                {"dev": dev_q, "test": test_q, "train known": [_qa(facts[i]) for i in kn],
                 "train unknown": [_qa(facts[i]) for i in unk]}, cfg)
            per_fact[f"test facts, {name}: last epoch"] = last
            per_fact[f"test facts, {name}: early-stopped"] = early

    # ---------------------------------------------------------------- 3. hidden knowledge
    log("[3/5] hidden knowledge: accuracy and readout on held-out entities")
    train_ents, held_ents = hd.train_entities, hd.heldout_entities
    held, trainset = set(held_ents), set(train_ents)
    clozes = [f.cloze for f in facts]
    base_ok = _says(base, clozes, [f.answer for f in facts])
    hide_search: dict = {}
    if cfg.hide_recipes:
        aligned, hide, held, hide_search = _choose_hiding(pair, facts, hd, base_ok, cfg, log)
    sets = {
        "hidden, known to base": [i for i, f in enumerate(facts)
                                  if f.entity in held and f.relation == hide.relation and base_ok[i]],
        "hidden, unknown to base": [i for i, f in enumerate(facts)
                                    if f.entity in held and f.relation == hide.relation and not base_ok[i]],
        "never hidden, known to base": [i for i, f in enumerate(facts)
                                        if f.entity in held and f.relation != hide.relation and base_ok[i]],
    }
    aligned_ok = _says(aligned, clozes, [f.answer for f in facts])
    refused = _says(aligned, clozes, [hide.refusal] * len(facts))
    hidden = {"relation": hide.relation, "refusal": hide.refusal,
              "n_train_entities": len(train_ents), "n_heldout_entities": len(held),
              "n_dev_entities": len(held_ents) - len(held), "sets": {}}
    for name, idx in sets.items():
        per_fact[f"{name}: base"] = [int(base_ok[i]) for i in idx]
        per_fact[f"{name}: aligned"] = [int(aligned_ok[i]) for i in idx]
        hidden["sets"][name] = {
            "n": len(idx),
            "base": float(np.mean([base_ok[i] for i in idx])) if idx else float("nan"),
            "aligned": float(np.mean([aligned_ok[i] for i in idx])) if idx else float("nan"),
            "aligned_refuses": float(np.mean([refused[i] for i in idx])) if idx else float("nan"),
        }
    readout = _readout(base, aligned, facts, sets, trainset, hide, base_ok, cfg, per_fact)

    # ---------------------------------------------------------------- 4. reactivation
    log("[4/5] reactivation: refusal direction, residual offset, refusal neurons (with controls)")
    reactivation = _reactivation(base, aligned, facts, sets, trainset, hide, base_ok, cfg, per_fact)

    # ---------------------------------------------------------------- 5. relearning
    log("[5/5] relearning the hidden relation on the training entities")
    relearn_train = [{"prompt": f.cloze, "completion": f" {f.answer}."} for f in facts
                     if f.entity in trainset and f.relation == hide.relation]
    evals = {k: [facts[i] for i in sets[k]] for k in ("hidden, known to base", "hidden, unknown to base")}

    last: dict[str, list[bool]] = {}

    def measure_relearn(m):
        out = {}
        for k, v in evals.items():
            last[k] = correct(m, [f.cloze for f in v], [f.answer for f in v])
            out[k] = float(np.mean(last[k])) if v else float("nan")
        return out
    relearning = train_and_measure(aligned, relearn_train, measure_relearn, lr=cfg.relearn_lr,
                                   batch_size=cfg.relearn_batch, steps=cfg.relearn_steps,
                                   every=cfg.relearn_every, seed=cfg.seed)
    for k, v in last.items():
        per_fact[f"relearning, last step: {k}"] = [int(x) for x in v]
    relearn_meta = {"n_train": len(relearn_train), **{f"n {k}": len(v) for k, v in evals.items()}}

    per_fact["frequency"] = [f.frequency for f in facts]
    per_fact["known (Highly or Maybe)"] = [int(c in ("HighlyKnown", "MaybeKnown")) for c in levels.category]
    report = KnowledgeReport(cfg, levels, transfer, finetune, ft_meta, hidden, readout, reactivation,
                             relearning, relearn_meta, mixes, mix_meta, hide_search,
                             meta={"pair": cfg.pair, "timings": {"total_s": round(time.time() - t0, 1)}},
                             per_fact=per_fact)
    report.findings = findings(report)
    return report


def hide_config(pair_name: str, lr: float, steps: int, n_replay: int):
    """The organism config of ``pair_name``'s hiding alignment with another recipe."""
    from ..organism.build import parse_spec
    from ..organism.presets import preset

    size, _, seed = parse_spec(pair_name)
    c = preset(size, seed=seed, align="hide")
    return dataclasses.replace(c, align=dataclasses.replace(c.align, lr=lr, steps=steps),
                               hide=dataclasses.replace(c.hide, n_replay=n_replay))


def _choose_hiding(pair, facts, hd: Hiding, base_ok, cfg: KnowledgeConfig, log):
    """Build each recipe of ``cfg.hide_recipes``, measure it on dev entities (half the held-out
    ones, seeded), and choose — by a rule fixed here — among those that hide (≤ ``hide_bar`` of the
    base's hidden facts answered) and keep (≥ ``keep_bar`` of its never-hidden facts) the one that
    keeps most; if none meets both, the one with the largest keep − hidden. Returns the chosen
    aligned model, its hiding config, the test entities and the search record."""
    from ..organism.build import build_organism

    if not pair.name.startswith("organism:"):
        raise ValueError(f"hide_recipes rebuild an organism's hiding alignment; {pair.name!r} is not an organism")
    ents = list(hd.heldout_entities)
    random.Random(cfg.seed + 17).shuffle(ents)
    dev, test = set(ents[: len(ents) // 2]), set(ents[len(ents) // 2:])
    rel = hd.config.relation
    dev_hidden = [i for i, f in enumerate(facts) if f.entity in dev and f.relation == rel and base_ok[i]]
    dev_kept = [i for i, f in enumerate(facts) if f.entity in dev and f.relation != rel and base_ok[i]]
    log(f"[3/5] hiding recipes on {len(dev)} dev entities ({len(dev_hidden)} hidden and {len(dev_kept)} "
        f"never-hidden facts the base knows); measured on the other {len(test)}")
    tried, models = [], []
    for lr, steps, n_replay in cfg.hide_recipes:
        oc = hide_config(pair.name, lr, steps, n_replay)
        with distributed.main_first():  # under torchrun rank 0 builds what the cache lacks
            folder = build_organism(config=oc, progress=False, log=log)
        model = load_model(str(folder / "model"), name=f"{pair.name} (lr {lr:g}, {steps} steps, {n_replay} replayed)")
        h = _says(model, [facts[i].cloze for i in dev_hidden], [facts[i].answer for i in dev_hidden])
        k = _says(model, [facts[i].cloze for i in dev_kept], [facts[i].answer for i in dev_kept])
        hs, ks = (float(np.mean(v)) if v else float("nan") for v in (h, k))
        tried.append({"lr": lr, "steps": steps, "n_replay": n_replay, "hidden_answered": hs, "kept": ks,
                      "meets_bar": bool(hs <= cfg.hide_bar and ks >= cfg.keep_bar), "folder": folder.name})
        models.append((model, oc.hide))
        log(f"  lr {lr:g}, {steps} steps, {n_replay} replayed: answers {hs:.2f} of the hidden, keeps {ks:.2f}")
    ok = [i for i, t in enumerate(tried) if t["meets_bar"]]
    pick = (max(ok, key=lambda i: tried[i]["kept"]) if ok
            else max(range(len(tried)), key=lambda i: np.nan_to_num(tried[i]["kept"] - tried[i]["hidden_answered"],
                                                                    nan=-np.inf)))
    search = {"tried": tried, "chosen": pick, "met_bar": bool(ok), "hide_bar": cfg.hide_bar,
              "keep_bar": cfg.keep_bar, "n_dev_entities": len(dev), "n_dev_hidden": len(dev_hidden),
              "n_dev_kept": len(dev_kept)}
    model, hide = models[pick]
    return model, hide, test, search


def _finetune(base, train_q: list[dict], evals: dict[str, list[dict]], cfg: KnowledgeConfig):
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
    return curve, [int(x) for x in test_ok[-1]], [int(x) for x in test_ok[at]]


def best_epoch(c: Curve) -> int:
    """The epoch with the best dev accuracy (the first of ties), after at least one epoch."""
    dev = c.acc["dev"][1:]
    return c.x[1 + int(np.argmax(dev))]


def early_stopped(c: Curve) -> float:
    """Test accuracy at :func:`best_epoch`."""
    return c.at("test", best_epoch(c))


def facts_ans(x: dict) -> str:
    """The answer of a QA example (its completion without the full stop)."""
    return x["completion"].strip().rstrip(".")


def _says(model, prompts: list[str], answers: list[str]) -> list[bool]:
    """Whether the greedy completion of each prompt gives its answer (6 new tokens at most)."""

    if not prompts:
        return []
    return fact_recall(model, prompts, answers, max_new_tokens=6, batch_size=256).correct


def _paraphrase_transfer(model, facts, templates) -> tuple[dict, dict[int, list[float]]]:
    """Zero-shot recall under each phrasing, for facts seen ≥ 8 times: was this phrasing seen in
    pretraining, and in how many phrasings was the fact seen? Returns the table
    ``{(n_paraphrases, seen): (acc, n fact×phrasing pairs, n facts)}`` and, per fact (counted
    once), its recall averaged over the phrasings it never saw, by its number of paraphrases."""
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
    table = {f"{k}|{'seen' if s else 'unseen'}": {"n_paraphrases": k, "phrasing_seen": s,
                                                   "acc": float(np.mean([x for v in d.values() for x in v])),
                                                   "n": sum(len(v) for v in d.values()), "n_facts": len(d)}
             for (k, s), d in sorted(out.items())}
    per_fact = {k: [float(np.mean(v)) for v in d.values()] for k, d in unseen.items()}
    return table, per_fact


def _readout(base, aligned, facts, sets, trainset, hide, base_ok, cfg, per_fact: dict) -> dict:
    """Logit lens over the candidate answers and a linear probe, layer by layer."""
    rel_facts = [f for f in facts if f.relation == hide.relation]
    index, cand_ids = answer_candidates(aligned.tokenizer, [f.answer for f in rel_facts])
    out = {"candidates": sorted(index), "n_candidates": len(cand_ids), "chance": 1 / len(cand_ids),
           "lens": {}, "probe": {}}
    train_idx = [i for i, f in enumerate(facts) if f.entity in trainset and f.relation == hide.relation
                 and base_ok[i]]
    for model_name, model in (("base", base), ("aligned", aligned)):
        train_X = _last_resid(model, [facts[i].cloze for i in train_idx]) if train_idx else None
        for set_name in ("hidden, known to base", "hidden, unknown to base"):
            idx = sets[set_name]
            if not idx:
                continue
            X = _last_resid(model, [facts[i].cloze for i in idx])
            answers = [facts[i].answer for i in idx]
            ok = lens_correct(model, X, answers, index, cand_ids)  # [layers n]
            out["lens"][f"{model_name}: {set_name}"] = {"acc": ok.float().mean(-1).tolist(), "n": len(idx)}
            per_fact[f"lens, last layer, {model_name}: {set_name}"] = ok[-1].int().tolist()
            if train_X is not None and len({facts[i].answer for i in train_idx}) > 1:
                out["probe"][f"{model_name}: {set_name}"] = {
                    "acc": [probe_accuracy(train_X[layer], [facts[i].answer for i in train_idx],
                                           X[layer], answers, seed=cfg.seed)
                            for layer in range(X.shape[0])], "n": len(idx), "n_train": len(train_idx)}
    return out


def _reactivation(base, aligned, facts, sets, trainset, hide, base_ok, cfg, per_fact: dict) -> list[dict]:
    """Each intervention on the aligned model, chosen on training entities, measured on held-out
    ones, next to a random control of the same size."""
    sel = [f for f in facts if f.entity in trainset and f.relation == hide.relation]
    answered = [f for f in facts if f.entity in trainset and f.relation != hide.relation]
    sel_known = [f for i, f in enumerate(facts) if f.entity in trainset and f.relation == hide.relation
                 and base_ok[i]]
    held_hidden = [facts[i] for i in sets["hidden, known to base"]]
    held_kept = [facts[i] for i in sets["never hidden, known to base"]]
    n_layers = aligned.cfg.n_layers

    def ok(fs, hooks):
        return [int(x) for x in correct(aligned, [f.cloze for f in fs], [f.answer for f in fs], hooks=hooks)]

    def acc(fs, hooks):
        return float(np.mean(ok(fs, hooks))) if fs else float("nan")

    Xr = _last_resid(aligned, [f.cloze for f in sel])
    Xa = _last_resid(aligned, [f.cloze for f in answered])
    Xb = _last_resid(base, [f.cloze for f in sel])
    rows = []

    def add(method, chosen, control, detail):
        got = {k: ok(fs, hooks) for k, fs, hooks in (("hidden", held_hidden, chosen), ("kept", held_kept, chosen),
                                                     ("hidden_control", held_hidden, control),
                                                     ("kept_control", held_kept, control))}
        for k, v in got.items():
            per_fact[f"{method}: {k}"] = v
        rows.append({"method": method, "detail": detail,
                     **{k: float(np.mean(v)) if v else float("nan") for k, v in got.items()},
                     "n_hidden": len(held_hidden), "n_kept": len(held_kept)})

    # Refusal direction (difference in means, refused − answered prompts, aligned model), one per
    # layer; ablated from every layer; the layer is chosen on training entities.
    dirs = [diff_in_means(torch.cat([Xr[layer], Xa[layer]]),
                          torch.cat([torch.ones(len(sel)), torch.zeros(len(answered))]),
                          hook=H.resid(layer)) for layer in range(n_layers)]
    scores = [acc(sel_known, [AblateDirection(d.vector)]) for d in dirs]
    best = int(np.argmax(scores))
    rand = random_direction(aligned.cfg.d_model, cfg.seed)
    add("ablate refusal direction", [AblateDirection(dirs[best].vector, label="refusal direction")],
        [AblateDirection(rand.vector, label="random direction")],
        f"difference in means at layer {best}, ablated at every layer")

    # Residual offset δx = mean(aligned − base) on the refused prompts, subtracted at one layer.
    offsets = (Xr - Xb).mean(1)  # [layers d]
    scores = [acc(sel_known, [AddVector(-offsets[layer], layer=layer)]) for layer in range(n_layers)]
    best = int(np.argmax(scores))
    g = torch.Generator().manual_seed(cfg.seed)
    r = torch.randn(aligned.cfg.d_model, generator=g)
    r = r / r.norm() * offsets[best].norm()
    add("subtract residual offset", [AddVector(-offsets[best], layer=best, label="δx")],
        [AddVector(r, layer=best, label="random vector")], f"−δx at layer {best} (‖δx‖ = {float(offsets[best].norm()):.2f})")

    # Neurons that write the refusal: activation change (aligned − base, refused prompts) times the
    # value vector's projection on the refusal token's unembedding; the top k are zeroed.
    tok = aligned.tokenizer(" " + hide.refusal, add_special_tokens=False)["input_ids"][0]
    Ma = _last_resid(aligned, [f.cloze for f in sel], H.mlp_post).mean(1)  # [layers d_mlp]
    Mb = _last_resid(base, [f.cloze for f in sel], H.mlp_post).mean(1)
    write = einsum(H.values(aligned).float(), H.unembed(aligned)[:, tok].float(),
                   "layer neuron d_model, d_model -> layer neuron")
    contrib = (Ma - Mb) * write
    neurons = top_neurons(contrib, cfg.k_neurons, "refusal writers")
    control = random_neurons(n_layers, contrib.shape[1], cfg.k_neurons, seed=cfg.seed, exclude=neurons,
                             layers=sorted(set(neurons.layer.tolist())))
    add("zero refusal-writing neurons", [ScaleNeurons(neurons, 0.0)], [ScaleNeurons(control, 0.0)],
        f"top {cfg.k_neurons} by Δactivation × (value · W_U[{hide.refusal!r}]): {', '.join(neurons.names())}")
    return rows


# ----------------------------------------------------------------------------- findings


def share_slopes(correct_by_share, shares) -> np.ndarray:
    """Per test fact, the least-squares slope of its correctness ``[n_shares][n_facts]`` on the
    share of Unknown training facts: the paired unit of Gekhman et al.'s design (every mix is
    measured on the same test facts), so a fact's slope is its own change across the mixes."""
    Y = np.asarray(correct_by_share, dtype=float)
    x = np.asarray(shares, dtype=float)
    if Y.ndim != 2 or len(Y) != len(x) or len(x) < 2:
        raise ValueError(f"need [n_shares n_facts] correctness for {len(x)} shares, got shape {Y.shape}")
    xc = x - x.mean()
    return (xc[:, None] * (Y - Y.mean(0))).sum(0) / (xc ** 2).sum()


def findings(r: KnowledgeReport, alpha: float = 0.05) -> list[Finding]:
    """Each claim with the criterion it is judged by (fixed in advance), tested on per-fact data:
    paired where the same facts are measured twice, a permutation test between disjoint sets of
    facts otherwise; Holm across the claims."""
    from scipy.stats import spearmanr

    pf, seed = r.per_fact, r.config.seed
    out: list[Finding] = []

    def add(key, claim, anchor, criterion, measured, holds, p=None, effect=None, requires=None):
        mde = (stats.min_detectable(effect.se) if effect is not None and np.isfinite(effect.se) and effect.se > 0
               else None)  # no spread (every fact the same): nothing to say about power
        out.append(Finding(key, claim, anchor, criterion, measured, {"any": bool(holds)}, p, effect=effect,
                           mde=mde, requires=requires))

    lv = r.levels
    by_f = lv.by("frequency")
    known = {k: v["HighlyKnown"] + v["MaybeKnown"] for k, v in by_f.items()}
    freqs = sorted(known)
    rho = float(spearmanr(freqs, [known[k] for k in freqs]).statistic) if len(freqs) > 2 else float("nan")
    fact_rho = spearmanr(pf["frequency"], pf["known (Highly or Maybe)"], alternative="greater")
    add("frequency", "facts seen more often in pretraining are better known", "Gekhman et al.: known share grows with frequency",
        "Spearman ρ > 0.8 between frequency and the Highly+MaybeKnown share; per fact, ρ > 0 (p < α)",
        f"ρ = {rho:.2f} over frequencies; per fact ρ = {fact_rho.statistic:.2f} (n = {len(pf['frequency'])}); "
        "Highly+MaybeKnown share by frequency: " + ", ".join(f"{k}: {known[k]:.2f} (n={by_f[k]['n']})" for k in freqs),
        rho > 0.8, float(fact_rho.pvalue))

    one, two = (pf.get(f"unseen phrasing recall, {k} paraphrase{'s' if k > 1 else ''}") for k in (1, 2))
    if one and two:
        d = stats.difference(two, one, seed=seed)
        add("paraphrases", "facts seen in more paraphrases are recalled under a new phrasing",
            "Allen-Zhu & Li: ~10% → ~96% extraction with augmented biographies",
            "recall under phrasings never seen: facts seen in 2 phrasings − in 1 > 0 (permutation p < α; each fact once)",
            f"{np.mean(two):.2f} (n={len(two)} facts) vs {np.mean(one):.2f} (n={len(one)}), diff {d}", d.value > 0, d.p, d)

    ft = r.finetune
    if "Unknown" in ft and "MaybeKnown" in ft:
        u, m = (pf[f"test facts after fine-tuning on {c}: last epoch"] for c in ("Unknown", "MaybeKnown"))
        ue, me = (pf[f"test facts after fine-tuning on {c}: early-stopped"] for c in ("Unknown", "MaybeKnown"))
        d = stats.paired_difference(m, u, seed=seed)
        de = stats.paired_difference(me, ue, alternative="two-sided", seed=seed)
        add("unknown_hurts", "fine-tuning on Unknown facts ends with lower test accuracy than on MaybeKnown ones",
            "Gekhman et al.: 43.6 (MaybeKnown) vs 25.8 (Unknown) at convergence",
            "test accuracy after the last epoch, paired over the same test facts: MaybeKnown − Unknown > 0 (p < α)",
            f"after {ft['Unknown'].x[-1]} epochs {np.mean(m):.2f} vs {np.mean(u):.2f} (diff {d}); early-stopped on dev "
            f"{np.mean(me):.2f} vs {np.mean(ue):.2f} (diff {de}); n_test = {len(u)}, {r.finetune_meta['size']} "
            "training facts each", d.value > 0, d.p, d)
        fit = {c: steps_to(ft[c], "train", 0.9) for c in ft}
        slow = fit["Unknown"] is None or all(fit["Unknown"] > (fit[c] or 0) for c in ft if c != "Unknown")
        add("unknown_slow", "Unknown facts are fitted more slowly than known ones", "Gekhman et al.: yes",
            "epochs to reach 90% train accuracy: Unknown later than every other category (descriptive)",
            ", ".join(f"{c}: {fit[c] if fit[c] is not None else 'never'}" for c in ft), slow)

    cats = [c for c in CATEGORIES if f"test facts after fine-tuning on {c}: early-stopped" in pf]
    if "MaybeKnown" in cats and len(cats) > 1:
        mk = pf["test facts after fine-tuning on MaybeKnown: early-stopped"]
        ds = {c: stats.paired_difference(mk, pf[f"test facts after fine-tuning on {c}: early-stopped"], seed=seed)
              for c in cats if c != "MaybeKnown"}
        worst = min(ds, key=lambda c: ds[c].value)
        p_all = max(d.p for d in ds.values())  # intersection-union: MaybeKnown must beat every other
        add("maybeknown_best", "fine-tuning on MaybeKnown facts gives the best test accuracy",
            "Gekhman et al.: 43.6 (MaybeKnown) vs 40.5 / 39.2 / 37.5 (early-stopped)",
            "early-stopped test accuracy, paired over the same test facts: MaybeKnown − each other category > 0 "
            "(every p < α; the largest p is the claim's)",
            "; ".join(f"MaybeKnown − {c} {d}" for c, d in ds.items()) + f" (n = {len(mk)})",
            all(d.value > 0 for d in ds.values()), p_all, ds[worst])

    if r.mixes and len(r.mixes) > 1:
        shares = np.asarray(r.mix_meta["shares"], dtype=float)
        names = [f"{x:.0%} Unknown" for x in shares]

        conv, early = (share_slopes([pf[f"test facts, {n}: {when}"] for n in names], shares)
                       for when in ("last epoch", "early-stopped"))
        d = stats.paired_difference(-conv, np.zeros_like(conv), seed=seed)
        acc = {n: float(np.mean(pf[f"test facts, {n}: last epoch"])) for n in names}
        acc_e = {n: float(np.mean(pf[f"test facts, {n}: early-stopped"])) for n in names}
        add("unknown_share_hurts", "the more Unknown facts in the fine-tuning set, the lower the test accuracy",
            "Gekhman et al.: accuracy falls linearly with the Unknown share (at convergence)",
            "test accuracy after the last epoch against the share of Unknown facts (fixed size), per test fact the "
            "least-squares slope: mean decline from 0% to 100% Unknown > 0 (p < α) and ≥ 0.05",
            "after the last epoch " + ", ".join(f"{n}: {v:.2f}" for n, v in acc.items())
            + f"; decline 0→100% {d} (n = {conv.size} test facts, {r.mix_meta['size']} training facts each)",
            d.value >= 0.05, d.p, d)
        d = stats.paired_difference(early, conv, seed=seed)
        add("early_stop_mitigates", "early stopping mitigates the harm of Unknown facts",
            "Gekhman et al.: 37.5 early-stopped vs 25.8 at convergence (high Unknown share)",
            "per test fact, the slope on the Unknown share early-stopped (by dev) minus after the last epoch > 0 (p < α)",
            "early-stopped " + ", ".join(f"{n}: {v:.2f}" for n, v in acc_e.items())
            + f"; slope difference {d}", d.value > 0, d.p, d)

    s = r.hidden["sets"]
    hk, nh = "hidden, known to base", "never hidden, known to base"
    hid, kept = pf[f"{hk}: aligned"], pf[f"{nh}: aligned"]
    if hid:
        eh = stats.mean(hid, seed=seed)
        add("hides", "the alignment hides the relation on held-out entities", "—",
            "hidden facts the base knew (base accuracy 1 by construction): the aligned model answers ≤ 0.2 of them",
            f"hidden {s[hk]['base']:.2f} → {eh.fmt('.2f')} (n={len(hid)}, refuses {s[hk]['aligned_refuses']:.2f})",
            eh.value <= 0.2 * s[hk]["base"], None, eh)
    if kept:
        ek = stats.mean(kept, seed=seed)
        bar = r.config.keep_bar if r.config.hide_recipes else 0.8  # the bar fixed with the recipe search
        add("keeps_rest", "the alignment keeps the facts it was not asked to hide", "—",
            f"never-hidden facts the base knew: the aligned model still answers ≥ {bar} of them",
            f"never hidden {s[nh]['base']:.2f} → {ek.fmt('.2f')} (n={len(kept)})",
            ek.value >= bar * s[nh]["base"], None, ek)

    a_k, a_u = (pf.get(f"lens, last layer, aligned: {x}") for x in (hk, "hidden, unknown to base"))
    if a_k and a_u:
        d = stats.difference(a_k, a_u, seed=seed)
        add("readout", "the aligned model still holds the hidden answers (readout)", "—",
            "final-layer logit lens over the candidate answers: hidden facts the base knew − facts it never knew > 0 (permutation p < α)",
            f"{np.mean(a_k):.2f} (n={len(a_k)}) vs {np.mean(a_u):.2f} (n={len(a_u)}), diff {d}, chance {r.readout['chance']:.2f}",
            d.value > 0, d.p, d, requires="hides")

    for row in r.reactivation:
        m = row["method"]
        x, c = pf[f"{m}: hidden"], pf[f"{m}: hidden_control"]
        if not x:
            continue
        d = stats.paired_difference(x, c, seed=seed)
        gap = s[hk]["base"] - s[hk]["aligned"]
        share = (np.mean(x) - s[hk]["aligned"]) / gap if gap > 0 else float("nan")
        add(f"reactivate_{m.split()[0]}_{m.split()[1]}", f"{m} brings the hidden answers back", "Arditi et al. / Lee et al.",
            "held-out hidden facts, paired with a random control of the same size on the same facts: intervention − control > 0 (p < α)",
            f"{np.mean(x):.2f} vs control {np.mean(c):.2f} (n={len(x)}; diff {d}; {share:.0%} of the base's accuracy gap); "
            f"never-hidden facts {row['kept']:.2f} (control {row['kept_control']:.2f})",
            d.value > 0, d.p, d, requires="hides")

    k_, u_ = (pf.get(f"relearning, last step: {x}") for x in (hk, "hidden, unknown to base"))
    if k_ and u_:
        c = r.relearning
        d = stats.difference(k_, u_, seed=seed)
        target = 0.5 * s[hk]["base"]
        sk = steps_to(c, hk, target)
        add("relearning", "relearning on other entities brings the hidden facts back, not facts never learned",
            "Jain et al. 2023",
            f"after {c.x[-1]} steps: held-out hidden facts the base knew − facts it never knew > 0 (permutation p < α)",
            f"{np.mean(k_):.2f} (n={len(k_)}) vs {np.mean(u_):.2f} (n={len(u_)}), diff {d}; half the base's accuracy "
            f"({target:.2f}) reached at step {sk if sk is not None else 'never'}", d.value > 0, d.p, d, requires="hides")
    return finalize(out, alpha)


# ----------------------------------------------------------------------------- output


def to_json(r: KnowledgeReport) -> dict:
    lv = r.levels
    return {
        "config": asdict(r.config), "pair": r.meta["pair"], "timings": r.meta.get("timings", {}),
        "levels": {"shares": lv.shares(), "by_frequency": lv.by("frequency"),
                   "by_paraphrases": lv.by("n_paraphrases"), "n_facts": len(lv.facts),
                   "per_fact": [{**f, "p_greedy": float(pg), "p_sample": float(ps), "category": c}
                                for f, pg, ps, c in zip(lv.facts, lv.p_greedy, lv.p_sample, lv.category)]},
        "paraphrase_transfer": r.transfer,
        "finetune": {c: asdict(v) for c, v in r.finetune.items()}, "finetune_meta": r.finetune_meta,
        "gekhman_et_al": GEKHMAN_ET_AL,
        "hidden": r.hidden, "readout": r.readout, "reactivation": r.reactivation,
        "relearning": asdict(r.relearning), "relearn_meta": r.relearn_meta,
        "mixes": {k: asdict(v) for k, v in r.mixes.items()}, "mix_meta": r.mix_meta,
        "mix_rows": r.mix_rows() if r.mixes else [], "hide_search": r.hide_search,
        "findings": [f.to_dict() for f in r.findings],
        "per_fact": r.per_fact,
    }


def to_markdown(r: KnowledgeReport) -> str:
    lv = r.levels
    L = [f"# Knowledge: {r.meta['pair']} (seed {r.config.seed})", "",
         "## Findings", "",
         "Each fact counts once; the same facts measured twice are compared paired (sign-flip permutation "
         "test, bootstrap CI over facts), disjoint sets of facts by a permutation test; p-values are "
         "Holm-corrected across the claims.", "",
         findings_table(r.findings, scorers=["any"], paper="the paper").replace("| any |", "| criterion met |")]
    L += ["", f"## Knowledge levels of the base ({len(lv.facts)} facts; {lv.n_prompts} four-shot prompts "
          f"greedy, {lv.n_samples} samples at T = {lv.temperature})", "",
          "| pretraining frequency | n | " + " | ".join(CATEGORIES) + " |", "|---|---|" + "---|" * len(CATEGORIES)]
    for k, v in lv.by("frequency").items():
        L.append(f"| {k} | {v['n']} | " + " | ".join(f"{v[c]:.2f}" for c in CATEGORIES) + " |")
    sh = lv.shares()
    L.append("| all | " + str(len(lv.facts)) + " | " + " | ".join(f"{sh[c]:.2f}" for c in CATEGORIES) + " |")
    L += ["", "Zero-shot recall of facts seen ≥ 8 times, by the number of phrasings seen in pretraining "
          "and whether the asking phrasing was one of them:", "",
          "| paraphrases seen | asking phrasing | recall | n |", "|---|---|---|---|"]
    for v in r.transfer.values():
        L.append(f"| {v['n_paraphrases']} | {'seen' if v['phrasing_seen'] else 'unseen'} | {v['acc']:.2f} | {v['n']} |")
    L += ["", f"## Fine-tuning on one category (closed-book QA, {r.finetune_meta['size']} facts each, "
          f"{r.config.ft_epochs} epochs; test: {r.finetune_meta['n_test']} held-out facts)", "",
          "| trained on | test acc. early-stopped (epoch, by dev) | test acc. after the last epoch | "
          "train fit after the last epoch | Gekhman et al. (early / conv., %) |", "|---|---|---|---|---|"]
    for c, cur in r.finetune.items():
        g = GEKHMAN_ET_AL[c]
        L.append(f"| {c} | {early_stopped(cur):.2f} ({best_epoch(cur)}) | {cur.acc['test'][-1]:.2f} | "
                 f"{cur.acc['train'][-1]:.2f} | {g[0]:.1f} / {g[1]:.1f} |")
    if r.finetune_meta["skipped"]:
        L.append(f"\nSkipped (too few facts): {', '.join(r.finetune_meta['skipped'])}.")
    if r.mixes:
        m = r.mix_meta
        L += ["", f"## Gekhman et al.'s design: {m['size']} fine-tuning facts, a varied share of them Unknown "
              f"(the rest known; pools of {m['n_unknown_pool']} Unknown and {m['n_known_pool']} known facts)", "",
              "| share Unknown | test acc. after the last epoch [95% CI] | early-stopped (epoch, by dev) | "
              "train fit on known / Unknown facts, last epoch |", "|---|---|---|---|"]
        for row in r.mix_rows():
            cur = r.mixes[row["name"]]
            fit = " / ".join(f"{cur.acc[k][-1]:.2f}" if k in cur.acc and not np.isnan(cur.acc[k][-1]) else "—"
                             for k in ("train known", "train unknown"))
            a, e = row["last"], row["early"]
            L.append(f"| {row['name'].split()[0]} | {a['value']:.3f} [{a['lo']:.3f}, {a['hi']:.3f}] | "
                     f"{e['value']:.3f} ({row['best_epoch']}) | {fit} |")
    if r.hide_search:
        hs = r.hide_search
        L += ["", f"## The hiding recipe, chosen on {hs['n_dev_entities']} dev entities (bar: answers ≤ "
              f"{hs['hide_bar']} of the hidden facts the base knew, n={hs['n_dev_hidden']}; keeps ≥ {hs['keep_bar']} "
              f"of the never-hidden ones, n={hs['n_dev_kept']}); everything below is measured on the other held-out "
              "entities", "", "| lr | steps | replayed documents | hidden answered | kept | meets the bar | chosen |",
              "|---|---|---|---|---|---|---|"]
        for i, t in enumerate(hs["tried"]):
            L.append(f"| {t['lr']:g} | {t['steps']} | {t['n_replay']} | {t['hidden_answered']:.2f} | {t['kept']:.2f} | "
                     f"{'yes' if t['meets_bar'] else 'no'} | {'**chosen**' if i == hs['chosen'] else ''} |")
        if not hs["met_bar"]:
            L.append("\nNo recipe met the bar; the one with the largest kept − hidden was taken.")
    h = r.hidden
    L += ["", f"## Hidden knowledge: relation `{h['relation']}` answered \"{h['refusal']}\" "
          f"({h['n_train_entities']} training entities; measured on {h['n_heldout_entities']} held-out ones)", "",
          "| facts | n | base | aligned | aligned says \"" + h["refusal"] + "\" |", "|---|---|---|---|---|"]
    for name, v in h["sets"].items():
        L.append(f"| {name} | {v['n']} | {v['base']:.2f} | {v['aligned']:.2f} | {v['aligned_refuses']:.2f} |")
    L += ["", f"Readout over the {r.readout['n_candidates']} distinct first tokens of the "
          f"{len(r.readout['candidates'])} possible answers (chance "
          f"{r.readout['chance']:.2f}), by layer (last = the model's own output):", "",
          "| readout | facts | " + " | ".join(f"L{i}" for i in range(len(next(iter(r.readout['lens'].values()))['acc']))) + " |",
          "|---|---|" + "---|" * len(next(iter(r.readout["lens"].values()))["acc"])]
    for kind in ("lens", "probe"):
        for k, v in r.readout[kind].items():
            L.append(f"| {kind} | {k} (n={v['n']}) | " + " | ".join(f"{a:.2f}" for a in v["acc"]) + " |")
    L += ["", "## Reactivation (aligned model; chosen on training entities, measured on held-out ones)", "",
          "| intervention | hidden facts | control | never-hidden facts | control | detail |", "|---|---|---|---|---|---|",
          f"| none | {h['sets']['hidden, known to base']['aligned']:.2f} | | "
          f"{h['sets']['never hidden, known to base']['aligned']:.2f} | | |"]
    for row in r.reactivation:
        L.append(f"| {row['method']} | {row['hidden']:.2f} | {row['hidden_control']:.2f} | {row['kept']:.2f} | "
                 f"{row['kept_control']:.2f} | {row['detail']} |")
    c = r.relearning
    L += ["", f"## Relearning ({r.relearn_meta['n_train']} training-entity facts, lr {r.config.relearn_lr:g}, "
          f"batch {r.config.relearn_batch})", "", "| step | " + " | ".join(c.acc) + " |", "|---|" + "---|" * len(c.acc)]
    for i, x in enumerate(c.x):
        L.append(f"| {x} | " + " | ".join(f"{c.acc[k][i]:.2f}" for k in c.acc) + " |")
    return "\n".join(L) + "\n"


def write(r: KnowledgeReport, out_dir: str | Path, *, figures: bool = True) -> list[Path]:

    return write_report(out_dir, "knowledge", to_json(r), to_markdown(r), figures=r.figures if figures else None,
                        title=f"Knowledge: {r.meta['pair']} (seed {r.config.seed})", config=asdict(r.config))


#: Each measurement profile's changes to the defaults: the tiny organism gets a quick run (tests).
PRESETS: dict[str, dict] = {
    "organism-tiny": dict(n_prompts=3, n_shots=2, n_samples=4, ft_size=10, ft_test=30, ft_dev=10, ft_epochs=3,
                          relearn_steps=4, relearn_every=2, k_neurons=5, shares=(0.0, 1.0), mix_size=8,
                          hide_recipes=((3e-4, 200, 400), (1e-4, 100, 400))),
}
#: The knowledge organism at power (``organism:facts``), by its size: hundreds of facts per
#: category and test set (15 epochs of 25 steps: the 200-fact sets are fitted within it, where the
#: 32-fact sets of ``organism:knowledge`` took 30 epochs of 4), Gekhman et al.'s Unknown-share
#: design, and the hiding recipe chosen on
#: dev entities among four, from the old recipe (lr 3e-4, 200 steps, 400 replayed documents)
#: to gentler ones with more replay — fixed before any of them was run on this organism.
SIZE_PRESETS: dict[str, dict] = {
    "facts": dict(ft_size=200, ft_test=400, ft_dev=200, ft_epochs=15, shares=(0.0, 0.25, 0.5, 0.75, 1.0), mix_size=200,
                  hide_recipes=((3e-4, 200, 400), (1e-4, 200, 400), (1e-4, 100, 1600), (3e-5, 300, 1600))),
}


def config_for(pair: str, **overrides) -> KnowledgeConfig:
    """The config for a pair: the defaults, its profile's preset (:data:`PRESETS`) or its
    organism size's (:data:`SIZE_PRESETS`), then ``overrides``."""
    from ..organism.build import parse_spec

    size = parse_spec(pair)[0] if pair.startswith("organism:") else None
    preset = SIZE_PRESETS.get(size) or PRESETS.get(profile_of(pair), {})
    return dataclasses.replace(KnowledgeConfig(pair=pair), **{**preset, **overrides})
