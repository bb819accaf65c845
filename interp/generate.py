"""Generation through a ``TransformerBridge`` that matches Hugging Face token for token.

Two paths, chosen for the caller:

* **KV-cached** (default): Hugging Face's own ``generate`` on a plain twin of the model that
  shares the bridge's weight tensors (so a weight swap is seen by both), many times faster on
  real models. Hooks on the residual stream and the MLP (``blocks.{l}.hook_resid_pre|post``,
  ``blocks.{l}.mlp.hook_pre|post``, ``blocks.{l}.hook_mlp_out|hook_attn_out``) are mapped onto
  the twin's modules as PyTorch hooks: a position-wise intervention on a causal model acts the
  same with a cache as without;
* **recompute**: prompts are left-padded and every step recomputes the whole sequence through
  the bridge with explicit position ids, so each hook acts on every position at every step. Used
  for hooks the twin cannot map, interventions that need the full sequence (``prepare``, e.g.
  activation patching from another model) and logits processors combined with temperature,
  top-k or top-p (whose order Hugging Face fixes differently). No KV cache through the bridge:
  its cached path drifted on Llama-style models (TransformerLens 4.3).

Both give Hugging Face's greedy output token for token, with and without hooks (tested on GPT-2
and Llama).
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from . import distributed
from .steer import preparers
from .tokens import encode


@dataclass
class Generation:
    """Prompts, their completions (text, without the prompt) and the new tokens ``[n, max_new]``.

    ``tokens`` is padded with ``-1`` after a sequence stopped (end of sequence token included).
    """

    prompts: list[str]
    completions: list[str]
    tokens: torch.Tensor

    def __len__(self) -> int:
        return len(self.prompts)


def as_fwd_hooks(hooks, model) -> list:
    """Normalise hooks: ``(name, fn)`` pairs, or objects with ``fwd_hooks(model)`` (interventions)."""
    out = []
    for h in hooks or ():
        if hasattr(h, "fwd_hooks"):
            out.extend(h.fwd_hooks(model))
        else:
            out.append(tuple(h))
    return out


def _filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    if top_k is not None and top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, idx = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(-1)
        cum = probs.cumsum(-1)
        remove = cum - probs > top_p
        sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, idx, sorted_logits)
    return logits


def sample_keys(prompts: Sequence[str], seed: int | None) -> list[int]:
    """One key per row: a hash of (``seed``, the prompt's text, how many times that text came
    before in ``prompts``). Sampling draws row ``i``'s step-``t`` uniform from (key, t) alone, so a
    prompt's ``j``-th sample is the same whatever the batch size, the order of ``prompts`` or the
    process that generates it. ``seed=None``: fresh random keys."""
    if seed is None:
        return [int.from_bytes(os.urandom(7), "little") for _ in prompts]
    seen: dict[str, int] = {}
    out = []
    for p in prompts:
        j = seen[p] = seen.get(p, -1) + 1
        out.append(int.from_bytes(hashlib.blake2b(f"{seed}\x1f{j}\x1f{p}".encode(), digest_size=7).digest(),
                                  "little"))
    return out


def _uniforms(keys: Sequence[int], step: int) -> torch.Tensor:
    """One uniform in (0, 1) per row, a function of (row key, step) only (float64)."""
    u = [int.from_bytes(hashlib.blake2b(f"{k}\x1f{step}".encode(), digest_size=7).digest(), "little")
         for k in keys]
    return (torch.tensor(u, dtype=torch.float64) + 0.5) / 2.0 ** 56


def sample_next(logits: torch.Tensor, keys: Sequence[int], step: int, *, temperature: float = 1.0,
                top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Sample one token per row from ``softmax(filtered logits / temperature)`` by inverting the
    CDF at the row's keyed uniform (:func:`sample_keys`): exact categorical sampling, layout-
    independent, and one uniform per row instead of ``torch.multinomial``'s exponential draw over
    the whole vocabulary (which took 43% of Gemma-3's generation time on CPU)."""
    logits = logits.float() if temperature == 1.0 else logits.float() / max(temperature, 1e-6)
    cdf = _filter_logits(logits, top_k, top_p).softmax(-1).cumsum(-1, dtype=torch.float64)
    u = _uniforms(keys, step).to(cdf.device)[:, None] * cdf[:, -1:]
    return torch.searchsorted(cdf, u).squeeze(-1).clamp(max=cdf.shape[-1] - 1)


class _KeyedSampler:
    """A logits processor that samples (:func:`sample_next`) and hands Hugging Face's greedy step
    a one-hot score: the KV-cached path then draws exactly what the recomputing path draws. A
    caller's own processor runs first, then temperature, top-k and top-p, as in the recompute path."""

    def __init__(self, keys, prompt_len, *, temperature, top_k, top_p, inner=None):
        self.keys, self.prompt_len, self.inner = list(keys), prompt_len, inner
        self.kw = dict(temperature=temperature, top_k=top_k, top_p=top_p)

    def __call__(self, input_ids, scores):
        if self.inner is not None:
            scores = self.inner(input_ids, scores)
        nxt = sample_next(scores, self.keys, input_ids.shape[1] - self.prompt_len, **self.kw)
        return scores.fill_(float("-inf")).scatter_(-1, nxt[:, None], 0.0)


_TWINS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def hf_twin(model):
    """A plain Hugging Face module (no hooks) sharing ``model``'s weight tensors; cached per bridge."""
    twin = _TWINS.get(model)
    if twin is None:
        from transformers import AutoModelForCausalLM

        hf = model.original_model
        params = {n.replace("._original_component", ""): p
                  for n, p in hf.named_parameters(remove_duplicate=False)}
        twin = AutoModelForCausalLM.from_config(copy.deepcopy(hf.config))
        wanted = dict(twin.named_parameters(remove_duplicate=False))
        missing = [k for k in wanted if k not in params]
        if missing:
            raise RuntimeError(f"cannot map the bridge's weights onto {type(twin).__name__}: {missing[:3]}")
        twin.load_state_dict({k: params[k] for k in twin.state_dict() if k in params}, strict=False,
                             assign=True)
        split = getattr(hf, "hf_device_map", None)
        if split and len(set(map(str, split.values()))) > 1:  # accelerate's device_map: keep the split
            from accelerate import dispatch_model

            twin = dispatch_model(twin, device_map=split)
        else:
            twin.to(next(model.parameters()).device)
        twin.eval()
        # A checkpoint saved by a trainer often says use_cache=False (gradient checkpointing):
        # generation would then recompute every step. The twin is for generation: cache.
        twin.config.use_cache = True
        _TWINS[model] = twin
    return twin


_TWIN_HOOK = re.compile(r"blocks\.(\d+)\.(hook_resid_pre|hook_resid_post|mlp\.hook_pre|mlp\.hook_post|"
                        r"hook_mlp_out|hook_attn_out)$")


def _twin_layers(twin, n_layers: int):
    for m in twin.modules():
        if isinstance(m, torch.nn.ModuleList) and len(m) == n_layers:
            return m
    return None


def _first_attr(module, names):
    for n in names:
        if hasattr(module, n):
            return getattr(module, n)
    return None


def twin_hook_sites(model, fwd_hooks) -> list | None:
    """Map bridge ``(hook_name, fn)`` pairs onto the HF twin's modules, or ``None`` if any cannot be.

    Returns ``[(module, kind, fn, name)]``, ``kind`` ``"out"`` (rewrite the module's output) or
    ``"in"`` (rewrite its first input).
    """
    twin = hf_twin(model)
    layers = _twin_layers(twin, model.cfg.n_layers)
    if layers is None:
        return None
    sites = []
    for name, fn in fwd_hooks:
        m = _TWIN_HOOK.match(name) if isinstance(name, str) else None
        if m is None:
            return None
        block = layers[int(m.group(1))]
        mlp = _first_attr(block, ("mlp", "feed_forward"))
        kind, target = {
            "hook_resid_pre": ("in", block),
            "hook_resid_post": ("out", block),
            "hook_mlp_out": ("out", mlp),
            "hook_attn_out": ("out", _first_attr(block, ("self_attn", "attn", "attention"))),
            "mlp.hook_post": ("in", _first_attr(mlp, ("down_proj", "c_proj", "fc_out", "fc2"))),
            "mlp.hook_pre": ("out", _first_attr(mlp, ("gate_proj", "c_fc", "fc_in", "fc1"))
                             if mlp is not None else None),
        }[m.group(2)]
        if target is None:
            return None
        sites.append((target, kind, fn, name))
    return sites


class _Hooked:
    """Context: PyTorch hooks on the twin that call TransformerLens-style ``fn(act, hook)``."""

    def __init__(self, sites):
        self.sites, self.handles = sites, []

    def __enter__(self):
        from types import SimpleNamespace

        for module, kind, fn, name in self.sites:
            hook = SimpleNamespace(name=name)
            if kind == "in":
                def pre(mod, args, kwargs, fn=fn, hook=hook):
                    if args:
                        new = fn(args[0], hook=hook)
                        return ((new if new is not None else args[0]), *args[1:]), kwargs
                    key = "hidden_states" if "hidden_states" in kwargs else next(iter(kwargs))
                    new = fn(kwargs[key], hook=hook)
                    return args, {**kwargs, key: new if new is not None else kwargs[key]}
                self.handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
            else:
                def post(mod, args, output, fn=fn, hook=hook):
                    first = output[0] if isinstance(output, tuple) else output
                    new = fn(first, hook=hook)
                    if new is None:
                        return output
                    return (new, *output[1:]) if isinstance(output, tuple) else new
                self.handles.append(module.register_forward_hook(post))
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        self.handles.clear()


def _processor_list(fn):
    """``fn(input_ids, logits) -> logits`` as Hugging Face's ``LogitsProcessorList``."""
    from transformers import LogitsProcessor, LogitsProcessorList

    class _Wrapped(LogitsProcessor):
        def __call__(self, input_ids, scores):
            return fn(input_ids, scores)

    return LogitsProcessorList([_Wrapped()])


@torch.no_grad()
def _generate_cached(model, ids, mask, *, max_new_tokens, do_sample, temperature, top_k, top_p,
                     keys, eos_token_id, sites=(), logits_processor=None) -> torch.Tensor:
    from transformers import GenerationConfig

    twin = hf_twin(model)
    tok = model.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    # Sampling is ours (a keyed processor), so Hugging Face runs its greedy loop either way.
    gc = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad,
                          # [] rather than None: None falls back to the model's own EOS and stops there
                          eos_token_id=eos_token_id if eos_token_id is not None else [],
                          bos_token_id=tok.bos_token_id,
                          return_dict_in_generate=False, output_scores=False, output_logits=False,
                          use_cache=True)
    device = next(model.parameters()).device
    with _Hooked(sites):
        if logits_processor is not None and hasattr(logits_processor, "begin"):
            logits_processor.begin(ids)
        proc = logits_processor
        if do_sample:
            proc = _KeyedSampler(keys, ids.shape[1], temperature=temperature, top_k=top_k, top_p=top_p,
                                 inner=logits_processor)
        extra = {} if proc is None else {"logits_processor": _processor_list(proc)}
        out = twin.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                            generation_config=gc, **extra)
    if not isinstance(out, torch.Tensor):  # a checkpoint's own generation config can ask for a dict
        out = out.sequences
    new = out[:, ids.shape[1]:].cpu().clone()
    if eos_token_id is not None:
        done = torch.zeros(new.shape[0], dtype=torch.bool)
        for j in range(new.shape[1]):
            new[done, j] = -1
            done |= new[:, j] == eos_token_id
    return new


@torch.no_grad()
def generate_tokens(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    max_new_tokens: int,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    keys: Sequence[int] | None = None,
    eos_token_id: int | None = None,
    logits_processor=None,
    prepare: Sequence = (),
) -> torch.Tensor:
    """Extend left-padded ``input_ids`` ``[batch pos]``; returns the new tokens ``[batch max_new_tokens]``.

    Finished rows (after ``eos_token_id``) continue with ``-1``. Sampling draws row ``i``'s tokens
    from ``keys[i]`` (:func:`sample_keys`; default: the rows' indices with seed 0). ``logits_processor`` is an optional
    callable ``(input_ids [batch pos], logits [batch vocab]) -> logits`` applied before choosing;
    each of ``prepare`` is called with ``(input_ids, attention_mask, position_ids)`` before every
    forward pass (see :class:`interp.steer.PatchActivations`).
    """
    device = next(model.parameters()).device
    seq, mask = input_ids.to(device), attention_mask.to(device)
    pad = model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else 0
    if hasattr(logits_processor, "begin"):
        logits_processor.begin(seq)
    if do_sample and keys is None:
        keys = sample_keys([str(i) for i in range(seq.shape[0])], 0)
    done = torch.zeros(seq.shape[0], dtype=torch.bool, device=device)
    new = torch.full((seq.shape[0], max_new_tokens), -1, dtype=torch.long, device=device)
    for step in range(max_new_tokens):
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        for fn in prepare:
            fn(seq, mask, pos)
        logits = model(seq, attention_mask=mask, position_ids=pos)[:, -1, :].float()
        if logits_processor is not None:
            logits = logits_processor(seq, logits)
        if do_sample:
            nxt = sample_next(logits, keys, step, temperature=temperature, top_k=top_k, top_p=top_p)
        else:
            nxt = logits.argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, pad), nxt)
        new[:, step] = torch.where(done, torch.full_like(nxt, -1), nxt)
        seq = torch.cat([seq, nxt[:, None]], 1)
        mask = torch.cat([mask, (~done).long()[:, None]], 1)
        if eos_token_id is not None:
            done |= nxt == eos_token_id
            if done.all():
                new = new[:, : step + 1]
                break
    return new.cpu()


def generate(
    model,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 20,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = 0,
    batch_size: int = 32,
    hooks: Sequence = (),
    stop_at_eos: bool = True,
    logits_processor=None,
    use_cache: bool = True,
    progress: bool = False,
    keys: Sequence[int] | None = None,
) -> Generation:
    """Complete ``prompts`` greedily (default) or by sampling, in batches, with ``hooks`` active.

    ``hooks`` are ``(hook_name, fn)`` pairs or intervention objects (see :mod:`interp.steer`);
    they act at every position of every step. With ``use_cache`` the KV-cached Hugging Face
    path is used whenever the hooks map onto it (see the module docstring). Sampling is keyed
    (:func:`sample_keys`): a prompt's ``j``-th sample depends on ``seed``, its text and ``j`` only —
    not on the batch size, the order, the path or the process (``keys`` overrides, one per prompt,
    for a caller that shards a longer list).
    """
    if len(prompts) == 0:
        raise ValueError("no prompts to complete")
    tok = model.tokenizer
    if keys is None:
        keys = sample_keys(prompts, seed) if do_sample else [0] * len(prompts)
    elif len(keys) != len(prompts):
        raise ValueError(f"keys: {len(keys)} for {len(prompts)} prompts")
    eos = tok.eos_token_id if stop_at_eos else None
    fwd = as_fwd_hooks(hooks, model)
    prepare = preparers(hooks)
    sites = twin_hook_sites(model, fwd) if use_cache and not prepare else None
    cached = sites is not None
    starts = range(0, len(prompts), batch_size)
    mine = []  # under torchrun this rank's batches (interp.distributed), else all of them
    with model.hooks(fwd_hooks=[] if cached else fwd):
        for b, lo in enumerate(tqdm(starts, desc="generate", disable=not progress or not distributed.is_main())):
            if not distributed.owns(b):
                continue
            chunk = list(prompts[lo : lo + batch_size])
            ids, mask = encode(tok, chunk, max_length=model.cfg.n_ctx - max_new_tokens,
                               padding_side="left")
            if cached:
                new = _generate_cached(model, ids, mask, max_new_tokens=max_new_tokens,
                                       do_sample=do_sample, temperature=temperature, top_k=top_k,
                                       top_p=top_p, keys=keys[lo : lo + batch_size],
                                       eos_token_id=eos, sites=sites, logits_processor=logits_processor)
            else:
                new = generate_tokens(model, ids, mask, max_new_tokens=max_new_tokens,
                                      do_sample=do_sample, temperature=temperature, top_k=top_k,
                                      top_p=top_p, keys=keys[lo : lo + batch_size], eos_token_id=eos,
                                      logits_processor=logits_processor, prepare=prepare)
            texts = []
            for r in new:
                keep = r[r >= 0]
                if eos is not None:
                    keep = keep[keep != eos]
                texts.append(tok.decode(keep.tolist(), skip_special_tokens=True))
            mine.append((b, (new, texts)))
    done = distributed.gather(mine, len(starts))
    texts = [t for _, ts in done for t in ts]
    width = max(new.shape[1] for new, _ in done)
    tokens = torch.cat([torch.nn.functional.pad(r, (0, width - r.shape[1]), value=-1) for r, _ in done])
    return Generation(list(prompts), texts, tokens)
