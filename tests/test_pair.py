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
