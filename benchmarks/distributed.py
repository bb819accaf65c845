"""Benchmark: one process against N under torchrun, on the same reproduction (a script, not a test).

Runs ``interp reproduce toxicity`` on a pair once as a single process (all threads) and once as
``torchrun --standalone --nproc-per-node N`` (threads split evenly), each on a fresh copy of the
cache without measurements, and prints both wall times, their ratio, and whether the two reports
agree number for number (timings aside) — and if not, how far apart they are: with different
thread counts per process BLAS may sum in another order (the test runs both at one thread and
asserts identity).

Run: ``python benchmarks/distributed.py [--pair organism:tiny] [--nproc 2] [--json FILE] [-- extra flags]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from interp.reproduce.report import without_timings


def _leaves(d, path=""):
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _leaves(v, f"{path}.{k}")
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, d


def compare(a: dict, b: dict) -> dict:
    """How two reports differ: differing leaves, the largest numeric difference, same verdicts."""
    la, lb = dict(_leaves(without_timings(a))), dict(_leaves(without_timings(b)))
    diff = [k for k in la.keys() | lb.keys() if la.get(k) != lb.get(k)]
    num = [abs(la[k] - lb[k]) for k in diff if isinstance(la.get(k), float) and isinstance(lb.get(k), float)]
    verdicts = [f["holds"] for f in a["findings"]] == [f["holds"] for f in b["findings"]]
    return {"leaves": len(la), "differing": len(diff), "max_abs_numeric_diff": max(num, default=0.0),
            "same_verdicts": verdicts, "examples": sorted(diff)[:5]}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pair", default="organism:tiny")
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--json", default=None)
    ap.add_argument("extra", nargs="*", help="flags for interp reproduce toxicity (after --)")
    args = ap.parse_args(argv)

    import torch

    from interp.io import cache_dir
    from interp.pair import load_pair

    load_pair(args.pair)  # build what the cache lacks, outside the timing
    threads = torch.get_num_threads()
    flags = ["reproduce", "toxicity", "--pair", args.pair, "--no-progress", "--no-figures", *args.extra]
    res = {"pair": args.pair, "nproc": args.nproc, "threads": threads, "flags": flags}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        runs = {}
        for label, n in (("one", 1), ("many", args.nproc)):
            cache = tmp / f"cache-{label}"
            shutil.copytree(cache_dir(), cache, ignore=shutil.ignore_patterns("measurements", "real", "gguf"))
            env = {**os.environ, "INTERP_CACHE": str(cache), "OMP_WAIT_POLICY": "PASSIVE",
                   "OMP_NUM_THREADS": str(max(1, threads // n))}
            cmd = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(n)]
                   if n > 1 else [sys.executable])
            t = time.perf_counter()
            out = subprocess.run([*cmd, "-m", "interp", *flags, "--out", str(tmp / label)], env=env,
                                 capture_output=True, text=True)
            runs[label] = time.perf_counter() - t
            if out.returncode:
                raise SystemExit(out.stderr[-3000:])
        a = json.loads((tmp / "one" / "seed-0" / "toxicity.json").read_text())
        b = json.loads((tmp / "many" / "seed-0" / "toxicity.json").read_text())
        res.update(one_process_s=runs["one"], n_processes_s=runs["many"], speedup=runs["one"] / runs["many"],
                   identical=without_timings(a) == without_timings(b), difference=compare(a, b))
    print(f"{args.pair}: 1 process ({threads} threads) {runs['one']:.0f} s; {args.nproc} processes "
          f"({max(1, threads // args.nproc)} thread(s) each) {runs['many']:.0f} s; speed-up {res['speedup']:.2f}x; "
          f"reports identical: {res['identical']} ({res['difference']})")
    if args.json:
        from interp.reproduce.report import provenance

        Path(args.json).write_text(json.dumps({**res, "provenance": provenance()}, indent=2))
    return res


if __name__ == "__main__":
    main()
