"""``interp reproduce pretraining``: what the pretraining data does to what an organism learns —
repetition against diversity at a fixed budget (Muennighoff et al. 2023), deduplication (Lee et
al. 2022), and rephrased biographies for knowledge extraction (Allen-Zhu & Li 2023).

Each seed trains fresh organisms from scratch on streams built by
:mod:`interp.organism.pretraining` (one pass each; all arms of a seed share a tokenizer):

1. **repetition**: ``U`` unique documents × ``E`` repeats, ``U·E`` fixed, ``E`` in
   ``repeats``; the loss on fresh validation documents (paired by document across arms) and the
   zero-shot recall of the stream's facts (each fact once: the mean over its four cloze
   phrasings; every fact is mentioned equally often in every arm);
2. **duplication**: half the prose replaced by copies of a few documents, against its
   deduplicated twin (``E = 1``) at the same budget;
3. **rephrasing for extraction**: biographies seen in 1 vs 5 phrasings (sentence order
   permuted), the same people and exposures; closed-book QA fine-tuning on the training half of
   the people, early-stopped on a dev tenth, extraction measured on the held-out people (paired
   by fact across the two models). Beside generation: whether the pretrained model completes
   the biography it saw (the fact is *stored*), a linear probe reading the attribute at the
   person's name (per layer, the layer chosen on dev people), and the logit lens on the
   fine-tuned model's answer position.

The claims and their criteria are fixed in :func:`findings` (effect sizes included) before the
runs; Holm across the claims; ``--seeds`` rebuilds every model per seed.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import hooks as H
from .. import stats
from ..evaluate import token_losses
from ..findings import Finding, finalize, findings_table
from ..io import read_json
from ..knowledge import answer_candidates, cloze, correct, lens_correct, train_and_measure
from ..organism.corpus import TEMPLATES
from ..organism.pretraining import (
    BIO_QUESTIONS,
    BIO_TEMPLATES,
    bio_prompts,
    bio_stream,
    bio_tokenizer_texts,
    build_stream_model,
    data_preset,
    duplication_stream,
    load_stream_model,
    repetition_stream,
    repetition_tokenizer_texts,
)
from ..record import record
from .report import write_report


@dataclass
class PretrainingConfig:
    size: str = "small"  # the data preset (interp.organism.pretraining.DATA_PRESETS): tiny or small
    seed: int = 0
    repeats: tuple[int, ...] = (1, 2, 4, 8, 16)  # E: each unique document's copies (U·E fixed)
    dup_share: float = 0.5  # share of the prose made of copies in the duplicated stream
    dup_copies: int = 100  # copies of each duplicated document
    phrasings: tuple[int, ...] = (1, 5)  # biographies per person (the first and the augmented arm)
    train_share: float = 0.5  # people whose QA trains the extraction fine-tuning
    dev_share: float = 0.1  # people whose QA picks the epoch (early stopping) and the probe's layer
    ft_epochs: int = 8
    ft_lr: float = 1e-4
    ft_batch: int = 16
    margin: float = 0.02  # validation loss: the relative increase that counts as "almost as good"
    min_gain: float = 0.05  # recall: the smallest difference the repetition claim counts
    min_extraction_gain: float = 0.2  # extraction: the smallest difference the rephrasing claims count


FIGURE_NAMES = ("pretraining_repetition", "pretraining_extraction")


@dataclass
class PretrainingReport:
    config: PretrainingConfig
    repetition: list[dict]  # per arm (E, or "duplicated"): loss, recall, tokens
    extraction: dict  # per phrasing arm: storage, name cloze, probe, extraction, curve
    findings: list[Finding] = field(default_factory=list)
    per_unit: dict[str, list] = field(default_factory=dict)  # per validation document / per fact
    meta: dict = field(default_factory=dict)

    @property
    def pair(self) -> str:
        return f"organism pretraining ({self.config.size})"

    def figures(self) -> dict:
        from .. import plot

        figs = {"pretraining_repetition": plot.repetition(self.repetition),
                "pretraining_extraction": plot.extraction(self.extraction)}
        assert tuple(figs) == FIGURE_NAMES
        return figs


def _doc_losses(model, docs: list[str]) -> np.ndarray:
    """Mean next-token loss of each document (nats per token)."""
    s, n = token_losses(model, docs, batch_size=128)
    return (s / n.clamp(min=1)).numpy()


def _recall(model, facts) -> tuple[np.ndarray, np.ndarray]:
    """Per fact: zero-shot cloze recall averaged over its relation's phrasings, and over the
    phrasings the stream mentioned it in."""
    n_t = {r: len(t) for r, t in TEMPLATES.items()}
    prompts, owners = [], []
    for i, f in enumerate(facts):
        for t in range(n_t[f.relation]):
            prompts.append(cloze(f, TEMPLATES, t))
            owners.append((i, t))
    ok = correct(model, prompts, [facts[i].answer for i, _ in owners])
    by: dict[int, dict[int, bool]] = {}
    for (i, t), v in zip(owners, ok):
        by.setdefault(i, {})[t] = v
    every = np.array([np.mean(list(by[i].values())) for i in range(len(facts))])
    seen = np.array([np.mean([by[i][t] for t in f.templates]) if f.templates else np.nan
                     for i, f in enumerate(facts)])
    return every, seen


def _qa(f) -> dict:
    return {"prompt": f"Q: {BIO_QUESTIONS[f.relation].format(e=f.entity)} A:", "completion": f" {f.answer}."}


def _name_resid(model, names: list[str]) -> torch.Tensor:
    """Residual stream after every layer at the last token of each name ``[n_layers, n, d_model]``."""
    hooks = [H.resid(layer) for layer in range(model.cfg.n_layers)]
    rec = record(model, names, hooks, reduction="last", batch_size=128, progress=False)
    return torch.stack([rec[h] for h in hooks])


def _probe_correct(X: torch.Tensor, facts, train: list[int], dev: list[int], test: list[int], seed: int):
    """Per relation a multinomial probe on the residual at the name, one per layer; the layer with
    the best dev accuracy (all relations together) is used on the test facts. Returns the per-test-
    fact correctness, the chosen layer and the dev/test accuracy per layer."""
    from sklearn.linear_model import LogisticRegression

    n_layers = X.shape[0]
    rels = sorted({f.relation for f in facts})
    pred = {}  # (layer, index) -> prediction
    for layer in range(n_layers):
        for rel in rels:
            tr = [i for i in train if facts[i].relation == rel]
            ev = [i for i in dev + test if facts[i].relation == rel]
            ys = [facts[i].answer for i in tr]
            if len(set(ys)) < 2 or not ev:
                continue
            clf = LogisticRegression(max_iter=3000, random_state=seed)
            clf.fit(X[layer, tr].float().numpy(), ys)
            for i, p in zip(ev, clf.predict(X[layer, ev].float().numpy())):
                pred[(layer, i)] = p

    def acc(layer, rows):
        return float(np.mean([pred.get((layer, i)) == facts[i].answer for i in rows])) if rows else float("nan")

    dev_acc = [acc(layer, dev) for layer in range(n_layers)]
    best = int(np.nanargmax(dev_acc)) if not np.all(np.isnan(dev_acc)) else n_layers - 1
    ok = [int(pred.get((best, i)) == facts[i].answer) for i in test]
    return ok, best, {"dev": dev_acc, "test": [acc(layer, test) for layer in range(n_layers)]}


def _split_people(facts, cfg: PretrainingConfig) -> tuple[list[int], list[int], list[int]]:
    people = sorted({f.entity for f in facts})
    random.Random(cfg.seed + 31).shuffle(people)
    n_tr, n_dev = round(len(people) * cfg.train_share), round(len(people) * cfg.dev_share)
    groups = [set(people[:n_tr]), set(people[n_tr:n_tr + n_dev]), set(people[n_tr + n_dev:])]
    return tuple([i for i, f in enumerate(facts) if f.entity in g] for g in groups)


def run(cfg: PretrainingConfig, *, log=print, progress: bool = False) -> PretrainingReport:
    data, bio, train = data_preset(cfg.size, cfg.seed)
    per: dict[str, list] = {}

    # ---------------------------------------------------------------- 1–2. repetition, duplication
    log(f"[1/3] repetition: {data.n_stream} documents per stream, E in {list(cfg.repeats)}, one pass each")
    tok_texts = repetition_tokenizer_texts(data) if cfg.repeats else []
    arms = [(f"E={e}", repetition_stream(data, e)) for e in cfg.repeats]
    if cfg.repeats and cfg.dup_share > 0:
        arms.append(("duplicated", duplication_stream(data, cfg.dup_share, cfg.dup_copies)))
    repetition = []
    for name, stream in arms:
        tag = name.replace("=", "").lower()
        folder = build_stream_model(f"{cfg.size}-{tag}", stream, tok_texts, train, progress=progress, log=log)
        model, facts, val = load_stream_model(folder)
        loss = _doc_losses(model, val)
        every, seen = _recall(model, facts)
        per[f"{name}: validation loss"] = loss.tolist()
        per[f"{name}: recall, every phrasing"] = every.tolist()
        per[f"{name}: recall, phrasings seen"] = seen.tolist()
        m = read_json(folder / "manifest.json")
        repetition.append({"arm": name, "repeats": stream.info.get("repeats"), "unique_docs": stream.info["unique_docs"],
                           "n_tokens": m["n_tokens"], "steps": m["steps"], "pretrain_s": m["timings"]["pretrain_s"],
                           "val_loss": stats.mean(loss, seed=cfg.seed).to_dict(),
                           "recall": stats.mean(every, seed=cfg.seed).to_dict(),
                           "recall_seen": stats.mean(seen, seed=cfg.seed).to_dict(),
                           "n_val": len(val), "n_facts": len(facts)})
        log(f"  {name}: validation loss {loss.mean():.4f}, recall {every.mean():.3f} "
            f"(seen phrasings {np.nanmean(seen):.3f}), {m['n_tokens']} tokens")
        del model

    # ---------------------------------------------------------------- 3. rephrasing for extraction
    log(f"[2/3] biographies in {' vs '.join(map(str, cfg.phrasings))} phrasings: {bio.n_people} people, "
        f"{bio.exposures} exposures each")
    tok_bio = bio_tokenizer_texts(bio)
    prefixes = bio_prompts(bio)
    extraction: dict = {}
    for k in cfg.phrasings:
        arm = f"{k} phrasing{'s' if k > 1 else ''}"
        folder = build_stream_model(f"{cfg.size}-bio{k}", bio_stream(bio, k), tok_bio, train,
                                    progress=progress, log=log)
        model, facts, _ = load_stream_model(folder)
        tr, dev, te = _split_people(facts, cfg)
        test_facts = [facts[i] for i in te]
        answers = [f.answer for f in test_facts]
        # stored: the biography it saw, continued; the name-first cloze
        stored = correct(model, [prefixes[(f.entity, f.relation)] for f in test_facts], answers)
        cloze = correct(model, [BIO_TEMPLATES[f.relation][0].split("{a}")[0].format(s=f.entity).rstrip()
                                for f in test_facts], answers)
        # probe at the name
        X = _name_resid(model, [f.entity for f in facts])
        probe_ok, probe_layer, probe_acc = _probe_correct(X, facts, tr, dev, te, cfg.seed)
        # extraction: QA fine-tuning on the training people, early-stopped on dev people
        train_q = [_qa(facts[i]) for i in tr]
        dev_q, test_q = [_qa(facts[i]) for i in dev], [_qa(f) for f in test_facts]
        index, cand = answer_candidates(model.tokenizer, [f.answer for f in facts])
        per_epoch: list[dict] = []

        sets = {"dev": (dev_q, [facts[i].answer for i in dev]), "test": (test_q, answers)}

        def measure(m, sets=sets, per_epoch=per_epoch, index=index, cand=cand):
            ok = {name: correct(m, [x["prompt"] for x in qs], ans) for name, (qs, ans) in sets.items()}
            hooks = [H.resid(layer) for layer in range(m.cfg.n_layers)]
            rec = record(m, [x["prompt"] for x in sets["test"][0]], hooks, reduction="last", batch_size=128,
                         progress=False)
            lens = lens_correct(m, torch.stack([rec[h] for h in hooks]), sets["test"][1], index, cand)
            per_epoch.append({"test": [int(v) for v in ok["test"]], "lens": lens.float().mean(-1).tolist()})
            return {name: float(np.mean(v)) for name, v in ok.items()}

        curve = train_and_measure(model, train_q, measure, lr=cfg.ft_lr, batch_size=cfg.ft_batch,
                                  epochs=cfg.ft_epochs, seed=cfg.seed)
        best = 1 + int(np.argmax(curve.acc["dev"][1:]))
        extracted = per_epoch[best]["test"]
        per[f"{arm}: stored (biography continued)"] = [int(v) for v in stored]
        per[f"{arm}: name cloze"] = [int(v) for v in cloze]
        per[f"{arm}: probe at the name"] = probe_ok
        per[f"{arm}: extraction (QA, early-stopped)"] = extracted
        extraction[arm] = {
            "phrasings": k, "n_test_facts": len(te), "n_train_facts": len(tr), "n_dev_facts": len(dev),
            "stored": float(np.mean(stored)), "name_cloze": float(np.mean(cloze)),
            "probe": float(np.mean(probe_ok)), "probe_layer": probe_layer, "probe_by_layer": probe_acc,
            "extraction": float(np.mean(extracted)), "best_epoch": curve.x[best],
            "lens_by_layer": per_epoch[best]["lens"], "chance": 1 / len(cand), "curve": asdict(curve),
        }
        log(f"  {arm}: stored {np.mean(stored):.2f}, name cloze {np.mean(cloze):.2f}, probe {np.mean(probe_ok):.2f} "
            f"(layer {probe_layer}), extraction {np.mean(extracted):.2f} (epoch {curve.x[best]})")
        del model

    log("[3/3] findings")
    report = PretrainingReport(cfg, repetition, extraction, per_unit=per,
                               meta={"data": asdict(data), "bio": asdict(bio), "train": asdict(train)})
    report.findings = findings(report)
    return report


# ----------------------------------------------------------------------------- findings


def findings(r: PretrainingReport, alpha: float = 0.05) -> list[Finding]:
    """The claims, each with its criterion (fixed before the runs); paired by validation document
    or by fact; Holm across the claims."""
    cfg, pu, seed = r.config, r.per_unit, r.config.seed
    out: list[Finding] = []

    def add(key, claim, anchor, criterion, measured, holds, p=None, effect=None, requires=None):
        mde = (stats.min_detectable(effect.se) if effect is not None and np.isfinite(effect.se) and effect.se > 0
               else None)
        out.append(Finding(key, claim, anchor, criterion, measured, {"any": bool(holds)}, p, effect=effect,
                           mde=mde, requires=requires))

    def loss(arm):
        return np.asarray(pu[f"{arm}: validation loss"])

    if "E=1: validation loss" in pu:
        base = loss("E=1")
        scale = float(base.mean())
        if "E=4: validation loss" in pu:
            rel = stats.paired_difference(loss("E=4") / scale, base / scale, seed=seed)
            ni = stats.paired_difference(loss("E=4") / scale - cfg.margin, base / scale, alternative="less", seed=seed)
            add("repeat_4", "up to 4 repetitions are almost as good as unique data",
                "Muennighoff et al. 2023: ~4 epochs of repeated data ≈ new data",
                f"validation loss of E=4 vs E=1 at the same budget, paired by document: relative increase "
                f"below {cfg.margin:.0%} (non-inferiority: upper 95% bound < {cfg.margin:.0%}, p < α)",
                f"{loss('E=4').mean():.4f} vs {scale:.4f} nats/token: {rel.value:+.2%} [{rel.lo:+.2%}, {rel.hi:+.2%}] "
                f"(n = {base.size} documents)", rel.hi < cfg.margin, ni.p, rel)
        if "E=16: validation loss" in pu:
            rel = stats.paired_difference(loss("E=16") / scale, base / scale, seed=seed)
            add("repeat_16", "16 repetitions cost clearly more than unique data",
                "Muennighoff et al. 2023: returns fall fast beyond ~4 epochs",
                f"validation loss of E=16 vs E=1, paired by document: relative increase > 0 (p < α) and ≥ {cfg.margin:.0%}",
                f"{loss('E=16').mean():.4f} vs {scale:.4f}: {rel.value:+.2%} [{rel.lo:+.2%}, {rel.hi:+.2%}] "
                f"(n = {base.size})", rel.value >= cfg.margin, rel.p, rel)
            a, b = (np.asarray(pu[f"{e}: recall, every phrasing"]) for e in ("E=1", "E=16"))
            d = stats.paired_difference(a, b, seed=seed)
            add("repeat_recall", "facts mentioned in distinct documents are recalled better than the same "
                "number of mentions in repeated ones", "the seed: pretraining needs diverse data more than repetition",
                f"zero-shot cloze recall (each fact once: its mean over the 4 phrasings), E=1 − E=16, paired by fact: "
                f"> 0 (p < α) and ≥ {cfg.min_gain}",
                f"{a.mean():.3f} vs {b.mean():.3f}, diff {d} (n = {a.size} facts)", d.value >= cfg.min_gain, d.p, d)
        if "duplicated: validation loss" in pu:
            rel = stats.paired_difference(loss("duplicated") / scale, base / scale, seed=seed)
            add("dedup", "deduplicated data trains a better model than duplicated data at the same budget",
                "Lee et al. 2022 / RefinedWeb",
                f"validation loss, duplicated − deduplicated ({cfg.dup_share:.0%} of the prose copies of few documents), "
                "paired by document: > 0 (p < α)",
                f"{loss('duplicated').mean():.4f} vs {scale:.4f}: {rel.value:+.2%} [{rel.lo:+.2%}, {rel.hi:+.2%}]",
                rel.value > 0, rel.p, rel)

    one, many = (f"{k} phrasing{'s' if k > 1 else ''}" for k in (min(cfg.phrasings), max(cfg.phrasings)))
    if one != many and f"{one}: stored (biography continued)" in pu:
        s1, s5 = (np.asarray(pu[f"{a}: stored (biography continued)"]) for a in (one, many))
        e1, e5 = (np.asarray(pu[f"{a}: extraction (QA, early-stopped)"]) for a in (one, many))
        p1, p5 = (np.asarray(pu[f"{a}: probe at the name"]) for a in (one, many))
        ms = stats.mean(s1 if s1.mean() <= s5.mean() else s5, seed=seed)  # the arm that stored less
        add("memorised", "the pretrained organisms store the biographies they saw", "Allen-Zhu & Li: ~100% memorised",
            "the first biography continued right on held-out people's facts: ≥ 0.5 in both arms",
            f"{one} {s1.mean():.2f}, {many} {s5.mean():.2f} (n = {s1.size} facts)",
            min(s1.mean(), s5.mean()) >= 0.5, None, ms)
        d = stats.paired_difference(e5, e1, seed=seed)
        add("rephrase_extract", "rephrased biographies make knowledge extractable by QA fine-tuning",
            "Allen-Zhu & Li 2023: ~10% (one biography) → ~96% (five, permuted)",
            f"held-out people's QA accuracy after fine-tuning on the other people (early-stopped on dev people), "
            f"{many} − {one}, paired by fact: > 0 (p < α) and ≥ {cfg.min_extraction_gain}",
            f"{e5.mean():.2f} vs {e1.mean():.2f}, diff {d} (n = {e1.size} facts)",
            d.value >= cfg.min_extraction_gain, d.p, d, requires="memorised")
        d = stats.paired_difference(s1, e1, seed=seed)
        add("stored_not_extractable", "with one phrasing the facts are stored but not extractable",
            "Allen-Zhu & Li 2023", f"{one}: biography continued − QA extraction, paired by fact: > 0 (p < α) and "
            f"≥ {cfg.min_extraction_gain}",
            f"stored {s1.mean():.2f} vs extracted {e1.mean():.2f}, diff {d}", d.value >= cfg.min_extraction_gain,
            d.p, d, requires="memorised")
        d = stats.paired_difference(p5, p1, seed=seed)
        add("probe_at_name", "rephrasing makes the attribute linearly readable at the person's name",
            "Allen-Zhu & Li 2023 (P-probing)",
            f"probe accuracy at the name's last token (layer chosen on dev people), {many} − {one}, paired by fact: > 0 (p < α)",
            f"{p5.mean():.2f} vs {p1.mean():.2f}, diff {d}", d.value > 0, d.p, d, requires="memorised")
    return finalize(out, alpha)


# ----------------------------------------------------------------------------- output


def to_json(r: PretrainingReport) -> dict:
    return {"config": asdict(r.config), "pair": r.pair, "meta": r.meta, "repetition": r.repetition,
            "extraction": r.extraction, "findings": [f.to_dict() for f in r.findings], "per_unit": r.per_unit}


def to_markdown(r: PretrainingReport) -> str:
    cfg = r.config
    L = [f"# Pretraining data: {r.pair} (seed {cfg.seed})", "", "## Findings", "",
         "Validation documents and facts each count once; arms measured on the same documents or facts are "
         "compared paired (sign-flip permutation test, bootstrap CI); p-values are Holm-corrected across the claims.", "",
         findings_table(r.findings, scorers=["any"], paper="the paper").replace("| any |", "| criterion met |")]
    d = r.meta["data"]
    L += ["", f"## Repetition at a fixed budget ({d['n_stream']} documents per stream, one pass; {d['n_people']} "
          f"people × 2 facts, each mentioned {d['mentions']} times in every arm)", "",
          "| arm | unique documents | tokens | validation loss (nats/token) [95% CI] | fact recall, every phrasing | "
          "fact recall, phrasings seen |", "|---|---|---|---|---|---|"]
    for a in r.repetition:
        v, c, s = a["val_loss"], a["recall"], a["recall_seen"]
        L.append(f"| {a['arm']} | {a['unique_docs']} | {a['n_tokens']} | {v['value']:.4f} [{v['lo']:.4f}, {v['hi']:.4f}] | "
                 f"{c['value']:.3f} [{c['lo']:.3f}, {c['hi']:.3f}] | {s['value']:.3f} |")
    b = r.meta["bio"]
    L += ["", f"## Rephrasing for extraction ({b['n_people']} people × 3 attributes, each biography seen "
          f"{b['exposures']} times; QA fine-tuning on {cfg.train_share:.0%} of the people, early-stopped on "
          f"{cfg.dev_share:.0%}, tested on the rest)", "",
          "| biographies | stored (biography continued) | name-first cloze | probe at the name (layer) | "
          "QA extraction (epoch) | logit lens at the answer, last layer | chance |", "|---|---|---|---|---|---|---|"]
    for arm, e in r.extraction.items():
        L.append(f"| {arm} | {e['stored']:.2f} | {e['name_cloze']:.2f} | {e['probe']:.2f} ({e['probe_layer']}) | "
                 f"{e['extraction']:.2f} ({e['best_epoch']}) | {e['lens_by_layer'][-1]:.2f} | {e['chance']:.2f} |")
    L += ["", f"Test facts per arm: {next(iter(r.extraction.values()))['n_test_facts'] if r.extraction else 0}."]
    return "\n".join(L) + "\n"


def write(r: PretrainingReport, out_dir: str | Path, *, figures: bool = True) -> list[Path]:
    return write_report(out_dir, "pretraining", to_json(r), to_markdown(r), figures=r.figures if figures else None,
                        title=f"Pretraining data: {r.pair} (seed {r.config.seed})", config=asdict(r.config))


def config_for(size: str = "small", **overrides) -> PretrainingConfig:
    return dataclasses.replace(PretrainingConfig(size=size), **overrides)


def check(cfg: PretrainingConfig) -> None:
    """The size names a pretraining-data preset (:class:`UsageError` naming ``--size`` otherwise)."""
    from ..checks import UsageError
    from ..organism.pretraining import DATA_PRESETS

    if cfg.size not in DATA_PRESETS:
        raise UsageError("--size", cfg.size, f"not a pretraining-data preset; use one of {', '.join(DATA_PRESETS)}")
