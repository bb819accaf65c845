"""Where DPO's effect lives, neuron by neuron (Yang et al. 2025): the aligned − base change of
the final residual's projection on a toxic direction, split exactly into what each MLP neuron,
each attention layer and the rest write, and the neurons sorted into groups by how they changed.

On the same texts, with the residual averaged over each text's tokens (as the probe reads it),
the last layer's residual is the sum of the embeddings, every attention output, every MLP
output; an MLP output is Σ_i a_i v_i + b_out. So, onto a unit direction ``d``,

    Δ(x̄·d) = Σ_l Δ(attn_l·d) + Σ_(l,i) Δ(ā_i v_i·d) + rest          (exact; ā: token-mean activation)

and each neuron's term splits into its **activation** part (ā_a − ā_b)(v_b·d) and its **value**
part ā_a (v_a − v_b)·d. Lee et al.'s story is the activation part of the toxic neurons; Yang et
al. found it carries 2.5–24% of DPO's effect and sorted the rest into four groups, which
:func:`neuron_groups` forms from the activation part — by whether the neuron writes toward the
toxic direction in the base (ā_b (v_b·d) > 0) or against it, whether its activation is positive
or negative (the sign-flipped groups), and whether its |contribution| fell or rose:

* ``toxic, fires less`` — writes toxicity, positive activation, less of it;
* ``toxic (negative activation), fires less`` — writes toxicity through a negative activation, less of it;
* ``anti-toxic, fires more`` — writes against toxicity, positive activation, more of it;
* ``anti-toxic (negative activation), fires more`` — the same through a negative activation;
* ``counteracting`` — every neuron whose activation change raised the projection;
* ``unchanged`` — neurons whose activations did not change at all (none in a real fine-tune).

Groups are formed on one set of texts (dev) and their shares measured on another (test), each
with a 95% CI that resamples prompts (:func:`interp.stats.ratio_of_sums`). A share says what a
group writes onto the direction; :func:`group_edits` says what it does to the behaviour: each
group's activations patched from the base into the aligned model and back, toxicity and
perplexity measured on the test prompts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from . import hooks as H
from . import stats
from .neurons import Neurons

GROUPS = ("toxic, fires less", "toxic (negative activation), fires less", "anti-toxic, fires more",
          "anti-toxic (negative activation), fires more", "counteracting", "unchanged")
#: Yang et al. (2025): the share of DPO's toxicity reduction the "toxic neurons" carry (GPT-2
#: medium, Gemma-2-2B, Llama-3.1-8B, Mistral-7B).
YANG_ET_AL_TOXIC_SHARE = (0.025, 0.24)


@dataclass
class Contributions:
    """Per text, what each component writes onto ``direction`` (a unit vector in the last layer's
    residual) in the base and the aligned model: ``neurons_*`` ``[n_texts, L, d_mlp]`` the
    activation and value parts of each neuron's change; ``attn`` ``[n_texts, L]`` each attention
    layer's change; ``total`` ``[n_texts]`` the change of x̄·d; ``base_neurons`` ``[n_texts, L, d_mlp]``
    each neuron's contribution in the base; ``base_act`` the base's token-mean activations."""

    direction: torch.Tensor
    groups: np.ndarray  # the prompt of each text (the resampling unit)
    neurons_act: torch.Tensor
    neurons_value: torch.Tensor
    attn: torch.Tensor
    total: torch.Tensor
    base_neurons: torch.Tensor
    base_act: torch.Tensor

    @property
    def rest(self) -> torch.Tensor:
        """``[n_texts]``: the change no neuron or attention layer wrote (embeddings, MLP output biases)."""
        return self.total - self.neurons_act.sum((1, 2)) - self.neurons_value.sum((1, 2)) - self.attn.sum(1)


@torch.no_grad()
def _token_means(model, texts, L: int, d: torch.Tensor, *, batch_size: int, progress: bool):
    """Per text, means over its tokens of: every neuron's activation scaled as the residual
    receives it (÷ the post-MLP norm's rms at that token where the block has one), every
    attention layer's output on ``d``, and the residual after layer ``L − 1`` on ``d``."""
    from tqdm.auto import tqdm

    from .tokens import context_length, get_batch

    post_norm = H.post_mlp_gain(model) is not None
    names = {H.mlp_post(i) for i in range(L)} | {f"blocks.{i}.hook_attn_out" for i in range(L)} | {H.resid(L - 1)}
    if post_norm:
        names |= {f"blocks.{i}.ln2_post.hook_scale" for i in range(L)}
    device = next(model.parameters()).device
    dd = d.to(device)
    acts, attn, total = [], [], []
    for lo in tqdm(range(0, len(texts), batch_size), desc=f"contributions {model.cfg.model_name}", disable=not progress):
        batch = get_batch(model.tokenizer, texts, lo, min(lo + batch_size, len(texts)),
                          max_length=context_length(model), on_overflow="truncate")
        mask = batch.attention_mask.to(device).float()
        n = mask.sum(1, keepdim=True)
        _, cache = model.run_with_cache(batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device),
                                        names_filter=lambda name: name in names)
        a = []
        for layer in range(L):
            x = cache[H.mlp_post(layer)].float()
            if post_norm:
                x = x / cache[f"blocks.{layer}.ln2_post.hook_scale"].float()
            a.append((x * mask[..., None]).sum(1) / n)
        acts.append(torch.stack(a, 1).cpu())
        attn.append(torch.stack([((cache[f"blocks.{layer}.hook_attn_out"].float() @ dd) * mask).sum(1) / n[:, 0]
                                 for layer in range(L)], 1).cpu())
        total.append((((cache[H.resid(L - 1)].float() @ dd) * mask).sum(1) / n[:, 0]).cpu())
    return torch.cat(acts), torch.cat(attn), torch.cat(total)


@torch.no_grad()
def contributions(pair, texts, direction, *, layer: int | None = None, groups=None, batch_size: int = 16,
                  progress: bool = False) -> Contributions:
    """Run both models on ``texts`` and split the change of their residual's projection on
    ``direction`` (a tensor or anything with ``.vector``; normalised here) after ``layer``
    (default the last) into neurons, attention layers and the rest (module docstring): only the
    layers up to ``layer`` write into it. Exact per token in models whose MLP output passes a
    post-norm before the residual (Gemma 2/3): a neuron's write there is ``a_i (g ⊙ v_i) / rms_t``
    (:func:`interp.hooks.values` holds ``g ⊙ v_i``; the activations are divided by the norm's rms
    at each token before averaging). ``groups``: each text's prompt."""
    d = getattr(direction, "vector", direction)
    d = (d / d.norm()).float().cpu()
    L = pair.cfg.n_layers if layer is None else layer + 1
    got = {role: _token_means(m, texts, L, d, batch_size=batch_size, progress=progress)
           for role, m in (("base", pair.base), ("aligned", pair.aligned))}
    vd = {role: (H.values(m)[:L].float().cpu() @ d) for role, m in (("base", pair.base), ("aligned", pair.aligned))}  # [L d_mlp]
    act_b, attn_b, tot_b = got["base"]
    act_a, attn_a, tot_a = got["aligned"]
    neurons_act = (act_a - act_b) * vd["base"][None]
    neurons_value = act_a * (vd["aligned"] - vd["base"])[None]
    g = np.arange(len(texts)) if groups is None else np.asarray(groups)
    return Contributions(d, g, neurons_act, neurons_value, attn_a - attn_b, tot_a - tot_b,
                         act_b * vd["base"][None], act_b)


def group_of(c: Contributions) -> np.ndarray:
    """``[L, d_mlp]`` group index into :data:`GROUPS` of every neuron, from ``c``'s texts (dev):
    by the sign of its mean base contribution, of its mean base activation, and of its mean
    activation-part change."""
    base = c.base_neurons.mean(0).numpy()
    act = c.base_act.mean(0).numpy()
    delta = c.neurons_act.mean(0).numpy()
    out = np.full(base.shape, GROUPS.index("unchanged"))
    out[delta > 0] = GROUPS.index("counteracting")
    lowers = delta < 0
    toxic, positive = base > 0, act >= 0
    out[lowers & toxic & positive] = 0
    out[lowers & toxic & ~positive] = 1
    out[lowers & ~toxic & positive] = 2
    out[lowers & ~toxic & ~positive] = 3
    return out


@dataclass
class NeuronGroups:
    """The change of the toxic projection split into groups (shares of the total change, CIs over
    prompts): ``shares`` per neuron group (activation part) and per component — ``value vectors``
    (every neuron's value part), ``attention``, ``rest`` — and ``located`` (the activation part of
    the neurons a locator found, Lee et al.'s "toxic neurons"); ``sizes`` the number of neurons
    per group; ``total`` the mean change of x̄·d (negative when alignment moved away from
    toxicity); ``per_layer`` each layer's neuron (activation part) and attention share."""

    direction_name: str
    total: stats.Estimate
    shares: dict[str, stats.Estimate]
    sizes: dict[str, int]
    per_layer: dict[str, list[float]]
    n_texts: int
    n_prompts: int
    meta: dict = field(default_factory=dict)
    members: dict[str, Neurons] = field(default_factory=dict, repr=False)  # the neurons of each group (dev)

    def to_dict(self) -> dict:
        return {"direction": self.direction_name, "total": self.total.to_dict(),
                "shares": {k: v.to_dict() for k, v in self.shares.items()}, "sizes": self.sizes,
                "per_layer": self.per_layer, "n_texts": self.n_texts, "n_prompts": self.n_prompts,
                "yang_et_al_toxic_share": list(YANG_ET_AL_TOXIC_SHARE), **self.meta}


def _per_prompt(x: torch.Tensor, groups: np.ndarray) -> np.ndarray:
    """Means of ``x`` ``[n_texts]`` per prompt, in order of first appearance."""
    _, first, inv = np.unique(groups, return_index=True, return_inverse=True)
    order = np.argsort(first)
    sums = np.bincount(inv, weights=x.double().numpy(), minlength=len(first))
    counts = np.bincount(inv, minlength=len(first))
    return (sums / counts)[order]


def neuron_groups(dev: Contributions, test: Contributions, *, located: Neurons | None = None,
                  direction_name: str = "probe", seed: int = 0) -> NeuronGroups:
    """Groups formed on ``dev`` (:func:`group_of`), their shares of the change measured on
    ``test`` (each a ratio of sums over prompts with a bootstrap CI)."""
    if dev.neurons_act.shape[1:] != test.neurons_act.shape[1:]:
        raise ValueError("dev and test contributions come from different models")
    code = torch.as_tensor(group_of(dev))
    g = test.groups
    total = _per_prompt(test.total, g)
    parts: dict[str, torch.Tensor] = {}
    for i, name in enumerate(GROUPS):
        parts[name] = (test.neurons_act * (code == i)[None]).sum((1, 2))
    if located is not None and len(located):
        parts["located (activation part)"] = test.neurons_act[:, located.layer, located.index].sum(1)
    parts["value vectors"] = test.neurons_value.sum((1, 2))
    parts["attention"] = test.attn.sum(1)
    parts["rest"] = test.rest
    sign = -1.0 if total.sum() < 0 else 1.0  # a share is a ratio of two changes of the same sign
    shares = {k: stats.ratio_of_sums(sign * _per_prompt(v, g), sign * total, seed=seed) for k, v in parts.items()}
    sizes = {name: int((code == i).sum()) for i, name in enumerate(GROUPS)}
    if located is not None:
        sizes["located (activation part)"] = len(located)
    t = float(test.total.mean())
    per_layer = {"neurons (activation part)": (test.neurons_act.sum(2).mean(0) / t).tolist(),
                 "attention": (test.attn.mean(0) / t).tolist()} if t else {}
    members = {}
    for i, name in enumerate(GROUPS):
        layer, index = torch.nonzero(code == i, as_tuple=True)
        members[name] = Neurons(layer, index, label=f"neurons ({name})")
    if located is not None and len(located):
        members["located (activation part)"] = located
    return NeuronGroups(direction_name, stats.mean(total, seed=seed), shares, sizes, per_layer,
                        len(test.total), len(total), members=members)


#: The groups whose activations are edited (:func:`group_edits`): Yang et al.'s four, which lower
#: the toxic projection, and the located neurons (Lee et al.'s "toxic neurons").
EDITED_GROUPS = (*GROUPS[:4], "located (activation part)")


@dataclass
class GroupEdits:
    """Each group's activations edited on the test prompts (:class:`interp.steer.PatchActivations`):
    ``reverted[g]`` the aligned model with group ``g``'s activations replaced by the base's on the
    same tokens (what the group's change carries: toxicity back toward the base's?), ``applied[g]``
    the base with the aligned model's (does the group's change alone align it?); ``base`` and
    ``aligned`` measured at the same size, every arm on the same prompts and sampling seeds;
    ``sizes`` the neurons per group (groups without neurons are not measured)."""

    n_samples: int
    base: object  # interp.measure.Measurement
    aligned: object
    reverted: dict[str, object]
    applied: dict[str, object]
    sizes: dict[str, int]

    def rows(self, scorers: list[str], seed: int = 0) -> dict[str, dict]:
        """Per group and scorer: the share of base − aligned undone by reverting it and reproduced
        by applying it (95% CIs over prompts), each arm's rate, and its perplexity ratio to the
        model it edits (aligned for reverting, base for applying)."""
        out = {}
        for g in self.reverted:
            r, a = self.reverted[g], self.applied[g]
            by = {}
            for sc in scorers:
                b, al = self.base.per_prompt(sc), self.aligned.per_prompt(sc)
                by[sc] = {"reverted_rate": float(r.rate(sc)), "applied_rate": float(a.rate(sc)),
                          "share_undone": stats.share_of_effect(r.per_prompt(sc), al, b, seed=seed),
                          "share_reproduced": stats.share_of_effect(b - a.per_prompt(sc) + al, al, b, seed=seed)}
            out[g] = {"n_neurons": self.sizes[g], "by_scorer": by,
                      "ppl_ratio_reverted": r.perplexity / self.aligned.perplexity,
                      "ppl_ratio_applied": a.perplexity / self.base.perplexity}
        return out


def group_edits(pair, spec, groups: NeuronGroups, scorers, *, names=EDITED_GROUPS,
                progress: bool = False) -> GroupEdits:
    """Edit each group of ``groups`` (formed on dev) on ``spec``'s prompts — activation patching of
    its neurons, both ways — and measure toxicity (every scorer) and perplexity (``spec``'s neutral
    texts). Which groups carry the behaviour, not only the projection."""
    from tqdm.auto import tqdm

    from .measure import measure
    from .steer import PatchActivations

    base = measure(pair.base, spec, scorers=scorers, label="base")
    aligned = measure(pair.aligned, spec, scorers=scorers, label="aligned")
    todo = [g for g in names if g in groups.members and len(groups.members[g])]
    reverted, applied = {}, {}
    for g in tqdm(todo, desc="group edits", disable=not progress):
        n = groups.members[g]
        reverted[g] = measure(pair.aligned, spec, [PatchActivations(pair.base, neurons=n, label="base activations")],
                              scorers=scorers, label=f"aligned, {g}: base activations")
        applied[g] = measure(pair.base, spec, [PatchActivations(pair.aligned, neurons=n, label="aligned activations")],
                             scorers=scorers, label=f"base, {g}: aligned activations")
    return GroupEdits(spec.n_samples, base, aligned, reverted, applied, {g: len(groups.members[g]) for g in todo})
