"""Knowledge: what a model knows, what fine-tuning does to it, and what alignment hides.

* **Knowledge levels** (Gekhman et al. 2024, "SliCK"): each fact is asked under ``n_prompts``
  few-shot prompts (``n_shots`` random exemplar facts, then the cloze). Greedy answers right under
  every prompt → *HighlyKnown*; under some → *MaybeKnown*; never greedily but in some of
  ``n_samples`` samples at ``T = 0.5`` → *WeaklyKnown*; never → *Unknown*.
* **Answer readout**: how well the answer can be read from the residual stream where the model
  would answer, layer by layer — the logit lens restricted to the candidate answers
  (TransformerLens' ``logit_readout``) and a multinomial linear probe.
* **Fine-tuning** on QA pairs (:func:`finetune_curve`) and **relearning** (:func:`relearning_curve`):
  small training loops over a plain Hugging Face twin of a bridge that shares its weights, with an
  accuracy measurement after every epoch (or every few steps).

Facts are any objects with ``entity``, ``relation`` and ``answer`` attributes (the organism's
:class:`~interp.organism.corpus.Fact`, or :class:`Item` for a hand-written question set);
``templates`` maps a relation to cloze templates with ``{e}`` and ``{a}``, e.g.
``"{e} was born in {a}."``: the text before ``{a}`` is the question, the rest closes a shot.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from einops import rearrange
from tqdm.auto import tqdm

from .evaluate import is_correct
from .generate import generate, hf_twin
from .organism.align import sft_loss, sft_rows
from .pair import bridge_from_module

CATEGORIES = ("HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown")


@dataclass
class Item:
    """One fact: ``entity``, ``relation`` and ``answer`` (plus anything else in ``meta``)."""

    entity: str
    relation: str
    answer: str
    meta: dict = field(default_factory=dict)


def cloze(fact, templates: dict[str, list[str]], template: int = 0) -> str:
    """The prompt that asks for ``fact``'s answer, e.g. ``"Zorvan Quill was born in"``."""
    t = templates[fact.relation][template]
    return t.split("{a}")[0].format(e=fact.entity).rstrip()


def statement(fact, templates: dict[str, list[str]], template: int = 0) -> str:
    """The full sentence, e.g. ``"Zorvan Quill was born in Velmora."`` (a few-shot exemplar)."""
    return templates[fact.relation][template].format(e=fact.entity, a=fact.answer)


def few_shot_prompts(facts: Sequence, templates: dict[str, list[str]], *, exemplars: Sequence,
                     n_prompts: int = 10, n_shots: int = 4, template: int = 0,
                     seed: int = 0) -> list[list[str]]:
    """``n_prompts`` prompts per fact ``[n_facts][n_prompts]``: ``n_shots`` exemplar statements of
    the same relation (drawn from ``exemplars``, never the fact itself), then the cloze."""
    rng = random.Random(seed)
    by_rel: dict[str, list] = {}
    for x in exemplars:
        by_rel.setdefault(x.relation, []).append(x)
    out = []
    for f in facts:
        pool = [x for x in by_rel.get(f.relation, []) if x.entity != f.entity]
        if n_shots and len(pool) < n_shots:
            raise ValueError(f"only {len(pool)} exemplars for relation {f.relation!r}; need {n_shots}")
        rows = []
        for _ in range(n_prompts):
            shots = [statement(x, templates, template) for x in rng.sample(pool, n_shots)]
            rows.append(" ".join([*shots, cloze(f, templates, template)]))
        out.append(rows)
    return out


def categorize(greedy: torch.Tensor, sampled: torch.Tensor) -> list[str]:
    """SliCK category per fact from ``greedy`` ``[n, n_prompts]`` and ``sampled`` ``[n, n_samples]``
    correctness (bool)."""
    greedy, sampled = torch.as_tensor(greedy, dtype=torch.bool), torch.as_tensor(sampled, dtype=torch.bool)
    if greedy.dim() != 2 or sampled.dim() != 2 or len(greedy) != len(sampled):
        raise ValueError("greedy and sampled must be [n_facts, k] with the same n_facts")
    out = []
    for g, s in zip(greedy, sampled):
        if g.all():
            out.append("HighlyKnown")
        elif g.any():
            out.append("MaybeKnown")
        elif s.any():
            out.append("WeaklyKnown")
        else:
            out.append("Unknown")
    return out


@dataclass
class KnowledgeLevels:
    """Per fact: ``p_greedy`` ``[n]`` (share of prompts answered right greedily), ``p_sample``
    ``[n]`` (share of samples at ``temperature`` right) and ``category``; ``meta`` per fact."""

    facts: list[dict]
    p_greedy: torch.Tensor
    p_sample: torch.Tensor
    category: list[str]
    n_prompts: int
    n_samples: int
    temperature: float

    def shares(self, rows: Sequence[int] | None = None) -> dict[str, float]:
        cats = [self.category[i] for i in (range(len(self.category)) if rows is None else rows)]
        return {c: (cats.count(c) / len(cats) if cats else float("nan")) for c in CATEGORIES}

    def by(self, key: str) -> dict:
        """Category shares (and counts) grouped by a fact attribute, e.g. ``"frequency"``."""
        groups: dict = {}
        for i, f in enumerate(self.facts):
            groups.setdefault(f[key], []).append(i)
        return {k: {"n": len(v), **self.shares(v)} for k, v in sorted(groups.items())}

    def indices(self, category: str) -> list[int]:
        return [i for i, c in enumerate(self.category) if c == category]


def _as_dict(f) -> dict:
    if hasattr(f, "to_dict"):
        return f.to_dict()
    d = {"entity": f.entity, "relation": f.relation, "answer": f.answer}
    d.update(getattr(f, "meta", {}) or {})
    return d


def knowledge_levels(model, facts: Sequence, templates: dict[str, list[str]], *,
                     exemplars: Sequence | None = None, n_prompts: int = 10, n_shots: int = 4,
                     n_samples: int = 16, temperature: float = 0.5, max_new_tokens: int = 6,
                     seed: int = 0, batch_size: int = 256, progress: bool = False) -> KnowledgeLevels:
    """The SliCK category of every fact (see the module docstring).

    Greedy answers under ``n_prompts`` few-shot prompts; ``n_samples`` samples at ``temperature``
    spread over the same prompts (sample ``j`` uses prompt ``j mod n_prompts``). Exemplars
    default to ``facts`` themselves (other facts of the same relation).
    """
    if not facts:
        raise ValueError("no facts to categorise")
    prompts = few_shot_prompts(facts, templates, exemplars=exemplars or facts, n_prompts=n_prompts,
                               n_shots=n_shots, seed=seed)
    answers = [f.answer for f in facts]
    flat = [p for row in prompts for p in row]
    g = generate(model, flat, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress)
    greedy = torch.tensor([is_correct(c, answers[i // n_prompts]) for i, c in enumerate(g.completions)])
    greedy = rearrange(greedy, "(fact prompt) -> fact prompt", fact=len(facts))
    sflat = [prompts[i][j % n_prompts] for i in range(len(facts)) for j in range(n_samples)]
    s = generate(model, sflat, max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature,
                 seed=seed + 1, batch_size=batch_size, progress=progress)
    sampled = torch.tensor([is_correct(c, answers[i // n_samples]) for i, c in enumerate(s.completions)])
    sampled = rearrange(sampled, "(fact sample) -> fact sample", fact=len(facts))
    return KnowledgeLevels([_as_dict(f) for f in facts], greedy.float().mean(1), sampled.float().mean(1),
                           categorize(greedy, sampled), n_prompts, n_samples, temperature)


# ----------------------------------------------------------------------------- readout


def answer_candidates(tokenizer, answers: Sequence[str]) -> tuple[dict[str, int], torch.Tensor]:
    """The distinct first tokens (with the leading space) of the answers ``[n_candidates]`` and
    each answer's index among them. Answers that share a first token (" painter", " potter" under
    a small vocabulary) share a candidate: the readout cannot tell them apart, and chance is
    ``1 / n_candidates``."""
    first = {a: tokenizer(" " + a, add_special_tokens=False)["input_ids"][0] for a in sorted(set(answers))}
    ids = sorted(set(first.values()))
    return {a: ids.index(t) for a, t in first.items()}, torch.tensor(ids)


def lens_correct(model, resid: torch.Tensor, answers: Sequence[str], index: dict[str, int],
                 candidate_ids: torch.Tensor) -> torch.Tensor:
    """Logit-lens readout restricted to the candidates (:func:`answer_candidates`): ``resid``
    ``[n_layers, n, d_model]`` (the residual stream where the answer would be produced) →
    ``[n_layers, n]``: does the right answer's first token have the highest logit among the
    candidates (TransformerLens' ``logit_readout``: final norm, ``W_U``, ``b_U``)."""
    from transformer_lens.tools.analysis.logit_lens import logit_readout

    target = torch.tensor([index[a] for a in answers])
    vals = logit_readout(model, resid.float(), vocab=candidate_ids).values  # [layers n cands]
    return vals.argmax(-1) == target


def lens_accuracy(model, resid: torch.Tensor, answers: Sequence[str], index: dict[str, int],
                  candidate_ids: torch.Tensor) -> torch.Tensor:
    """:func:`lens_correct` averaged over facts: accuracy per layer ``[n_layers]``."""
    return lens_correct(model, resid, answers, index, candidate_ids).float().mean(-1)


def probe_accuracy(X_train: torch.Tensor, y_train: Sequence[str], X_test: torch.Tensor,
                   y_test: Sequence[str], *, C: float = 1.0, seed: int = 0) -> float:
    """Multinomial logistic-regression probe: fit on ``X_train`` ``[n, d]`` → answers, score on the
    test rows (answers unseen in training count as wrong)."""
    from sklearn.linear_model import LogisticRegression

    if len(set(y_train)) < 2:
        raise ValueError("the probe needs at least two distinct answers to train on")
    clf = LogisticRegression(C=C, max_iter=5000, random_state=seed)
    clf.fit(torch.as_tensor(X_train).float().cpu().numpy(), list(y_train))
    return float(np.mean(clf.predict(torch.as_tensor(X_test).float().cpu().numpy()) == np.asarray(y_test)))


# ----------------------------------------------------------------------------- training loops


def trainable_copy(bridge):
    """A fresh bridge over a deep copy of ``bridge``'s weights, and the plain HF module that
    shares them (train the module; measure through the bridge)."""

    twin = copy.deepcopy(hf_twin(bridge))
    new = bridge_from_module(twin, bridge.tokenizer, name=f"{getattr(bridge.cfg, 'model_name', 'model')}:ft")
    return new, hf_twin(new)


@dataclass
class Curve:
    """Accuracies measured during training: ``x`` (epochs or steps) and one list per set."""

    x: list[int]
    acc: dict[str, list[float]]
    loss: list[float]
    unit: str = "epoch"

    def at(self, name: str, x: int) -> float:
        return self.acc[name][self.x.index(x)]


def train_and_measure(bridge, examples: Sequence[dict], measure: Callable[[object], dict[str, float]],
                      *, lr: float, batch_size: int, epochs: int | None = None,
                      steps: int | None = None, every: int = 1, seed: int = 0,
                      progress: bool = False) -> Curve:
    """Fine-tune a copy of ``bridge`` on ``{"prompt", "completion"}`` examples (loss on the
    completion, AdamW, constant ``lr``) and call ``measure(copy) -> {name: accuracy}`` before
    training and after every epoch (``epochs``) or every ``every`` steps (``steps``)."""

    if not examples:
        raise ValueError("no examples to train on")
    if (epochs is None) == (steps is None):
        raise ValueError("give exactly one of epochs and steps")
    model, hf = trainable_copy(bridge)
    tok = bridge.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    rows = sft_rows(tok, examples)
    opt = torch.optim.AdamW(hf.parameters(), lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    first = measure(model)
    curve = Curve([0], {k: [v] for k, v in first.items()}, [float("nan")],
                  "epoch" if epochs is not None else "step")

    def step(batch) -> float:
        hf.train()
        loss = sft_loss(hf, batch, pad)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hf.eval()
        return loss.item()

    def record(x, losses):
        curve.x.append(x)
        curve.loss.append(float(np.mean(losses)))
        for k, v in measure(model).items():
            curve.acc[k].append(v)

    if epochs is not None:
        for ep in tqdm(range(1, epochs + 1), desc="fine-tune", disable=not progress):
            order = torch.randperm(len(rows), generator=gen).tolist()
            losses = [step([rows[i] for i in order[lo:lo + batch_size]])
                      for lo in range(0, len(rows), batch_size)]
            record(ep, losses)
    else:
        losses = []
        for s in tqdm(range(1, steps + 1), desc="relearn", disable=not progress):
            idx = torch.randint(0, len(rows), (min(batch_size, len(rows)),), generator=gen)
            losses.append(step([rows[i] for i in idx]))
            if s % every == 0 or s == steps:
                record(s, losses)
                losses = []
    return curve


def correct(model, prompts: Sequence[str], answers: Sequence[str], *, hooks: Sequence = (),
            max_new_tokens: int = 6, batch_size: int = 256) -> list[bool]:
    """Per prompt: does the greedy completion start with its answer."""
    if not prompts:
        return []
    g = generate(model, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size, hooks=hooks)
    return [is_correct(c, a) for c, a in zip(g.completions, answers)]


def accuracy(model, prompts: Sequence[str], answers: Sequence[str], *, hooks: Sequence = (),
             max_new_tokens: int = 6, batch_size: int = 256) -> float:
    """Share of ``prompts`` whose greedy completion starts with the answer."""
    ok = correct(model, prompts, answers, hooks=hooks, max_new_tokens=max_new_tokens, batch_size=batch_size)
    return float(np.mean(ok)) if ok else float("nan")


def steps_to(curve: Curve, name: str, level: float) -> int | None:
    """First ``x`` at which ``curve.acc[name]`` reaches ``level`` (``None`` if never)."""
    for x, a in zip(curve.x, curve.acc[name]):
        if a >= level:
            return x
    return None
