"""Benchmark: the measurement loop (hooked, KV-cached sampling + scoring) near the hardware's limit.

Prints, measured in one run on the same prompts, weights and batches:
* samples/s of ``interp.toxicity`` — KV-cached generation with an intervention active
  (``ScaleNeurons`` on 10 neurons, Lee et al.'s pre-activation scaling) and scoring under the two
  offline scorers — against Hugging Face ``generate`` on the same weights and left-padded batches
  with no hooks and no scoring (target: >= 0.9x);
* where interp's time goes: generation with the hook, generation without it, scoring;
* generated tokens/s against a bound from the model's FLOPs per token (2 x parameters that
  multiply each token, plus attention over the context) and this machine's measured fp32
  matmul throughput (``torch.mm`` of 2048^2 matrices).

Run: ``python benchmarks/measure.py [--pair organism:small | --model smollm2 | --config DIR] [--prompts 256]``
(``--model``: one model, e.g. a packaged real one, on the packaged eliciting prompts; ``--config``:
a model of the architecture in DIR — ``config.json`` and the tokenizer, ``*.xz`` files unpacked
first — with random weights, for timing where the weights cannot travel, e.g. to a lent GPU; its
completions are noise and run to the token limit, so only its speeds mean anything).
On a GPU (``--device cuda``, ``--dtype bfloat16``) the bound uses that device's matmul throughput
in that dtype.
Results go to stdout and, with ``--json FILE``, to a JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def matmul_flops(n: int = 2048, repeats: int = 10, device="cpu", dtype=torch.float32) -> float:
    """Measured matmul throughput of ``device`` in ``dtype`` (FLOP/s)."""
    if torch.device(device).type == "cuda":
        n, repeats = 8192, 20
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.mm(a, b)
    _sync(device)
    t = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    _sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - t)


def random_init_model(folder: str, device: str, dtype):
    """A bridge over the architecture in ``folder`` (config + tokenizer) with random weights."""
    import lzma
    from pathlib import Path

    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from interp.pair import bridge_from_module

    d = Path(folder)
    for packed in d.glob("*.xz"):
        plain = packed.with_suffix("")
        if not plain.exists():
            plain.write_bytes(lzma.decompress(packed.read_bytes()))
    torch.manual_seed(0)
    module = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(d), dtype=dtype).to(device)
    return bridge_from_module(module, AutoTokenizer.from_pretrained(d), name=f"{d.name} (random init)",
                              device=device, dtype=dtype)


def flops_per_token(model, context: int) -> float:
    """Forward FLOPs for one new token with a KV cache: 2 x (every weight matrix a token
    multiplies, the unembedding included; embeddings are lookups) + attention over ``context``."""
    cfg = model.cfg
    twin_params = 0
    from interp.generate import hf_twin

    for name, p in hf_twin(model).named_parameters():
        if p.dim() == 2 and "embed" not in name and "wte" not in name and "wpe" not in name:
            twin_params += p.numel()
    if not any("lm_head" in n for n, _ in hf_twin(model).named_parameters()):  # tied unembedding
        twin_params += cfg.d_model * cfg.d_vocab
    return 2.0 * twin_params + 4.0 * cfg.n_layers * context * cfg.d_model


def hf_generate(model, prompts, *, max_new_tokens, batch_size, seed) -> tuple[int, float]:
    """Hugging Face ``generate`` on interp's batches, no hooks: (generated tokens, seconds)."""
    from transformers import GenerationConfig

    from interp.generate import hf_twin
    from interp.tokens import encode

    twin, tok = hf_twin(model), model.tokenizer
    device = next(twin.parameters()).device
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    gc = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                          pad_token_id=pad, eos_token_id=tok.eos_token_id, use_cache=True,
                          return_dict_in_generate=False)
    n_tok, t = 0, time.perf_counter()
    with torch.no_grad():
        for lo in range(0, len(prompts), batch_size):
            ids, mask = encode(tok, prompts[lo: lo + batch_size], max_length=model.cfg.n_ctx - max_new_tokens,
                               padding_side="left")
            torch.manual_seed(seed + lo)
            out = twin.generate(input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=gc)
            out = out if isinstance(out, torch.Tensor) else out.sequences
            n_tok += int((out[:, ids.shape[1]:] != pad).sum())
    _sync(device)
    return n_tok, time.perf_counter() - t


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pair", default="organism:small", help="measure the pair's aligned model")
    ap.add_argument("--model", default=None, help="measure this model source instead (e.g. smollm2)")
    ap.add_argument("--config", default=None, help="a folder with config.json + tokenizer: random weights")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: the model's; --config: cuda if there is one)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import interp
    from interp.generate import generate

    dtype = getattr(torch, args.dtype)
    if args.config or args.model:  # one model, on the packaged eliciting prompts
        from interp.prompts import eliciting_prompts

        if args.config:
            device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
            model = random_init_model(args.config, device, dtype)
            name = f"{os.path.basename(os.path.normpath(args.config))} (random init)"
        else:
            model, name = interp.load_model(args.model, device=args.device, dtype=dtype), args.model
        prompts = list(dict.fromkeys(eliciting_prompts(0).eval))[: args.prompts]
    else:
        pair, name = interp.load_pair(args.pair, device=args.device, dtype=dtype), args.pair
        model = pair.aligned
        prompts = list(dict.fromkeys(pair.prompts.eval_prompts))[: args.prompts]
    repeated = [p for p in prompts for _ in range(args.samples)]
    n = len(repeated)
    iv = interp.ScaleNeurons(interp.random_neurons(model.cfg.n_layers, model.cfg.d_mlp, 10, seed=0), 10.0)
    scorers = interp.get_scorers(["profanity", "lexicon"])
    kw = dict(max_new_tokens=args.tokens, batch_size=args.batch, seed=0)

    generate(model, repeated[: args.batch], do_sample=True, **kw)  # warm-up (kernels, twin, hook sites)
    generate(model, repeated[: args.batch], do_sample=True, hooks=[iv], **kw)
    hf_generate(model, repeated[: args.batch], max_new_tokens=args.tokens, batch_size=args.batch, seed=0)
    for s in scorers:
        s(["warm up"])

    t = time.perf_counter()
    ev = interp.toxicity(model, prompts, scorer=scorers, n_samples=args.samples, hooks=[iv],
                         max_new_tokens=args.tokens, batch_size=args.batch, seed=0)
    t_interp = time.perf_counter() - t
    t = time.perf_counter()
    generate(model, repeated, do_sample=True, hooks=[iv], **kw)
    t_gen_hooked = time.perf_counter() - t
    t = time.perf_counter()
    g_plain = generate(model, repeated, do_sample=True, **kw)
    t_gen_plain = time.perf_counter() - t
    t_score = {}
    for s in interp.get_scorers(["profanity", "lexicon"]):  # fresh: the lexicon memoises per text
        s(["warm up"])
        t = time.perf_counter()
        s(g_plain.completions)
        t_score[s.name] = time.perf_counter() - t
    n_tok_hf, t_hf = hf_generate(model, repeated, max_new_tokens=args.tokens, batch_size=args.batch, seed=0)
    n_tok = int((g_plain.tokens >= 0).sum())

    device = next(model.parameters()).device
    peak = matmul_flops(device=device, dtype=dtype if device.type == "cuda" else torch.float32)
    ctx = float(model.tokenizer(prompts[0], return_tensors="pt").input_ids.shape[1] + args.tokens / 2)
    fpt = flops_per_token(model, int(ctx))
    bound = peak / fpt
    out = {
        "model": name, "samples": n, "max_new_tokens": args.tokens, "batch_size": args.batch,
        "torch_threads": torch.get_num_threads(), "dtype": args.dtype,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "interp_samples_per_s": n / t_interp, "hf_generate_samples_per_s": n / t_hf,
        "ratio_interp_vs_hf": t_hf / t_interp,
        "seconds": {"interp_toxicity": t_interp, "generate_hooked": t_gen_hooked, "generate_plain": t_gen_plain,
                    "scoring": t_score, "hf_generate": t_hf},
        "generation_ratio_interp_vs_hf": t_hf / t_gen_hooked,
        "tokens_per_s": {"interp_plain": n_tok / t_gen_plain, "hf_generate": n_tok_hf / t_hf},
        "flops_per_token": fpt, "matmul_flops_per_s": peak, "tokens_per_s_bound": bound,
        "share_of_bound": {"interp_plain": n_tok / t_gen_plain / bound, "hf_generate": n_tok_hf / t_hf / bound},
        "toxicity_rate": ev.rate.rate,
    }
    print(f"{name}: {n} samples x <= {args.tokens} tokens, batch {args.batch}, {out['device']} "
          f"({args.dtype}, {out['torch_threads']} CPU threads)")
    print(f"  interp.toxicity (KV cache, ScaleNeurons active, 2 scorers): {out['interp_samples_per_s']:8.1f} samples/s")
    print(f"  HF generate (same weights and batches, no hooks, no scoring): {out['hf_generate_samples_per_s']:8.1f} samples/s")
    print(f"  ratio interp / HF: {out['ratio_interp_vs_hf']:.2f}x (target >= 0.9x)")
    print(f"  interp's time: generate with the hook {t_gen_hooked:.2f} s, without {t_gen_plain:.2f} s "
          f"(hooked generation / HF: {out['generation_ratio_interp_vs_hf']:.2f}x); scoring "
          + ", ".join(f"{k} {v:.2f} s" for k, v in t_score.items()))
    print(f"  tokens/s: interp {out['tokens_per_s']['interp_plain']:.0f}, HF {out['tokens_per_s']['hf_generate']:.0f}; "
          f"bound {bound:.0f} (matmul {peak / 1e9:.0f} GFLOP/s, {fpt / 1e6:.1f} MFLOP/token) -> "
          f"{out['share_of_bound']['interp_plain']:.1%} / {out['share_of_bound']['hf_generate']:.1%} of it")
    if args.json:
        from pathlib import Path

        from interp.reproduce.report import provenance

        Path(args.json).write_text(json.dumps({**out, "provenance": provenance()}, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
