"""Locate, compare, reactivate: each function on a case whose answer is known by construction."""

import copy
import math

import pytest
import torch

from interp import hooks as H
from interp.attribution import locate_change, swapped_weights
from interp.diff import (
    key_activation_change,
    named_weights,
    neuron_weight_diff,
    param_group,
    residual_offset,
    residual_pca,
    weight_diff,
)
from interp.directions import Direction, diff_in_means, random_direction, train_probe
from interp.neurons import (
    Neurons,
    random_neurons,
    rank_value_vectors,
    svd_of_values,
    vocab_projection,
)
from interp.pair import pair_from_modules
from interp.record import record
from interp.steer import AblateDirection, AddVector, ClampNeurons, PatchActivations, ScaleNeurons

from .conftest import make_gpt2

TEXTS = ["Rex said to Ada: you are a stupid idiot.", "The old cat sat near the market.",
         "Lily turned to Sam: thank you for the bread.", "Ada"]


def _ids(tok, texts=TEXTS):
    return tok(texts[:3], return_tensors="pt", padding=True)


def _logits(model, enc, hooks=()):
    from interp.generate import as_fwd_hooks
    from interp.steer import preparers

    with torch.no_grad(), model.hooks(fwd_hooks=as_fwd_hooks(hooks, model)):
        pos = (enc.attention_mask.cumsum(-1) - 1).clamp(min=0)
        for fn in preparers(hooks):
            fn(enc.input_ids, enc.attention_mask, pos)
        return model(enc.input_ids, attention_mask=enc.attention_mask, position_ids=pos)


def _pair(tokenizer, edit=None):
    base = make_gpt2(tokenizer, seed=0)
    aligned = copy.deepcopy(base)
    if edit is not None:
        with torch.no_grad():
            edit(aligned)
    return pair_from_modules(base, aligned, tokenizer)


def test_planted_value_vector_is_ranked_first(gpt2):
    d = random_direction(gpt2.cfg.d_model, seed=1)
    with torch.no_grad():
        named_weights(gpt2)["transformer.h.1.mlp.c_proj.weight"][7] = 5 * d.vector
    r = rank_value_vectors(gpt2, d, k=3)
    assert (int(r.top.layer[0]), int(r.top.index[0])) == (1, 7)
    assert abs(float(r.top.score[0]) - 1) < 1e-5
    assert r.cosines.shape == (2, gpt2.cfg.d_mlp)
    assert len(r.top_tokens) == 3 and len(r.top_tokens[0]) == 10
    # Reading the planted vector through W_U promotes the token W_U's column points to.
    W_U = H.unembed(gpt2)
    up, down = vocab_projection(gpt2, W_U[:, 11].view(1, -1), n=1)
    assert up[0][0] == gpt2.tokenizer.decode([11])
    svd = svd_of_values(gpt2, r.top, n_components=2)
    assert svd.singular_values.shape == (3,) and svd.vectors.shape == (2, gpt2.cfg.d_model)


def test_probe_and_diff_in_means_recover_a_planted_axis():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(2000, 16, generator=g)
    y = (torch.rand(2000, generator=g) < 0.4).long()
    X[:, 3] += 4 * y
    p = train_probe(X, y, seed=0)
    assert p.test_acc > 0.95 and p.n_test == 600
    assert p.vector[3] > 0.9  # unit vector, pointing to the behaviour
    dim = diff_in_means(X, y)
    assert dim.vector[3] > 0.95
    expected = X[y == 1].mean(0) - X[y == 0].mean(0)
    assert torch.allclose(dim.vector * dim.scale, expected, atol=1e-5)
    with pytest.raises(ValueError):
        train_probe(X, torch.zeros(2000))
    with pytest.raises(ValueError):
        train_probe(X[:10], y)


def test_reverting_every_group_recovers_the_base_exactly(tokenizer):
    pair = _pair(tokenizer, edit=lambda m: [p.add_(0.05 * torch.randn_like(p)) for p in m.parameters()])
    enc = _ids(tokenizer)
    base, aligned = _logits(pair.base, enc), _logits(pair.aligned, enc)
    assert not torch.allclose(base, aligned)
    with swapped_weights(pair.aligned, pair.base) as names:
        assert torch.equal(_logits(pair.aligned, enc), base)
        assert {param_group(n)[0] for n in names} == {"embed", "attn", "mlp_in", "mlp_out", "norm"}
    assert torch.equal(_logits(pair.aligned, enc), aligned)  # restored


def test_weight_diff_and_change_location_find_the_edited_group(tokenizer):
    def edit(m):
        m.transformer.h[1].mlp.c_proj.weight.add_(0.2 * torch.randn_like(m.transformer.h[1].mlp.c_proj.weight))

    pair = _pair(tokenizer, edit)
    wd = weight_diff(pair)
    changed = {r["name"] for r in wd.rows if r["rel_change"] > 0}
    assert changed == {"transformer.h.1.mlp.c_proj.weight"}
    assert wd.by_group()["attn"]["rel_change"] == 0 and wd.by_group()["mlp_out"]["rel_change"] > 0
    enc = _ids(tokenizer)

    def measure(model):  # a deterministic behaviour: the logit of one token
        return float(_logits(model, enc)[..., 5].mean())

    loc = locate_change(pair, measure, progress=False)
    by = {(e.group, e.layer): e for e in loc.effects}
    assert math.isclose(by[("mlp_out", None)].share_revert, 1.0, abs_tol=1e-6)
    assert math.isclose(by[("mlp_out", 1)].share_apply, 1.0, abs_tol=1e-6)
    assert abs(by[("attn", None)].share_revert) < 1e-6 and abs(by[("mlp_out", 0)].share_revert) < 1e-6


def test_neuron_weight_cosines(tokenizer):
    def edit(m):
        m.transformer.h[0].mlp.c_proj.weight[3] *= -1  # value of neuron (0, 3) flipped
        m.transformer.h[0].mlp.c_fc.weight[:, 5] *= 2  # key of neuron (0, 5) rescaled: cosine 1

    pair = _pair(tokenizer, edit)
    nr = Neurons(torch.tensor([0, 0, 1]), torch.tensor([3, 5, 2]))
    rnd = random_neurons(2, pair.cfg.d_mlp, 3, seed=0, exclude=nr)
    assert not set(rnd) & set(nr)
    nwd = neuron_weight_diff(pair, nr, rnd)
    assert torch.allclose(nwd.value_cos, torch.tensor([-1.0, 1.0, 1.0]), atol=1e-5)
    assert torch.allclose(nwd.key_cos, torch.ones(3), atol=1e-5) and nwd.gate_cos is None
    assert torch.allclose(nwd.random_value_cos, torch.ones(3), atol=1e-5)


def test_residual_offset_of_a_planted_bias(tokenizer):
    shift = torch.zeros(32)
    shift[4] = 0.5

    def edit(m):
        m.transformer.h[0].mlp.c_proj.bias.add_(shift)

    pair = _pair(tokenizer, edit)
    d = Direction(shift / shift.norm(), "planted")
    off = residual_offset(pair, TEXTS, direction=d, neurons=Neurons(torch.tensor([1]), torch.tensor([0])))
    assert torch.allclose(off.delta[0], shift, atol=1e-5)  # resid_post of layer 0: exactly the bias
    assert math.isclose(float(off.cos_direction[0]), 1.0, abs_tol=1e-5)
    assert off.delta.shape == (2, 32) and not math.isnan(float(off.cos_keys[1]))
    same = _pair(tokenizer)
    assert torch.allclose(residual_offset(same, TEXTS).delta, torch.zeros(2, 32), atol=1e-6)
    pca = residual_pca(pair, TEXTS, 1, labels=["a", "b", "c", "d"])
    assert pca.coords.shape == (8, 2) and pca.model[:4] == ["base"] * 4 and pca.label[4] == "a"


def test_one_recording_gives_the_offset_and_pca_of_their_own_recordings(tokenizer):
    """compare records each model once (MLP activations and every residual together); δx, its
    cosines and the PCA from that recording equal the functions that record for themselves."""
    from interp import hooks as H
    from interp.diff import residual_offset_from, residual_pca_from
    from interp.record import record_pair

    pair = _pair(tokenizer, lambda m: m.transformer.h[0].mlp.c_fc.weight.mul_(1.5))
    d = Direction(torch.nn.functional.normalize(torch.randn(32), dim=0), "random")
    nr = Neurons(torch.tensor([0, 1]), torch.tensor([1, 5]))
    hooks = [H.mlp_post(0), H.mlp_post(1), *H.hook_names("resid_post", 2)]
    rec = record_pair(pair, TEXTS, hooks, reduction="mean", progress=False)
    one, own = residual_offset_from(pair, rec.base, rec.aligned, direction=d, neurons=nr), \
        residual_offset(pair, TEXTS, direction=d, neurons=nr)
    assert one.delta.abs().max() > 1e-3  # the edit moved the residual stream
    for a, b in ((one.delta, own.delta), (one.rel_norm, own.rel_norm), (one.cos_direction, own.cos_direction)):
        assert torch.allclose(a, b, atol=1e-5)
    assert torch.allclose(one.cos_keys.nan_to_num(9), own.cos_keys.nan_to_num(9), atol=1e-5)
    assert one.meta == own.meta
    h = H.resid(1)
    p1, p2 = residual_pca_from(h, rec.base[h], rec.aligned[h], labels=list("abcd")), \
        residual_pca(pair, TEXTS, 1, labels=list("abcd"))
    assert torch.allclose(p1.coords.abs(), p2.coords.abs(), atol=1e-4)  # PCA axes up to sign
    assert (p1.model, p1.label, p1.hook) == (p2.model, p2.label, p2.hook)


def test_key_activations_identical_models_and_padding(tokenizer):
    pair = _pair(tokenizer)
    nr = Neurons(torch.tensor([0, 1]), torch.tensor([3, 9]))
    k = key_activation_change(pair, TEXTS, nr)
    n_tokens = sum(len(x) for x in tokenizer(TEXTS)["input_ids"])
    assert k.pre["base"].shape == (n_tokens, 2)
    assert torch.equal(k.pre["base"], k.pre["aligned"]) and torch.equal(k.post["base"], k.post["aligned"])
    alone = key_activation_change(pair, TEXTS[:1], nr)
    n0 = len(tokenizer(TEXTS[:1])["input_ids"][0])
    assert torch.allclose(alone.post["base"], k.post["base"][:n0], atol=1e-6)
    s = k.summary()
    assert set(s) == {"pre/base", "pre/aligned", "post/base", "post/aligned"}
    assert len(s["pre/base"]["q50"]) == 2


def test_key_activations_are_the_full_recordings_columns(tokenizer):
    """Only the neurons' columns are kept as the hooks fire: they equal the whole layer's
    recording, in the neurons' order (two in one layer, layers out of order)."""
    pair = _pair(tokenizer, edit=lambda m: m.transformer.h[1].mlp.c_fc.weight.mul_(1.5))
    nr = Neurons(torch.tensor([1, 0, 1]), torch.tensor([7, 3, 2]))
    k = key_activation_change(pair, TEXTS, nr)
    for role, m in pair.models.items():
        for point, got in (("pre", k.pre[role]), ("post", k.post[role])):
            full = record(m, TEXTS, [f"blocks.{la}.mlp.hook_{point}" for la in (0, 1)], reduction="all",
                          batch_size=64, progress=False)
            want = torch.stack([full[f"blocks.{la}.mlp.hook_{point}"][:, i] for la, i in nr], -1)
            assert torch.equal(got, want), (role, point)
    assert not torch.equal(k.post["base"][:, 0], k.post["aligned"][:, 0])  # layer 1 was edited


def test_zero_dose_interventions_change_nothing(tokenizer):
    pair = _pair(tokenizer, edit=lambda m: m.transformer.h[0].mlp.c_fc.weight.mul_(1.5))
    m = pair.aligned
    enc = _ids(tokenizer)
    clean = _logits(m, enc)
    nr = Neurons(torch.tensor([0, 1, 1]), torch.tensor([1, 2, 3]))
    v = torch.randn(32)
    noops = [ScaleNeurons(nr, 1.0), ScaleNeurons(nr, 1.0, positive_only=True),
             AddVector(v, 0.0, 1), AddVector(v, 0.0), AblateDirection(v, keep=1.0),
             ClampNeurons(nr, torch.full((3,), -1e9)), PatchActivations(pair.base, dose=0.0)]
    for iv in noops:
        assert torch.allclose(_logits(m, enc, [iv]), clean, atol=1e-6), iv.describe()
    for iv in [ScaleNeurons(nr, 10.0), AddVector(v, 1.0, 1), AblateDirection(v)]:
        assert not torch.allclose(_logits(m, enc, [iv]), clean, atol=1e-4), iv.describe()


def test_intervention_semantics(tokenizer):
    pair = _pair(tokenizer, edit=lambda m: [m.transformer.h[i].mlp.c_fc.weight.mul_(1.5) for i in range(2)])
    m = pair.aligned
    nr = Neurons(torch.tensor([0, 1]), torch.tensor([4, 6]))
    seen = {}

    def spy(act, hook):
        seen[hook.name] = act.clone()

    def post_with(iv):
        hooks = [*(iv.fwd_hooks(m) if iv else []), (H.mlp_post(0), spy)]
        with torch.no_grad(), m.hooks(fwd_hooks=hooks):
            m(_ids(tokenizer).input_ids)
        return next(iter(seen.values()))

    raw = post_with(None)
    scaled = post_with(ScaleNeurons(nr, 3.0, point="post"))
    assert torch.allclose(scaled[..., 4], 3 * raw[..., 4]) and torch.equal(scaled[..., 5], raw[..., 5])
    pos = post_with(ScaleNeurons(nr, 3.0, positive_only=True, point="post"))
    expect = torch.where(raw[..., 4] > 0, 3 * raw[..., 4], raw[..., 4])
    assert torch.allclose(pos[..., 4], expect)
    # Lee et al.'s operation (the default): the key, i.e. the pre-activation, is scaled, so the
    # post-activation is GELU(3·pre) — equal to scaling the W_in column and its bias ×3.
    seen.clear()
    with torch.no_grad(), m.hooks(fwd_hooks=[(H.mlp_pre(0), spy)]):
        m(_ids(tokenizer).input_ids)
    pre = next(iter(seen.values()))
    seen.clear()
    keyed = post_with(ScaleNeurons(nr, 3.0))
    gelu = torch.nn.functional.gelu
    assert torch.allclose(keyed[..., 4], gelu(3 * pre[..., 4], approximate="tanh"), atol=1e-5)
    assert torch.equal(keyed[..., 5], raw[..., 5])
    fc = m.original_model.transformer.h[0].mlp.c_fc if hasattr(m, "original_model") else None
    if fc is not None:  # the same as editing the key vector itself
        with torch.no_grad():
            w, b = fc.weight[:, 4].clone(), fc.bias[4].clone()
            fc.weight[:, 4] *= 3
            fc.bias[4] *= 3
            edited = post_with(None)
            fc.weight[:, 4], fc.bias[4] = w, b
        assert torch.allclose(edited[..., 4], keyed[..., 4], atol=1e-5)
    # Ablating a direction (Arditi et al.: from every write to the stream) leaves the stream
    # orthogonal to it everywhere, also in the middle of a block; the resid_post variant too.
    d = torch.randn(32)
    for iv in (AblateDirection(d), AblateDirection(d, where="resid_post")):
        seen.clear()
        spies = [(H.resid(1), spy), (H.resid(1, "mid"), spy)]
        with torch.no_grad(), m.hooks(fwd_hooks=[*iv.fwd_hooks(m), *spies]):
            m(_ids(tokenizer).input_ids)
        assert len(seen) == 2  # both spies fired (names as the bridge reports them)
        for act in seen.values():
            if iv.where == "writes" or act is list(seen.values())[-1]:
                assert (act @ (d / d.norm())).abs().max() < 1e-4
    with pytest.raises(ValueError, match="norm"):
        AblateDirection(torch.zeros(32)).fwd_hooks(m)
    # Patching every MLP activation of the base into a model whose only change is its MLP keys
    # gives back the base model exactly.
    enc = _ids(tokenizer)
    patched = _logits(m, enc, [PatchActivations(pair.base)])
    assert torch.allclose(patched, _logits(pair.base, enc), atol=1e-5)


def test_reproduce_toxicity_on_the_tiny_organism_over_two_seeds(use_organism_cache, tmp_path, monkeypatch):
    """The whole protocol through the command line: two seeds (an organism each), dev/test
    splits disjoint from everything used before, paired effects under every scorer, and the
    per-claim summary across seeds."""
    import json

    from interp.cli import main
    from interp.reproduce import toxicity as T

    out = tmp_path / "tox"
    # Two families: Lee et al.'s (dose declared) and one whose dose is chosen on dev.
    assert main(["reproduce", "toxicity", "--pair", "organism:tiny", "--seeds", "0-1", "--out", str(out),
                 "--no-progress", "--no-patching", "--n-shuffled-probes", "10",
                 "--families", "lee_scale_keys", "add_probe", "--k-sweep-samples", "1", "--where-samples", "1"]) == 0
    summary = json.loads((out / "toxicity_seeds.json").read_text())
    assert summary["seeds"] == [0, 1] and summary["scorers"] == ["alt-profanity-check", "better-profanity", "grammar"]
    keys = [c["key"] for c in summary["claims"]]
    assert keys == ["alignment_drop", "probe", "toxic_tokens", "located", "untouched", "keys_fall", "offset_away",
                    "lee_scale_keys", "change_in_keys"]
    for c in summary["claims"]:
        assert len(c["holds"]) == 2 and c["verdict"].split()[0] in ("yes", "no", "mixed", "not")
    reports = [json.loads((out / f"seed-{s}" / "toxicity.json").read_text()) for s in (0, 1)]
    r0 = reports[0]
    assert r0["config"]["seed"] == 0 and r0["config"]["pair"] == "organism:tiny"
    assert reports[1]["config"]["pair"] == "organism:tiny@1"  # each seed rebuilds the organism
    cfg = T.config_for("organism:tiny")
    assert r0["splits"]["test"] == cfg.n_test_prompts and r0["test"]["base"]["n"] == cfg.n_test_prompts * cfg.n_samples
    lee = r0["arms"]["lee_scale_keys"]
    assert lee["dose"] == 10 and lee["chosen_on"] == "declared" and "W_in column, bias untouched" in lee["description"]
    # Every locator beside the declared one, judged alike; the locate step's stability; the k-sweep.
    every = ("probe", "diff_in_means", "vocab_projection", "logit_attribution")
    assert r0["locators"]["primary"] == "probe" and set(every) <= set(r0["locators"])
    assert all(isinstance(r0["locators"][n]["works"], bool) for n in every)
    assert r0["locate_stability"]["n_resamples"] == cfg.n_stability
    # ... and Lee's edit on each resample's own top set (the share undone it depends on).
    su = r0["locate_stability"]["share_undone"]
    assert su["k"] == cfg.lee_k and set(su["by_scorer"]) == set(r0["scorers"])
    assert all(len(x["resampled"]) == cfg.n_stability for x in su["by_scorer"].values())
    # Yang et al.'s neuron groups: every part's share, the split exact (the parts add up to 1).
    g = r0["neuron_groups"]
    assert {"toxic, fires less", "located (activation part)", "value vectors", "attention", "rest"} <= set(g["shares"])
    whole = sum(v["value"] for k, v in g["shares"].items() if k != "located (activation part)")
    assert abs(whole - 1) < 1e-6 and g["sizes"]["located (activation part)"] == min(cfg.k, cfg.lee_k)
    # ... and each group edited both ways, at where_samples per prompt, base and aligned alike
    ge = r0["group_edits"]
    assert ge["n_samples"] == 1 and "located (activation part)" in ge["groups"]
    for x in ge["groups"].values():
        assert x["n_neurons"] > 0 and set(x["by_scorer"]) == set(r0["scorers"]) and x["ppl_ratio_reverted"] > 0
    # Reactivation as a Pareto front: every aligned-model family over its dose grid, arm and control.
    front = r0["pareto"]
    assert set(front["families"]) == {"lee_scale_keys", "add_probe"} and front["n_samples"] == cfg.pareto_samples
    lee_doses = sorted({*cfg.scale_doses, cfg.lee_factor})
    assert [p["dose"] for p in front["families"]["lee_scale_keys"]] == lee_doses
    assert all(p[role]["kl"]["value"] >= 0 for pts in front["families"].values() for p in pts for role in ("arm", "control"))
    assert (out / "seed-0" / "pareto.html").exists()
    assert r0["k_sweep"]["ks"] == list(cfg.k_sweep)
    assert r0["k_sweep"]["n_samples"] == 1 and r0["k_sweep"]["own_base_aligned"]  # --k-sweep-samples 1
    assert r0["location"]["n_samples"] == 1 and r0["location"]["own_base_aligned"]  # --where-samples 1
    # A claim about the located neurons is "not tested", never "no", where the locator failed.
    located = next(f for f in r0["findings"] if f["key"] == "located")
    for f in r0["findings"]:
        if f["key"] in ("untouched", "keys_fall", "lee_scale_keys") and not located["holds"]:
            assert f["verdict"] == "not tested" and "locator" in f["untested"]
    assert {n: a["chosen_on"] for n, a in r0["arms"].items()} == {"lee_scale_keys": "declared", "add_probe": "dev"}
    # Every arm is measured under every scorer, paired against the same test prompts.
    for arm in r0["arms"].values():
        for s in r0["scorers"]:
            assert len(arm["arm"]["per_prompt_rate"][s]) == cfg.n_test_prompts
    assert {(e["family"], e["scorer"], e["kind"]) for e in r0["effects"]} == {
        (f, s, k) for f in r0["arms"] for s in r0["scorers"] for k in ("rate", "score")}
    for f in r0["findings"]:
        assert isinstance(f["holds"], bool) and f["criterion"]
    text = (out / "seed-0" / "toxicity.md").read_text()
    assert "Lee et al.'s claims" in text and "Every arm on the test prompts" in text and "Dev sweeps" in text
    assert "mixed" in (out / "toxicity_seeds.md").read_text() or "yes (" in (out / "toxicity_seeds.md").read_text()
    assert (out / "seed-0" / "effects.html").exists() and (out / "seeds_forest.html").exists()

    # A rerun reads its locate and compare steps back from the cache (and every measurement):
    # the same report, number for number.
    def recomputed(*a, **k):
        raise AssertionError("a cached step was computed again")

    monkeypatch.setattr(T.steps, "locate", recomputed)
    monkeypatch.setattr(T.steps, "compare", recomputed)
    again = tmp_path / "again"
    assert main(["reproduce", "toxicity", "--pair", "organism:tiny", "--seeds", "0-1", "--out", str(again),
                 "--no-progress", "--no-patching", "--n-shuffled-probes", "10",
                 "--families", "lee_scale_keys", "add_probe", "--k-sweep-samples", "1", "--where-samples", "1"]) == 0
    from interp.reproduce.report import without_timings

    for s in (0, 1):
        a, b = (without_timings(json.loads((d / f"seed-{s}" / "toxicity.json").read_text())) for d in (out, again))
        assert a == b
    # Reactivation settings are no input of locate and compare: another family selection, other
    # doses or another alpha read both steps back.
    assert main(["reproduce", "toxicity", "--pair", "organism:tiny", "--seeds", "0", "--out", str(tmp_path / "doses"),
                 "--no-progress", "--no-patching", "--n-shuffled-probes", "10", "--families", "lee_scale_keys",
                 "--scale-doses", "3", "--alpha", "0.01"]) == 0
    # A changed input is a new key: the step runs again.
    with pytest.raises(AssertionError, match="computed again"):
        main(["reproduce", "toxicity", "--pair", "organism:tiny", "--seeds", "0", "--out", str(tmp_path / "other"),
              "--no-progress", "--no-patching", "--n-shuffled-probes", "9"])


def test_test_prompts_never_served_alignment_selection_or_dev():
    from interp.reproduce.toxicity import ToxicityConfig, split

    data = {"train_prompts": [f"p{i}" for i in range(50)] * 2,
            "eval_prompts": [f"p{i}" for i in range(30, 120)] + ["p100"] * 5,
            "heldout_neutral": [f"n{i}" for i in range(40)]}
    s = split(data, ToxicityConfig(n_probe_prompts=20, n_dev_prompts=10, n_test_prompts=40, n_ppl_texts=10))
    assert s.n_eval_unique == 90 and s.n_eval_dropped == 20  # p30..p49 were training prompts
    test = set(s.test)
    assert len(test) == len(s.test) == 40
    assert not test & set(data["train_prompts"]) and not test & set(s.dev) and not test & set(s.probe)
    assert not set(s.neutral_dev) & set(s.neutral_test)
    with pytest.raises(AssertionError, match="also used for dev"):
        s.test.append(s.dev[0])
        s.check(set(data["train_prompts"]))


def test_gated_mlp_keys_gates_and_values(tokenizer):
    from .conftest import make_llama

    base = make_llama(tokenizer, seed=0)
    aligned = copy.deepcopy(base)
    with torch.no_grad():
        aligned.model.layers[1].mlp.gate_proj.weight[6] *= -1  # gate of neuron (1, 6) flipped
    pair = pair_from_modules(base, aligned, tokenizer)
    groups = {param_group(n)[0] for n in named_weights(pair.base)}
    assert groups == {"embed", "attn", "mlp_in", "mlp_out", "norm"}
    nr = Neurons(torch.tensor([1, 0]), torch.tensor([6, 2]))
    nwd = neuron_weight_diff(pair, nr, random_neurons(2, pair.cfg.d_mlp, 2, seed=1, exclude=nr))
    assert torch.allclose(nwd.gate_cos, torch.tensor([-1.0, 1.0]), atol=1e-5)
    assert torch.allclose(nwd.key_cos, torch.ones(2), atol=1e-5)
    d = random_direction(pair.cfg.d_model, seed=3)
    with torch.no_grad():
        named_weights(pair.base)["model.layers.0.mlp.down_proj.weight"][:, 9] = d.vector
    r = rank_value_vectors(pair.base, d, k=1)
    assert (int(r.top.layer[0]), int(r.top.index[0])) == (0, 9)
    wd = weight_diff(pair)
    changed = {r_["name"] for r_ in wd.rows if r_["rel_change"] > 0}
    assert changed == {"model.layers.1.mlp.gate_proj.weight", "model.layers.0.mlp.down_proj.weight"}


def test_power_design_sizes_the_test_split_from_dev_alone(use_organism_cache):
    """``power_target``: the pilot is dev (base and aligned), the chosen prompts × samples is what
    every test arm then measures, and the report states the design beside what the test achieved."""
    from interp.reproduce import toxicity as T

    cfg = T.config_for("organism:tiny", power_target=0.15, max_test_samples=4, n_test_prompts=200,
                       families=("lee_scale_keys",), patching=False, n_shuffled_probes=5)
    r = T.run(cfg, progress=False, log=lambda *a: None)
    d = r.design
    assert d is not None and d.dev == f"{cfg.n_dev_prompts} prompts × {cfg.n_samples}"
    assert set(d.effect) == set(r.scorers) and d.by_scorer and d.n_test_arms == 4
    strictest = max(d.by_scorer.values(), key=lambda p: (not p.met, p.n_prompts * p.n_samples))
    assert (d.n_prompts, d.n_samples) == (strictest.n_prompts, strictest.n_samples)
    assert cfg.n_samples <= d.n_samples <= 4 and d.n_prompts <= 200
    assert len(r.splits.test) == d.n_prompts and r.config.n_test_samples == d.n_samples
    for m in (r.test["base"], r.test["aligned"], r.reactivation.arms["lee_scale_keys"].arm):
        assert (m.n_prompts, m.n_samples) == (d.n_prompts, d.n_samples)
    j = T.to_json(r)["design"]
    for a in j["achieved"].values():
        assert a["halfwidth"] > 0 and a["effect"]["n"] == d.n_prompts
    assert "## Power by design" in T.to_markdown(r)
