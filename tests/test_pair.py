import pytest
import torch

from interp import hooks as H
from interp.pair import (
    ModelUnavailableError,
    PairMismatchError,
    bridge_from_module,
    check_comparable,
    load_model,
    load_pair,
    pair_from_modules,
)

from .conftest import make_gpt2, make_llama


def test_bridge_matches_hf_logits(tokenizer):
    import copy

    module = make_gpt2(tokenizer)
    ref = copy.deepcopy(module)
    bridge = bridge_from_module(module, tokenizer)
    ids = tokenizer(["Rex said to Ada: you are"], return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.allclose(bridge(ids), ref(ids).logits, atol=1e-5)
    assert not bridge.training
    assert all(not p.requires_grad for p in bridge.parameters())


def test_weights_and_hook_names_plain_and_gated(gpt2, llama):
    for m, gated in ((gpt2, False), (llama, True)):
        L, d, f = m.cfg.n_layers, m.cfg.d_model, m.cfg.d_mlp
        assert H.keys(m).shape == (L, d, f)
        assert H.values(m).shape == (L, f, d)
        assert H.unembed(m).shape == (d, m.cfg.d_vocab)
        assert H.is_gated(m) is gated
        assert (H.gates(m) is not None) is gated
        names = H.hook_names("mlp_pre", L) + H.hook_names("mlp_post", L)
        names += [H.resid(layer, w) for layer in range(L) for w in H.RESID_POINTS]
        assert H.check_hooks(m, names) == names


def test_value_vectors_are_what_the_mlp_writes(gpt2):
    # Writing activation e_i into the MLP output space must give row i of W_out (plus bias).
    W_out = H.values(gpt2)[0]
    i = 3
    post = torch.zeros(1, 1, gpt2.cfg.d_mlp)
    post[0, 0, i] = 1.0
    out = gpt2.blocks[0].mlp.out(post)
    bias = gpt2.blocks[0].mlp.out(torch.zeros_like(post))
    assert torch.allclose(out - bias, W_out[i].view(1, 1, -1), atol=1e-6)


def test_unknown_hook_names_are_named_with_suggestions(gpt2):
    with pytest.raises(KeyError, match=r"blocks.0.mlp.hook_pst.*did you mean.*blocks.0.mlp.hook_post"):
        H.check_hooks(gpt2, ["blocks.0.mlp.hook_pst"])
    with pytest.raises(ValueError, match="out of range"):
        H.hook_names("mlp_post", 2, layers=[5])
    with pytest.raises(ValueError):
        H.check_hooks(gpt2, [])


def test_local_folder_round_trip(tokenizer, tmp_path):
    module = make_gpt2(tokenizer)
    module.save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    bridge = load_model(tmp_path / "m")
    ids = tokenizer(["the cat sat"], return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.allclose(bridge(ids), module(ids).logits, atol=1e-5)


def test_pair_mismatch_names_the_difference(tokenizer):
    a = bridge_from_module(make_gpt2(tokenizer, n_inner=64), tokenizer)
    b = bridge_from_module(make_gpt2(tokenizer, n_inner=128), tokenizer)
    with pytest.raises(PairMismatchError, match=r"d_mlp: base 64 vs aligned 128"):
        check_comparable(a, b)
    c = bridge_from_module(make_llama(tokenizer), tokenizer)
    with pytest.raises(PairMismatchError, match="architecture"):
        check_comparable(a, c)


def test_pair_vocabulary_mismatch(tokenizer, corpus_texts):
    from interp.organism.tokenizer import train_tokenizer

    other = train_tokenizer(corpus_texts.train[:200], vocab_size=len(tokenizer))
    a = bridge_from_module(make_gpt2(tokenizer), tokenizer)
    b = bridge_from_module(make_gpt2(tokenizer), other)
    if other.get_vocab() == tokenizer.get_vocab():
        pytest.skip("the two tokenizers happened to coincide")
    with pytest.raises(PairMismatchError, match="tokenizer vocabulary"):
        check_comparable(a, b)


def test_pair_from_modules(tokenizer):
    pair = pair_from_modules(make_gpt2(tokenizer, seed=0), make_gpt2(tokenizer, seed=1), tokenizer)
    base, aligned = pair
    assert base is pair.base and aligned is pair.aligned
    assert "GPT2" in repr(pair)


def test_offline_hub_name_gives_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="could not load 'no-such-org/no-such-model'"):
        load_model("no-such-org/no-such-model")


def test_missing_paths_and_unknown_pairs():
    with pytest.raises(ModelUnavailableError, match="no model folder or file"):
        load_model("./does/not/exist")
    with pytest.raises(ModelUnavailableError, match="no GGUF file"):
        load_model("/nowhere/model.gguf")
    with pytest.raises(ModelUnavailableError, match="unknown pair name"):
        load_pair("not-a-pair")


def test_pair_tokenizers_that_add_different_special_tokens(tokenizer):
    """Same vocabulary, but one tokenizer adds a BOS token: the pair would not see the same text."""
    import copy

    from tokenizers.processors import ByteLevel

    no_bos = copy.deepcopy(tokenizer)
    no_bos._tokenizer.post_processor = ByteLevel(trim_offsets=False)
    assert no_bos("a cat")["input_ids"] != tokenizer("a cat")["input_ids"]
    a = bridge_from_module(make_gpt2(tokenizer), tokenizer)
    b = bridge_from_module(make_gpt2(tokenizer), no_bos)
    with pytest.raises(PairMismatchError, match="encode .* differently"):
        check_comparable(a, b)


def test_a_new_pair_kind_is_one_registration(tmp_path, tokenizer):
    """The catalogue: a module registers a resolver; load_pair and the list of names see it."""
    import interp
    from interp.registry import _PREFIX, PairSpec, register_pair

    from .conftest import make_gpt2

    for role, seed in (("base", 0), ("aligned", 1)):
        make_gpt2(tokenizer, seed=seed).save_pretrained(tmp_path / role)
        tokenizer.save_pretrained(tmp_path / role)
    register_pair("toy:", lambda name: PairSpec(name, str(tmp_path / "base"), str(tmp_path / "aligned"),
                                                {"note": name}, prompts={"train_prompts": ["a"],
                                                                         "eval_prompts": ["b"]},
                                                profile="toy"),
                  prefix=True, describe="toys", profile="toy")
    try:
        assert interp.catalog.names()["toy:…"] == "toys"
        assert interp.registry.profile_of("toy:two") == "toy"  # known without loading
        pair = interp.load_pair("toy:one")
        assert pair.name == "toy:one" and pair.info["note"] == "toy:one" and pair.profile == "toy"
        assert pair.prompts == interp.PromptSet(["a"], ["b"])
        assert pair.cfg.n_layers == 2
    finally:
        _PREFIX.pop("toy:")
        interp.registry._PROFILES.pop("toy:")
    with pytest.raises(interp.pair.ModelUnavailableError, match="unknown pair name 'toy:one'"):
        interp.load_pair("toy:one")


@pytest.mark.parametrize("maker", [make_gpt2, make_llama], ids=["gpt2", "llama"])
def test_memory_estimate_counts_the_parameters_from_the_config(tokenizer, maker):
    from interp.memory import memory_estimate

    module = maker(tokenizer)
    n = sum(p.numel() for p in module.parameters())
    est = memory_estimate(module.config, dtype=torch.bfloat16, batch_size=8, n_ctx=128)
    assert est.n_params == pytest.approx(n, rel=0.03) and est.bytes_per_param == 2
    cfg = module.config
    heads = getattr(cfg, "num_key_value_heads", None) or getattr(cfg, "n_head", None) or cfg.num_attention_heads
    d = getattr(cfg, "hidden_size", None) or cfg.n_embd
    d_head = getattr(cfg, "head_dim", None) or d // (getattr(cfg, "num_attention_heads", None) or cfg.n_head)
    layers = getattr(cfg, "num_hidden_layers", None) or cfg.n_layer
    assert est.kv_cache_bytes == 2 * layers * 8 * 128 * heads * d_head * 2
    assert est.total_bytes == 2 * (est.n_params * 2 + est.kv_cache_bytes) and "GiB" in str(est)


def test_device_map_loads_through_accelerate_and_computes_the_same(tokenizer, tmp_path, capsys):
    """A ``device_map`` load (here the whole model on the CPU, the one device this machine has;
    a real split is the GPU check's) prints its memory estimate first and gives the logits and
    samples of a plain load; sources that cannot be dispatched are refused by name."""
    from interp.generate import generate

    for role, seed in (("b", 0), ("a", 1)):
        make_gpt2(tokenizer, seed=seed).save_pretrained(tmp_path / role)
        tokenizer.save_pretrained(tmp_path / role)
    plain = load_pair(tmp_path / "b", tmp_path / "a")
    split = load_pair(tmp_path / "b", tmp_path / "a", device_map={"": "cpu"})
    assert "GiB" in capsys.readouterr().err
    ids = tokenizer(["the cat sat on"], return_tensors="pt").input_ids
    with torch.no_grad():
        for x, y in ((plain.base, split.base), (plain.aligned, split.aligned)):
            assert torch.allclose(x(ids), y(ids), atol=1e-6)
    kw = dict(do_sample=True, seed=2, max_new_tokens=6)
    assert generate(split.aligned, ["the cat", "a dog"], **kw).completions == \
        generate(plain.aligned, ["the cat", "a dog"], **kw).completions
    with pytest.raises(ValueError, match="device or device_map"):
        load_model(tmp_path / "b", device="cpu", device_map="auto")
    with pytest.raises(ValueError, match="hub name or a model folder"):
        load_model(make_gpt2(tokenizer), tokenizer=tokenizer, device_map="auto")
    with pytest.raises(ValueError, match="got 1 maps"):
        load_pair(tmp_path / "b", tmp_path / "a", device_map=("auto",))
