"""GPU check (a script, not a test): interp's measurement and reproduction on one GPU against the CPU.

On a machine with CUDA, in one run on the same prompts and seeds:
* samples/s of ``interp.measure`` (KV-cached sampling + both offline scorers + neutral perplexity)
  on ``organism:small``'s aligned model: CUDA fp32, CUDA bf16, and the CPU (all its cores);
* how many completions CUDA fp32 and bf16 share with the CPU's (sampling is keyed per prompt and
  sample, so only float differences between devices can change a draw), and each one's toxicity;
* the wall time of the toxicity reproduction (seed 0, the organism preset) on CUDA, beside the
  CPU time its committed report records;
* ``device_map="auto"``: the base model loaded through accelerate's dispatch, its logits against
  a plain CUDA load.

Run: ``python benchmarks/gpu_check.py [--pair organism:small] [--json FILE] [--skip-reproduction]``.
Without CUDA it runs the CPU rows only (a dry run of the script).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _err(e: Exception) -> str:
    import traceback

    return f"{type(e).__name__}: {e} | " + " / ".join(traceback.format_exc().strip().splitlines()[-6:])


def timed_measure(pair, spec, scorers, label):
    from interp.measure import measure

    measure(pair.aligned, spec, scorers=scorers, cache=False)  # warm-up: kernels, twin, hook sites
    _sync()
    t = time.perf_counter()
    m = measure(pair.aligned, spec, scorers=scorers, label=label, cache=False)
    _sync()
    dt = time.perf_counter() - t
    return m, dt


def _guard(res: dict, key: str, fn):
    """Run one check; a device-specific failure is a finding: record it and go on."""
    try:
        out = fn()
        if key != "reproduction":
            res[key] = out
        return out
    except Exception as e:
        res[f"{key}_error"] = _err(e)
        print(f"{key}: FAILED {res[f'{key}_error']}")
        return None


def _device_map_check(pair_name: str, prompts) -> dict:
    import interp

    folder = str(interp.registry.resolve_model(f"{pair_name}:base"))
    plain = interp.load_model(folder, device="cuda")
    split = interp.load_model(folder, device_map="auto")
    ids = plain.tokenizer(list(prompts[:8]), return_tensors="pt", padding=True).input_ids.to("cuda")
    with torch.no_grad():
        diff = (plain(ids) - split(ids)).abs().max().item()
    print(f"device_map='auto': max |logit difference| vs a plain CUDA load {diff:.2e}")
    return {"max_abs_logit_diff": diff,
            "hf_device_map": {k: str(v) for k, v in (getattr(split.original_model, "hf_device_map", None) or {}).items()}}


def _reproduction(pair_name: str, pair, out, cuda: bool) -> dict:
    from interp.reproduce import toxicity as T

    cfg = T.config_for(pair_name)
    t = time.perf_counter()
    report = T.run(cfg, pair=pair, progress=False, log=lambda *a: None)
    res = {"reproduction_s": time.perf_counter() - t, "reproduction_timings": report.timings,
           "reproduction_findings": {f.key: f.holds for f in report.findings}}
    committed = Path(__file__).parents[1] / "figures/out/organism-small/seed-0/toxicity.json"
    if committed.exists():
        res["reproduction_cpu_committed_s"] = json.loads(committed.read_text())["timings"]["total_s"]
    print(f"reproduction (seed 0) on {'CUDA' if cuda else 'CPU'}: {res['reproduction_s']:.0f} s "
          f"(committed CPU run: {res.get('reproduction_cpu_committed_s', float('nan')):.0f} s)")
    if out:
        T.write(report, out, figures=False)
    return res


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pair", default="organism:small")
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--json", default=None)
    ap.add_argument("--out", default=None, help="folder for the reproduction's report")
    ap.add_argument("--skip-reproduction", action="store_true")
    args = ap.parse_args(argv)

    import interp
    from interp.measure import MeasureSpec

    cuda = torch.cuda.is_available()
    res: dict = {"pair": args.pair, "cuda": torch.cuda.get_device_name(0) if cuda else None,
                 "cpu_threads": torch.get_num_threads(), "torch": torch.__version__}
    print(json.dumps({k: res[k] for k in ("cuda", "cpu_threads", "torch")}))
    cpu_pair = interp.load_pair(args.pair, device="cpu")
    prompts = tuple(dict.fromkeys(cpu_pair.prompts.eval_prompts))[: args.prompts]
    spec = MeasureSpec(prompts, tuple(cpu_pair.prompts.heldout_neutral[:100]), n_samples=2, max_new_tokens=12,
                       seed=7, batch_size=64)
    scorers = interp.get_scorers(["profanity", "lexicon"])
    n = len(prompts) * spec.n_samples
    runs = {"cpu fp32": (cpu_pair, None)}
    if cuda:
        runs["cuda fp32"] = (interp.load_pair(args.pair, device="cuda"), None)
        runs["cuda bf16"] = (interp.load_pair(args.pair, device="cuda", dtype=torch.bfloat16), None)
    ms = {}
    for label, (pair, _) in runs.items():
        try:
            m, dt = timed_measure(pair, spec, scorers, label)
        except Exception as e:  # a device-specific failure is a finding: record it, go on
            res[label] = {"error": _err(e)}
            print(f"{label}: FAILED {res[label]['error']}")
            continue
        ms[label] = m
        res[label] = {"samples_per_s": n / dt, "seconds": dt, "toxicity": m.rate(scorers[0].name),
                      "toxicity_lexicon": m.rate(scorers[1].name), "perplexity": m.perplexity}
        print(f"{label:10s}: {n / dt:8.1f} samples/s ({dt:.2f} s for {n}), toxicity {res[label]['toxicity']:.3f}, "
              f"perplexity {m.perplexity:.3f}")
    for label in ms:
        if label != "cpu fp32" and "cpu fp32" in ms:
            same = sum(a == b for a, b in zip(ms[label].completions, ms["cpu fp32"].completions))
            res[label]["same_completions_as_cpu"] = same / n
            res[label]["speedup_vs_cpu"] = res[label]["samples_per_s"] / res["cpu fp32"]["samples_per_s"]
            print(f"{label}: {same}/{n} completions identical to the CPU's; {res[label]['speedup_vs_cpu']:.1f}x its speed")

    if cuda:
        _guard(res, "device_map_auto", lambda: _device_map_check(args.pair, prompts))
    if not args.skip_reproduction:
        pair = runs["cuda fp32" if cuda else "cpu fp32"][0]
        res.update(_guard(res, "reproduction", lambda: _reproduction(args.pair, pair, args.out, cuda)) or {})
    if args.json:
        from interp.reproduce.report import provenance

        Path(args.json).write_text(json.dumps({**res, "provenance": provenance()}, indent=2, default=str))
    return res


if __name__ == "__main__":
    main()
