"""Interventions: small declarative objects that turn into hooks for any forward or generation.

Each intervention is a dataclass (so it can be listed in a table, saved, and swept) with
``fwd_hooks(model) -> [(hook_name, fn), …]``. Pass them to :func:`interp.generate.generate`,
:mod:`interp.evaluate` functions, or ``model.hooks(fwd_hooks=…)`` directly::

    from interp.steer import ScaleNeurons
    evaluate.toxicity(pair.aligned, prompts, hooks=[ScaleNeurons(top, factor=10)])

An intervention with a ``prepare(input_ids, attention_mask, position_ids)`` method is called
before every forward pass (used to run a second model on the same tokens, for patching).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from . import hooks as H
from .checks import finite
from .neurons import Neurons


def _dose(x) -> str:
    return f"{x:g}" if isinstance(x, int | float) else str(x)


def _check_neurons(neurons: Neurons, model, who: str) -> None:
    """Neuron indices name real neurons: no negative index (which would silently wrap)."""
    L, d = model.cfg.n_layers, model.cfg.d_mlp
    layer, index = neurons.layer, neurons.index
    if len(layer) != len(index):
        raise ValueError(f"{who}: {len(layer)} layers but {len(index)} neuron indices")
    bad = [(int(a), int(b)) for a, b in zip(layer, index) if not (0 <= a < L and 0 <= b < d)]
    if bad:
        raise ValueError(f"{who}: neurons {bad[:3]} are outside the model's {L} layers × {d} neurons")


def _check_vector(v: torch.Tensor, model, who: str, per_layer: bool = False) -> None:
    d, L = model.cfg.d_model, model.cfg.n_layers
    ok = v.shape == (d,) or (per_layer and v.shape == (L, d))
    if not ok:
        want = f"[{d}]" + (f" or [{L}, {d}]" if per_layer else "")
        raise ValueError(f"{who}: the vector has shape {list(v.shape)}; this model needs {want}")
    finite(v, f"{who}: the vector")


@dataclass
class ScaleNeurons:
    """Scale ``neurons`` by ``factor``.

    ``point="pre"`` (the default) is Lee et al.'s operation: scaling a neuron's key vector
    (its column of ``W_in``, with its bias) ×``factor`` scales its pre-activation
    (``mlp.hook_pre``), so a key pushed below zero stays near zero after GELU. In a gated MLP
    ``pre`` is the gate's pre-activation. ``point="post"`` is a variant (it multiplies
    ``mlp.hook_post``, what multiplies the value vector, negative values too).
    ``positive_only``: scale only the positive part.
    """

    neurons: Neurons
    factor: float
    positive_only: bool = False
    point: str = "pre"

    def describe(self) -> str:
        part = " positive part of" if self.positive_only else ""
        what = "keys (pre-activation)" if self.point == "pre" else "activations (post)"
        return f"scale{part} {len(self.neurons)} {self.neurons.label}' {what} ×{_dose(self.factor)}"

    def fwd_hooks(self, model) -> list:
        if self.point not in ("pre", "post"):
            raise ValueError(f"ScaleNeurons.point must be 'pre' or 'post', not {self.point!r}")
        _check_neurons(self.neurons, model, "ScaleNeurons")
        out = []
        for layer, idx in self.neurons.by_layer().items():
            def fn(act, hook, idx=idx):
                a = act[..., idx]
                if self.positive_only:
                    a = torch.where(a > 0, a * self.factor, a)
                else:
                    a = a * self.factor
                act = act.clone()
                act[..., idx] = a
                return act
            out.append((f"blocks.{layer}.mlp.hook_{self.point}", fn))
        return out


@dataclass
class ScaleKeyWeights:
    """Lee et al.'s un-alignment exactly as their code does it (``ajyl/dpo_toxic``,
    ``eval_utils.load_model``): each neuron's key *weight column* ×``factor`` — ``c_fc.weight[:, i]``
    in GPT-2; in a gated MLP the column before the nonlinearity, ``gate_proj`` — with its bias left
    untouched. Done as a hook with the same effect as the weight edit: the pre-activation becomes
    ``factor · (pre − b_in[i]) + b_in[i]``. (:class:`ScaleNeurons` with ``point="pre"`` scales the
    whole pre-activation, bias included: a named variant.)"""

    neurons: Neurons
    factor: float

    def describe(self) -> str:
        return (f"scale {len(self.neurons)} {self.neurons.label}' key weights (W_in column, bias untouched) "
                f"×{_dose(self.factor)}")

    def fwd_hooks(self, model) -> list:
        _check_neurons(self.neurons, model, "ScaleKeyWeights")
        gated = model.W_gate is not None
        b_in = None if gated else getattr(model, "b_in", None)  # the gate of Llama/Gemma has no bias
        out = []
        for layer, idx in self.neurons.by_layer().items():
            bias = None if b_in is None else b_in[layer, idx].detach()

            def fn(act, hook, idx=idx, bias=bias):
                act = act.clone()
                a = act[..., idx]
                act[..., idx] = a * self.factor if bias is None else (a - bias) * self.factor + bias
                return act
            out.append((f"blocks.{layer}.mlp.hook_pre", fn))
        return out


@dataclass
class ClampNeurons:
    """Raise the activations of ``neurons`` to at least ``values`` ``[k]`` (e.g. a base-model
    quantile on eliciting text), times ``dose``; activations already above are left alone."""

    neurons: Neurons
    values: torch.Tensor
    dose: float = 1.0
    point: str = "post"

    def describe(self) -> str:
        return f"clamp {len(self.neurons)} {self.neurons.label} to ≥ {_dose(self.dose)}× base quantile"

    def fwd_hooks(self, model) -> list:
        _check_neurons(self.neurons, model, "ClampNeurons")
        if len(self.values) != len(self.neurons):
            raise ValueError(f"ClampNeurons: {len(self.values)} floor values for {len(self.neurons)} neurons")
        pos = {n: j for j, n in enumerate(self.neurons)}
        out = []
        for layer, idx in self.neurons.by_layer().items():
            floor = torch.stack([self.values[pos[(layer, int(i))]] for i in idx]) * self.dose
            def fn(act, hook, idx=idx, floor=floor):
                act = act.clone()
                act[..., idx] = torch.maximum(act[..., idx], floor.to(act))
                return act
            out.append((f"blocks.{layer}.mlp.hook_{self.point}", fn))
        return out


@dataclass
class AddVector:
    """Add ``alpha * vector`` to the residual stream at ``blocks.{layer}.hook_resid_{where}``.

    ``vector`` ``[d_model]``. With ``layer=None`` it is added at every layer (``vector`` may then
    be ``[n_layers d_model]``, one per layer).
    """

    vector: torch.Tensor
    alpha: float = 1.0
    layer: int | None = None
    where: str = "post"
    label: str = "vector"

    def describe(self) -> str:
        at = "every layer" if self.layer is None else f"layer {self.layer}"
        return f"add {_dose(self.alpha)}·{self.label} at {at}"

    def fwd_hooks(self, model) -> list:
        _check_vector(self.vector, model, "AddVector", per_layer=self.layer is None)
        if self.layer is not None and not 0 <= self.layer < model.cfg.n_layers:
            raise ValueError(f"AddVector: layer {self.layer} is outside the model's {model.cfg.n_layers} layers")
        layers = range(model.cfg.n_layers) if self.layer is None else [self.layer]
        out = []
        for layer in layers:
            v = self.vector[layer] if self.vector.dim() == 2 else self.vector
            def fn(act, hook, v=v):
                return act + self.alpha * v.to(act)
            out.append((H.resid(layer, self.where), fn))
        return out


@dataclass
class AblateDirection:
    """Project ``direction`` ``[d_model]`` out (``x − (1−keep)(x·d̂)d̂``), at every position.

    ``where="writes"`` (the default) is Arditi et al.'s directional ablation: the direction is
    removed from everything written to the residual stream — the embedding (``hook_resid_pre``
    of block 0) and every attention and MLP output — so no component of any layer ever reads
    it. ``where="resid_post"`` is a variant that projects it out of each block's output only
    (a block's MLP then still sees what its attention wrote). ``layers`` restricts either to
    some blocks. ``keep=0`` removes it; ``keep=1`` is a no-op.
    """

    direction: torch.Tensor
    keep: float = 0.0
    layers: Sequence[int] | None = None
    label: str = "direction"
    where: str = "writes"

    def describe(self) -> str:
        at = "" if self.where == "writes" else f" at {self.where}"
        return f"ablate {self.label}{at} (keep {_dose(self.keep)})"

    def fwd_hooks(self, model) -> list:
        _check_vector(self.direction, model, "AblateDirection")
        norm = float(self.direction.norm())
        if not norm > 0:
            raise ValueError(f"AblateDirection.direction has norm {norm}: nothing to ablate")
        d = self.direction / norm
        layers = list(range(model.cfg.n_layers) if self.layers is None else self.layers)
        def fn(act, hook):
            dd = d.to(act)
            return act - (1 - self.keep) * (act @ dd)[..., None] * dd
        if self.where == "resid_post":
            return [(H.resid(layer), fn) for layer in layers]
        if self.where != "writes":
            raise ValueError(f"AblateDirection.where must be 'writes' or 'resid_post', not {self.where!r}")
        names = [H.resid(0, "pre")] if 0 in layers else []
        for layer in layers:
            names += [f"blocks.{layer}.hook_attn_out", f"blocks.{layer}.hook_mlp_out"]
        return [(n, fn) for n in names]


@dataclass
class PatchActivations:
    """Replace ``neurons``' (or whole layers') MLP activations in the model with those a
    ``source`` model computes on the same tokens (activation patching, e.g. base → aligned).

    ``neurons=None`` patches every neuron of ``layers`` (default all layers). ``dose`` mixes:
    ``act + dose·(source − act)``.
    """

    source: object
    neurons: Neurons | None = None
    layers: Sequence[int] | None = None
    dose: float = 1.0
    point: str = "post"
    label: str = "base activations"
    _cache: dict = field(default_factory=dict, repr=False)

    def describe(self) -> str:
        what = f"{len(self.neurons)} {self.neurons.label}" if self.neurons is not None else (
            "all neurons" + ("" if self.layers is None else f" of layers {list(self.layers)}"))
        return f"patch {self.label} into {what}"

    def _targets(self, model) -> dict[int, torch.Tensor | None]:
        if self.neurons is not None:
            return dict(self.neurons.by_layer())
        layers = range(model.cfg.n_layers) if self.layers is None else self.layers
        return {layer: None for layer in layers}

    @torch.no_grad()
    def prepare(self, input_ids, attention_mask, position_ids) -> None:
        names = [f"blocks.{layer}.mlp.hook_{self.point}" for layer in self._targets(self.source)]
        self._cache.clear()
        def keeper(name):
            def keep(act, hook):
                self._cache[name] = act.detach()
            return keep
        with self.source.hooks(fwd_hooks=[(n, keeper(n)) for n in names]):
            self.source(input_ids, attention_mask=attention_mask, position_ids=position_ids,
                        return_type=None)

    def fwd_hooks(self, model) -> list:
        out = []
        for layer, idx in self._targets(model).items():
            name = f"blocks.{layer}.mlp.hook_{self.point}"
            def fn(act, hook, idx=idx, name=name):
                src = self._cache.get(name)
                if src is None:
                    raise RuntimeError("PatchActivations needs prepare() on the same tokens first")
                if src.shape != act.shape:
                    raise ValueError(f"PatchActivations: the source's {name} has shape {list(src.shape)}, "
                                     f"the model's {list(act.shape)}: the source must be a model of the same "
                                     "size run on the same tokens")
                act = act.clone()
                if idx is None:
                    act += self.dose * (src - act)
                else:
                    act[..., idx] += self.dose * (src[..., idx] - act[..., idx])
                return act
            out.append((name, fn))
        return out


def preparers(hooks) -> list[Callable]:
    """The ``prepare`` methods of the interventions in ``hooks`` (those that need one)."""
    return [h.prepare for h in hooks or () if hasattr(h, "prepare")]


@dataclass
class DosePoint:
    dose: float
    toxicity: float
    se: float
    n: int
    perplexity: float
    extra: dict = field(default_factory=dict)


@dataclass
class DoseResponse:
    """A sweep of one intervention family over doses, with a control family of the same size.

    ``points`` and ``control`` are lists of :class:`DosePoint`; ``baseline`` the model without
    intervention.
    """

    name: str
    description: str
    points: list[DosePoint]
    control: list[DosePoint] | None
    baseline: DosePoint
    control_description: str | None = None
    dose_label: str = "dose"
    title: str | None = None

    def best(self, max_ppl_ratio: float | None = None) -> DosePoint:
        """The dose with the highest toxicity (within a perplexity budget, if given)."""
        ok = [p for p in self.points
              if max_ppl_ratio is None or p.perplexity <= max_ppl_ratio * self.baseline.perplexity]
        return max(ok or self.points, key=lambda p: p.toxicity)

    def control_at(self, dose: float) -> DosePoint | None:
        return next((p for p in self.control or [] if p.dose == dose), None)


def sweep(model, make: Callable[[float], object], doses: Sequence[float], measure: Callable,
          *, name: str, make_control: Callable[[float], object] | None = None,
          dose_label: str = "dose", title: str | None = None) -> DoseResponse:
    """Measure ``make(dose)`` at each dose (and ``make_control(dose)``), plus the bare model.

    ``measure(model, hooks) -> DosePoint`` (with a placeholder dose) does the measuring, e.g.
    toxicity of sampled continuations and held-out perplexity.
    """
    def at(intervention, dose):
        p = measure(model, [intervention] if intervention is not None else [])
        p.dose = dose
        if hasattr(intervention, "describe"):
            p.extra["description"] = intervention.describe()
        return p

    base = at(None, 0.0)
    points = [at(make(d), d) for d in doses]
    control = [at(make_control(d), d) for d in doses] if make_control else None
    desc = make(doses[-1]).describe() if hasattr(make(doses[-1]), "describe") else name
    cdesc = None
    if make_control is not None and hasattr(make_control(doses[-1]), "describe"):
        cdesc = make_control(doses[-1]).describe()
    return DoseResponse(name, desc, points, control, base, cdesc, dose_label, title)
