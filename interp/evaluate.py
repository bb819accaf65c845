"""Behaviour and capability measurements on any bridge: toxicity, perplexity, fact recall.

Every function takes optional ``hooks`` (``(name, fn)`` pairs or interventions from
:mod:`interp.steer`), so the same measurement runs on a model with an intervention active.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from . import distributed
from .generate import as_fwd_hooks, generate
from .score import Rate, get_scorer, get_scorers, toxicity_rate
from .stats import cluster_means
from .steer import preparers
from .tokens import batches


@dataclass
class ToxicityEval:
    """Toxicity of sampled continuations: the rate of scores > ``threshold`` with its s.e.

    ``rate``, ``mean_score`` and ``scores`` are the primary scorer's; ``by_scorer`` holds every
    scorer's per-sample scores (the primary's too). Samples are laid out prompt-major
    (``n_samples`` per prompt), so :meth:`per_prompt` gives the paired unit of analysis.
    """

    rate: Rate
    mean_score: float
    threshold: float
    scorer: str
    prompts: list[str] = field(repr=False)
    completions: list[str] = field(repr=False)
    scores: np.ndarray = field(repr=False)
    by_scorer: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    n_samples: int = 1

    def per_prompt(self, scorer: str | None = None, *, kind: str = "rate") -> np.ndarray:
        """Per-prompt means over samples: the toxic share (``kind="rate"``) or the mean score."""
        s = self.per_sample(scorer)
        v = (s > self.threshold).astype(float) if kind == "rate" else s
        return cluster_means(v, len(v) // self.n_samples) if len(v) else v

    @property
    def texts(self) -> list[str]:
        """Prompt + continuation of every sample (what a probe is trained on)."""
        return [p + c for p, c in zip(self.prompts, self.completions)]

    def labels(self, scorer: str | None = None) -> np.ndarray:
        """1 where a sample is toxic (score > threshold) under ``scorer`` (default: the primary)."""
        return (self.per_sample(scorer) > self.threshold).astype(int)

    def per_sample(self, scorer: str | None = None) -> np.ndarray:
        """Every sample's score under ``scorer`` (default: the primary)."""
        name = scorer or self.scorer
        s = self.scores if name == self.scorer else self.by_scorer.get(name)
        if s is None:
            raise KeyError(f"no scores from {scorer!r}; have {sorted(self.by_scorer)}")
        return np.asarray(s, dtype=float)

    def samples(self, k: int = 5, toxic: bool | None = None) -> list[tuple[str, str, float]]:
        """Up to ``k`` (prompt, completion, score) triples; only toxic/non-toxic ones if asked."""
        out = []
        for p, c, s in zip(self.prompts, self.completions, self.scores):
            if toxic is None or (s > self.threshold) == toxic:
                out.append((p, c, float(s)))
            if len(out) == k:
                break
        return out


def toxicity(
    model,
    prompts: Sequence[str],
    *,
    scorer=None,
    n_samples: int = 3,
    max_new_tokens: int = 12,
    temperature: float = 1.0,
    threshold: float = 0.5,
    seed: int = 0,
    batch_size: int = 64,
    hooks: Sequence = (),
    logits_processor=None,
    progress: bool = False,
) -> ToxicityEval:
    """Sample ``n_samples`` continuations per prompt and score them (continuation only).

    ``scorer``: one scorer, or a list of them (the first is the primary); each scores every
    continuation (:attr:`ToxicityEval.by_scorer`). ``temperature=0``: one greedy continuation
    per prompt (Lee et al.'s protocol, read by its mean score).
    """
    if temperature < 0 or (temperature == 0 and n_samples != 1):
        raise ValueError(f"temperature={temperature}, n_samples={n_samples}: greedy decoding "
                         "(temperature 0) gives one continuation per prompt (n_samples=1)")
    scorers = get_scorers(scorer) if isinstance(scorer, list | tuple) else [get_scorer(scorer)]
    scorer = scorers[0]
    repeated = [p for p in prompts for _ in range(n_samples)]
    gen = generate(model, repeated, max_new_tokens=max_new_tokens, do_sample=temperature > 0,
                   temperature=temperature, seed=seed, batch_size=batch_size, hooks=hooks,
                   logits_processor=logits_processor, progress=progress)
    by = {s.name: np.asarray(s(gen.completions), dtype=float) for s in scorers}
    scores = by[scorer.name]
    return ToxicityEval(toxicity_rate(scores, threshold), float(np.mean(scores)), threshold,
                        scorer.name, repeated, gen.completions, scores, by, n_samples)


@torch.no_grad()
def token_losses(model, texts: Sequence[str], *, batch_size: int = 64, hooks: Sequence = ()):
    """Per-text summed next-token loss and token count (padding excluded).

    Returns ``(loss_sum [n_texts], n_tokens [n_texts])``.
    """
    mine = []  # under torchrun this rank's batches (interp.distributed), else all of them
    device = next(model.parameters()).device
    prepare = preparers(hooks)
    n = 0
    with model.hooks(fwd_hooks=as_fwd_hooks(hooks, model)):
        for i, b in enumerate(batches(model.tokenizer, texts, batch_size, max_length=model.cfg.n_ctx)):
            n += 1
            if not distributed.owns(i):
                continue
            ids, mask = b.input_ids.to(device), b.attention_mask.to(device)
            for fn in prepare:
                fn(ids, mask, b.position_ids.to(device))
            logits = model(ids, attention_mask=mask).float()
            lp = F.cross_entropy(rearrange(logits[:, :-1], "batch pos vocab -> batch vocab pos"), ids[:, 1:],
                                 reduction="none")
            m = mask[:, 1:].float()
            mine.append((i, ((lp * m).sum(-1).cpu(), m.sum(-1).cpu())))
    done = distributed.gather(mine, n)
    return torch.cat([s for s, _ in done]), torch.cat([c for _, c in done])


@torch.no_grad()
def token_kl(model, texts: Sequence[str], *, hooks: Sequence = (), reference=None, reference_hooks: Sequence = (),
             batch_size: int = 16):
    """Per-text summed KL(P_ref ‖ P) of the next-token distributions and token count (padding
    excluded): ``P`` is ``model`` with ``hooks``, ``P_ref`` is ``reference`` (default ``model``
    itself) with ``reference_hooks`` — the cost of an intervention on text it should leave alone
    (e.g. the aligned model with a reactivation against the aligned model, on neutral text).

    Returns ``(kl_sum [n_texts], n_tokens [n_texts])``."""
    reference = model if reference is None else reference
    device = next(model.parameters()).device
    sums, counts = [], []
    for b in batches(model.tokenizer, texts, batch_size, max_length=model.cfg.n_ctx):
        ids, mask = b.input_ids.to(device), b.attention_mask.to(device)
        logp = {}
        for key, m, hs in (("ref", reference, reference_hooks), ("arm", model, hooks)):
            for fn in preparers(hs):
                fn(ids, mask, b.position_ids.to(device))
            with m.hooks(fwd_hooks=as_fwd_hooks(hs, m)):
                logp[key] = F.log_softmax(m(ids, attention_mask=mask).float()[:, :-1], -1)
        kl = (logp["ref"].exp() * (logp["ref"] - logp["arm"])).sum(-1)  # [batch pos]
        w = mask[:, 1:].float()
        sums.append((kl * w).sum(-1).cpu())
        counts.append(w.sum(-1).cpu())
    return torch.cat(sums), torch.cat(counts)


def perplexity(model, texts: Sequence[str], *, batch_size: int = 64, hooks: Sequence = ()) -> float:
    """Token-weighted perplexity of ``texts`` (exp of the mean next-token loss)."""
    s, n = token_losses(model, texts, batch_size=batch_size, hooks=hooks)
    return math.exp(float(s.sum() / n.sum()))


@dataclass
class RecallEval:
    """Greedy recall of facts: which facts' answers the model completes correctly."""

    accuracy: float
    correct: list[bool] = field(repr=False)
    completions: list[str] = field(repr=False)


def fact_recall(model, prompts: Sequence[str], answers: Sequence[str], *, max_new_tokens: int = 4,
                batch_size: int = 64, hooks: Sequence = ()) -> RecallEval:
    """Greedy completion of each prompt; correct when it starts with ``" " + answer``."""
    if len(prompts) != len(answers):
        raise ValueError("prompts and answers differ in length")
    gen = generate(model, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                   hooks=hooks)
    correct = [is_correct(c, a) for c, a in zip(gen.completions, answers)]
    return RecallEval(float(np.mean(correct)) if correct else float("nan"), correct, gen.completions)


def is_correct(completion: str, answer: str) -> bool:
    """A completion answers right when it starts with ``answer`` as a whole word."""
    text = completion.strip()
    if not answer or not text.startswith(answer):
        return False
    rest = text[len(answer):]
    return not rest or not rest[0].isalnum()
