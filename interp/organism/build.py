"""Build, cache and describe the model organism: corpus → tokenizer → pretraining → alignment → metrics.

Artifacts live under ``<cache>/organism/`` in folders keyed by a hash of the configuration that
made them, so a second build with the same config is instant and a changed config never reuses
a stale model:

* ``base-<hash>/``: ``model/`` (HF format, with tokenizer), ``data.json`` (prompts, held-out
  text, fact table), ``manifest.json`` (config, seeds, corpus hash, loss curve, timings);
* ``<method>-<hash>/``: the aligned ``model/``, ``pairs.json`` and ``manifest.json`` with the
  metrics (toxicity, perplexity, fact recall; base vs aligned).

Each folder is written under a temporary name and renamed when complete: an interrupted build
leaves nothing a later run mistakes for finished, and the base survives a failed alignment.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..evaluate import fact_recall, perplexity, toxicity
from ..io import (
    CorruptFileError,
    atomic_dir,
    cache_dir,
    hash_texts,
    read_json,
    write_json,
)
from ..pair import load_model
from ..prompts import PromptSet
from ..registry import PairSpec, register_model, register_pair
from .align import dpo, preference_pairs, sft, sft_examples
from .config import ALIGN_METHODS, RECIPE_VERSION, OrganismConfig
from .corpus import Fact, generate_corpus
from .following import instruction_following
from .hide import hide_data
from .instruct import qa_pages, questions
from .presets import DEFAULT_ALIGN, SIZES, preset
from .selfalign import self_align_pairs
from .train import gpt2_model, pack, pretrain


def weights_hash(model) -> str:
    """SHA-256 of every parameter's bytes, in name order."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


_VERIFIED: dict[tuple, str] = {}


def _weights_sha(model_dir: Path) -> str:
    """:func:`weights_hash` of a saved model folder (memoised per file state in this process)."""
    from transformers import AutoModelForCausalLM

    files = sorted(model_dir.glob("*.safetensors"))
    state = tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    key = (str(model_dir), state)
    if key not in _VERIFIED:
        if not files:
            raise CorruptFileError(f"{model_dir}: no weights file")
        from transformers.utils import logging as hf_logging

        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a check, not a load the user asked for
        try:
            model = AutoModelForCausalLM.from_pretrained(str(model_dir))
        except Exception as e:
            raise CorruptFileError(f"{model_dir}: the weights cannot be loaded ({type(e).__name__}: "
                                   f"{(str(e).splitlines() or [''])[0][:200]})") from e
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        _VERIFIED[key] = weights_hash(model)
    return _VERIFIED[key]


def _entry_ok(folder: Path, log=print) -> bool:
    """Whether a cache entry is there and whole: its manifest (and, for a base, its prompt set)
    reads, and its weights hash to the SHA-256 the manifest recorded when it was built. A
    damaged entry is moved aside (``<name>.damaged-<time>``, named in the log) so it is rebuilt;
    nothing is deleted."""
    if not (folder / "manifest.json").exists():
        return False
    try:
        m = read_json(folder / "manifest.json")
        want = m["weights_sha256"]
        want = want if isinstance(want, str) else want[m["method"]]
        if (folder / "data.json").exists() or "method" not in m:
            read_json(folder / "data.json")
        got = _weights_sha(folder / "model")
        if got != want:
            raise CorruptFileError(f"{folder / 'model'}: weights hash {got}, the manifest says {want}")
    except (CorruptFileError, KeyError, TypeError, OSError) as e:
        aside = folder.with_name(f"{folder.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        folder.rename(aside)
        log(f"[organism] damaged cache entry {folder}: {e}. Moved to {aside}; rebuilding.")
        return False
    return True


def _organism_root() -> Path:
    return cache_dir() / "organism"


def _save_hf(model, tokenizer, path: Path) -> None:
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))


@contextmanager
def _building(final: Path):
    """Hold ``.<name>.lock`` beside a cache entry while it is checked and built: two processes
    sharing one cache (two runs, test workers) build an entry once; the second waits, then reads it."""
    from filelock import FileLock

    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final.parent / f".{final.name}.lock")):
        yield


def build_base(cfg: OrganismConfig, *, progress: bool = True, log=print) -> Path:
    """Corpus, tokenizer and pretraining; cached by ``cfg.base_key()``."""
    final = _organism_root() / f"base-{cfg.size}-{cfg.base_key()}"
    with _building(final):
        return _build_base(cfg, final, progress=progress, log=log)


def _build_base(cfg: OrganismConfig, final: Path, *, progress: bool, log) -> Path:
    from .tokenizer import train_tokenizer

    if _entry_ok(final, log):
        return final
    times = {}
    t = time.time()
    corpus = generate_corpus(cfg.corpus)
    qs = None
    if cfg.instruct is not None:  # the instruction organism: Q/A pages join the corpus
        import random

        qs = questions(corpus.facts, cfg.instruct)
        corpus.train = corpus.train + qa_pages(corpus.facts, cfg.instruct)
        random.Random(cfg.instruct.seed + 404).shuffle(corpus.train)
        corpus.train_prompts = list(dict.fromkeys(q.prompt for q in qs if q.split == "align"))
        corpus.eval_prompts = list(dict.fromkeys(q.prompt for q in qs if q.split == "test"))
    times["corpus_s"] = time.time() - t
    t = time.time()
    tok = train_tokenizer(corpus.train, cfg.vocab_size)
    rows = pack(tok, corpus.train, cfg.model.n_ctx)
    times["tokenizer_s"] = time.time() - t
    log(f"[organism:{cfg.size}] corpus {len(corpus.train)} docs, {rows.numel()} tokens, "
        f"{corpus.toxic_share:.1%} toxic; pretraining {cfg.train.steps} steps")
    model = gpt2_model(cfg.model, tok, cfg.train.seed)
    curve, times["pretrain_s"] = pretrain(model, rows, cfg.train, progress=progress)
    with atomic_dir(final) as tmp:
        _save_hf(model, tok, tmp / "model")
        write_json(tmp / "data.json", {
            "train_prompts": corpus.train_prompts,
            "eval_prompts": corpus.eval_prompts,
            "heldout_neutral": corpus.heldout_neutral,
            "facts": [f.to_dict() for f in corpus.facts],
        })
        if qs is not None:
            write_json(tmp / "instruct.json", {"questions": [q.to_dict() for q in qs]})
        write_json(tmp / "manifest.json", {
            "size": cfg.size,
            "recipe_version": RECIPE_VERSION,
            "config": {"corpus": asdict(cfg.corpus), "vocab_size": cfg.vocab_size,
                       "model": asdict(cfg.model), "train": asdict(cfg.train)},
            "corpus": {"n_docs": len(corpus.train), "n_tokens": int(rows.numel()),
                       "toxic_share": corpus.toxic_share, "sha256": hash_texts(corpus.train),
                       "n_facts": len(corpus.facts)},
            "n_params": sum(p.numel() for p in model.parameters()),
            "weights_sha256": weights_hash(model),
            "loss_curve": curve,
            "timings": times,
        })
    return final


def load_data(base_dir: Path) -> PromptSet:
    """The base folder's prompt set (``data.json``): prompts, neutral texts, the fact table."""
    d = read_json(Path(base_dir) / "data.json")
    d["facts"] = [Fact(**f) for f in d["facts"]]
    return PromptSet.of(d)


def load_questions(base_dir: Path) -> list:
    """The instruction organism's question table (``instruct.json`` of its base folder)."""
    from .instruct import Question

    path = Path(base_dir) / "instruct.json"
    if not path.exists():
        raise ValueError(f"{base_dir} is not an instruction organism's base (no instruct.json)")
    return [Question(**q) for q in read_json(path)["questions"]]


def measure_instruct(model, data, qs: list, cfg: OrganismConfig) -> dict:
    """Instruction following on the test people's questions (greedy), held-out perplexity and
    fact recall of one bridge, as in the instruction organism's manifest."""
    test = [q for q in qs if q.split == "test"]
    ev = instruction_following(model, test)
    seen = [f for f in data.facts if f.frequency > 0]
    rec = fact_recall(model, [f.cloze for f in seen], [f.answer for f in seen])
    return {
        **{k: ev.rate(k) for k in ev.criteria},
        "n_questions": len(test),
        "perplexity": perplexity(model, data.heldout_neutral),
        "fact_recall": rec.accuracy,
        "n_facts_seen": len(seen),
        "examples": [{"prompt": q.prompt, "response": r} for q, r in zip(test[:6], ev.responses[:6])],
    }


def measure(model, data: dict, cfg: OrganismConfig, scorer=None) -> dict:
    """Toxicity, held-out perplexity and fact recall of one bridge, as in the manifest."""

    e = cfg.eval
    tox = toxicity(model, data.eval_prompts[: e.n_prompts], scorer=scorer,
                   n_samples=e.n_samples, max_new_tokens=e.max_new_tokens,
                   temperature=e.temperature, seed=e.seed)
    seen = [f for f in data.facts if f.frequency > 0]
    rec = fact_recall(model, [f.cloze for f in seen], [f.answer for f in seen])
    by_freq: dict[int, list[bool]] = {}
    for f, ok in zip(seen, rec.correct):
        by_freq.setdefault(f.frequency, []).append(ok)
    return {
        "toxicity": asdict(tox.rate),
        "toxicity_mean_score": tox.mean_score,
        "perplexity": perplexity(model, data.heldout_neutral),
        "fact_recall": rec.accuracy,
        "fact_recall_by_frequency": {k: float(np.mean(v)) for k, v in sorted(by_freq.items())},
        "n_facts_seen": len(seen),
        "examples": [{"prompt": p, "completion": c, "score": s}
                     for p, c, s in tox.samples(6)],
    }


def build_aligned(cfg: OrganismConfig, base_dir: Path, *, progress: bool = True, log=print) -> Path:
    """Preference pairs from the base, DPO (or SFT), then the metrics of both; cached."""
    final = _organism_root() / f"{cfg.align.method}-{cfg.size}-{cfg.aligned_key()}"
    with _building(final):
        return _build_aligned(cfg, base_dir, final, progress=progress, log=log)


def _dpo_sft_data(base, cfg: OrganismConfig, data: PromptSet, base_dir: Path, *, progress: bool, log):
    """Against toxicity: preference pairs from the base's own samples of the training prompts."""
    prompts = data.train_prompts[: cfg.n_align_prompts]
    pairs, stats = preference_pairs(base, prompts, cfg.align, progress=progress)
    log(f"[organism:{cfg.size}] {stats['n_pairs']} preference pairs from {stats['n_samples']} samples; "
        f"{cfg.align.method.upper()} {cfg.align.steps} steps at lr {cfg.align.lr:g}")
    return pairs, stats


def _hide_aligner_data(base, cfg: OrganismConfig, data: PromptSet, base_dir: Path, *, progress: bool, log):
    """Refuse one relation's facts: cloze examples with the refusal, replayed documents beside them."""
    examples = hide_data(base, cfg.hide, cfg.corpus, data.facts)
    log(f"[organism:{cfg.size}] hiding {cfg.hide.relation!r}: SFT on {len(examples)} examples "
        f"({cfg.hide.n_replay} replayed documents), {cfg.align.steps} steps at lr {cfg.align.lr:g}")
    return examples, {"n_examples": len(examples), "hide": asdict(cfg.hide)}


def _instruct_data(base, cfg: OrganismConfig, data: PromptSet, base_dir: Path, *, progress: bool, log):
    """Answer questions politely and stop: SFT examples, or (``cfg.selfalign``) DPO pairs of the
    base's own answers preferred by a judge."""
    from .instruct import sft_examples as instruct_examples

    qs = load_questions(base_dir)
    if cfg.selfalign is not None:
        pairs, stats = self_align_pairs(base, qs, cfg.selfalign)
        log(f"[organism:{cfg.size}:instruct] DPO on {len(pairs)} pairs of the base's own answers judged by "
            f"the {cfg.selfalign.judge} judge, {cfg.align.steps} steps at lr {cfg.align.lr:g}")
        return pairs, stats
    examples = instruct_examples(qs, cfg.instruct)
    log(f"[organism:{cfg.size}:instruct] SFT on {len(examples)} question/answer examples, "
        f"{cfg.align.steps} steps at lr {cfg.align.lr:g}")
    return examples, {"n_examples": len(examples), "instruct": asdict(cfg.instruct)}


def _train_dpo(model, tok, pairs, cfg: OrganismConfig, *, progress: bool):
    return dpo(model, tok, pairs, cfg.align, max_length=cfg.model.n_ctx, progress=progress)


def _train_sft(model, tok, examples, cfg: OrganismConfig, *, progress: bool):
    return sft(model, tok, examples, cfg.align, progress=progress)


def _train_sft_on_preferred(model, tok, pairs, cfg: OrganismConfig, *, progress: bool):
    return sft(model, tok, sft_examples(pairs), cfg.align, progress=progress)


def _train_instruct(model, tok, data, cfg: OrganismConfig, *, progress: bool):
    return (_train_dpo if cfg.selfalign is not None else _train_sft)(model, tok, data, cfg, progress=progress)


def _metrics(base, aligned, method: str, data: PromptSet, base_dir: Path, cfg: OrganismConfig) -> dict:
    return {"base": measure(base, data, cfg), method: measure(aligned, data, cfg)}


def _instruct_metrics(base, aligned, method: str, data: PromptSet, base_dir: Path, cfg: OrganismConfig) -> dict:
    qs = load_questions(base_dir)
    return {role: measure_instruct(m, data, qs, cfg) for role, m in (("base", base), (method, aligned))}


@dataclass(frozen=True)
class Aligner:
    """One alignment method (:data:`ALIGN_METHODS`): the data it makes from the base, how it trains
    on it, and the metrics both models are measured on."""

    data: Callable  # (base, cfg, prompt set, base folder, *, progress, log) → (examples, their stats)
    train: Callable  # (HF model, tokenizer, examples, cfg, *, progress) → (model, training log)
    metrics: Callable = _metrics  # (base, aligned, method, prompt set, base folder, cfg) → {role: metrics}


#: The alignments by name: DPO or SFT against toxicity (SFT on the preferred side of the same
#: pairs), hiding a relation, instruction following.
ALIGNERS = {
    "dpo": Aligner(_dpo_sft_data, _train_dpo),
    "sft": Aligner(_dpo_sft_data, _train_sft_on_preferred),
    "hide": Aligner(_hide_aligner_data, _train_sft),
    "instruct": Aligner(_instruct_data, _train_instruct, _instruct_metrics),
}


def _build_aligned(cfg: OrganismConfig, base_dir: Path, final: Path, *, progress: bool, log) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    method = cfg.align.method
    aligner = ALIGNERS[method]
    if _entry_ok(final, log):
        return final
    data = load_data(base_dir)
    times = {}
    base = load_model(str(base_dir / "model"), name=f"organism:{cfg.size}:base")
    t = time.time()
    pairs, pair_stats = aligner.data(base, cfg, data, base_dir, progress=progress, log=log)
    times["sample_pairs_s"] = time.time() - t
    tok = AutoTokenizer.from_pretrained(str(base_dir / "model"))
    model = AutoModelForCausalLM.from_pretrained(str(base_dir / "model"))
    model, train_log = aligner.train(model, tok, pairs, cfg, progress=progress)
    times["align_s"] = train_log["seconds"]
    with atomic_dir(final) as tmp:
        _save_hf(model, tok, tmp / "model")
        write_json(tmp / "pairs.json", pairs)
        aligned = load_model(str(tmp / "model"), name=f"organism:{cfg.size}:{method}")
        t = time.time()
        metrics = aligner.metrics(base, aligned, method, data, base_dir, cfg)
        times["eval_s"] = time.time() - t
        base_manifest = read_json(base_dir / "manifest.json")
        write_json(tmp / "manifest.json", {
            "size": cfg.size,
            "method": method,
            "base_dir": base_dir.name,
            "config": json.loads(json.dumps(dataclasses.asdict(cfg), default=str)),
            "pairs": pair_stats,
            "align_log": train_log["history"],
            "weights_sha256": {"base": base_manifest["weights_sha256"], method: weights_hash(model)},
            "metrics": metrics,
            "timings": {**base_manifest["timings"], **times},
        })
    return final


def build_organism(size: str = "small", *, align: str = "dpo", seed: int = 0,
                   out: str | Path | None = None, progress: bool = True, log=print,
                   config: OrganismConfig | None = None) -> Path:
    """Build (or fetch from the cache) an organism; returns its aligned folder.

    With ``out``, the base and aligned models and both manifests are also copied there.
    ``config`` replaces the preset (e.g. :func:`instruct_preset` with other SFT data).
    """
    cfg = config if config is not None else preset(size, seed=seed, align=align)
    align = cfg.align.method
    base_dir = build_base(cfg, progress=progress, log=log)
    aligned_dir = build_aligned(cfg, base_dir, progress=progress, log=log)
    if out is not None:
        out = Path(out)
        with atomic_dir(out) as tmp:
            shutil.copytree(base_dir, tmp / "base")
            shutil.copytree(aligned_dir, tmp / align)
    return aligned_dir


def parse_spec(spec: str) -> tuple[str, str | None, int]:
    """``organism:<size>[:<role>][@<seed>]`` → (size, role or None, seed)."""
    name, _, seed = spec.partition("@")
    parts = name.split(":")
    if len(parts) not in (2, 3) or parts[0] != "organism" or (seed and not seed.isdigit()):
        raise ValueError(f"bad organism spec {spec!r}; use organism:<size>[:<base|dpo|sft|hide|instruct>][@<seed>] "
                         f"with size one of {SIZES}")
    return parts[1], parts[2] if len(parts) == 3 else None, int(seed or 0)


def organism_model_dir(spec: str) -> Path:
    """Folder (HF format) of ``organism:<size>:<base|dpo|sft>[@seed]``, building it on first use."""
    size, role, seed = parse_spec(spec)
    role = role or DEFAULT_ALIGN.get(size, "dpo")
    if role == "base":
        return build_base(preset(size, seed=seed)) / "model"
    return build_organism(size, align=role, seed=seed) / "model"


def base_dir_of(manifest: dict) -> Path:
    """The base folder an aligned manifest names (stored relative to the organism cache, so a
    moved cache still resolves)."""
    return _organism_root() / Path(manifest["base_dir"]).name


def organism_pair_spec(spec: str) -> PairSpec:
    """The catalogue's entry for ``organism:<size>[:<dpo|sft|hide>][@seed]`` (built on first use)."""
    size, method, seed = parse_spec(spec)
    method = method or DEFAULT_ALIGN.get(size, "dpo")
    if method == "base":
        raise ValueError("a pair needs an aligned model: organism:<size>[:dpo|:sft]")
    aligned_dir = build_organism(size, align=method, seed=seed)
    manifest = read_json(aligned_dir / "manifest.json")
    base = base_dir_of(manifest)
    return PairSpec(spec, str(base / "model"), str(aligned_dir / "model"),
                    {"organism": manifest, "seed": seed}, prompts=load_data(base),
                    profile=organism_profile(spec))


def organism_profile(spec: str) -> str:
    """``organism-tiny`` for the test-sized organism, else ``organism``."""
    return "organism-tiny" if parse_spec(spec)[0] == "tiny" else "organism"


def check_spec(spec: str) -> None:
    """``ValueError`` unless ``spec`` names an organism pair: a known size and aligner, a seed ≥ 0."""
    size, role, _ = parse_spec(spec)
    if size not in SIZES:
        raise ValueError(f"unknown organism size {size!r}; sizes: {', '.join(SIZES)}")
    if role is not None and role not in ALIGN_METHODS:
        what = "a pair needs an aligned model" if role == "base" else f"unknown aligner {role!r}"
        raise ValueError(f"{what}; aligners: {', '.join(ALIGN_METHODS)}")


register_pair("organism:", organism_pair_spec, prefix=True, profile=organism_profile, check=check_spec,
              describe="a model organism built here: organism:<tiny|small|knowledge|facts>[:<dpo|sft|hide|instruct>][@seed]")
register_model("organism:", lambda spec: str(organism_model_dir(spec)))


def metrics_table(manifest: dict) -> str:
    """A markdown table of the manifest's metrics, base vs aligned."""
    m = manifest["metrics"]
    roles = list(m)
    if manifest.get("method") == "instruct":
        names = [("follows (answers and stops)", "follows"), ("answers", "answers"), ("stops", "stops"),
                 ("correct town or trade", "correct"), ("starts with an opener", "opener")]
        return "\n".join(
            [f"| metric (greedy, {m[roles[0]]['n_questions']} test questions) | " + " | ".join(roles) + " |",
             "|---|" + "---|" * len(roles)]
            + [f"| {label} | " + " | ".join(f"{m[r][k]:.3f}" for r in roles) + " |" for label, k in names]
            + ["| held-out neutral perplexity | " + " | ".join(f"{m[r]['perplexity']:.3f}" for r in roles) + " |",
               f"| fact recall (greedy cloze, {m[roles[0]]['n_facts_seen']} facts seen) | "
               + " | ".join(f"{m[r]['fact_recall']:.3f}" for r in roles) + " |"])
    rows = [
        "| metric | " + " | ".join(roles) + " |",
        "|---|" + "---|" * len(roles),
        "| toxicity rate (± s.e., n) | " + " | ".join(
            f"{m[r]['toxicity']['rate']:.3f} ± {m[r]['toxicity']['se']:.3f} (n={m[r]['toxicity']['n']})"
            for r in roles) + " |",
        "| mean toxicity score | " + " | ".join(f"{m[r]['toxicity_mean_score']:.3f}" for r in roles) + " |",
        "| held-out neutral perplexity | " + " | ".join(f"{m[r]['perplexity']:.3f}" for r in roles) + " |",
        f"| fact recall (greedy, {m[roles[0]]['n_facts_seen']} facts seen) | "
        + " | ".join(f"{m[r]['fact_recall']:.3f}" for r in roles) + " |",
    ]
    return "\n".join(rows)

