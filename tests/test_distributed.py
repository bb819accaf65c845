"""Two processes under torchrun (gloo on CPU) give what one process gives: the tiny organism's
toxicity reproduction (every JSON number) and a streamed recording (every shard tensor), and a
distributed recording resumes what a rank left undone. CI runs these after the suite
(``-m distributed``); each starts real processes through ``torchrun``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from interp.reproduce.report import without_timings

from .conftest import copy_cache

pytestmark = pytest.mark.distributed


def _env(cache) -> dict:
    # One thread per process in both runs: the comparison is about the split, not BLAS threading.
    return {**os.environ, "INTERP_CACHE": str(cache), "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
            "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}


def _torchrun(n: int, args: list[str], env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(n)]
           if n > 1 else [sys.executable])
    out = subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_two_processes_reproduce_toxicity_exactly_as_one(organism_cache, tmp_path):
    env = _env(organism_cache)
    args = ["-m", "interp", "reproduce", "toxicity", "--pair", "organism:tiny", "--no-progress",
            "--no-figures", "--no-patching", "--n-shuffled-probes", "5", "--families", "lee_scale_keys",
            "add_probe"]
    # Fresh measurements in each run (a separate cache copy), so neither reads the other's results.
    one_cache, two_cache = tmp_path / "c1", tmp_path / "c2"
    for c in (one_cache, two_cache):
        copy_cache(organism_cache, c, ignore=("measurements",))
    _torchrun(1, [*args, "--out", str(tmp_path / "one")], {**env, "INTERP_CACHE": str(one_cache)})
    two = _torchrun(2, [*args, "--out", str(tmp_path / "two")], {**env, "INTERP_CACHE": str(two_cache)})
    a = json.loads((tmp_path / "one" / "seed-0" / "toxicity.json").read_text())
    b = json.loads((tmp_path / "two" / "seed-0" / "toxicity.json").read_text())
    assert without_timings(a) == without_timings(b)
    assert a["test"]["base"]["n"] > 0 and a["arms"]["lee_scale_keys"]["arm"]["per_prompt_rate"]
    assert two.stdout.count("wrote ") == 1  # rank 0 alone writes and prints


# Small settings: the test is whether two processes give one process's report exactly, which
# needs the code paths run, not the statistics' power.
@pytest.mark.parametrize("command, pair, report, extra", [
    ("token-shift", "organism:tiny", "token_shift.json", ["--n-prompts", "80"]),
    ("knowledge", "organism:tiny:hide", "seed-0/knowledge.json", []),
])
def test_two_processes_run_the_other_reproductions_as_one(organism_cache, tmp_path, command, pair, report, extra):
    args = ["-m", "interp", "reproduce", command, "--pair", pair, "--no-figures", *extra]
    for n, name in ((1, "one"), (2, "two")):  # each on its own cache copy: nothing read from the other
        cache = tmp_path / f"cache-{name}"
        copy_cache(organism_cache, cache, ignore=("measurements",))
        _torchrun(n, [*args, "--out", str(tmp_path / name)], {**_env(organism_cache), "INTERP_CACHE": str(cache)})
    a, b = ((tmp_path / d / report).read_text() for d in ("one", "two"))
    # NaN where a set is empty: compare the serialised reports, where NaN equals NaN.
    assert json.dumps(without_timings(json.loads(a)), sort_keys=True) == json.dumps(without_timings(json.loads(b)), sort_keys=True)


_RECORD = """
import sys, interp
from interp import distributed
from interp.pair import load_pair
distributed.init()
pair = load_pair("organism:tiny")
texts = list(pair.prompts.eval_prompts)[:90]
interp.record.record(pair.base, texts, [pair.hook("resid_post", -1), pair.hook("mlp_post", 0)], batch_size=8,
              out_dir=sys.argv[1], progress=False)
"""


def test_two_processes_record_the_same_shards_and_resume(organism_cache, tmp_path):
    from safetensors.torch import load_file

    from interp.io import read_json

    env = _env(organism_cache)
    script = tmp_path / "rec.py"
    script.write_text(_RECORD)
    _torchrun(1, [str(script), str(tmp_path / "one")], env)
    _torchrun(2, [str(script), str(tmp_path / "two")], env)
    one, two = read_json(tmp_path / "one" / "manifest.json"), read_json(tmp_path / "two" / "manifest.json")
    assert two["complete"] and two["ranks"] == 2 and not list((tmp_path / "two").glob("manifest.rank-*"))
    assert [s["sha256"] for s in one["shards"]] == [s["sha256"] for s in two["shards"]]  # byte for byte
    # A rank's shard lost (as if it died before writing it): a rerun records that shard alone.
    lost = two["shards"][3]
    (tmp_path / "two" / lost["file"]).unlink()
    kept = {s["file"]: (tmp_path / "two" / s["file"]).stat().st_mtime_ns for s in two["shards"] if s is not lost}
    _torchrun(2, [str(script), str(tmp_path / "two")], env)
    again = read_json(tmp_path / "two" / "manifest.json")
    assert again["complete"] and [s["sha256"] for s in again["shards"]] == [s["sha256"] for s in one["shards"]]
    assert all((tmp_path / "two" / f).stat().st_mtime_ns == t for f, t in kept.items())
    a = load_file(str(tmp_path / "one" / lost["file"]))
    b = load_file(str(tmp_path / "two" / lost["file"]))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_batch_loops_split_round_robin_and_gather_in_order(monkeypatch):
    """The idiom, without processes: rank r of N owns batches r, r+N, …; a missing batch is an error."""
    from interp import distributed

    monkeypatch.setattr(distributed, "world", lambda: (1, 3))
    assert [b for b in range(8) if distributed.owns(b)] == [1, 4, 7]
    with pytest.raises(RuntimeError, match="computed by no rank"):
        monkeypatch.setattr(distributed, "world", lambda: (0, 1))
        distributed.gather([(0, "a"), (2, "c")], 3)
    assert distributed.gather([(1, "b"), (0, "a")], 2) == ["a", "b"]

