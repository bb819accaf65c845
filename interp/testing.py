"""Pairs with a known answer, to test a pipeline before trusting it on a real pair.

* :func:`null_pair` — the "aligned" model is the base plus small random noise on every weight:
  alignment did nothing, so no claim about what alignment did may come back *yes* more often
  than the test's level allows.
* :func:`planted_pair` — toxicity is *planted* in a base model: ``k`` neurons of the last MLP
  get a key that fires where the base model is about to be toxic and a value vector that
  promotes the toxic continuation over the clean one; the "aligned" model scales
  those keys' ``W_in`` columns (bias untouched) by ``suppress``. This is Lee et al.'s mechanism
  by construction: the values are untouched, the keys stop matching, and Lee et al.'s
  un-alignment (the columns ×``1/suppress``) restores the base exactly. A pipeline must find it.
  Its other ``mechanism`` s lower toxicity another way (the value vectors shrunk, the change
  carried by attention, by the final norm): a pipeline must not call them Lee et al.'s.

Both take a GPT-2-architecture Hugging Face model (e.g. an organism's base) and return a
:class:`interp.pair.Pair` whose ``prompts`` are the prompt set given.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch

from .neurons import Neurons
from .pair import Pair, pair_from_modules
from .prompts import PromptSet


def _pair(base_module, aligned_module, tokenizer, name: str, data) -> Pair:
    pair = pair_from_modules(base_module.eval(), aligned_module.eval(), tokenizer, name=name)
    if data is not None:
        pair.prompts = PromptSet.of(data)
    return pair


@torch.no_grad()
def null_pair(module, tokenizer, *, noise: float = 1e-3, seed: int = 0, data=None,
              name: str = "null") -> Pair:
    """``(module, module + noise)``: every weight tensor gets Gaussian noise of ``noise`` times
    its own standard deviation (seeded)."""
    aligned = copy.deepcopy(module)
    g = torch.Generator().manual_seed(seed)
    for p in aligned.parameters():
        if p.numel() > 1:
            p.add_(torch.randn(p.shape, generator=g) * noise * p.float().std())
    return _pair(copy.deepcopy(module), aligned, tokenizer, f"{name}-{seed}", data)


def _inputs(module, tokenizer, texts: Sequence[str], target, last_only: bool = False) -> torch.Tensor:
    """Inputs of a submodule (e.g. a block's ``mlp.c_fc``, or ``ln_f``) on ``texts``: at the
    last token, or at every token."""
    got = []
    hook = target.register_forward_pre_hook(lambda m, args: got.append(args[0].detach()))
    try:
        for t in texts:
            module(tokenizer(t, return_tensors="pt").input_ids)
    finally:
        hook.remove()
    return torch.cat([g[0, -1:] if last_only else g[0] for g in got])


#: What the "aligned" model of :func:`planted_pair` changed. Only ``"lee"`` is Lee et al.'s
#: mechanism; the others lower toxicity by another route and must not be mistaken for it.
MECHANISMS = ("lee", "shrink_values", "attention", "final_norm")


@torch.no_grad()
def planted_pair(module, tokenizer, prompts: Sequence[str], neutral: Sequence[str],
                 toxic_words: Sequence[str], clean_words: Sequence[str], *, k: int = 5,
                 strength: float = 0.1, suppress: float = 0.1, seed: int = 0,
                 mechanism: str = "lee", data=None, name: str = "planted") -> tuple[Pair, Neurons]:
    """Plant ``k`` toxic neurons in the last MLP of a GPT-2 ``module``; returns the pair and the
    planted neurons.

    Each planted neuron's *key* fires at the end of an eliciting prompt: the direction
    separating the MLP's inputs at the last token of ``prompts`` from those at every token of
    ``neutral`` text, with gain and bias set so the pre-activation is +3 at the former's mean
    and −3 at the latter's. Its *value*
    promotes ``toxic_words`` over ``clean_words`` (the first tokens of the replies they start:
    the mean unembedding of the former minus that of the latter), ``strength`` × the mean
    token-embedding norm long. The "aligned" model (``mechanism``):

    * ``"lee"`` — Lee et al.'s mechanism: the keys' ``W_in`` columns ×``suppress``, bias
      untouched (the pre-activation at the eliciting prompts falls below 0); their inverse (×``1/suppress``, Lee's un-alignment) gives the base back
      exactly;
    * ``"shrink_values"`` — the value vectors ×``suppress`` (keys untouched: the opposite story);
    * ``"attention"`` — the last block's attention output bias pushes the residual against the
      keys until they no longer fire at the eliciting prompts (the MLP untouched);
    * ``"final_norm"`` — the final norm's bias subtracts the planted neurons' mean contribution at
      the eliciting prompts (every MLP and attention weight untouched).
    """
    if mechanism not in MECHANISMS:
        raise ValueError(f"mechanism {mechanism!r}: one of {', '.join(MECHANISMS)}")
    base = copy.deepcopy(module).eval()
    layer = base.config.n_layer - 1
    mlp = base.transformer.h[layer].mlp
    xe = _inputs(base, tokenizer, prompts, mlp.c_fc, last_only=True).mean(0)
    xn = _inputs(base, tokenizer, neutral, mlp.c_fc).mean(0)
    u = xe - xn
    u = u / u.norm()
    pe, pn = float(xe @ u), float(xn @ u)
    gain = 6.0 / max(pe - pn, 1e-6)
    b_in = -gain * (pe + pn) / 2

    def first(words):
        return [tokenizer(" " + w, add_special_tokens=False).input_ids[0] for w in words]

    W_U = base.lm_head.weight  # [vocab, d_model]
    w = W_U[first(toxic_words)].mean(0) - W_U[first(clean_words)].mean(0)
    w = w / w.norm()
    size = strength * float(base.transformer.wte.weight.norm(dim=-1).mean())
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(mlp.c_fc.weight.shape[1], generator=g)[:k].tolist()
    for i in idx:  # GPT-2's Conv1D: c_fc.weight [d_model, d_mlp], c_proj.weight [d_mlp, d_model]
        mlp.c_fc.weight[:, i] = gain * u
        mlp.c_fc.bias[i] = b_in
        mlp.c_proj.weight[i] = size * w
    aligned = copy.deepcopy(base)
    am = aligned.transformer.h[layer].mlp
    if mechanism == "lee":
        for i in idx:
            am.c_fc.weight[:, i] *= suppress
    elif mechanism == "shrink_values":
        for i in idx:
            am.c_proj.weight[i] *= suppress
    elif mechanism == "attention":
        # Push the residual before ln_2 against the keys: the attention output bias of the same
        # block, doubled until the keys' mean pre-activation at the eliciting prompts is below 0.
        ln = aligned.transformer.h[layer].ln_2
        d = ln.weight * u
        d = d - d.mean()
        d = d / d.norm()
        bias = aligned.transformer.h[layer].attn.c_proj.bias
        start = bias.clone()
        scale = float(xe.norm())
        for _ in range(12):
            bias.copy_(start - scale * d)
            if float(_inputs(aligned, tokenizer, prompts, am.c_fc, last_only=True).mean(0) @ u) * gain < -1.0:
                break
            scale *= 2
    else:  # final_norm: the planted neurons' mean write after ln_f at the eliciting prompts, removed
        off = copy.deepcopy(base)
        for i in idx:
            off.transformer.h[layer].mlp.c_proj.weight[i] = 0.0
        got = {}

        def last(model):
            h = model.transformer.ln_f.register_forward_hook(lambda m, a, out: got.setdefault("x", []).append(out[0, -1]))
            try:
                for t in prompts:
                    model(tokenizer(t, return_tensors="pt").input_ids)
            finally:
                h.remove()
            return torch.stack(got.pop("x")).mean(0)

        aligned.transformer.ln_f.bias -= last(base) - last(off)
    planted = Neurons(torch.full((k,), layer), torch.tensor(idx), label="planted neurons")
    return _pair(base, aligned, tokenizer, f"{name}-{mechanism}", data), planted
