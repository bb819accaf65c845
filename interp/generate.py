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
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

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
        twin.to(next(model.parameters()).device).eval()
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
                     seed, eos_token_id, sites=(), logits_processor=None) -> torch.Tensor:
    from transformers import GenerationConfig

    twin = hf_twin(model)
    tok = model.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    gc = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=do_sample,
                          temperature=temperature if do_sample else None,
                          top_k=(top_k or 0) if do_sample else None,
                          top_p=(top_p or 1.0) if do_sample else None, pad_token_id=pad,
                          # [] rather than None: None falls back to the model's own EOS and stops there
                          eos_token_id=eos_token_id if eos_token_id is not None else [],
                          bos_token_id=tok.bos_token_id,
                          return_dict_in_generate=False, output_scores=False, output_logits=False,
                          use_cache=True)
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[]), _Hooked(sites):
        if seed is not None:
            torch.manual_seed(seed)
        extra = {}
        if logits_processor is not None:
            if hasattr(logits_processor, "begin"):
                logits_processor.begin(ids)
            extra["logits_processor"] = _processor_list(logits_processor)
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
    generator: torch.Generator | None = None,
    eos_token_id: int | None = None,
    logits_processor=None,
    prepare: Sequence = (),
) -> torch.Tensor:
    """Extend left-padded ``input_ids`` ``[batch pos]``; returns the new tokens ``[batch max_new_tokens]``.

    Finished rows (after ``eos_token_id``) continue with ``-1``. ``logits_processor`` is an optional
    callable ``(input_ids [batch pos], logits [batch vocab]) -> logits`` applied before choosing;
    each of ``prepare`` is called with ``(input_ids, attention_mask, position_ids)`` before every
    forward pass (see :class:`interp.steer.PatchActivations`).
    """
    device = next(model.parameters()).device
    seq, mask = input_ids.to(device), attention_mask.to(device)
    pad = model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else 0
    if hasattr(logits_processor, "begin"):
        logits_processor.begin(seq)
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
            logits = _filter_logits(logits / max(temperature, 1e-6), top_k, top_p)
            nxt = torch.multinomial(logits.softmax(-1).cpu(), 1, generator=generator).squeeze(-1)
            nxt = nxt.to(device)
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
) -> Generation:
    """Complete ``prompts`` greedily (default) or by sampling, in batches, with ``hooks`` active.

    ``hooks`` are ``(hook_name, fn)`` pairs or intervention objects (see :mod:`interp.steer`);
    they act at every position of every step. With ``use_cache`` the KV-cached Hugging Face
    path is used whenever the hooks map onto it (see the module docstring). A call is reproducible for a given ``seed`` and batch
    size (the two paths draw different, equally valid, samples).
    """
    if len(prompts) == 0:
        raise ValueError("no prompts to complete")
    tok = model.tokenizer
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    eos = tok.eos_token_id if stop_at_eos else None
    fwd = as_fwd_hooks(hooks, model)
    prepare = preparers(hooks)
    rows: list[torch.Tensor] = []
    texts: list[str] = []
    width = 0
    # A logits processor runs after Hugging Face's own warpers; at T = 1 without top-k/top-p there
    # are none, so the cached path then means exactly what the recomputing one does.
    plain = not do_sample or (temperature == 1.0 and not top_k and (top_p is None or top_p >= 1.0))
    sites = (twin_hook_sites(model, fwd)
             if use_cache and not prepare and (logits_processor is None or plain) else None)
    cached = sites is not None
    with model.hooks(fwd_hooks=[] if cached else fwd):
        for lo in tqdm(range(0, len(prompts), batch_size), desc="generate", disable=not progress):
            chunk = list(prompts[lo : lo + batch_size])
            ids, mask = encode(tok, chunk, max_length=model.cfg.n_ctx - max_new_tokens,
                               padding_side="left")
            if cached:
                new = _generate_cached(model, ids, mask, max_new_tokens=max_new_tokens,
                                       do_sample=do_sample, temperature=temperature, top_k=top_k,
                                       top_p=top_p, seed=None if seed is None else seed + lo,
                                       eos_token_id=eos, sites=sites, logits_processor=logits_processor)
            else:
                new = generate_tokens(model, ids, mask, max_new_tokens=max_new_tokens,
                                      do_sample=do_sample, temperature=temperature, top_k=top_k,
                                      top_p=top_p, generator=gen, eos_token_id=eos,
                                      logits_processor=logits_processor, prepare=prepare)
            for r in new:
                keep = r[r >= 0]
                if eos is not None:
                    keep = keep[keep != eos]
                texts.append(tok.decode(keep.tolist(), skip_special_tokens=True))
            rows.append(new)
            width = max(width, new.shape[1])
    tokens = torch.cat([torch.nn.functional.pad(r, (0, width - r.shape[1]), value=-1) for r in rows])
    return Generation(list(prompts), texts, tokens)
