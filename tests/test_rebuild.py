"""CI rebuilds ``organism:small`` (seed 0) from an empty cache and reproduces the committed seed-0
report: the same verdict on every claim, and the base and aligned models' test toxicity within
the committed 95% intervals — or, where another processor's float kernels gave other weights,
within the spread of two runs of the recipe (from the committed seeds). A stale cache entry, or a change to the code that builds the
organism or measures it, can therefore never leave committed results behind unnoticed.

Marked ``rebuild`` (~10 minutes on 2 cores); ``bash run.sh test`` runs it after the suite.
"""

import dataclasses
import json
import math
import statistics
from pathlib import Path

import pytest

REPORT = Path(__file__).resolve().parent.parent / "figures" / "out" / "organism-small" / "seed-0" / "toxicity.json"


@pytest.mark.rebuild
def test_a_fresh_rebuild_gives_the_committed_seed0_verdicts(tmp_path, monkeypatch):
    from interp.reproduce import toxicity as T

    committed = json.loads(REPORT.read_text())
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "empty-cache"))
    cfg = T.ToxicityConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in committed["config"].items()})
    # Every claim is decided by the same arms whatever else the run measures: Lee et al.'s family
    # (its dev sweep and test arms) and the whole-group reverts. The exploratory families, the
    # per-layer reverts and activation patching feed tables and figures only, and are keyed out
    # of locate and compare (toxicity.LATER_ONLY): leaving them out changes no verdict and no rate
    # checked here, and saves ~4 of the ~8 minutes.
    cfg = dataclasses.replace(cfg, families=("lee_scale_keys",), per_layer_location=False, patching=False)
    fresh = T.to_json(T.run(cfg, progress=False, log=lambda *a: None))
    # Whether the weights came out byte for byte the same is reported, not required: another
    # processor's float kernels may round differently, and then only the verdicts must hold.
    want = committed.get("provenance", {}).get("weights_sha256")
    got = fresh["provenance"].get("weights_sha256")
    print(f"rebuilt weights {'identical to' if got == want else 'differ from'} the committed report's: {got} vs {want}")
    assert [f["key"] for f in fresh["findings"]] == [f["key"] for f in committed["findings"]]
    changed = [(f["key"], c["holds"], f["holds"]) for f, c in zip(fresh["findings"], committed["findings"])
               if f["holds"] != c["holds"]]
    assert not changed, f"verdicts differ from the committed report (claim, committed, fresh): {changed}"
    # The same weights: only sampling could move a rate (and it cannot: sampling is keyed), so the
    # committed 95% interval. Other weights (another processor's rounding): a second training run
    # of the same recipe, whose rate differs from the committed one as two runs do — 1.96·√2 times
    # the spread across the committed seeds (each seed's run holds its own sampling noise too).
    seeds = [json.loads(p.read_text()) for p in sorted(REPORT.parent.parent.glob("seed-*/toxicity.json"))]
    for role in ("base", "aligned"):
        for s in committed["scorers"]:
            c, f = committed["test"][role]["rate"][s], fresh["test"][role]["rate"][s]
            n = committed["test"][role]["n"]
            if got == want:
                half = 1.96 * math.sqrt(max(c * (1 - c), 1e-4) / n)
            else:
                half = 1.96 * math.sqrt(2) * statistics.stdev(r["test"][role]["rate"][s] for r in seeds)
            assert abs(f - c) <= half, (role, s, c, f, half, "same weights" if got == want else "other weights")
