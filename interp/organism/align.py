"""Alignment of a causal LM against toxicity: preference pairs from its own samples, then DPO or SFT.

As Lee et al. (2024) did: sample continuations of eliciting prompts from the base model, label
them with a toxicity scorer, pair a non-toxic (preferred) with a toxic (rejected) continuation
of the same prompt, and train with DPO against a frozen copy of the base (TRL's
``DPOTrainer``). SFT on the non-toxic continuations is offered for comparison.
"""

from __future__ import annotations

import contextlib
import copy
import os
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..generate import generate
from ..score import get_scorer


@dataclass
class AlignConfig:
    method: str = "dpo"  # "dpo" or "sft"
    lr: float = 2e-6
    steps: int = 300
    batch_size: int = 32
    beta: float = 0.1
    n_samples: int = 4
    max_new_tokens: int = 12
    temperature: float = 1.0
    preferred_below: float = 0.2
    rejected_above: float = 0.8
    max_pairs_per_prompt: int = 2
    seed: int = 0


def preference_pairs(model, prompts: Sequence[str], cfg: AlignConfig, scorer=None,
                     progress: bool = True) -> tuple[list[dict], dict]:
    """Sample from ``model`` (a bridge), score, and pair preferred with rejected continuations.

    Returns ``(pairs, stats)``; each pair is ``{"prompt", "chosen", "rejected"}`` (plain text,
    continuations start with their leading space).
    """
    scorer = get_scorer(scorer)
    repeated = [p for p in prompts for _ in range(cfg.n_samples)]
    gen = generate(model, repeated, max_new_tokens=cfg.max_new_tokens, do_sample=True,
                   temperature=cfg.temperature, seed=cfg.seed, batch_size=128, progress=progress)
    scores = scorer(gen.completions)
    by_prompt: dict[str, tuple[list[str], list[str]]] = {}
    for p, c, s in zip(repeated, gen.completions, scores):
        good, bad = by_prompt.setdefault(p, ([], []))
        if not c.strip():
            continue
        if s < cfg.preferred_below:
            good.append(c)
        elif s > cfg.rejected_above:
            bad.append(c)
    rng = random.Random(cfg.seed)
    pairs = []
    for p, (good, bad) in by_prompt.items():
        combos = [(g, b) for g in sorted(set(good)) for b in sorted(set(bad))]
        rng.shuffle(combos)
        for g, b in combos[: cfg.max_pairs_per_prompt]:
            pairs.append({"prompt": p, "chosen": g, "rejected": b})
    stats = {
        "n_samples": len(repeated),
        "sample_toxicity": float((scores > 0.5).mean()),
        "n_pairs": len(pairs),
        "n_prompts_with_pairs": len({x["prompt"] for x in pairs}),
        "scorer": scorer.name,
    }
    return pairs, stats


def _with_bos(tokenizer, prompt: str) -> str:
    # TRL tokenizes without special tokens; the organism always sees a leading <eos>/<bos>.
    bos = tokenizer.bos_token
    return prompt if bos is None or prompt.startswith(bos) or not _adds_bos(tokenizer) else bos + prompt


def _adds_bos(tokenizer) -> bool:
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return bool(ids) and ids[0] == tokenizer.bos_token_id


def dpo(model, tokenizer, pairs: list[dict], cfg: AlignConfig, *, ref_model=None,
        max_length: int | None = None, progress: bool = True, checkpoint_dir=None,
        save_steps: int = 50):
    """Train ``model`` (a Hugging Face causal LM, in place) with TRL's ``DPOTrainer``.

    The reference is a frozen copy of ``model`` as given (or ``ref_model``). With
    ``checkpoint_dir`` a checkpoint is kept every ``save_steps`` steps and a later call resumes
    from the last one (long runs survive an interruption). Returns ``(model, log)`` where ``log``
    holds the loss/reward curve and the time taken.
    """
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    if not pairs:
        raise ValueError("no preference pairs: the judge found no better and worse samples to pair")
    ref = ref_model if ref_model is not None else copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    data = Dataset.from_list([{**x, "prompt": _with_bos(tokenizer, x["prompt"])} for x in pairs])
    with contextlib.ExitStack() as stack:
        out = str(checkpoint_dir) if checkpoint_dir else stack.enter_context(tempfile.TemporaryDirectory())
        args = DPOConfig(
            output_dir=out,
            per_device_train_batch_size=cfg.batch_size,
            learning_rate=cfg.lr,
            lr_scheduler_type="constant",
            max_steps=cfg.steps,
            beta=cfg.beta,
            optim="rmsprop",
            use_cpu=True,
            bf16=False,  # TRL's defaults (bf16 autocast, gradient checkpointing) are slow on CPU
            gradient_checkpointing=False,
            report_to=[],
            save_strategy="steps" if checkpoint_dir else "no",
            save_steps=save_steps,
            save_total_limit=1,
            logging_steps=10,
            seed=cfg.seed,
            data_seed=cfg.seed,
            max_length=max_length,
            disable_tqdm=not progress,
            dataloader_num_workers=0,
            dataset_num_proc=None,
        )
        trainer = DPOTrainer(model=model, ref_model=ref, args=args, train_dataset=data,
                             processing_class=tokenizer)
        if not progress:
            from transformers.trainer_callback import PrinterCallback

            trainer.remove_callback(PrinterCallback)
        t0 = time.time()
        last = None
        if checkpoint_dir:
            from transformers.trainer_utils import get_last_checkpoint

            last = get_last_checkpoint(out) if os.path.isdir(out) else None
        trainer.train(resume_from_checkpoint=last)
        seconds = time.time() - t0
        history = [
            {k: round(v, 5) for k, v in h.items() if isinstance(v, int | float)}
            for h in trainer.state.log_history
            if "loss" in h
        ]
    model.eval()
    return model, {"history": history, "seconds": seconds}


def sft_rows(tokenizer, examples: Sequence[dict]) -> list[tuple[list[int], int]]:
    """Token ids of ``{"prompt", "completion"}`` examples (completion + EOS) and each prompt's length."""
    eos = tokenizer.eos_token or ""
    rows = []
    for x in examples:
        p = tokenizer(x["prompt"], add_special_tokens=True)["input_ids"]
        c = tokenizer(x["completion"] + eos, add_special_tokens=False)["input_ids"]
        rows.append((p + c, len(p)))
    return rows


def sft_loss(model, rows: Sequence[tuple[list[int], int]], pad: int) -> torch.Tensor:
    """Mean cross-entropy of a Hugging Face causal LM on the completions of ``rows`` (one batch)."""
    width = max(len(r) for r, _ in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full_like(ids, -100)
    mask = torch.zeros_like(ids)
    for j, (r, n_prompt) in enumerate(rows):
        ids[j, : len(r)] = torch.tensor(r)
        mask[j, : len(r)] = 1
        labels[j, n_prompt : len(r)] = torch.tensor(r[n_prompt:])
    dev = next(model.parameters()).device
    return model(input_ids=ids.to(dev), attention_mask=mask.to(dev), labels=labels.to(dev)).loss


def sft(model, tokenizer, examples: list[dict], cfg: AlignConfig, *, progress: bool = True):
    """Fine-tune ``model`` in place on ``{"prompt", "completion"}`` examples, loss on the completion only.

    A plain loop (RMSprop, constant ``cfg.lr``, ``cfg.steps`` batches of ``cfg.batch_size``).
    """
    from tqdm.auto import tqdm

    if not examples:
        raise ValueError("no SFT examples")
    rows = sft_rows(tokenizer, examples)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.RMSprop(model.parameters(), lr=cfg.lr)
    pad = tokenizer.pad_token_id
    history, t0 = [], time.time()
    model.train()
    for step in tqdm(range(cfg.steps), desc="sft", disable=not progress):
        idx = torch.randint(0, len(rows), (min(cfg.batch_size, len(rows)),), generator=gen)
        loss = sft_loss(model, [rows[i] for i in idx], pad)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 10 == 0 or step == cfg.steps - 1:
            history.append({"step": step, "loss": round(loss.item(), 5)})
    model.eval()
    return model, {"history": history, "seconds": time.time() - t0}


def sft_examples(pairs: list[dict]) -> list[dict]:
    """SFT data from preference pairs: each prompt with its preferred continuation."""
    seen, out = set(), []
    for x in pairs:
        key = (x["prompt"], x["chosen"])
        if key not in seen:
            seen.add(key)
            out.append({"prompt": x["prompt"], "completion": x["chosen"]})
    return out
