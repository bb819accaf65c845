"""What alignment changed: in the weights, in the key activations, and in the residual stream.

* :func:`weight_diff` — per parameter tensor, cosine and relative norm change, base vs aligned,
  with each tensor's *group* (embed, attn, mlp_in, mlp_out, norm) and layer;
* :func:`neuron_weight_diff` — per neuron, cosine of its key, gate and value vectors, for
  located neurons against random ones;
* :func:`key_activation_change` — distributions of ``mlp.hook_pre`` / ``mlp.hook_post`` of chosen
  neurons on given texts, in both models;
* :func:`residual_offset` — δx = x_aligned − x_base per layer, its size and its cosine with a
  direction and with the located keys; :func:`residual_pca` — both models' residuals in one PCA.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from . import hooks as H
from .checks import finite
from .directions import Direction, cosine
from .neurons import Neurons, gates_of, keys_of, value_vectors_of
from .record import record

GROUPS = ("embed", "attn", "mlp_in", "mlp_out", "norm")
_GROUP_RULES = [
    ("norm", r"(^|\.)(ln_\w+|ln\d|\w*norm\w*)(\.|$)"),
    ("mlp_in", r"mlp\.(c_fc|up_proj|gate_proj|fc_in|dense_h_to_4h|gate_up_proj|w1|w3|in|gate)\."),
    ("mlp_out", r"mlp\.(c_proj|down_proj|fc_out|dense_4h_to_h|w2|out)\."),
    ("attn", r"(attn|attention|self_attn)\."),
    ("embed", r"(wte|wpe|embed_tokens|embed_positions|lm_head|embed_in|embed_out)\b"),
]


def param_group(name: str) -> tuple[str, int | None]:
    """``(group, layer)`` of a Hugging Face parameter name, e.g. ``transformer.h.2.mlp.c_fc.weight``."""
    group = next((g for g, rule in _GROUP_RULES if re.search(rule, name)), "other")
    m = re.search(r"\.(?:h|layers|layer|blocks)\.(\d+)\.", name)
    return group, int(m.group(1)) if m else None


def named_weights(bridge) -> dict[str, torch.nn.Parameter]:
    """The model's own weight tensors by Hugging Face name, each exactly once.

    A bridge exposes some weights twice (e.g. GPT-2's fused ``c_attn`` and its ``q``/``k``/``v``
    views); of the tensors sharing one storage only the whole one is kept, and bridge wrapper
    segments (``._original_component``) are dropped from the names.
    """
    best: dict[int, tuple[str, torch.nn.Parameter]] = {}
    order: list[int] = []
    for name, p in bridge.original_model.named_parameters():
        key = p.untyped_storage().data_ptr()
        clean = name.replace("._original_component", "")
        if key not in best:
            order.append(key)
            best[key] = (clean, p)
        elif p.numel() > best[key][1].numel():
            best[key] = (clean, p)
    return dict(best[k] for k in order)


def weight_aliases(bridge) -> dict[str, str]:
    """Names of weights that share another weight's storage and shape (a tied unembedding:
    ``lm_head.weight`` → ``transformer.wte.weight``), mapped to the name :func:`named_weights`
    keeps for them."""
    kept = {p.untyped_storage().data_ptr(): n for n, p in named_weights(bridge).items()}
    shapes = {n: p.shape for n, p in named_weights(bridge).items()}
    out = {}
    for name, p in bridge.original_model.named_parameters(remove_duplicate=False):
        clean = name.replace("._original_component", "")
        canon = kept.get(p.untyped_storage().data_ptr())
        if canon is not None and canon != clean and shapes[canon] == p.shape:
            out[clean] = canon
    return out


def weight_of(bridge, name: str) -> torch.nn.Parameter:
    """The weight called ``name`` — through a tie if the model shares it with another
    (:func:`weight_aliases`); ``KeyError`` naming the model if it has none."""
    w = named_weights(bridge)
    if name in w:
        return w[name]
    alias = weight_aliases(bridge).get(name)
    if alias is None:
        raise KeyError(f"{bridge.cfg.model_name!r} has no weight {name!r}")
    return w[alias]


def tied_embeddings(bridge) -> bool:
    """Whether the model's unembedding is its embedding matrix (``tie_word_embeddings``)."""
    return any(param_group(a)[0] == "embed" for a in weight_aliases(bridge))


@dataclass
class WeightDiff:
    """Per parameter tensor: ``name``, ``group``, ``layer``, ``cosine`` (flattened), ``rel_change``
    (‖aligned − base‖ / ‖base‖) and ``numel``; one list entry each, in model order."""

    rows: list[dict]

    def by_group(self) -> dict[str, dict]:
        """Per group: min cosine, and relative change over the group's concatenated weights."""
        out: dict[str, dict] = {}
        for r in self.rows:
            g = out.setdefault(r["group"], {"min_cosine": 1.0, "_d2": 0.0, "_b2": 0.0, "numel": 0})
            g["min_cosine"] = min(g["min_cosine"], r["cosine"])
            g["_d2"] += r["diff_norm"] ** 2
            g["_b2"] += r["base_norm"] ** 2
            g["numel"] += r["numel"]
        for g in out.values():
            g["rel_change"] = (g.pop("_d2") ** 0.5) / max(g.pop("_b2") ** 0.5, 1e-12)
        return out

    @property
    def min_cosine(self) -> float:
        return min(r["cosine"] for r in self.rows)


@torch.no_grad()
def weight_diff(pair) -> WeightDiff:
    """Cosine and relative change of every parameter tensor between base and aligned.

    A pair of which one model ties its unembedding to its embedding and the other does not (a
    fine-tune that untied them) gets a row for each of the untied model's two matrices, both
    compared with the tied model's one matrix; such rows say ``tied`` (which model ties)."""
    base, aligned = named_weights(pair.base), named_weights(pair.aligned)
    names = list(aligned) + [n for n in base if n not in aligned]
    rows = []
    for name in names:
        tied = [role for role, w in (("base", base), ("aligned", aligned)) if name not in w]
        try:
            pa, pb = weight_of(pair.aligned, name), weight_of(pair.base, name)
        except KeyError as e:
            raise ValueError(f"weight {name!r} is in one model of the pair only ({e.args[0]})") from None
        a = finite(pa.detach().flatten().double(), f"aligned weight {name}")
        b = finite(pb.detach().flatten().double(), f"base weight {name}")
        diff = (a - b).norm().item()
        group, layer = param_group(name)
        rows.append({
            "name": name, "group": group, "layer": layer, "numel": a.numel(),
            "cosine": float(torch.nn.functional.cosine_similarity(a, b, dim=0)),
            "rel_change": diff / max(b.norm().item(), 1e-12),
            "diff_norm": diff, "base_norm": b.norm().item(),
            **({"tied": tied[0]} if tied else {}),
        })
    return WeightDiff(rows)


@dataclass
class NeuronWeightDiff:
    """Cosines base↔aligned of each neuron's key, gate (gated MLPs) and value vectors ``[k]``,
    for the located ``neurons`` and for ``random`` neurons of the same number — and, because a
    cosine cannot see scale (a value vector shrunk ×0.1 has cosine 1), each value vector's norm
    ratio ‖v_aligned‖/‖v_base‖ and relative change ‖v_aligned − v_base‖/‖v_base‖."""

    neurons: Neurons
    key_cos: torch.Tensor
    value_cos: torch.Tensor
    gate_cos: torch.Tensor | None
    random: Neurons
    random_key_cos: torch.Tensor
    random_value_cos: torch.Tensor
    random_gate_cos: torch.Tensor | None
    value_norm_ratio: torch.Tensor | None = None
    value_rel_change: torch.Tensor | None = None
    random_value_norm_ratio: torch.Tensor | None = None
    random_value_rel_change: torch.Tensor | None = None


def _vector_cosines(pair, neurons: Neurons):
    """Per-neuron cosines base↔aligned, on the CPU (results never stay on a model's device)."""
    k = cosine(keys_of(pair.base, neurons), keys_of(pair.aligned, neurons)).cpu()
    v = cosine(value_vectors_of(pair.base, neurons), value_vectors_of(pair.aligned, neurons)).cpu()
    gb, ga = gates_of(pair.base, neurons), gates_of(pair.aligned, neurons)
    g = None if gb is None else cosine(gb, ga).cpu()
    return k, v, g


def _value_scale(pair, neurons: Neurons) -> tuple[torch.Tensor, torch.Tensor]:
    """Per neuron: ‖v_aligned‖/‖v_base‖ and ‖v_aligned − v_base‖/‖v_base‖ (value vectors, on the CPU)."""
    vb = value_vectors_of(pair.base, neurons).double().cpu()
    va = value_vectors_of(pair.aligned, neurons).double().cpu()
    nb = vb.norm(dim=-1).clamp_min(1e-12)
    return (va.norm(dim=-1) / nb).float(), ((va - vb).norm(dim=-1) / nb).float()


@torch.no_grad()
def neuron_weight_diff(pair, neurons: Neurons, random: Neurons) -> NeuronWeightDiff:
    """Key/gate/value cosines, and the value vectors' norm ratio and relative change, of
    ``neurons`` and of the ``random`` control neurons."""
    k, v, g = _vector_cosines(pair, neurons)
    rk, rv, rg = _vector_cosines(pair, random)
    (nr, rc), (rnr, rrc) = _value_scale(pair, neurons), _value_scale(pair, random)
    return NeuronWeightDiff(neurons, k, v, g, random, rk, rv, rg, nr, rc, rnr, rrc)


QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass
class KeyActivationChange:
    """Activations of ``neurons`` on every real token of the texts, in both models.

    ``pre``/``post`` map ``"base"``/``"aligned"`` to ``[n_tokens k]`` tensors
    (``mlp.hook_pre`` and ``mlp.hook_post``); :meth:`summary` gives mean, quantiles and the
    fraction of positive values per neuron.
    """

    neurons: Neurons
    pre: dict[str, torch.Tensor]
    post: dict[str, torch.Tensor]
    n_texts: int

    def summary(self) -> dict[str, dict[str, list[float]]]:
        out = {}
        for point, d in (("pre", self.pre), ("post", self.post)):
            for role, x in d.items():
                q = torch.quantile(x.float(), torch.tensor(QUANTILES), dim=0)
                out[f"{point}/{role}"] = {
                    "mean": x.mean(0).tolist(),
                    "frac_positive": (x > 0).float().mean(0).tolist(),
                    **{f"q{int(p * 100):02d}": q[i].tolist() for i, p in enumerate(QUANTILES)},
                }
        return out


def _neuron_acts(model, texts, neurons: Neurons, points: Sequence[str], batch_size: int) -> dict[str, torch.Tensor]:
    """The ``neurons``' activations at each of ``points`` on every real token
    ``{point: [n_tokens n_neurons]}``, in one pass. Only the neurons' columns are kept as each
    hook fires (a whole layer per token is ≈ 1 GB at SmolLM2's 4,290 test texts)."""
    groups = neurons.by_layer()
    names = {(p, layer): f"blocks.{layer}.mlp.hook_{p}" for p in points for layer in groups}
    columns = {name: groups[layer].tolist() for (_, layer), name in names.items()}
    rec = record(model, texts, list(columns), reduction="all", batch_size=batch_size, progress=False,
                 columns=columns)
    out = {}
    for p in points:
        cols = {}
        for layer, idx in groups.items():
            got = rec[names[p, layer]]
            for j, i in enumerate(idx.tolist()):
                cols[(layer, i)] = got[:, j]
        out[p] = torch.stack([cols[n] for n in neurons], -1)
    return out


def key_activation_change(pair, texts: Sequence[str], neurons: Neurons, *,
                          batch_size: int = 64) -> KeyActivationChange:
    """Record ``mlp.hook_pre`` and ``mlp.hook_post`` of ``neurons`` on every real token, both models."""
    pre, post = {}, {}
    for role, m in pair.models.items():
        acts = _neuron_acts(m, texts, neurons, ("pre", "post"), batch_size)
        pre[role], post[role] = acts["pre"], acts["post"]
    return KeyActivationChange(neurons, pre, post, len(texts))


@dataclass
class ResidualOffset:
    """δx = mean over texts and real tokens of (x_aligned − x_base), at ``hooks`` (one per layer).

    ``delta`` ``[n_layers d_model]``; ``rel_norm`` ‖δx‖ / mean ‖x_base‖ ``[n_layers]``;
    ``cos_direction`` cosine of δx with the direction ``[n_layers]``; ``cos_keys`` mean cosine of
    δx with the keys of the located neurons read at that layer's input ``[n_layers]`` (NaN where no
    located neuron lives).
    """

    hooks: list[str]
    delta: torch.Tensor
    norm: torch.Tensor
    rel_norm: torch.Tensor
    cos_direction: torch.Tensor | None
    cos_keys: torch.Tensor | None
    meta: dict = field(default_factory=dict)


def residual_offset(pair, texts: Sequence[str], *, where: str = "post", direction: Direction | None = None,
                    neurons: Neurons | None = None, batch_size: int = 64) -> ResidualOffset:
    """Mean residual offset per layer between the aligned and the base model on ``texts``.

    Each text's residual is averaged over its real tokens; δx averages those over texts.
    ``cos_keys`` compares δx at ``hook_resid_mid`` of a layer (the MLP's input) with the keys there
    when ``where="mid"``; with ``"post"`` it uses the previous layer's output (= this layer's
    input stream before attention), a close proxy.
    """
    hooks = H.hook_names(f"resid_{where}", pair.cfg.n_layers)
    xb = record(pair.base, texts, hooks, reduction="mean", batch_size=batch_size, progress=False)
    xa = record(pair.aligned, texts, hooks, reduction="mean", batch_size=batch_size, progress=False)
    return residual_offset_from(pair, xb, xa, where=where, direction=direction, neurons=neurons)


def residual_offset_from(pair, xb, xa, *, where: str = "post", direction: Direction | None = None,
                         neurons: Neurons | None = None) -> ResidualOffset:
    """:func:`residual_offset` from per-text mean recordings of both models already made (each
    holding every layer's ``hook_resid_{where}``, e.g. among other hooks of one pass)."""
    L = pair.cfg.n_layers
    hooks = H.hook_names(f"resid_{where}", L)
    n_texts = len(xb[hooks[0]])
    delta = torch.stack([(xa[h] - xb[h]).mean(0) for h in hooks])
    base_norm = torch.stack([xb[h].norm(dim=-1).mean() for h in hooks])
    cos_dir = None if direction is None else cosine(delta, direction.vector.cpu().view(1, -1))
    cos_keys = None
    if neurons is not None:
        cos_keys = torch.full((L,), float("nan"))
        keys = keys_of(pair.base, neurons).float().cpu()
        for layer in range(L):
            sel = neurons.layer == layer
            if sel.any():
                src = delta[layer] if where == "mid" else delta[layer - 1] if layer > 0 else None
                if src is not None:
                    cos_keys[layer] = cosine(keys[sel], src.view(1, -1)).mean()
    return ResidualOffset(hooks, delta, delta.norm(dim=-1), delta.norm(dim=-1) / base_norm,
                          cos_dir, cos_keys, {"n_texts": n_texts, "where": where})


@dataclass
class ResidualPCA:
    """2-D PCA of per-text residuals at ``hook`` from both models (fit on both together).

    ``coords`` ``[2n 2]``; ``model`` labels each row ``"base"`` or ``"aligned"``; ``label`` the
    texts' labels (e.g. toxic) repeated for both models, if given.
    """

    hook: str
    coords: torch.Tensor
    model: list[str]
    label: list | None
    explained_variance: list[float]


def residual_pca(pair, texts: Sequence[str], layer: int, *, labels: Sequence | None = None,
                 batch_size: int = 64) -> ResidualPCA:
    """Per-text mean residual at ``blocks.{layer}.hook_resid_post`` of both models, in one PCA."""
    hook = H.resid(layer)
    xb = record(pair.base, texts, [hook], batch_size=batch_size, progress=False)[hook]
    xa = record(pair.aligned, texts, [hook], batch_size=batch_size, progress=False)[hook]
    return residual_pca_from(hook, xb, xa, labels=labels)


def residual_pca_from(hook: str, xb: torch.Tensor, xa: torch.Tensor, *, labels: Sequence | None = None) -> ResidualPCA:
    """:func:`residual_pca` from both models' per-text mean residuals ``[n_texts d_model]`` at ``hook``."""
    X = torch.cat([xb, xa]).float()
    Xc = X - X.mean(0)
    U, S, Vh = torch.linalg.svd(Xc, full_matrices=False)
    coords = Xc @ Vh[:2].T
    var = (S**2) / (S**2).sum()
    lab = None if labels is None else list(labels) * 2
    return ResidualPCA(hook, coords, ["base"] * len(xb) + ["aligned"] * len(xb), lab,
                       var[:2].tolist())
