"""Shared fixtures: tiny randomly initialised models built in the test process, and the tiny organism.

Nothing is downloaded. The tiny organism is built once per test session into a temporary cache.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):  # one thread per worker: the workers share the cores
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

#: The longest tests (``--durations``, 2 cores), longest first: pytest-xdist (``--dist load
#: --maxschedchunk 1``) hands them out alternately, so the short ones fill in around them instead
#: of one long test running alone at the end.
LONGEST_FIRST = (  # seconds each took in one run (fresh clone, 2 workers)
    "test_rebuild.py",  # 300
    "test_known_answers.py::test_a_null_pair",  # 150
    "test_instruction.py",  # 90 (setup: the instruction organism and its arms)
    "test_mechanism.py::test_reproduce_toxicity_on_the_tiny_organism_over_two_seeds",  # 100-150
    "test_distributed.py",  # 45-75 each
    "test_gguf.py",  # 30-50
    "test_pretraining.py::test_the_reproduction_runs",  # 30-40
    "test_faults.py::test_a_reproduction_killed",  # 30-40
    "test_knowledge.py::test_knowledge_reproduction_runs",  # 30
    "test_mechanism.py::test_power_design",  # 30
)
#: Started last: the notebooks run the reproductions the tests above run, on the same tiny pairs,
#: and read their measurements from the shared cache once those tests have made them (run at the
#: same time, both would measure everything: 140 s instead of ~30 for the instruction notebook).
LAST = ("test_figures.py::test_notebook_executes",)


def pytest_collection_modifyitems(config, items):
    def rank(item):
        if any(p in item.nodeid for p in LAST):
            return len(LONGEST_FIRST) + 1
        return next((i for i, p in enumerate(LONGEST_FIRST) if p in item.nodeid), len(LONGEST_FIRST))

    items.sort(key=rank)  # stable: the rest keep their order
    short = [i for i, it in enumerate(items) if rank(it) == len(LONGEST_FIRST)]
    if len(short) >= 2 and os.environ.get("PYTEST_XDIST_WORKER"):
        # xdist gives each of two workers two consecutive tests to start with: pair each of the two
        # longest with a short one, so that they start on different workers at once.
        a, b = items.pop(short[-1]), items.pop(short[-2])
        items[1:1] = [a]
        items[3:3] = [b]


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
    """A session-wide cache folder holding the tiny organism (built once, ~40 s). Under
    pytest-xdist every worker shares one folder: the first to take the lock builds it, the others
    wait and read it back (the organism cache is keyed by its recipe)."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this run
    path = root / "interp-cache"
    path.mkdir(exist_ok=True)
    old = os.environ.get("INTERP_CACHE")
    os.environ["INTERP_CACHE"] = str(path)
    try:
        from interp.organism import build_organism

        with FileLock(str(root / "interp-cache.lock")):
            build_organism("tiny", progress=False, log=lambda *a: None)
    finally:
        if old is None:
            os.environ.pop("INTERP_CACHE")
        else:
            os.environ["INTERP_CACHE"] = old
    return path


def copy_cache(src, dst, ignore=()):
    """A copy of a shared test cache that another worker may be writing into meanwhile: its
    half-written entries (``*.tmp``) and lock files are left out."""
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.tmp", "*.lock", *ignore))
    return dst


@pytest.fixture(scope="session")
def tiny_hf(organism_cache):
    """The tiny organism's base as a plain Hugging Face GPT-2, its tokenizer and prompt set (for planting
    mechanisms into: interp.testing)."""
    import os

    from transformers import AutoTokenizer, GPT2LMHeadModel

    from interp.organism.build import organism_pair_spec

    old = os.environ.get("INTERP_CACHE")
    os.environ["INTERP_CACHE"] = str(organism_cache)
    try:
        spec = organism_pair_spec("organism:tiny")
    finally:
        os.environ.pop("INTERP_CACHE") if old is None else os.environ.__setitem__("INTERP_CACHE", old)
    return GPT2LMHeadModel.from_pretrained(spec.base), AutoTokenizer.from_pretrained(spec.base), spec.prompts


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
