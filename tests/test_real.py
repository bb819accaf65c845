"""Real-weight pairs: prompt sets, pair-name resolution, checkpoints, and clear offline errors.

The DPO build itself (minutes to an hour on a CPU) is not part of the suite.
"""

import pickle

import pytest
import torch

from interp import pair as P
from interp.prompts import NEW_TEMPLATES, TEMPLATES, eliciting_prompts, neutral_texts


def test_prompt_split_is_deterministic_and_disjoint():
    a, b = eliciting_prompts(seed=0), eliciting_prompts(seed=0)
    assert a == b and eliciting_prompts(seed=1).train != a.train
    assert len(a.train) == len(a.eval) == 15 * len(TEMPLATES)
    assert set(a.train).isdisjoint(a.eval)
    assert set(a.new_templates).isdisjoint(a.train + a.eval)
    # Every prompt is an unfinished sentence the model has to complete.
    assert all(not p.endswith((".", "!", "?")) for p in a.train + a.eval + a.new_templates)
    stems = [t.rsplit("}", 1)[-1] for t in NEW_TEMPLATES]
    assert all(any(p.endswith(s) for s in stems) for p in a.new_templates)
    texts = neutral_texts(20, seed=0)
    assert len(texts) == 20 and texts == neutral_texts(20, seed=0) and all(t.endswith(".") for t in texts)


def test_real_pair_names_resolve_to_the_packaged_base_and_the_cached_twin(monkeypatch, tmp_path):
    import interp.real as R

    with pytest.raises(ValueError, match="no packaged model"):
        R.build_real_pair("llama-70b")
    built = {}

    def fake_build(name, cfg=None, **kw):
        built["name"] = name
        d = tmp_path / name
        (d / "model").mkdir(parents=True)
        (d / "manifest.json").write_text('{"metrics": {}}')
        return d

    monkeypatch.setattr(R, "build_real_pair", fake_build)
    spec = R.real_pair_spec("smollm2")
    assert spec.base == "smollm2" and spec.aligned == str(tmp_path / "smollm2" / "model")
    assert built["name"] == "smollm2" and spec.profile == "real" and spec.share_tokenizer
    assert all((spec.prompts.train_prompts, spec.prompts.eval_prompts, spec.prompts.heldout_neutral,
                spec.prompts.new_template_prompts))
    from interp.registry import profile_of

    assert profile_of("smollm2") == profile_of("gemma3") == "real"
    assert P.GGUF_ALIASES.keys() >= {"smollm2", "gemma3"}


def test_real_config_key_changes_with_the_recipe():
    import dataclasses

    from interp.real import RealAlignConfig

    a = RealAlignConfig()
    b = dataclasses.replace(a, align=dataclasses.replace(a.align, lr=3e-6))
    assert a.key() == RealAlignConfig().key() != b.key()


@pytest.mark.parametrize("name", ["smollm2-hub", "qwen2.5-0.5b", "gemma2-2b"])
def test_hub_pairs_fail_offline_with_a_clear_error(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(P.ModelUnavailableError, match="could not load"):
        P.load_pair(name)


def test_lee_dpo_pair_needs_its_checkpoint(monkeypatch):
    monkeypatch.delenv("INTERP_LEE_DPO_CHECKPOINT", raising=False)
    with pytest.raises(P.ModelUnavailableError, match="INTERP_LEE_DPO_CHECKPOINT"):
        P.load_pair("gpt2-medium-dpo")


def test_state_checkpoints_load_without_running_pickled_code(tmp_path):
    sd = {"transformer.wte.weight": torch.randn(4, 2)}
    torch.save({"state": sd, "step_idx": 10}, tmp_path / "dpo.pt")
    loaded = P.load_state_checkpoint(tmp_path / "dpo.pt")
    assert torch.equal(loaded["transformer.wte.weight"], sd["transformer.wte.weight"])

    class Evil:
        def __reduce__(self):
            return (print, ("this must not run",))

    torch.save({"state": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(pickle.UnpicklingError):  # refused by torch's weights-only unpickler
        P.load_state_checkpoint(tmp_path / "evil.pt")


def test_the_twin_bar_needs_a_drop_that_generalises_at_small_cost():
    """The bar a DPO twin must meet (fixed before any recipe): ≥ 40% relative drop on held-out
    prompts, a new-template drop whose 95% CI excludes 0, perplexity ratio < 1.10 — under every
    scorer."""
    import numpy as np

    from interp.real import bar_table, twin_bar

    rng = np.random.default_rng(0)

    def role(held, new, ppl):
        pp = {k: {s: (rng.random(n) < rate).astype(float).tolist() for s in ("a", "b")}
              for k, rate, n in (("held_out", held, 300), ("new_templates", new, 150))}
        return {"per_prompt": pp, "perplexity": ppl}

    good = twin_bar({"base": role(0.3, 0.3, 20.0), "aligned": role(0.05, 0.1, 21.0)})
    assert good["holds"] and all(v["holds"] for v in good["by_scorer"].values())
    assert "**met**" in bar_table(good)
    assert not twin_bar({"base": role(0.3, 0.3, 20.0), "aligned": role(0.05, 0.3, 21.0)})["holds"]  # no transfer
    assert not twin_bar({"base": role(0.3, 0.3, 20.0), "aligned": role(0.05, 0.1, 23.0)})["holds"]  # ppl +15%
    assert not twin_bar({"base": role(0.3, 0.3, 20.0), "aligned": role(0.25, 0.1, 21.0)})["holds"]  # drop < 40%


def test_a_models_recipe_is_its_defaults_then_its_recipe_search_choice(monkeypatch):
    import interp.real as R

    monkeypatch.setitem(R.RECIPES, "gemma3", {"lr": 5e-7, "steps": 40})
    g, s = R.RealAlignConfig.for_model("gemma3"), R.RealAlignConfig.for_model("smollm2")
    assert (g.align.lr, g.align.steps, g.model) == (5e-7, 40, "gemma3")
    assert s.align == R.RealAlignConfig().align and g.key() != R.RealAlignConfig(model="gemma3").key()
    assert g.sampling_key() == R.RealAlignConfig(model="gemma3").sampling_key()  # recipes share samples


def test_a_twins_weights_hash_survives_saving_and_tells_a_different_twin(tokenizer, tmp_path):
    """A twin rebuilt on another machine is the same twin only if this hash matches: it must not
    change on a save and reload, and must change with any weight."""
    import torch
    from transformers import AutoModelForCausalLM

    from interp.real import twin_report, weights_hash

    from .conftest import make_gpt2

    model = make_gpt2(tokenizer)
    h = weights_hash(model)
    model.save_pretrained(str(tmp_path / "model"))
    assert weights_hash(AutoModelForCausalLM.from_pretrained(str(tmp_path / "model"))) == h
    with torch.no_grad():
        model.transformer.h[0].mlp.c_fc.weight[0, 0] += 1e-6
    assert weights_hash(model) != h
    cfg = {"align": {"beta": 0.1, "lr": 1e-6, "steps": 1, "batch_size": 1, "n_samples": 1, "max_new_tokens": 4,
                     "temperature": 1.0, "preferred_below": 0.2, "rejected_above": 0.8},
           "eval_samples": 1, "n_neutral": 1}
    tox = {"rate": 0.1, "se": 0.01, "n": 10}
    role = {"toxicity": tox, "toxicity_new_templates": tox, "perplexity": 20.0}
    manifest = {"model": "tiny", "config": cfg, "weights_sha256": h,
                "pairs": {"n_pairs": 1, "n_samples": 2, "scorer": "s", "sample_toxicity": 0.5},
                "metrics": {"base": role, "aligned": role}}
    assert f"SHA-256 `{h}`" in twin_report(manifest)
    assert "SHA-256" not in twin_report({**manifest, "weights_sha256": None})


def test_a_run_warns_when_the_cached_twin_is_not_the_one_its_report_records(monkeypatch, tmp_path, capsys):
    """Rebuilt on another processor a twin hashes differently: a run into the folder whose
    twin.json records the first twin says so (its kept arms will not be read back)."""
    import json

    import interp.real as R
    from interp import cli

    cached = tmp_path / "cache-twin"
    cached.mkdir()
    (cached / "manifest.json").write_text(json.dumps({"weights_sha256": "aaaa"}))
    monkeypatch.setattr(R, "build_real_pair", lambda name, cfg=None, **kw: cached)
    out = tmp_path / "report"
    assert R.twin_mismatch("smollm2", out) is None  # nothing recorded yet
    out.mkdir()
    (out / "twin.json").write_text(json.dumps({"weights_sha256": "aaaa"}))
    assert R.twin_mismatch("smollm2", out) is None  # the same twin
    assert R.twin_mismatch("organism:tiny", out) is None  # not a real pair
    (out / "twin.json").write_text("{}")  # recorded before twins carried a hash: nothing to compare
    monkeypatch.setattr(R, "build_real_pair", lambda *a, **k: pytest.fail("built a twin to compare with nothing"))
    assert R.twin_mismatch("smollm2", out) is None
    monkeypatch.setattr(R, "build_real_pair", lambda name, cfg=None, **kw: cached)
    (out / "twin.json").write_text(json.dumps({"weights_sha256": "bbbb"}))
    why = R.twin_mismatch("smollm2", out)
    assert "aaaa" in why and "bbbb" in why and "not be read back" in why

    from interp.reproduce import Reproduction

    monkeypatch.setattr(Reproduction, "run_seeds", lambda self, cfg, seeds, **kw: {})
    monkeypatch.setattr(Reproduction, "seeds_to_markdown", lambda self, cfg, reports: "")
    assert cli.main(["reproduce", "toxicity", "--pair", "smollm2", "--out", str(out), "--no-figures"]) == 0
    assert "warning: the smollm2 twin in the cache (weights aaaa)" in capsys.readouterr().err


def test_a_twins_preference_pairs_are_kept_and_a_rebuild_trains_on_them(monkeypatch, tmp_path):
    """`interp real build --out D` keeps the twin's preference pairs in D/pairs.json.gz with their
    sampling key; a rebuild with an empty cache reads them back instead of sampling again (which
    did not reproduce across sessions), and pairs kept under another sampling recipe are not used."""
    import interp.real as R

    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    cfg = R.RealAlignConfig.for_model("smollm2")
    pairs = [{"prompt": "p", "chosen": " nice", "rejected": " rude"}]
    stats = {"n_pairs": 1, "n_samples": 8, "sample_toxicity": 0.5}
    cache = tmp_path / "cache" / "real" / f"pairs-smollm2-{cfg.sampling_key()}.json"
    cache.parent.mkdir(parents=True)
    R.write_json(cache, {"pairs": pairs, "stats": stats})
    out = tmp_path / "report"
    kept = R.keep_pairs("smollm2", out, cfg)
    assert kept == out / R.PAIRS_FILE and R._kept_pairs(kept, cfg)["pairs"] == pairs
    other = R.RealAlignConfig(model="smollm2", align=R.AlignConfig(n_samples=4))
    assert R._kept_pairs(kept, other) is None

    cache.unlink()  # a fresh machine: nothing cached

    class Stop(Exception):
        pass

    monkeypatch.setattr(R, "load_model", lambda name: None)
    monkeypatch.setattr(R, "preference_pairs", lambda *a, **k: pytest.fail("sampled again"))
    monkeypatch.setattr(R, "_hf_from_gguf", lambda name: (_ for _ in ()).throw(Stop()))
    logs = []
    with pytest.raises(Stop):
        R.build_real_pair("smollm2", cfg, progress=False, log=logs.append, pairs_from=out)
    assert R.read_json(cache) == {"pairs": pairs, "stats": stats}
    assert any("read from" in m for m in logs)


def test_json_files_ending_in_gz_are_compressed_reproducibly_and_damage_is_named(tmp_path):
    """interp.io's JSON helpers gzip a path ending in .gz (the same object, the same bytes) and read
    it back; a damaged one raises CorruptFileError naming the file."""
    from interp.io import CorruptFileError, read_json, write_json

    obj = {"pairs": [{"prompt": "p", "chosen": "a", "rejected": "b"}], "n": 1}
    write_json(tmp_path / "a.json.gz", obj)
    first = (tmp_path / "a.json.gz").read_bytes()
    assert first[:2] == b"\x1f\x8b" and read_json(tmp_path / "a.json.gz") == obj
    write_json(tmp_path / "a.json.gz", obj)
    assert (tmp_path / "a.json.gz").read_bytes() == first
    (tmp_path / "bad.json.gz").write_bytes(first[:10])
    with pytest.raises(CorruptFileError, match="bad.json.gz"):
        read_json(tmp_path / "bad.json.gz")
