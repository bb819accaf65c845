"""Shared fixtures: tiny randomly initialised models built in the test process, and the tiny organism.

Nothing is downloaded. The tiny organism is built once per test session into a temporary cache.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def corpus_texts():
    from interp.organism.corpus import CorpusConfig, generate_corpus

    return generate_corpus(CorpusConfig(n_docs=800, n_entities=10, seed=0))


@pytest.fixture(scope="session")
def tokenizer(corpus_texts):
    from interp.organism.tokenizer import train_tokenizer

    return train_tokenizer(corpus_texts.train, vocab_size=300)


def make_gpt2(tokenizer, n_inner=64, seed=0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=4,
                     n_inner=n_inner, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0,
                     bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                     pad_token_id=tokenizer.pad_token_id)
    return GPT2LMHeadModel(cfg).eval()


def make_llama(tokenizer, seed=0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=48,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=64, bos_token_id=tokenizer.bos_token_id,
                      eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture
def gpt2(tokenizer):
    from interp.pair import bridge_from_module

    return bridge_from_module(make_gpt2(tokenizer), tokenizer, name="tiny-gpt2")


@pytest.fixture
def llama(tokenizer):
    from interp.pair import bridge_from_module

    return bridge_from_module(make_llama(tokenizer), tokenizer, name="tiny-llama")


@pytest.fixture(params=["gpt2", "llama"])
def any_model(request, tokenizer):
    from interp.pair import bridge_from_module

    maker = make_gpt2 if request.param == "gpt2" else make_llama
    return bridge_from_module(maker(tokenizer), tokenizer, name=f"tiny-{request.param}")


@pytest.fixture(scope="session")
def organism_cache(tmp_path_factory):
    """A session-wide cache folder holding the tiny organism (built once, ~40 s)."""
    path = tmp_path_factory.mktemp("interp-cache")
    old = os.environ.get("INTERP_CACHE")
    os.environ["INTERP_CACHE"] = str(path)
    from interp.organism import build_organism

    build_organism("tiny", progress=False, log=lambda *a: None)
    if old is None:
        os.environ.pop("INTERP_CACHE")
    else:
        os.environ["INTERP_CACHE"] = old
    return path


@pytest.fixture
def use_organism_cache(organism_cache, monkeypatch):
    monkeypatch.setenv("INTERP_CACHE", str(organism_cache))
    return organism_cache


@pytest.fixture(scope="session")
def tiny_pair(organism_cache):
    old = os.environ.get("INTERP_CACHE")
    os.environ["INTERP_CACHE"] = str(organism_cache)
    try:
        from interp.pair import load_pair

        return load_pair("organism:tiny")
    finally:
        if old is None:
            os.environ.pop("INTERP_CACHE")
        else:
            os.environ["INTERP_CACHE"] = old
