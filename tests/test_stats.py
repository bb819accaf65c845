"""The statistics module against closed-form cases, and the findings' verdict logic."""

import math

import numpy as np
import pytest

from interp import stats
from interp.findings import (
    Finding,
    finalize,
    findings_table,
    pairs_table,
    seeds_table,
    summarize_seeds,
)


def test_binomial_se_and_cluster_means():
    assert stats.binomial_se(0.5, 100) == pytest.approx(0.05)
    assert stats.binomial_se(0.0, 10) == 0.0
    assert stats.cluster_means([1, 0, 1, 1, 0, 0], 3).tolist() == [0.5, 1.0, 0.0]
    with pytest.raises(ValueError):
        stats.cluster_means([1, 2, 3], 2)


def test_mean_interval_matches_the_normal_theory_interval():
    x = np.random.default_rng(0).normal(1.0, 2.0, size=400)
    est = stats.mean(x, seed=1)
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)
    assert est.value == pytest.approx(x.mean())
    assert est.lo == pytest.approx(x.mean() - half, abs=0.03)
    assert est.hi == pytest.approx(x.mean() + half, abs=0.03)
    assert est.se == pytest.approx(x.std(ddof=1) / math.sqrt(x.size), rel=0.1)
    assert est.n == 400


def test_paired_difference_p_values_and_degenerate_cases():
    rng = np.random.default_rng(2)
    a = rng.normal(0.5, 1, 200)
    b = a - 0.3 + rng.normal(0, 0.1, 200)  # a exceeds b by 0.3, tightly paired
    d = stats.paired_difference(a, b)
    assert d.value == pytest.approx(0.3, abs=0.02) and d.lo > 0.25 and d.p < 0.001
    # Pairing is what makes it tight: the unpaired s.e. would be ~10× larger.
    assert d.se < 0.2 * math.sqrt(a.var() / 200 + b.var() / 200)
    null = stats.paired_difference(b, b + rng.normal(0, 1, 200), alternative="two-sided")
    assert null.p > 0.01
    same = stats.paired_difference([0.1, 0.2], [0.1, 0.2])
    assert (same.value, same.lo, same.hi, same.p) == (0.0, 0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="differ in size"):
        stats.paired_difference([1, 2], [1])


def test_share_of_effect_is_exact_for_a_half_restoration():
    rng = np.random.default_rng(3)
    base = rng.uniform(0.3, 0.6, 100)
    aligned = base - 0.2
    arm = aligned + 0.5 * (base - aligned)
    s = stats.share_of_effect(arm, aligned, base)
    assert s.value == pytest.approx(0.5) and s.lo == pytest.approx(0.5) and s.hi == pytest.approx(0.5)
    assert math.isnan(stats.share_of_effect(arm, base, base).value)  # no effect to share


def test_holm_kappa_empirical_p_and_power():
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.02, None]) == [0.02, None]
    assert stats.kappa([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.5)
    assert stats.kappa([1, 0, 1], [1, 0, 1]) == 1.0
    assert stats.empirical_p(-5.0, np.arange(99)) == pytest.approx(0.01)
    assert stats.empirical_p(200.0, np.arange(99), alternative="greater") == pytest.approx(0.01)
    assert stats.min_detectable(1.0) == pytest.approx(1.6449 + 0.8416, abs=1e-3)
    assert stats.min_detectable(1.0, alternative="two-sided") == pytest.approx(1.96 + 0.8416, abs=1e-3)


def test_paired_interval_covers_a_true_null_at_its_level():
    """Clustered data under the null: the 95% interval over prompts excludes 0 in about 5% of
    runs (here 100 runs: at most 12, a generous binomial bound)."""
    rng = np.random.default_rng(4)
    misses = 0
    for _ in range(100):
        prompt_effect = rng.normal(0, 1, 60)  # shared by both arms: the pairing removes it
        a = prompt_effect + rng.normal(0, 0.3, 60)
        b = prompt_effect + rng.normal(0, 0.3, 60)
        e = stats.paired_difference(a, b, alternative="two-sided", seed=int(rng.integers(1 << 30)))
        misses += not (e.lo <= 0 <= e.hi)
    assert misses <= 12


def _f(key, holds, p=None, requires=None):
    return Finding(key, f"claim {key}", "", "criterion", "measured", holds, p, requires=requires)


def test_findings_need_every_scorer_the_correction_and_their_precondition():
    fs = finalize([
        _f("pre", {"a": True, "b": True}, 0.001),
        _f("both", {"a": True, "b": True}, 0.004, requires="pre"),
        _f("one", {"a": True, "b": False}, 0.001, requires="pre"),
        _f("weak", {"a": True, "b": True}, 0.03, requires="pre"),  # < 0.05 alone, not after Holm
        _f("weak2", {"a": True, "b": True}, 0.03, requires="pre"),
        _f("nop", {"any": True}, None, requires="pre"),
    ])
    assert [f.verdict for f in fs] == ["yes", "yes", "no", "no", "no", "yes"]
    assert fs[3].p_holm == pytest.approx(0.06)
    gated = finalize([_f("pre", {"a": False}, 0.5), _f("dep", {"a": True}, 0.001, requires="pre")])
    assert gated[1].verdict == "not tested" and "does not hold" in gated[1].untested and not gated[1].holds
    assert gated[1].ungated == {"a": True} and gated[1].holds_ungated  # the criterion's own result, kept
    chain = finalize([_f("pre", {"a": False}, 0.5), _f("loc", {"a": True}, 0.001, requires="pre"),
                      _f("dep", {"a": True}, 0.001, requires=["loc"])])
    assert [f.verdict for f in chain] == ["no", "not tested", "not tested"] and "was not tested" in chain[2].untested
    assert "*not tested*" in findings_table(chain, scorers=["a"])
    assert Finding.from_dict(chain[2].to_dict()).verdict == "not tested"
    table = findings_table(fs, scorers=["a", "b"])
    assert table.count("\n") == 7 and "**no**" in table and "✗" in table


def test_seed_summary_says_mixed_when_seeds_disagree():
    runs = {s: finalize([_f("c", {"a": s != 2}, 0.001)]) for s in range(5)}
    (m,) = summarize_seeds(runs)
    assert (m.k, m.verdict) == (4, "mixed (4/5)")
    assert m.holds_by["a"] == [True, True, False, True, True]
    assert "mixed (4/5)" in seeds_table([m])
    (y,) = summarize_seeds({s: finalize([_f("c", {"a": True}, 0.001)]) for s in range(3)})
    assert y.verdict == "yes (3/3)"
    d = Finding.from_dict(runs[2][0].to_dict())
    assert d.holds is False and d.key == "c"
    # Seeds where a precondition failed count as not tested, not as "no".
    part = {s: finalize([_f("pre", {"a": s != 0}, 0.001), _f("c", {"a": False}, 0.001, requires="pre")])
            for s in range(3)}
    m = summarize_seeds(part)[1]
    assert m.verdict == "no (0/2; not tested in 1)" and m.n_tested == 2
    none = summarize_seeds({s: finalize([_f("pre", {"a": False}, 0.5), _f("c", {"a": True}, 0.001, requires="pre")])
                            for s in range(2)})[1]
    assert none.verdict == "not tested (2/2)"


def test_the_public_surface_shadows_no_module():
    """``import interp.record as R`` must give the module: no name exported by ``interp``
    may hide a submodule of the same name."""
    import importlib
    import pkgutil

    import interp

    for m in pkgutil.iter_modules(interp.__path__):
        if m.name == "__main__":  # python -m interp: the command line, run on import
            continue
        importlib.import_module(f"interp.{m.name}")
        assert getattr(interp, m.name).__name__ == f"interp.{m.name}", m.name


def test_difference_of_independent_samples():
    rng = np.random.default_rng(5)
    a, b = rng.normal(1.0, 1, 300), rng.normal(0.5, 1, 200)
    d = stats.difference(a, b)
    se = math.sqrt(a.var(ddof=1) / 300 + b.var(ddof=1) / 200)
    assert d.value == pytest.approx(a.mean() - b.mean())
    assert d.se == pytest.approx(se, rel=0.15) and d.lo < d.value < d.hi and d.p < 0.001
    assert stats.difference([1, 1], [1, 1]).p == 1.0
    assert math.isnan(stats.difference([], [1]).value)


def test_ratio_of_sums_weights_clusters_by_size():
    r = stats.ratio_of_sums([1, 9], [10, 10])
    assert r.value == pytest.approx(0.5) and r.n == 2
    assert stats.ratio_of_sums([2, 2, 2], [4, 4, 4]).lo == pytest.approx(0.5)
    assert math.isnan(stats.ratio_of_sums([0], [0]).value)


def test_seed_table_of_scorer_free_claims_has_its_column():
    (m,) = summarize_seeds({s: finalize([_f("c", {"any": s > 0}, None)]) for s in range(3)})
    table = seeds_table([m])
    head, rule, row = table.splitlines()
    assert head.count("|") == rule.count("|") == row.count("|") and "any (seeds)" in head and "2/3" in row


def test_no_import_cycle_among_interp_modules():
    """Every import inside interp — at module level or inside a function — points down the
    layers: the import graph has no cycle (named pairs resolve through interp.registry)."""
    import ast
    import pathlib

    import networkx as nx

    root = pathlib.Path(__file__).resolve().parent.parent / "interp"
    mods = {}
    for p in root.rglob("*.py"):
        parts = ("interp", *p.relative_to(root).with_suffix("").parts)
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    g = nx.DiGraph()
    for m, p in mods.items():
        if m == "interp":  # the public surface re-exports everything; it is nobody's dependency
            continue
        pkg = m.split(".") if p.name == "__init__.py" else m.split(".")[:-1]
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(pkg[: len(pkg) - node.level + 1]) if node.level else ""
                target = ".".join(x for x in (base, node.module or "") if x)
                for a in node.names:
                    t = f"{target}.{a.name}" if f"{target}.{a.name}" in mods else target
                    if t in mods and t != m and t != "interp":
                        g.add_edge(m, t)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in mods and a.name != m:
                        g.add_edge(m, a.name)
    assert g.number_of_edges() > 50
    cycles = list(nx.simple_cycles(g))
    assert not cycles, cycles[:5]


def test_notebooks_and_the_readme_use_only_public_names():
    """Notebook cells and the README's Python blocks reach interp through ``import interp`` and
    public attributes only: no ``from interp.x.y import``, no ``_private`` name, and every
    ``interp.a.b`` they name exists."""
    import ast
    import json
    import pathlib
    import re

    import interp

    root = pathlib.Path(__file__).resolve().parent.parent
    sources = []
    for nb in sorted((root / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        sources += [(nb.name, "".join(c["source"])) for c in cells if c["cell_type"] == "code"]
    readme = (root / "README.md").read_text()
    sources += [("README.md", b) for b in re.findall(r"```python\n(.*?)```", readme, re.S)]
    assert len(sources) > 20
    n_names = 0
    for where, code in sources:
        tree = ast.parse(code)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("interp"):
                raise AssertionError(f"{where}: from {node.module} import … (use import interp)")
            if isinstance(node, ast.Attribute):
                chain, x = [], node
                while isinstance(x, ast.Attribute):
                    chain.append(x.attr)
                    x = x.value
                if isinstance(x, ast.Name) and x.id == "interp":
                    chain.reverse()
                    obj = interp
                    for i, part in enumerate(chain):
                        assert not part.startswith("_"), f"{where}: interp.{'.'.join(chain)}"
                        if i < 2:  # a module or a function/class of it
                            obj = getattr(obj, part, None)
                            assert obj is not None, f"{where}: interp.{'.'.join(chain[:i + 1])} does not exist"
                    n_names += 1
    assert n_names > 30


def _bernoulli_pairs(rng, n, m, p_a, p_b):
    """Per-sample flags (prompt-major) for two arms with per-prompt probabilities p_a, p_b."""
    a = rng.random((n, m)) < p_a[:, None]
    b = rng.random((n, m)) < p_b[:, None]
    return a.astype(float).ravel(), b.astype(float).ravel()


def test_variance_components_recover_a_planted_split():
    rng = np.random.default_rng(0)
    n, m = 40_000, 4
    p_a = rng.beta(2, 8, n)
    p_b = np.clip(p_a * 0.3 + rng.normal(0, 0.05, n), 0, 1)
    a, b = _bernoulli_pairs(rng, n, m, p_a, p_b)
    vb, vw = stats.variance_components(a, b, n)
    assert vb == pytest.approx(np.var(p_a - p_b), rel=0.2)
    assert vw == pytest.approx(np.mean(p_a * (1 - p_a) + p_b * (1 - p_b)), rel=0.05)
    with pytest.raises(ValueError, match="2 samples"):
        stats.variance_components(a[:n], b[:n], n)  # one sample per prompt: no within-prompt variance


def test_a_designed_size_reaches_its_half_width_and_no_cheaper_one_would():
    rng = np.random.default_rng(1)
    n_pool, n_pilot = 400, 60

    def world(n):
        p_a = rng.beta(2, 8, n)
        return p_a, p_a * 0.2

    p_a, p_b = world(n_pilot)
    a, b = _bernoulli_pairs(rng, n_pilot, 2, p_a, p_b)  # the pilot: 60 prompts × 2 samples
    d = stats.design_paired(a, b, n_pilot, target=0.02, n_max=n_pool, samples=range(2, 13))
    assert d.met and d.halfwidth <= 0.02 and d.n_prompts <= n_pool
    if d.n_samples > 2:  # the fewest samples per prompt that fit in the pool (cost grows with m)
        assert 1.96 * math.sqrt((d.var_between + d.var_within / (d.n_samples - 1)) / n_pool) > 0.02
    # Run the design many times on fresh prompts: the CI half-width it promised is what it gets
    # (within the pilot's own error: 60 prompts estimate the variance to about ±20%).
    diffs = []
    for _ in range(300):
        pa, pb = world(d.n_prompts)
        x, y = _bernoulli_pairs(rng, d.n_prompts, d.n_samples, pa, pb)
        diffs.append(x.mean() - y.mean())
    assert 1.96 * np.std(diffs) == pytest.approx(0.02, rel=0.3)
    # Out of reach: the largest size, said so.
    far = stats.design_paired(a, b, n_pilot, target=0.001, n_max=n_pool, samples=range(2, 41))
    assert not far.met and far.n_prompts == n_pool and far.halfwidth > 0.001
    best = 1.96 * math.sqrt((far.var_between + far.var_within / 40) / n_pool)
    assert far.halfwidth <= 1.05 * best  # within 5% of the best reachable, at the fewest samples
    assert 1.96 * math.sqrt((far.var_between + far.var_within / (far.n_samples - 1)) / n_pool) > 1.05 * best


def test_pairs_table_puts_each_pair_beside_the_others_by_claim():
    seeds = summarize_seeds({s: finalize([_f("c", {"a": s != 2, "b": True}, 0.001), _f("d", {"a": True, "b": True}, 0.001)])
                             for s in range(5)})
    one = finalize([_f("d", {"a": True, "b": False}, 0.001), _f("c", {"a": True, "b": True}, 0.001),
                    _f("e", {"any": True}, 0.001)])
    table = pairs_table({"organism": seeds, "real": one, "later": None}, scorers=["a", "b", "grammar"])
    rows = table.splitlines()[2:]
    assert len(rows) == 3 and rows[0].startswith("| claim c |")  # the first column's order
    # No scorer decides claim e: no per-scorer marks; with no effect estimate, what was measured.
    assert rows[2].split("|")[3].strip() == "yes; measured"
    cells = [[c.strip() for c in r.strip("|").split("|")] for r in rows]
    assert cells[0][1].startswith("**mixed (4/5)**") and cells[0][2].startswith("yes") and cells[0][3] == "—"
    assert cells[1][1].startswith("yes (5/5)") and cells[1][2].startswith("**no**") and cells[1][2].endswith("(✓ ✗)")


def test_pairs_table_cell_without_an_effect_states_what_was_measured():
    f = Finding("o", "claim o", "", "criterion", "a: -0.139 (n=135; majority 0.852); random directions s.d. 0.039; "
                "per layer -0.042, -0.066", {"a": True, "b": False}, 0.04)
    cell = pairs_table({"real": finalize([f])}, scorers=["a", "b"]).splitlines()[2].split("|")[2].strip()
    assert cell == "**no**; a: -0.139 (n=135; majority 0.852); random directions s.d. 0.039 (✓ ✗)"


def test_a_measurement_says_where_it_came_from():
    """Reports record the machine beside their timings; benchmarks also the time, command and commit."""
    import re

    from interp.reproduce.report import machine, provenance, without_timings

    m = machine()
    assert m["cores"] >= 1 and m["torch_threads"] >= 1 and m["torch"] and "processor" in m
    p = provenance(["benchmarks/measure.py", "--pair", "organism:small"])
    assert {**p, "utc": None, "commit": None, "command": None} == {**m, "utc": None, "commit": None, "command": None}
    assert p["command"] == ["benchmarks/measure.py", "--pair", "organism:small"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", p["utc"])
    assert p["commit"] is None or re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", p["commit"])
    assert without_timings({"a": 1, "timings": {"x": 1}, "machine": m}) == {"a": 1}


def test_token_kl_is_zero_for_the_same_model_and_matches_a_direct_computation(gpt2):
    import torch
    import torch.nn.functional as F

    from interp.evaluate import token_kl
    from interp.steer import ScaleNeurons

    texts = ["the cat sat on the mat", "a dog", "thank you kindly and see you soon"]
    s, n = token_kl(gpt2, texts)
    assert torch.allclose(s, torch.zeros_like(s), atol=1e-5) and n.tolist() == [
        len(gpt2.to_tokens(t)[0]) - 1 for t in texts]
    from interp.neurons import Neurons

    hook = ScaleNeurons(Neurons(torch.tensor([1, 1]), torch.tensor([3, 7])), 5.0)
    s, n = token_kl(gpt2, texts, hooks=[hook], batch_size=2)
    assert (s > 0).all()
    ids = gpt2.to_tokens(texts[0])
    ref = F.log_softmax(gpt2(ids).float()[0, :-1], -1)
    with gpt2.hooks(fwd_hooks=hook.fwd_hooks(gpt2)):
        arm = F.log_softmax(gpt2(ids).float()[0, :-1], -1)
    assert float(s[0]) == __import__("pytest").approx(float((ref.exp() * (ref - arm)).sum()), rel=1e-4)
