"""Alignment from the model's own samples, judged by an external judge or by the model itself.

Self-alignment (Self-Rewarding LMs; Constitutional AI's self-critique) in the organism's terms:
the base samples ``k`` answers to each alignment question (:func:`sample_answers`); a **judge**
scores them; DPO then prefers, per question, the best-scored answer over the worst. Judges:

* ``external``: the grammar's ground truth (:func:`~interp.organism.following.follows`), one
  point for answering and one for stopping — a perfect outside judge of the format;
* ``self``: a judge made from the base's *own residual stream* — a ridge probe on the last
  layer's residual at the answer's final token (end of sequence included when it stopped),
  fitted on ``n_label`` answers scored by the ground truth (a few labelled examples, as a
  self-rewarding model gets a few demonstrations), scoring every other answer;
* ``gold``: the external score plus a point for the right town or trade — the judge under which
  DPO could in principle teach facts, used to show that it cannot teach the ones the base never
  produces.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .following import follows
from .instruct import Question

JUDGES = ("external", "self", "gold")


@dataclass
class Samples:
    """``k`` sampled answers per question (question-major), whether each stopped, and the
    ground truth of each (:func:`follows`)."""

    questions: list[Question]
    responses: list[str]
    stopped: list[bool]
    k: int
    truth: dict[str, np.ndarray] = field(default_factory=dict)

    def question_of(self, i: int) -> Question:
        return self.questions[i // self.k]


def sample_answers(model, qs: Sequence[Question], *, k: int = 8, max_new_tokens: int = 24,
                   temperature: float = 1.0, seed: int = 0, batch_size: int = 128) -> Samples:
    """``k`` answers per question at ``temperature`` (keyed sampling: reproducible whatever the
    batch), each scored by the ground truth."""
    from ..generate import generate

    prompts = [q.prompt for q in qs for _ in range(k)]
    gen = generate(model, prompts, max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature,
                   seed=seed, batch_size=batch_size)
    eos = model.tokenizer.eos_token_id
    stopped = [eos is not None and bool((gen.tokens[i] == eos).any()) for i in range(len(prompts))]
    s = Samples(list(qs), gen.completions, stopped, k)
    rows = [follows(s.question_of(i), r, st) for i, (r, st) in enumerate(zip(s.responses, s.stopped))]
    s.truth = {key: np.array([r[key] for r in rows], bool) for key in rows[0]}
    return s


def quality(samples: Samples, judge: str = "external") -> np.ndarray:
    """The ground truth's score of every sample: ``answers + stops`` (0–2; the external judge), plus
    ``correct`` for the gold judge (0–3)."""
    t = samples.truth
    q = t["answers"].astype(float) + t["stops"].astype(float)
    return q + t["correct"].astype(float) if judge == "gold" else q


def self_judge(model, samples: Samples, *, n_label: int = 40, seed: int = 0, batch_size: int = 64) -> tuple[np.ndarray, dict]:
    """The base's own judge: a ridge probe on its last-layer residual at each answer's final
    token, fitted on ``n_label`` answers (drawn at random, spread over the score levels) labelled
    with the external judge's score, scoring every answer. Returns the scores and the judge's
    agreement with the ground truth on the answers it was not fitted on (Spearman ρ, and how
    often it orders two answers to one question as the ground truth does, ties aside)."""
    from scipy.stats import spearmanr
    from sklearn.linear_model import Ridge

    from .. import hooks as H
    from ..record import record

    eos = model.tokenizer.eos_token or ""
    texts = [samples.question_of(i).prompt + r + (eos if st else "")
             for i, (r, st) in enumerate(zip(samples.responses, samples.stopped))]
    hook = H.hook_names("resid_post", model.cfg.n_layers)[-1]
    X = record(model, texts, [hook], reduction="last", batch_size=batch_size, progress=False)[hook].float().numpy()
    y = quality(samples)
    rng = random.Random(seed)
    levels = sorted(set(y.tolist()))
    by_level = {v: [i for i in range(len(y)) if y[i] == v] for v in levels}
    per = max(1, n_label // len(levels))
    labelled = [i for v in levels for i in rng.sample(by_level[v], min(per, len(by_level[v])))]
    if len(levels) < 2:
        raise ValueError("the base's samples all score the same: nothing for a judge to learn")
    scores = Ridge(alpha=1.0).fit(X[labelled], y[labelled]).predict(X)
    rest = np.setdiff1d(np.arange(len(y)), labelled)
    agree, total = 0, 0
    for j in range(len(samples.questions)):
        idx = [i for i in range(j * samples.k, (j + 1) * samples.k) if i in set(rest)]
        for a in idx:
            for b in idx:
                if y[a] > y[b]:
                    total += 1
                    agree += scores[a] > scores[b]
    info = {"n_label": len(labelled), "hook": hook, "spearman": float(spearmanr(scores[rest], y[rest])[0]),
            "pair_order_agreement": agree / total if total else float("nan"), "n_ordered_pairs": total}
    return scores, info


def judge_scores(judge: str, model, samples: Samples, *, n_label: int = 40, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Scores of every sample under one of :data:`JUDGES` (higher is better)."""
    if judge in ("external", "gold"):
        return quality(samples, judge), {}
    if judge == "self":
        return self_judge(model, samples, n_label=n_label, seed=seed)
    raise ValueError(f"unknown judge {judge!r}; use one of {JUDGES}")


def judged_pairs(samples: Samples, scores: np.ndarray, *, min_gap: float = 0.5) -> tuple[list[dict], list[int]]:
    """Per question, the best-scored answer preferred over the worst, where the judge separates
    them by at least ``min_gap``: DPO pairs (prompt, chosen, rejected) and the chosen samples'
    indices."""
    pairs, chosen = [], []
    for j, q in enumerate(samples.questions):
        idx = range(j * samples.k, (j + 1) * samples.k)
        best, worst = max(idx, key=lambda i: scores[i]), min(idx, key=lambda i: scores[i])
        if scores[best] - scores[worst] >= min_gap and samples.responses[best].strip():
            pairs.append({"prompt": q.prompt, "chosen": samples.responses[best],
                          "rejected": samples.responses[worst]})
            chosen.append(best)
    return pairs, chosen


@dataclass
class SelfAlignConfig:
    """DPO on the base's own answers to the alignment questions: ``k`` samples per question at
    ``temperature``, scored by ``judge`` (:data:`JUDGES`; the self judge fitted on ``n_label``
    labelled answers), best preferred over worst where the judge separates them by ``min_gap``."""

    judge: str = "external"
    k: int = 8
    temperature: float = 1.0
    n_label: int = 40
    min_gap: float = 0.5
    seed: int = 0


def self_align_pairs(base, qs: Sequence[Question], cfg: SelfAlignConfig, max_new_tokens: int = 24) -> tuple[list[dict], dict]:
    """Sample, judge and pair (the data of one DPO arm); also the judge's statistics."""
    align = [q for q in qs if q.split == "align"]
    samples = sample_answers(base, align, k=cfg.k, temperature=cfg.temperature, seed=cfg.seed,
                             max_new_tokens=max_new_tokens)
    scores, info = judge_scores(cfg.judge, base, samples, n_label=cfg.n_label, seed=cfg.seed)
    pairs, chosen = judged_pairs(samples, scores, min_gap=cfg.min_gap)
    truth = samples.truth
    return pairs, {"judge": cfg.judge, "n_samples": len(samples.responses), "n_pairs": len(pairs),
                   "sample_follows": float(truth["follows"].mean()), "sample_correct": float(truth["correct"].mean()),
                   "chosen_follows": float(truth["follows"][chosen].mean()) if chosen else float("nan"),
                   "chosen_correct": float(truth["correct"][chosen].mean()) if chosen else float("nan"),
                   **{f"judge_{k}": v for k, v in info.items()}}
