"""Benchmark: recording MLP keys and residual vectors of both models of a pair.

Prints, measured in one run on the same batches:
* throughput of ``record_pair`` (``mlp.hook_post`` and ``hook_resid_post`` at every layer, both
  models) against two bare forward passes, and against ``run_with_cache`` with no names filter;
* peak resident memory of a streamed recording (every token, to disk) at 1x and 10x the data.

Target: recording >= 0.9x bare forward throughput; peak memory flat in data size.
Run: ``python benchmarks/record.py [--pair organism:small] [--texts 512]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

from interp.reproduce.report import provenance

# ---- config -----------------------------------------------------------------
PAIR = "organism:small"
N_TEXTS = 512
BATCH = 64
REPEATS = 5
SEED = 0


def texts_for(pair, n: int) -> list[str]:
    import random

    from interp.organism.corpus import dialogue_doc, neutral_doc

    rng = random.Random(SEED)
    return [dialogue_doc(rng) if i % 2 else neutral_doc(rng) for i in range(n)]


def hooks_for(pair) -> list[str]:
    from interp import hooks as H

    L = pair.cfg.n_layers
    return H.hook_names("mlp_post", L) + H.hook_names("resid_post", L)


def throughput(pair_name: str, n_texts: int) -> dict:
    from interp.pair import load_pair
    from interp.record import record_pair
    from interp.tokens import batches

    pair = load_pair(pair_name)
    texts = texts_for(pair, n_texts)
    hooks = hooks_for(pair)
    blist = list(batches(pair.tokenizer, texts, BATCH, max_length=pair.cfg.n_ctx))
    n_tokens = int(sum(b.attention_mask.sum() for b in blist))

    def bare():
        with torch.no_grad():
            for b in blist:
                for m in pair.models.values():
                    m(b.input_ids, attention_mask=b.attention_mask, return_type=None)

    def rec():
        record_pair(pair, texts, hooks, reduction="mean", batch_size=BATCH, progress=False)

    def cache_all():
        with torch.no_grad():
            for b in blist:
                for m in pair.models.values():
                    _, cache = m.run_with_cache(b.input_ids, attention_mask=b.attention_mask)
                    del cache

    variants = {"bare": bare, "rec": rec, "cache": cache_all}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for fn in variants.values():
        fn()  # warm-up
    # Interleave the repeats so that drift on the machine hits every variant alike; keep the best.
    for _ in range(REPEATS):
        for k, fn in variants.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    t_bare, t_rec, t_cache = (min(times[k]) for k in variants)
    out = {}
    out["tokens"] = n_tokens
    out["bare_tok_s"] = 2 * n_tokens / t_bare
    out["record_tok_s"] = 2 * n_tokens / t_rec
    out["cache_all_tok_s"] = 2 * n_tokens / t_cache
    return out


def peak_memory(pair_name: str, n_texts: int) -> float:
    """Peak RSS (MiB) of a subprocess that streams an every-token recording to disk."""
    code = f"""
import os, resource, sys, tempfile
sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
from record import texts_for, hooks_for
from interp.pair import load_pair
from interp.record import write_shards
pair = load_pair({pair_name!r})
texts = texts_for(pair, {n_texts})
with tempfile.TemporaryDirectory() as d:
    for role, m in pair.models.items():
        write_shards(m, texts, hooks_for(pair), os.path.join(d, role), reduction="all",
                     batch_size={BATCH}, progress=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pair", default=PAIR)
    ap.add_argument("--texts", type=int, default=N_TEXTS)
    args = ap.parse_args()
    torch.manual_seed(SEED)
    t = throughput(args.pair, args.texts)
    m1 = peak_memory(args.pair, args.texts)
    m10 = peak_memory(args.pair, 10 * args.texts)
    result = {
        "pair": args.pair,
        "texts": args.texts,
        "batch": BATCH,
        "torch_threads": torch.get_num_threads(),
        **{k: round(v, 1) for k, v in t.items()},
        "record_vs_bare": round(t["record_tok_s"] / t["bare_tok_s"], 3),
        "record_vs_cache_all": round(t["record_tok_s"] / t["cache_all_tok_s"], 3),
        "peak_rss_mib_1x": round(m1, 1),
        "peak_rss_mib_10x": round(m10, 1),
        "peak_memory_10x_vs_1x": round(m10 / m1, 3),
        "provenance": provenance(),
    }
    print(json.dumps(result, indent=2))
    print(f"\nrecording throughput = {result['record_vs_bare']:.2f}x bare forward "
          f"(target >= 0.9), {result['record_vs_cache_all']:.2f}x run_with_cache(all hooks); "
          f"peak memory 10x data / 1x data = {result['peak_memory_10x_vs_1x']:.2f} (target ~1.0)")


if __name__ == "__main__":
    main()
