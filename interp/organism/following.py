"""Instruction following on the instruction organism, from the corpus grammar's ground truth.

:func:`follows` scores one response to one :class:`~interp.organism.instruct.Question`: it
*answers* (its first sentence after an opener names the person asked about and a town for a
birthplace question, a trade for a job question), *stops* (ends with the end-of-sequence token,
at most one sentence beyond the opener, no further ``Q:``), *follows* (both), is *correct* (the
named town or trade is the person's) and starts with an *opener*.
:func:`instruction_following` decodes a model greedily on questions and scores every response.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .corpus import ANSWERS
from .instruct import OPENERS, Question

_OPENER_PREFIXES = tuple(o.lower() for o in OPENERS)


def _sentences(text: str) -> list[str]:
    out, cur = [], ""
    for ch in text:
        cur += ch
        if ch in ".!?":
            if cur.strip():
                out.append(cur.strip())
            cur = ""
    if cur.strip():
        out.append(cur.strip())
    return out


def follows(question: Question, response: str, stopped: bool) -> dict[str, bool]:
    """Whether a response follows the instruction (see the module docstring): ``answers``,
    ``stops``, ``follows`` (both), ``correct`` (answers with the person's own town or trade) and
    ``opener`` (starts with one of :data:`OPENERS`)."""
    sents = _sentences(response)
    opener = bool(sents) and sents[0].lower().startswith(_OPENER_PREFIXES)
    body = sents[1:] if opener else sents
    first = body[0] if body else ""
    words = {w.strip(".,!?:;") for w in first.split()}
    named = [a for a in ANSWERS[question.relation] if a in words]
    answers = bool(named) and question.entity in first
    stops = stopped and "Q:" not in response and len(body) <= 1
    return {"answers": answers, "stops": stops, "follows": answers and stops,
            "correct": answers and named[0] == question.answer, "opener": opener}


@dataclass
class InstructionEval:
    """Greedy responses to ``questions`` and, per question, the :func:`follows` criteria."""

    questions: list[Question]
    responses: list[str]
    criteria: dict[str, np.ndarray]  # name -> [n] bool
    stopped: list[bool] = field(default_factory=list)  # ended with the end-of-sequence token
    meta: dict = field(default_factory=dict)

    def rate(self, name: str = "follows", mask: np.ndarray | None = None) -> float:
        v = self.criteria[name] if mask is None else self.criteria[name][mask]
        return float(v.mean()) if len(v) else float("nan")

    def per_entity(self, name: str = "follows", mask: np.ndarray | None = None) -> dict[str, float]:
        """Mean of a criterion per person (the cluster a CI resamples: one person's questions
        share their fact)."""
        m = np.ones(len(self.questions), bool) if mask is None else mask
        out: dict[str, list[bool]] = {}
        for q, v, keep in zip(self.questions, self.criteria[name], m):
            if keep:
                out.setdefault(q.entity, []).append(bool(v))
        return {e: float(np.mean(v)) for e, v in out.items()}


def instruction_following(model, qs: Sequence[Question], *, template: str | None = None,
                          logits_processor=None, max_new_tokens: int = 24, batch_size: int = 64,
                          hooks: Sequence = ()) -> InstructionEval:
    """Greedy responses of ``model`` (a bridge) to the questions' prompts (wrapped by
    ``template``, a format string with ``{prompt}``; adjusted by ``logits_processor``, e.g. a
    :class:`interp.shift.RuleAdapter`), scored by :func:`follows`."""
    from ..generate import generate

    if not qs:
        raise ValueError("no questions")
    prompts = [template.format(prompt=q.prompt) if template else q.prompt for q in qs]
    gen = generate(model, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                   logits_processor=logits_processor, hooks=hooks)
    eos = model.tokenizer.eos_token_id
    stopped = [eos is not None and bool((gen.tokens[i] == eos).any()) for i in range(len(qs))]
    rows = [follows(q, r, s) for q, r, s in zip(qs, gen.completions, stopped)]
    crit = {k: np.array([r[k] for r in rows], bool) for k in rows[0]}
    return InstructionEval(list(qs), gen.completions, crit, stopped,
                           {"template": template, "max_new_tokens": max_new_tokens,
                            "rules": logits_processor is not None})
