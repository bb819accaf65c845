"""The activation-difference lens (Minder et al., ICLR 2026, "Narrow finetuning leaves clearly
readable traces in activation differences"): the mean aligned − base residual on the first
tokens of text *unrelated* to the fine-tune, per layer, read through the base's final norm and
unembedding — no probe and no labelled data.

:func:`activation_difference` measures it; :func:`readout` lists the tokens each layer's
difference promotes and suppresses; :func:`patchscope` reads it through an identity prompt
instead (the base says what the difference "is"); :func:`steering_strength` chooses how strongly
the base can be steered with it before it stops being coherent (a perplexity bound on neutral
text, fixed in code); :func:`identify` scores whether a known objective (a set of
target tokens: the organism's insults, the scorers' toxic vocabulary) is what the difference
reads as — the rank-AUROC of the target tokens among all tokens in the readout, against random
token sets of the same size (and, given them, against null pairs' differences: aligned = base +
noise). A fine-tune *against* a behaviour should read as the behaviour suppressed: the AUROC is
reported signed (below 0.5: the targets pushed down) and tested two-sided.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from . import hooks as H
from .locate import unembed_logits

#: The identification criterion, fixed before any run: |AUROC − 0.5| of the target tokens in the
#: readout at least this, and beyond random token sets (two-sided permutation p < 0.05).
IDENTIFY_MIN_EFFECT = 0.10
IDENTIFY_ALPHA = 0.05


@dataclass
class ActivationDifference:
    """``diff`` ``[n_layers, k, d_model]``: the mean over texts of aligned − base residual
    (``hook_resid_post``) at each of the first ``k`` positions; ``base_norm`` ``[n_layers, k]`` the
    base's mean residual norm there (the scale a steering strength is read against)."""

    layers: list[int]
    k: int
    diff: torch.Tensor
    base_norm: torch.Tensor
    n_texts: int
    meta: dict = field(default_factory=dict)

    def norms(self) -> torch.Tensor:
        """``[n_layers, k]``: ‖mean difference‖ relative to the base's mean residual norm."""
        return self.diff.norm(dim=-1) / self.base_norm.clamp_min(1e-12)

    def vector(self, layer: int, position: int | None = None) -> torch.Tensor:
        """The difference at ``layer`` (one of :attr:`layers`), at ``position`` or averaged over
        the first ``k``."""
        i = self.layers.index(layer)
        return self.diff[i].mean(0) if position is None else self.diff[i, position]


@torch.no_grad()
def activation_difference(pair, texts, *, k: int = 5, layers=None, batch_size: int = 16,
                          progress: bool = False) -> ActivationDifference:
    """Run both models on ``texts`` (unrelated to the fine-tune) and average aligned − base
    residuals over texts at each of the first ``k`` tokens of each (texts shorter than ``k``
    tokens count at the positions they have)."""
    from tqdm.auto import tqdm

    from .tokens import context_length, get_batch

    L = pair.cfg.n_layers
    layers = list(range(L)) if layers is None else sorted(set(int(x) for x in layers))
    names = {H.resid(layer) for layer in layers}
    sums = {r: torch.zeros(len(layers), k, pair.cfg.d_model, dtype=torch.float64) for r in ("base", "aligned")}
    norm = torch.zeros(len(layers), k, dtype=torch.float64)
    count = torch.zeros(k, dtype=torch.float64)
    for lo in tqdm(range(0, len(texts), batch_size), desc="activation difference", disable=not progress):
        rows = {}
        for role, model in (("base", pair.base), ("aligned", pair.aligned)):
            batch = get_batch(model.tokenizer, texts, lo, min(lo + batch_size, len(texts)),
                              max_length=context_length(model), on_overflow="truncate")
            device = next(model.parameters()).device
            _, cache = model.run_with_cache(batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device),
                                            names_filter=lambda n: n in names)
            mask = batch.attention_mask.bool()
            # the first k real tokens of each row, whichever side the padding is on
            first = [torch.nonzero(m, as_tuple=True)[0][:k] for m in mask]
            rows[role] = (cache, first)
        for role in ("base", "aligned"):
            cache, first = rows[role]
            for i, layer in enumerate(layers):
                x = cache[H.resid(layer)].double().cpu()
                for b, pos in enumerate(first):
                    sums[role][i, :len(pos)] += x[b, pos]
                    if role == "base":
                        norm[i, :len(pos)] += x[b, pos].norm(dim=-1)
        for pos in rows["base"][1]:
            count[:len(pos)] += 1
    c = count.clamp_min(1)
    diff = ((sums["aligned"] - sums["base"]) / c[None, :, None]).float()
    return ActivationDifference(layers, k, diff, (norm / c[None]).float(), len(texts),
                                {"positions_counted": count.tolist()})


@torch.no_grad()
def readout(model, vector: torch.Tensor, n: int = 20) -> dict[str, list[str]]:
    """The tokens ``vector`` (a residual direction) promotes and suppresses most, read through
    ``model``'s final norm (gain) and unembedding (the logit lens)."""
    logits = unembed_logits(model, vector[None])[0]
    tok = model.tokenizer
    up = torch.topk(logits, n).indices.tolist()
    down = torch.topk(-logits, n).indices.tolist()
    return {"promotes": [tok.decode([i]) for i in up], "suppresses": [tok.decode([i]) for i in down]}


def _auroc(scores: np.ndarray, mask: np.ndarray) -> float:
    """P(a target token's logit > a non-target's) (ties half), by ranks."""
    from scipy.stats import rankdata

    r = rankdata(scores)
    n1, n0 = int(mask.sum()), int((~mask).sum())
    return float((r[mask].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


@dataclass
class Identification:
    """Whether a readout reads as the target: the target tokens' rank-AUROC in the logit lens
    (``auroc``; below 0.5: pushed down), against ``n_perm`` random token sets of the same size
    (``p_sets``, two-sided) and, where given, null pairs' readouts of the same target
    (``null_aurocs``, ``p_nulls``); ``identified`` applies :data:`IDENTIFY_MIN_EFFECT` and
    :data:`IDENTIFY_ALPHA` (both p-values where both nulls were run)."""

    layer: int
    n_targets: int
    auroc: float
    p_sets: float
    set_aurocs: list[float]
    null_aurocs: list[float] = field(default_factory=list)
    p_nulls: float | None = None

    @property
    def identified(self) -> bool:
        ps = [self.p_sets] + ([self.p_nulls] if self.p_nulls is not None else [])
        return abs(self.auroc - 0.5) >= IDENTIFY_MIN_EFFECT and all(p < IDENTIFY_ALPHA for p in ps)

    def to_dict(self) -> dict:
        return {"layer": self.layer, "n_targets": self.n_targets, "auroc": self.auroc, "p_sets": self.p_sets,
                "set_auroc_q05_q95": [float(np.quantile(self.set_aurocs, q)) for q in (0.05, 0.95)],
                "null_aurocs": self.null_aurocs, "p_nulls": self.p_nulls, "identified": self.identified,
                "criterion": f"|AUROC − 0.5| ≥ {IDENTIFY_MIN_EFFECT}, two-sided p < {IDENTIFY_ALPHA} against "
                             "random token sets of the same size (and null pairs where run)"}


def _two_sided(value: float, null: list[float]) -> float:
    null = np.asarray(null, dtype=float)
    extreme = np.abs(null - 0.5) >= abs(value - 0.5)
    return float((1 + extreme.sum()) / (1 + len(null)))


def identification(scores: np.ndarray, target, layer: int, *, n_perm: int = 1000,
                   null_scores: list[np.ndarray] | None = None, seed: int = 0) -> Identification:
    """The target tokens' rank-AUROC in one readout (``scores`` ``[d_vocab]``: any per-token score —
    the logit lens, a Patchscope's logit change), against ``n_perm`` random token sets of the same
    size and, given them, the same readout of null pairs (``null_scores``)."""
    mask = np.asarray(torch.as_tensor(target).bool().cpu())
    if not 0 < mask.sum() < len(mask):
        raise ValueError(f"the target must be some tokens of the vocabulary, not {int(mask.sum())} of {len(mask)}")
    scores = np.asarray(scores, dtype=float)
    if scores.shape != mask.shape:
        raise ValueError(f"a readout scores {scores.shape[0]} tokens, the target names {mask.shape[0]}")
    value = _auroc(scores, mask)
    rng = np.random.default_rng(seed)
    sets = [_auroc(scores, rng.permutation(mask)) for _ in range(n_perm)]
    out = Identification(layer, int(mask.sum()), value, _two_sided(value, sets), sets)
    if null_scores:
        out.null_aurocs = [_auroc(np.asarray(n, dtype=float), mask) for n in null_scores]
        out.p_nulls = _two_sided(value, out.null_aurocs)
    return out


@torch.no_grad()
def identify(model, adl: ActivationDifference, target: torch.Tensor, layer: int, *, n_perm: int = 1000,
             nulls: list[ActivationDifference] | None = None, seed: int = 0) -> Identification:
    """Score the logit-lens readout of ``adl`` at ``layer`` (mean over the first k positions) for
    the target tokens (``target``: a boolean mask over the vocabulary), read through ``model``
    (the base) — :func:`identification` on :func:`~interp.locate.unembed_logits`."""
    lens = lambda a: unembed_logits(model, a.vector(layer)[None])[0].cpu().numpy()  # noqa: E731
    return identification(lens(adl), target, layer, n_perm=n_perm, seed=seed,
                          null_scores=[lens(n) for n in nulls] if nulls else None)


#: The identity prompt a Patchscope reads a vector through (Ghandeharioun et al. 2024, as Minder
#: et al. use it): the vector replaces the residual at the last token, the model says what follows.
IDENTITY_PROMPT = "cat -> cat\n1135 -> 1135\nhello -> hello\n? ->"


@torch.no_grad()
def patchscope(model, vector: torch.Tensor, layer: int, *, prompt: str = IDENTITY_PROMPT) -> torch.Tensor:
    """``[d_vocab]``: how the next-token log-probabilities of ``prompt`` change when the residual
    (``hook_resid_post``) of its last token at ``layer`` is replaced by ``vector`` scaled to that
    residual's own norm (the direction is read, at the size the model expects there). Declared,
    not searched: no scale is tuned on the outcome."""
    from .steer import _check_vector

    _check_vector(vector, model, "patchscope")
    if not 0 <= layer < model.cfg.n_layers:
        raise ValueError(f"patchscope: layer {layer} is outside the model's {model.cfg.n_layers} layers")
    device = next(model.parameters()).device
    ids = model.tokenizer(prompt, return_tensors="pt")["input_ids"].to(device)
    v = vector.float().to(device)

    def patch(act, hook):
        last = act[:, -1]
        act[:, -1] = (v / v.norm().clamp_min(1e-12) * last.norm(dim=-1, keepdim=True)).to(act.dtype)
        return act

    clean = torch.log_softmax(model(ids)[0, -1].float(), -1)
    with model.hooks(fwd_hooks=[(H.resid(layer), patch)]):
        patched = torch.log_softmax(model(ids)[0, -1].float(), -1)
    return (patched - clean).cpu()


#: The coherence bound, fixed before any run: a steering strength is eligible only while the
#: steered model's perplexity on neutral text stays within this ratio of the unsteered model's.
COHERENCE_MAX_PPL_RATIO = 1.25
#: Strengths tried, as multiples of the measured difference (1: add exactly δ at every position).
STEER_STRENGTHS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


@dataclass
class Steering:
    """Steering a model with ``vector`` at ``layer`` (:class:`interp.steer.AddVector`, every
    position): each strength's perplexity ratio on neutral text (``ppl_ratio``, steered /
    unsteered), the largest strength within :data:`COHERENCE_MAX_PPL_RATIO` (``chosen``; ``None`` if
    none is), and a random direction of the same norm at that strength (``control_ppl_ratio``)."""

    layer: int
    strengths: list[float]
    ppl_ratio: list[float]
    chosen: float | None
    control_ppl_ratio: float | None
    vector_norm: float
    max_ratio: float = COHERENCE_MAX_PPL_RATIO

    def hooks(self, vector: torch.Tensor, *, control: bool = False, seed: int = 0) -> list:
        """The intervention at the chosen strength (``control``: the random direction of the same
        norm, drawn with ``seed``)."""
        from .steer import AddVector

        if self.chosen is None:
            raise ValueError("no steering strength stayed within the coherence bound")
        v = random_like(vector, seed) if control else vector
        return [AddVector(v, self.chosen, self.layer, label="random direction" if control else "δ (ADL)")]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def random_like(vector: torch.Tensor, seed: int) -> torch.Tensor:
    """:func:`~interp.directions.random_direction` at ``vector``'s norm (the control of a steering vector)."""
    from .directions import random_direction

    return (random_direction(vector.numel(), seed).vector * vector.float().norm()).to(vector.dtype)


@torch.no_grad()
def steering_strength(model, vector: torch.Tensor, layer: int, texts, *, strengths=STEER_STRENGTHS,
                      max_ratio: float = COHERENCE_MAX_PPL_RATIO, seed: int = 0) -> Steering:
    """Choose how strongly to steer ``model`` with ``vector`` at ``layer`` from neutral ``texts``
    alone (never the outcome): the largest of ``strengths`` whose perplexity ratio stays within
    ``max_ratio`` (strengths are tried in increasing order and the search stops at the first that
    breaks the bound)."""
    from .evaluate import perplexity
    from .steer import AddVector

    texts = list(texts)
    if not texts:
        raise ValueError("steering_strength needs neutral texts to bound the perplexity on")
    ref = perplexity(model, texts)
    tried, ratios = [], []
    for s in sorted(float(x) for x in strengths):
        ratios.append(perplexity(model, texts, hooks=[AddVector(vector, s, layer)]) / ref)
        tried.append(s)
        if ratios[-1] > max_ratio:
            break
    ok = [s for s, r in zip(tried, ratios) if r <= max_ratio]
    chosen = max(ok) if ok else None
    control = (perplexity(model, texts, hooks=[AddVector(random_like(vector, seed), chosen, layer)]) / ref
               if chosen is not None else None)
    return Steering(layer, tried, ratios, chosen, control, float(vector.float().norm()), max_ratio)
