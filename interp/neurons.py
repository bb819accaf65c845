"""MLP neurons as key-value memories: find the value vectors that write along a direction.

A neuron ``(l, i)`` reads the residual stream with its key (column ``i`` of ``W_in[l]``, and of
``W_gate[l]`` in a gated MLP) and writes its value vector (row ``i`` of ``W_out[l]``) scaled by
its activation (``blocks.{l}.mlp.hook_post[..., i]``). Lee et al. (2024) rank every value vector
by its cosine with a toxicity probe and read the top ones through the unembedding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from . import hooks as H
from .checks import finite
from .directions import Direction, cosine


@dataclass
class Neurons:
    """A set of MLP neurons: ``layer`` and ``index`` ``[k]``, with a ``score`` each (e.g. a cosine)."""

    layer: torch.Tensor
    index: torch.Tensor
    score: torch.Tensor | None = None
    label: str = "neurons"

    def __len__(self) -> int:
        return len(self.layer)

    def __iter__(self):
        return iter(zip(self.layer.tolist(), self.index.tolist()))

    def names(self) -> list[str]:
        """Short names, ``L{layer}.N{index}``."""
        return [f"L{layer}.N{i}" for layer, i in self]

    def by_layer(self) -> dict[int, torch.Tensor]:
        """Neuron indices grouped by layer ``{layer: index [k_l]}``."""
        out: dict[int, list[int]] = {}
        for layer, i in self:
            out.setdefault(layer, []).append(i)
        return {layer: torch.tensor(v) for layer, v in sorted(out.items())}

    def __getitem__(self, s) -> Neurons:
        return Neurons(self.layer[s], self.index[s], None if self.score is None else self.score[s],
                       self.label)


@dataclass
class ValueVectorRanking:
    """Every value vector's cosine with a direction, and the top ``k`` with their vocabulary.

    ``cosines`` ``[n_layers d_mlp]``; ``top`` the best ``k`` neurons (descending cosine);
    ``top_tokens``/``bottom_tokens`` the tokens each top vector promotes / suppresses most
    when read through ``W_U``.
    """

    cosines: torch.Tensor
    top: Neurons
    top_tokens: list[list[str]]
    bottom_tokens: list[list[str]]
    direction_kind: str
    meta: dict = field(default_factory=dict)


def value_vectors_of(model, neurons: Neurons) -> torch.Tensor:
    """Value vectors (rows of ``W_out``) of ``neurons`` ``[k d_model]``."""
    return H.values(model)[neurons.layer, neurons.index]


def keys_of(model, neurons: Neurons) -> torch.Tensor:
    """Key vectors (columns of ``W_in``) of ``neurons`` ``[k d_model]``."""
    return H.keys(model)[neurons.layer, :, neurons.index]


def gates_of(model, neurons: Neurons) -> torch.Tensor | None:
    """Gate vectors (columns of ``W_gate``) of ``neurons`` ``[k d_model]``, or ``None``."""
    g = H.gates(model)
    return None if g is None else g[neurons.layer, :, neurons.index]


def vocab_projection(model, vectors: torch.Tensor, n: int = 10) -> tuple[list[list[str]], list[list[str]]]:
    """Read vectors ``[k d_model]`` through ``W_U``: the ``n`` most promoted and suppressed tokens each."""
    logits = vectors.float() @ H.unembed(model).float()
    tok = model.tokenizer
    up = torch.topk(logits, n, dim=-1).indices
    down = torch.topk(-logits, n, dim=-1).indices
    def dec(row):
        return [tok.decode([int(t)]) for t in row]
    return [dec(r) for r in up], [dec(r) for r in down]


def top_neurons(scores: torch.Tensor, k: int, label: str = "") -> Neurons:
    """The ``k`` neurons with the highest ``scores`` ``[n_layers d_mlp]``, best first (scores kept)."""
    flat = torch.topk(scores.flatten(), k)
    d_mlp = scores.shape[1]
    return Neurons(flat.indices // d_mlp, flat.indices % d_mlp, flat.values, label)


def rank_value_vectors(model, direction: Direction | torch.Tensor, k: int = 10,
                       n_tokens: int = 10, layers: list[int] | None = None,
                       signs: torch.Tensor | None = None) -> ValueVectorRanking:
    """Rank all MLP value vectors by cosine with ``direction`` ``[d_model]``; keep the top ``k``.

    ``signs`` ``[n_layers d_mlp]`` (±1): read each value vector with this sign — in a gated MLP a
    neuron whose activation is mostly negative writes −v — so ``cosines`` and the ranking are the
    signed vectors', and the top neurons' tokens those the signed vectors promote."""
    vec = finite(direction.vector if isinstance(direction, Direction) else direction, "the ranking direction")
    W_out = H.values(model)
    if vec.numel() != W_out.shape[-1]:
        raise ValueError(f"the direction has {vec.numel()} entries; value vectors have d_model = {W_out.shape[-1]}")
    cos = finite(cosine(W_out, vec.to(W_out.device).view(1, 1, -1)).cpu(), "value-vector cosines (W_out)")
    if signs is not None:
        cos = cos * signs
    masked = cos.clone()
    if layers is not None:
        keep = torch.zeros(cos.shape[0], dtype=torch.bool)
        keep[list(layers)] = True
        masked[~keep] = -float("inf")
    top = top_neurons(masked, k, "top value vectors" + (" (sign-aware)" if signs is not None else ""))
    v = value_vectors_of(model, top)
    if signs is not None:
        v = v * signs[top.layer, top.index].view(-1, 1).to(v.device, v.dtype)
    up, down = vocab_projection(model, v, n_tokens)
    kind = direction.kind if isinstance(direction, Direction) else "vector"
    if signs is not None:
        kind += " (sign-aware: each value vector × the sign of its mean activation)"
    return ValueVectorRanking(cos, top, up, down, kind, {"sign_aware": True} if signs is not None else {})


def random_neurons(n_layers: int, d_mlp: int, k: int, seed: int = 0,
                   exclude: Neurons | None = None, layers: list[int] | None = None) -> Neurons:
    """``k`` distinct random neurons (a control of the same size), avoiding ``exclude``."""
    g = torch.Generator().manual_seed(seed)
    pool_layers = torch.tensor(layers if layers is not None else range(n_layers))
    taken = set(exclude) if exclude is not None else set()
    chosen: list[tuple[int, int]] = []
    while len(chosen) < k:
        layer = int(pool_layers[torch.randint(len(pool_layers), (1,), generator=g)])
        i = int(torch.randint(d_mlp, (1,), generator=g))
        if (layer, i) not in taken:
            taken.add((layer, i))
            chosen.append((layer, i))
    lt, it = zip(*chosen)
    return Neurons(torch.tensor(lt), torch.tensor(it), label="random neurons")


@dataclass
class VectorSVD:
    """SVD of stacked vectors ``[k d_model]``: singular values and the top singular vectors' tokens."""

    singular_values: torch.Tensor
    vectors: torch.Tensor
    top_tokens: list[list[str]]
    bottom_tokens: list[list[str]]


def svd_of_values(model, neurons: Neurons, n_components: int = 3, n_tokens: int = 10) -> VectorSVD:
    """SVD of the value vectors of ``neurons``; each right singular vector read through ``W_U``.

    Singular vectors are signed so that each correlates positively with the mean value vector.
    """
    V = value_vectors_of(model, neurons).float()
    _, S, Vh = torch.linalg.svd(V, full_matrices=False)
    Vh = Vh[:n_components]
    sign = torch.sign(Vh @ V.mean(0))
    sign[sign == 0] = 1
    Vh = Vh * sign[:, None]
    up, down = vocab_projection(model, Vh, n_tokens)
    return VectorSVD(S, Vh, up, down)
