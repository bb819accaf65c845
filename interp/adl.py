"""The activation-difference lens (Minder et al., ICLR 2026, "Narrow finetuning leaves clearly
readable traces in activation differences"): the mean aligned − base residual on the first
tokens of text *unrelated* to the fine-tune, per layer, read through the base's final norm and
unembedding — no probe and no labelled data.

:func:`activation_difference` measures it; :func:`readout` lists the tokens each layer's
difference promotes and suppresses; :func:`identify` scores whether a known objective (a set of
target tokens: the organism's insults, the scorers' toxic vocabulary) is what the difference
reads as — the rank-AUROC of the target tokens among all tokens in the readout, against random
token sets of the same size (and, given them, against null pairs' differences: aligned = base +
noise). A fine-tune *against* a behaviour should read as the behaviour suppressed: the AUROC is
reported signed (below 0.5: the targets pushed down) and tested two-sided.
"""

from __future__ import annotations

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


@torch.no_grad()
def identify(model, adl: ActivationDifference, target: torch.Tensor, layer: int, *, n_perm: int = 1000,
             nulls: list[ActivationDifference] | None = None, seed: int = 0) -> Identification:
    """Score the readout of ``adl`` at ``layer`` (mean over the first k positions) for the target
    tokens (``target``: a boolean mask over the vocabulary), read through ``model`` (the base)."""
    mask = np.asarray(target.bool().cpu())
    if not 0 < mask.sum() < len(mask):
        raise ValueError(f"the target must be some tokens of the vocabulary, not {int(mask.sum())} of {len(mask)}")
    scores = unembed_logits(model, adl.vector(layer)[None])[0].cpu().numpy()
    value = _auroc(scores, mask)
    rng = np.random.default_rng(seed)
    sets = [_auroc(scores, rng.permutation(mask)) for _ in range(n_perm)]
    out = Identification(layer, int(mask.sum()), value, _two_sided(value, sets), sets)
    if nulls:
        out.null_aurocs = [_auroc(unembed_logits(model, n.vector(layer)[None])[0].cpu().numpy(), mask) for n in nulls]
        out.p_nulls = _two_sided(value, out.null_aurocs)
    return out
