"""The shared vocabulary: hook names and weight accessors, for plain and gated MLPs.

Everything in interp names activations by TransformerLens hook names, so that a
recording, a probe and an intervention all speak the same language:

==========================  =====================================================
``blocks.{l}.mlp.hook_pre``   MLP key match before the nonlinearity ``[batch pos d_mlp]``
                              (the gate's pre-activation in a gated MLP)
``blocks.{l}.mlp.hook_post``  MLP key activation after it ``[batch pos d_mlp]``
                              (``act(gate) * up`` in a gated MLP)
``blocks.{l}.hook_resid_pre``   residual stream entering block ``l`` ``[batch pos d_model]``
``blocks.{l}.hook_resid_mid``   after attention, before the MLP
``blocks.{l}.hook_resid_post``  leaving block ``l``
==========================  =====================================================

Weights, stacked over layers, in the orientation TransformerLens documents:

* keys ``W_in`` ``[n_layers, d_model, d_mlp]`` (a column is a neuron's key),
* gates ``W_gate`` ``[n_layers, d_model, d_mlp]`` (gated MLPs only, else ``None``),
* values ``W_out`` ``[n_layers, d_mlp, d_model]`` (a row is a neuron's value vector),
* unembedding ``W_U`` ``[d_model, d_vocab]``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

import torch
from transformer_lens.utilities import get_act_name

MLP_PRE = "mlp.hook_pre"
MLP_POST = "mlp.hook_post"
RESID_POINTS = ("pre", "mid", "post")


def mlp_pre(layer: int) -> str:
    """Hook name of layer ``layer``'s MLP pre-activation (key match)."""
    return f"blocks.{layer}.{MLP_PRE}"


def mlp_post(layer: int) -> str:
    """Hook name of layer ``layer``'s MLP activation (what multiplies the value vectors)."""
    return f"blocks.{layer}.{MLP_POST}"


def resid(layer: int, where: str = "post") -> str:
    """Hook name of the residual stream at ``layer``; ``where`` is ``pre``, ``mid`` or ``post``."""
    if where not in RESID_POINTS:
        raise ValueError(f"where must be one of {RESID_POINTS}, got {where!r}")
    return f"blocks.{layer}.hook_resid_{where}"


def name(kind: str, layer: int, n_layers: int | None = None) -> str:
    """TransformerLens' hook name (``get_act_name``) of ``kind`` at ``layer``: ``name("resid_post",
    3)`` → ``blocks.3.hook_resid_post``; ``pre``/``post`` are the MLP's. A negative layer counts
    from the end and needs ``n_layers``."""
    if layer < 0:
        if n_layers is None:
            raise ValueError(f"layer {layer} counts from the end: give n_layers")
        layer += n_layers
    if n_layers is not None and not 0 <= layer < n_layers:
        raise IndexError(f"layer {layer} out of range for a model with {n_layers} layers")
    return get_act_name(kind, layer)


def layer_of(hook_name: str) -> int:
    """Layer index of a ``blocks.{l}.…`` hook name."""
    parts = hook_name.split(".")
    if len(parts) < 2 or parts[0] != "blocks" or not parts[1].isdigit():
        raise ValueError(f"{hook_name!r} is not a per-layer hook name (blocks.<layer>.…)")
    return int(parts[1])


def hook_names(kind: str, n_layers: int, layers: Iterable[int] | None = None) -> list[str]:
    """All hook names of one kind over ``layers`` (default: every layer).

    ``kind`` is ``"mlp_pre"``, ``"mlp_post"``, ``"resid_pre"``, ``"resid_mid"`` or ``"resid_post"``.
    """
    makers = {
        "mlp_pre": mlp_pre,
        "mlp_post": mlp_post,
        "resid_pre": lambda layer: resid(layer, "pre"),
        "resid_mid": lambda layer: resid(layer, "mid"),
        "resid_post": lambda layer: resid(layer, "post"),
    }
    if kind not in makers:
        raise ValueError(f"unknown hook kind {kind!r}; choose from {sorted(makers)}")
    chosen = range(n_layers) if layers is None else list(layers)
    for layer in chosen:
        if not 0 <= layer < n_layers:
            raise ValueError(f"layer {layer} out of range for a model with {n_layers} layers")
    return [makers[kind](layer) for layer in chosen]


def check_hooks(model, names: Sequence[str]) -> list[str]:
    """Return ``names`` as a list, or raise ``KeyError`` naming the unknown ones and close matches."""
    names = list(names)
    if not names:
        raise ValueError("no hook names given")
    known = model.hook_dict
    unknown = [n for n in names if n not in known]
    if unknown:
        hints = []
        for n in unknown:
            close = difflib.get_close_matches(n, list(known), n=3)
            hints.append(f"{n!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
        raise KeyError(
            f"unknown hook name(s) for {model.cfg.model_name}: {'; '.join(hints)}. "
            f"The model has {model.cfg.n_layers} layers."
        )
    return names


def is_gated(model) -> bool:
    """Whether the model's MLPs are gated (``act(x W_gate) * (x W_in)``, as in Llama and Gemma)."""
    return model.W_gate is not None


@torch.no_grad()
def keys(model) -> torch.Tensor:
    """MLP key vectors ``W_in`` ``[n_layers, d_model, d_mlp]``: column ``[l, :, i]`` is neuron (l, i)'s key."""
    return model.W_in.detach()


@torch.no_grad()
def gates(model) -> torch.Tensor | None:
    """Gate vectors ``W_gate`` ``[n_layers, d_model, d_mlp]`` of a gated MLP, else ``None``."""
    w = model.W_gate
    return None if w is None else w.detach()


@torch.no_grad()
def post_mlp_gain(model) -> torch.Tensor | None:
    """``[n_layers, d_model]``: the elementwise gain of the norm each MLP's output passes through
    before it joins the residual (Gemma 2/3's post-feedforward RMSNorm, the bridge's ``ln2_post``),
    read by running the norm on a constant vector (so Gemma's ``1 + weight`` convention is the
    module's own); ``None`` for models without one (GPT-2, Llama)."""
    blocks = getattr(model, "blocks", None)
    if not blocks or getattr(blocks[0], "ln2_post", None) is None:
        return None
    w = model.W_out
    x = torch.full((1, 1, w.shape[-1]), 1e3, dtype=w.dtype, device=w.device)  # rms 1e3: eps is negligible
    return torch.stack([b.ln2_post(x)[0, 0] for b in blocks]).detach()


@torch.no_grad()
def values(model) -> torch.Tensor:
    """MLP value vectors ``[n_layers, d_mlp, d_model]``: row ``[l, i]`` is the direction neuron
    (l, i) writes into the residual — ``W_out``'s row, times the post-MLP norm's gain where the
    block has one (:func:`post_mlp_gain`: there the write is ``a_i (g ⊙ v_i) / rms`` of the MLP
    output at that token, so ``g ⊙ v_i`` is what the residual receives, up to a positive scale)."""
    w = model.W_out.detach()
    g = post_mlp_gain(model)
    return w if g is None else w * g[:, None, :].to(w.dtype)


@torch.no_grad()
def unembed(model) -> torch.Tensor:
    """Unembedding ``W_U`` ``[d_model, d_vocab]``."""
    return model.W_U.detach()
