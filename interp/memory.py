"""How much memory a pair needs, from its config alone (before any weight is loaded).

``memory_estimate("meta-llama/Llama-3.1-8B", dtype=torch.bfloat16, batch_size=64)`` → parameters ×
bytes per parameter × 2 models, plus the KV cache of one generation batch per model. Printed by
:func:`interp.load_pair` before a ``device_map`` load.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class MemoryEstimate:
    n_params: int  # one model
    bytes_per_param: int
    n_models: int
    kv_cache_bytes: int  # one model, one batch of batch_size × n_ctx
    batch_size: int
    n_ctx: int

    @property
    def weights_bytes(self) -> int:
        return self.n_params * self.bytes_per_param * self.n_models

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes * self.n_models

    def __str__(self) -> str:
        gib = 2 ** 30
        n = f"{self.n_params / 1e9:.2f} B" if self.n_params >= 1e9 else f"{self.n_params / 1e6:.1f} M"
        return (f"≈ {self.total_bytes / gib:.2f} GiB: {self.n_models} × {n} parameters × "
                f"{self.bytes_per_param} bytes = {self.weights_bytes / gib:.2f} GiB of weights, + KV cache "
                f"{self.n_models} × {self.kv_cache_bytes / gib:.2f} GiB (batch {self.batch_size} × {self.n_ctx} tokens)")


def _get(cfg, *names, default=None):
    for n in names:
        v = getattr(cfg, n, None)
        if v is not None:
            return v
    return default


def memory_estimate(source, *, dtype=torch.float32, batch_size: int = 64, n_ctx: int = 256,
                    n_models: int = 2) -> MemoryEstimate:
    """Estimate from a Hugging Face config (an object, a folder or a hub name in the local cache):
    embeddings (+ an untied unembedding), attention (grouped-query heads counted), the MLP (gated
    or not) and norms; the KV cache of ``batch_size`` sequences of ``n_ctx`` tokens."""
    cfg = source
    if isinstance(source, str):
        from transformers import AutoConfig

        cfg = AutoConfig.from_pretrained(source)
    cfg = getattr(cfg, "text_config", None) or cfg
    d = _get(cfg, "hidden_size", "n_embd", "d_model")
    n_layers = _get(cfg, "num_hidden_layers", "n_layer", "num_layers")
    vocab = _get(cfg, "vocab_size")
    n_heads = _get(cfg, "num_attention_heads", "n_head")
    n_kv = _get(cfg, "num_key_value_heads", default=n_heads)
    d_head = _get(cfg, "head_dim", default=d // n_heads)
    d_mlp = _get(cfg, "intermediate_size", "n_inner", default=4 * d)
    gated = _get(cfg, "hidden_act", "activation_function", default="gelu") in ("silu", "swiglu", "gelu_pytorch_tanh") \
        and getattr(cfg, "model_type", "") != "gpt2"
    attn = d * n_heads * d_head * 2 + d * n_kv * d_head * 2
    mlp = d * d_mlp * (3 if gated else 2)
    n = vocab * d * (1 if getattr(cfg, "tie_word_embeddings", True) else 2) + n_layers * (attn + mlp + 4 * d)
    n += _get(cfg, "n_positions", default=0) * d if getattr(cfg, "model_type", "") == "gpt2" else 0
    nbytes = torch.finfo(dtype).bits // 8
    kv = 2 * n_layers * batch_size * n_ctx * n_kv * d_head * nbytes
    return MemoryEstimate(int(n), nbytes, n_models, int(kv), batch_size, n_ctx)
