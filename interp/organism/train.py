"""Pretraining of the organism: a GPT-2-architecture model on the packed corpus, deterministic on CPU."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm


@dataclass
class ModelConfig:
    n_layer: int = 4
    n_embd: int = 128
    n_head: int = 4
    n_inner: int = 512
    n_ctx: int = 64


@dataclass
class TrainConfig:
    steps: int = 600
    batch_size: int = 64
    lr: float = 2e-3
    warmup: int = 30
    weight_decay: float = 0.01
    seed: int = 0


def gpt2_model(cfg: ModelConfig, tokenizer, seed: int):
    """A freshly initialised ``GPT2LMHeadModel`` (no dropout), seeded."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=cfg.n_ctx,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        n_inner=cfg.n_inner,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    config.architectures = ["GPT2LMHeadModel"]
    return GPT2LMHeadModel(config)


def pack(tokenizer, docs: Sequence[str], n_ctx: int) -> torch.Tensor:
    """Concatenate ``<eos> doc <eos> doc …`` and cut into rows ``[n_rows n_ctx]``."""
    ids = tokenizer(list(docs), add_special_tokens=True)["input_ids"]
    flat = torch.tensor([t for row in ids for t in row], dtype=torch.long)
    n = len(flat) // n_ctx
    return flat[: n * n_ctx].view(n, n_ctx)


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def pretrain(model, rows: torch.Tensor, cfg: TrainConfig, *, progress: bool = True):
    """Train ``model`` on random rows of ``rows`` with AdamW and a cosine schedule.

    Returns the loss curve as a list of ``(step, loss)`` every 10 steps.
    """
    gen = torch.Generator().manual_seed(cfg.seed)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, 0.95),
    )
    model.train()
    curve, running, t0 = [], None, time.time()
    bar = tqdm(range(cfg.steps), desc="pretrain", disable=not progress)
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        idx = torch.randint(0, rows.shape[0], (cfg.batch_size,), generator=gen)
        batch = rows[idx]
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running = loss.item() if running is None else 0.9 * running + 0.1 * loss.item()
        if step % 10 == 0 or step == cfg.steps - 1:
            curve.append((step, round(loss.item(), 4)))
            bar.set_postfix(loss=f"{running:.3f}")
    model.eval()
    return curve, time.time() - t0
