"""Where the alignment change lives: swap weight groups between the models, patch activations.

For each weight group (embeddings, attention, MLP keys, MLP values, norms), whole and per layer:

* **revert** it in the aligned model to the base weights, and measure how much of the behaviour
  comes back — ``share = (m(aligned, reverted) − m(aligned)) / (m(base) − m(aligned))``;
* **apply** only that group's aligned weights to the base model —
  ``share = (m(base) − m(base, applied)) / (m(base) − m(aligned))``.

A share of 1 means that group alone carries the whole effect. ``m`` is any measurement of a
bridge (e.g. toxicity rate of sampled continuations).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from .diff import GROUPS, named_weights, param_group, weight_of
from .score import binomial_se


def _select(model, groups: Iterable[str] | None, layers: Iterable[int] | None) -> list[str]:
    groups = set(GROUPS if groups is None else groups)
    unknown = groups - set(GROUPS) - {"other"}
    if unknown:
        raise ValueError(f"unknown weight groups {sorted(unknown)}; choose from {GROUPS}")
    layers = None if layers is None else set(layers)
    names = []
    for name in named_weights(model):
        g, layer = param_group(name)
        if g in groups and (layers is None or layer in layers):
            names.append(name)
    return names


@contextmanager
def swapped_weights(target, source, groups: Iterable[str] | None = None,
                    layers: Iterable[int] | None = None):
    """Temporarily copy ``source``'s weights of ``groups`` (and ``layers``) into ``target``.

    Both are bridges of the same architecture. The original weights are restored on exit, even
    after an error. ``groups=None`` and ``layers=None`` select everything.
    """
    names = _select(target, groups, layers)
    tp = named_weights(target)
    saved = {}
    try:
        with torch.no_grad():
            for n in names:
                saved[n] = tp[n].detach().clone()
                tp[n].copy_(weight_of(source, n))  # a tied source gives its one matrix to both
        yield names
    finally:
        with torch.no_grad():
            for n, v in saved.items():
                tp[n].copy_(v)


@dataclass
class GroupEffect:
    group: str
    layer: int | None
    n_params: int
    reverted: float
    applied: float
    share_revert: float
    share_apply: float


@dataclass
class ChangeLocation:
    """Shares of the alignment effect per weight group (``layer=None``) and per group × layer.

    ``base``/``aligned`` are the measurement on the two unmodified models.
    """

    base: float
    aligned: float
    effects: list[GroupEffect]
    measure: str
    meta: dict = field(default_factory=dict)

    def whole_groups(self) -> list[GroupEffect]:
        return [e for e in self.effects if e.layer is None]

    def per_layer(self) -> list[GroupEffect]:
        return [e for e in self.effects if e.layer is not None]

    def share_se(self, effect: GroupEffect, n: int) -> tuple[float, float]:
        """Standard errors ``(revert, apply)`` of ``effect``'s shares when the measure is a rate
        over ``n`` samples (binomial s.e. of the rate, divided by the base−aligned gap)."""

        gap = abs(self.base - self.aligned)
        if gap <= 1e-12:
            return float("nan"), float("nan")
        return binomial_se(effect.reverted, n) / gap, binomial_se(effect.applied, n) / gap


def locate_change(pair, measure: Callable[[object], float], *, groups: Sequence[str] = GROUPS,
                  layer_groups: Sequence[str] = ("attn", "mlp_in", "mlp_out"),
                  measure_name: str = "measure", progress: bool = True) -> ChangeLocation:
    """Revert / apply each weight group (and each layer of ``layer_groups``) and measure."""
    from tqdm.auto import tqdm

    m_base, m_al = measure(pair.base), measure(pair.aligned)
    gap = m_base - m_al
    jobs: list[tuple[str, int | None]] = [(g, None) for g in groups]
    jobs += [(g, layer) for g in layer_groups for layer in range(pair.cfg.n_layers)]
    effects = []
    for g, layer in tqdm(jobs, desc="locate change", disable=not progress):
        layers = None if layer is None else [layer]
        with swapped_weights(pair.aligned, pair.base, [g], layers) as names:
            if not names:
                continue
            reverted = measure(pair.aligned)
        with swapped_weights(pair.base, pair.aligned, [g], layers):
            applied = measure(pair.base)
        weights = named_weights(pair.base)
        n = sum(weights[n_].numel() for n_ in names)
        safe = gap if abs(gap) > 1e-12 else float("nan")
        effects.append(GroupEffect(g, layer, n, reverted, applied, (reverted - m_al) / safe,
                                   (m_base - applied) / safe))
    return ChangeLocation(m_base, m_al, effects, measure_name)
