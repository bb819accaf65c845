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

Findings are judged by criteria fixed in :func:`findings` before the numbers are looked at.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import hooks as H
from ..directions import diff_in_means, random_direction
from ..io import write_json, write_text
from ..knowledge import (
    CATEGORIES,
    Curve,
    KnowledgeLevels,
    accuracy,
    answer_candidates,
    cloze,
    knowledge_levels,
    lens_accuracy,
    probe_accuracy,
    steps_to,
    train_and_measure,
)
from ..neurons import Neurons, random_neurons
from ..record import record
from ..steer import AblateDirection, AddVector, ScaleNeurons

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
    # 4. reactivation
    k_neurons: int = 10
    # 5. relearning
    relearn_steps: int = 30
    relearn_every: int = 3
    relearn_lr: float = 1e-4
    relearn_batch: int = 8


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
    findings: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)


def _se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-12) / n) if n else float("nan")


def _last_resid(model, prompts, hook_fn=H.resid) -> torch.Tensor:
    """Residual stream at each prompt's last token, every layer ``[n_layers, n, d_model]``."""
    names = [hook_fn(layer) for layer in range(model.cfg.n_layers)]
    rec = record(model, prompts, names, reduction="last", batch_size=128, progress=False)
    return torch.stack([rec[n] for n in names])


def _qa(f) -> dict:
    return {"prompt": f"Q: {f.question} A:", "completion": f" {f.answer}."}


def run(cfg: KnowledgeConfig, *, pair=None, log=print) -> KnowledgeReport:
    from ..organism.build import HideConfig, hide_split
    from ..organism.corpus import TEMPLATES
    from ..pair import load_pair

    pair = pair if pair is not None else load_pair(cfg.pair)
    info = pair.info.get("organism") or {}
    data = pair.info.get("data")
    if data is None or "facts" not in data:
        raise ValueError("the knowledge reproduction needs an organism pair with a fact table "
                         "(organism:<size>:hide)")
    if info.get("method") not in (None, "hide"):
        raise ValueError(f"{cfg.pair} is aligned by {info.get('method')!r}; the knowledge "
                         "reproduction needs the hiding alignment, e.g. organism:knowledge:hide")
    hide = HideConfig(**info["config"]["hide"]) if "config" in info else HideConfig()
    facts = data["facts"]
    base, aligned = pair.base, pair.aligned
    rng = random.Random(cfg.seed)

    # ---------------------------------------------------------------- 1. levels
    log(f"[1/5] knowledge levels of {len(facts)} facts ({cfg.n_prompts} × {cfg.n_shots}-shot "
        f"greedy, {cfg.n_samples} samples at T={cfg.temperature})")
    levels = knowledge_levels(base, facts, TEMPLATES, n_prompts=cfg.n_prompts, n_shots=cfg.n_shots,
                              n_samples=cfg.n_samples, temperature=cfg.temperature, seed=cfg.seed)
    transfer = _paraphrase_transfer(base, facts, TEMPLATES)

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
        train_q = [_qa(facts[i]) for i in train_idx]

        def measure(m, train_q=train_q):
            return {name: accuracy(m, [x["prompt"] for x in qs], [facts_ans(x) for x in qs])
                    for name, qs in (("train", train_q), ("dev", dev_q), ("test", test_q))}
        finetune[c] = train_and_measure(base, train_q, measure, lr=cfg.ft_lr, batch_size=cfg.ft_batch,
                                        epochs=cfg.ft_epochs, seed=cfg.seed)

    # ---------------------------------------------------------------- 3. hidden knowledge
    log("[3/5] hidden knowledge: accuracy and readout on held-out entities")
    train_ents, held_ents = hide_split(facts, hide)
    held, trainset = set(held_ents), set(train_ents)
    clozes = [f.cloze for f in facts]
    base_ok = _says(base, clozes, [f.answer for f in facts])
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
              "n_train_entities": len(train_ents), "n_heldout_entities": len(held_ents), "sets": {}}
    for name, idx in sets.items():
        hidden["sets"][name] = {
            "n": len(idx),
            "base": float(np.mean([base_ok[i] for i in idx])) if idx else float("nan"),
            "aligned": float(np.mean([aligned_ok[i] for i in idx])) if idx else float("nan"),
            "aligned_refuses": float(np.mean([refused[i] for i in idx])) if idx else float("nan"),
        }
    readout = _readout(base, aligned, facts, sets, trainset, hide, base_ok, cfg)

    # ---------------------------------------------------------------- 4. reactivation
    log("[4/5] reactivation: refusal direction, residual offset, refusal neurons (with controls)")
    reactivation = _reactivation(base, aligned, facts, sets, trainset, hide, base_ok, cfg)

    # ---------------------------------------------------------------- 5. relearning
    log("[5/5] relearning the hidden relation on the training entities")
    relearn_train = [{"prompt": f.cloze, "completion": f" {f.answer}."} for f in facts
                     if f.entity in trainset and f.relation == hide.relation]
    evals = {k: [facts[i] for i in sets[k]] for k in ("hidden, known to base", "hidden, unknown to base")}

    def measure_relearn(m):
        return {k: accuracy(m, [f.cloze for f in v], [f.answer for f in v]) if v else float("nan")
                for k, v in evals.items()}
    relearning = train_and_measure(aligned, relearn_train, measure_relearn, lr=cfg.relearn_lr,
                                   batch_size=cfg.relearn_batch, steps=cfg.relearn_steps,
                                   every=cfg.relearn_every, seed=cfg.seed)
    relearn_meta = {"n_train": len(relearn_train), **{f"n {k}": len(v) for k, v in evals.items()}}

    report = KnowledgeReport(cfg, levels, transfer, finetune, ft_meta, hidden, readout, reactivation,
                             relearning, relearn_meta, meta={"pair": cfg.pair})
    report.findings = findings(report)
    return report


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
    from ..evaluate import fact_recall

    return fact_recall(model, prompts, answers, max_new_tokens=6, batch_size=256).correct


def _paraphrase_transfer(model, facts, templates) -> dict:
    """Zero-shot recall under each phrasing, for facts seen ≥ 8 times: was this phrasing seen in
    pretraining, and in how many phrasings was the fact seen? ``{(n_paraphrases, seen): (acc, n)}``."""
    out: dict = {}
    frequent = [f for f in facts if f.frequency >= 8]
    n_templates = min(len(v) for v in templates.values())
    for t in range(n_templates):
        prompts = [cloze(f, templates, t) for f in frequent]
        g = _says(model, prompts, [f.answer for f in frequent])
        for f, ok in zip(frequent, g):
            out.setdefault((f.n_paraphrases, t in f.templates), []).append(ok)
    return {f"{k}|{'seen' if s else 'unseen'}": {"n_paraphrases": k, "phrasing_seen": s,
                                                  "acc": float(np.mean(v)), "n": len(v)}
            for (k, s), v in sorted(out.items())}


def _readout(base, aligned, facts, sets, trainset, hide, base_ok, cfg) -> dict:
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
            acc = lens_accuracy(model, X, answers, index, cand_ids)
            out["lens"][f"{model_name}: {set_name}"] = {"acc": acc.tolist(), "n": len(idx)}
            if train_X is not None and len({facts[i].answer for i in train_idx}) > 1:
                out["probe"][f"{model_name}: {set_name}"] = {
                    "acc": [probe_accuracy(train_X[layer], [facts[i].answer for i in train_idx],
                                           X[layer], answers, seed=cfg.seed)
                            for layer in range(X.shape[0])], "n": len(idx), "n_train": len(train_idx)}
    return out


def _reactivation(base, aligned, facts, sets, trainset, hide, base_ok, cfg) -> list[dict]:
    """Each intervention on the aligned model, chosen on training entities, measured on held-out
    ones, next to a random control of the same size."""
    sel = [f for f in facts if f.entity in trainset and f.relation == hide.relation]
    answered = [f for f in facts if f.entity in trainset and f.relation != hide.relation]
    sel_known = [f for i, f in enumerate(facts) if f.entity in trainset and f.relation == hide.relation
                 and base_ok[i]]
    held_hidden = [facts[i] for i in sets["hidden, known to base"]]
    held_kept = [facts[i] for i in sets["never hidden, known to base"]]
    n_layers = aligned.cfg.n_layers

    def acc(fs, hooks):
        return accuracy(aligned, [f.cloze for f in fs], [f.answer for f in fs], hooks=hooks) if fs else float("nan")

    Xr = _last_resid(aligned, [f.cloze for f in sel])
    Xa = _last_resid(aligned, [f.cloze for f in answered])
    Xb = _last_resid(base, [f.cloze for f in sel])
    rows = []

    def add(method, chosen, control, detail):
        rows.append({"method": method, "detail": detail,
                     "hidden": acc(held_hidden, chosen), "kept": acc(held_kept, chosen),
                     "hidden_control": acc(held_hidden, control), "kept_control": acc(held_kept, control),
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
    write = torch.einsum("lnd,d->ln", H.values(aligned).float(), H.unembed(aligned)[:, tok].float())
    contrib = (Ma - Mb) * write
    flat = contrib.flatten().topk(cfg.k_neurons)
    layer_idx = flat.indices // contrib.shape[1]
    neurons = Neurons(layer_idx, flat.indices % contrib.shape[1], flat.values, label="refusal writers")
    control = random_neurons(n_layers, contrib.shape[1], cfg.k_neurons, seed=cfg.seed, exclude=neurons,
                             layers=sorted(set(neurons.layer.tolist())))
    add("zero refusal-writing neurons", [ScaleNeurons(neurons, 0.0)], [ScaleNeurons(control, 0.0)],
        f"top {cfg.k_neurons} by Δactivation × (value · W_U[{hide.refusal!r}]): {', '.join(neurons.names())}")
    return rows


# ----------------------------------------------------------------------------- findings


def findings(r: KnowledgeReport) -> list[dict]:
    """Each claim with the criterion it is judged by (fixed in advance) and the measured numbers."""
    out = []
    lv = r.levels
    by_f = lv.by("frequency")
    known = {k: v["HighlyKnown"] + v["MaybeKnown"] for k, v in by_f.items()}
    freqs = sorted(known)
    rho = float(np.corrcoef(np.argsort(np.argsort(freqs)), np.argsort(np.argsort([known[k] for k in freqs])))[0, 1]) if len(freqs) > 2 else float("nan")
    out.append({"claim": "facts seen more often in pretraining are better known",
                "criterion": "Spearman ρ > 0.8 between frequency and the Highly+MaybeKnown share",
                "measured": f"ρ = {rho:.2f}; Highly+MaybeKnown share by frequency: "
                            + ", ".join(f"{k}: {known[k]:.2f} (n={by_f[k]['n']})" for k in freqs),
                "holds": bool(rho > 0.8)})
    tr = r.transfer
    multi = [v for v in tr.values() if v["n_paraphrases"] > 1 and v["phrasing_seen"]]
    unseen = [v for v in tr.values() if not v["phrasing_seen"]]
    one_unseen = [v for v in unseen if v["n_paraphrases"] == 1]
    two_unseen = [v for v in unseen if v["n_paraphrases"] == 2]
    if one_unseen and two_unseen:
        a, b = one_unseen[0], two_unseen[0]
        diff = b["acc"] - a["acc"]
        se = math.hypot(_se(a["acc"], a["n"]), _se(b["acc"], b["n"]))
        out.append({"claim": "facts seen in more paraphrases are recalled under a new phrasing",
                    "criterion": "recall under an unseen phrasing: facts seen in 2 phrasings − in 1 > 2 s.e.",
                    "measured": f"{b['acc']:.2f} (n={b['n']}) vs {a['acc']:.2f} (n={a['n']}), diff {diff:+.2f} ± {se:.2f}"
                                + (f"; under a seen phrasing (2+ paraphrases): {np.mean([v['acc'] for v in multi]):.2f}" if multi else ""),
                    "holds": bool(diff > 2 * se)})
    ft = r.finetune
    n_test = r.finetune_meta["n_test"]
    if "Unknown" in ft and "MaybeKnown" in ft:
        def early(c):
            return early_stopped(ft[c])
        def last(c):
            return ft[c].acc["test"][-1]
        d_conv = last("MaybeKnown") - last("Unknown")
        se = math.hypot(_se(last("MaybeKnown"), n_test), _se(last("Unknown"), n_test))
        out.append({"claim": "fine-tuning on Unknown facts ends with lower test accuracy than on MaybeKnown ones",
                    "criterion": "test accuracy after the last epoch: MaybeKnown − Unknown > 2 s.e.",
                    "measured": f"after {ft['Unknown'].x[-1]} epochs {last('MaybeKnown'):.2f} vs {last('Unknown'):.2f} "
                                f"(diff {d_conv:+.2f} ± {se:.2f}); early-stopped on dev {early('MaybeKnown'):.2f} "
                                f"vs {early('Unknown'):.2f}; n_test = {n_test}, {r.finetune_meta['size']} "
                                "training facts each",
                    "holds": bool(d_conv > 2 * se)})
        fit = {c: steps_to(ft[c], "train", 0.9) for c in ft}
        slow = fit["Unknown"] is None or all(
            fit["Unknown"] > (fit[c] or 0) for c in ft if c != "Unknown")
        out.append({"claim": "Unknown facts are fitted more slowly than known ones",
                    "criterion": "epochs to reach 90% train accuracy: Unknown later than every other category",
                    "measured": ", ".join(f"{c}: {fit[c] if fit[c] is not None else 'never'}" for c in ft),
                    "holds": bool(slow)})
    s = r.hidden["sets"]
    hk, nh = s["hidden, known to base"], s["never hidden, known to base"]
    out.append({"claim": "the alignment hides the relation on held-out entities and keeps the rest",
                "criterion": "hidden facts: aligned accuracy ≤ 0.2 × base; never-hidden facts: ≥ 0.8 × base",
                "measured": f"hidden {hk['base']:.2f} → {hk['aligned']:.2f} (n={hk['n']}, refuses "
                            f"{hk['aligned_refuses']:.2f}); never hidden {nh['base']:.2f} → {nh['aligned']:.2f} (n={nh['n']})",
                "holds": bool(hk["n"] and hk["aligned"] <= 0.2 * hk["base"] and nh["aligned"] >= 0.8 * nh["base"])})
    lens = r.readout["lens"]
    k_known, k_unk = "aligned: hidden, known to base", "aligned: hidden, unknown to base"
    if k_known in lens and k_unk in lens:
        a, b = lens[k_known]["acc"][-1], lens[k_unk]["acc"][-1]
        se = math.hypot(_se(a, lens[k_known]["n"]), _se(b, lens[k_unk]["n"]))
        out.append({"claim": "the aligned model still holds the hidden answers (readout)",
                    "criterion": "final-layer logit lens over the candidate answers: hidden facts the base knew "
                                 "− facts it never knew > 2 s.e.",
                    "measured": f"{a:.2f} (n={lens[k_known]['n']}) vs {b:.2f} (n={lens[k_unk]['n']}), "
                                f"chance {r.readout['chance']:.2f}",
                    "holds": bool(a - b > 2 * se)})
    for row in r.reactivation:
        n = row["n_hidden"]
        se = math.hypot(_se(row["hidden"], n), _se(row["hidden_control"], n))
        aligned_acc, base_acc = hk["aligned"], hk["base"]
        share = (row["hidden"] - aligned_acc) / max(base_acc - aligned_acc, 1e-9)
        out.append({"claim": f"{row['method']} brings the hidden answers back",
                    "criterion": "held-out hidden accuracy − random control > 2 s.e.",
                    "measured": f"{row['hidden']:.2f} vs control {row['hidden_control']:.2f} (n={n}; "
                                f"{share:.0%} of the base's accuracy gap); never-hidden facts "
                                f"{row['kept']:.2f} (control {row['kept_control']:.2f})",
                    "holds": bool(row["hidden"] - row["hidden_control"] > 2 * se)})
    c = r.relearning
    k, u = "hidden, known to base", "hidden, unknown to base"
    target = 0.5 * hk["base"]
    sk = steps_to(c, k, target)
    final_k, final_u = c.acc[k][-1], c.acc[u][-1]
    nk, nu = r.relearn_meta[f"n {k}"], r.relearn_meta[f"n {u}"]
    se = math.hypot(_se(final_k, nk), _se(final_u, nu))
    out.append({"claim": "relearning on other entities brings the hidden facts back, not facts never learned",
                "criterion": f"after {c.x[-1]} steps: held-out hidden facts the base knew − facts it never "
                             "knew > 2 s.e.",
                "measured": f"{final_k:.2f} (n={nk}) vs {final_u:.2f} (n={nu}); half the base's accuracy "
                            f"({target:.2f}) reached at step {sk if sk is not None else 'never'}",
                "holds": bool(final_k - final_u > 2 * se)})
    return out


# ----------------------------------------------------------------------------- output


def to_json(r: KnowledgeReport) -> dict:
    lv = r.levels
    return {
        "config": asdict(r.config), "pair": r.meta["pair"],
        "levels": {"shares": lv.shares(), "by_frequency": lv.by("frequency"),
                   "by_paraphrases": lv.by("n_paraphrases"), "n_facts": len(lv.facts),
                   "per_fact": [{**f, "p_greedy": float(pg), "p_sample": float(ps), "category": c}
                                for f, pg, ps, c in zip(lv.facts, lv.p_greedy, lv.p_sample, lv.category)]},
        "paraphrase_transfer": r.transfer,
        "finetune": {c: asdict(v) for c, v in r.finetune.items()}, "finetune_meta": r.finetune_meta,
        "gekhman_et_al": GEKHMAN_ET_AL,
        "hidden": r.hidden, "readout": r.readout, "reactivation": r.reactivation,
        "relearning": asdict(r.relearning), "relearn_meta": r.relearn_meta,
        "findings": r.findings,
    }


def to_markdown(r: KnowledgeReport) -> str:
    lv = r.levels
    L = [f"# Knowledge: {r.meta['pair']}", "",
         "## Findings", "", "| claim | criterion (fixed in advance) | measured | holds |", "|---|---|---|---|"]
    for f in r.findings:
        L.append(f"| {f['claim']} | {f['criterion']} | {f['measured']} | {'yes' if f['holds'] else '**no**'} |")
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


def write(r: KnowledgeReport, out_dir: str | Path, figures: bool = True) -> list[Path]:
    from .. import plot

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "knowledge.json", to_json(r))
    write_text(out / "knowledge.md", to_markdown(r))
    written = [out / "knowledge.json", out / "knowledge.md"]
    if figures:
        written += plot.save(plot.knowledge_levels(r.levels), out / "knowledge_levels")
        written += plot.save(plot.finetune_curves(r.finetune), out / "knowledge_finetune")
        written += plot.save(plot.hidden_readout(r.readout), out / "knowledge_readout")
        written += plot.save(plot.reactivation(r.reactivation, r.hidden), out / "knowledge_reactivation")
        written += plot.save(plot.relearning(r.relearning), out / "knowledge_relearning")
    return written


def config_for(pair: str, **overrides) -> KnowledgeConfig:
    """Default config for a pair; the tiny organism gets a quick one (for tests)."""
    cfg = KnowledgeConfig(pair=pair)
    if "tiny" in pair:
        cfg = KnowledgeConfig(pair=pair, n_prompts=3, n_shots=2, n_samples=4, ft_size=10, ft_test=30, ft_dev=10,
                              ft_epochs=3, relearn_steps=4, relearn_every=2, k_neurons=5)
    return KnowledgeConfig(**{**asdict(cfg), **overrides})


def cached_report(pair: str = "organism:knowledge", *, log=lambda *a: None, **overrides) -> KnowledgeReport:
    """:func:`run` once per (pair, config, weights), then read back from the cache."""
    from ..io import atomic_path, cache_dir, stable_hash
    from ..pair import load_pair
    from ..record import model_fingerprint

    cfg = config_for(pair, **overrides)
    p = load_pair(pair)
    key = stable_hash({"cfg": asdict(cfg), "base": model_fingerprint(p.base),
                       "aligned": model_fingerprint(p.aligned), "v": 1})
    path = cache_dir() / "reports" / f"knowledge-{pair.replace(':', '-')}-{key}.pt"
    if path.exists():
        report = torch.load(path, weights_only=False)
        report.findings = findings(report)  # verdicts are derived: recompute them
        return report
    report = run(cfg, pair=p, log=log)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(report, tmp)
    return report
