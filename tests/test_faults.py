"""Faults a user meets, done to small things on purpose: nothing the user owns is ever deleted,
and a bad output path is refused before any work starts."""

import pytest
import torch

from interp.io import MARKER, atomic_dir, check_replaceable


def test_a_folder_of_the_users_is_never_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="did not write"):
        with atomic_dir(thesis) as tmp:
            (tmp / "model").write_text("x")
    assert (thesis / "notes.txt").read_text() == "mine" and not (thesis / "model").exists()
    assert not list(tmp_path.glob(".thesis.*.tmp"))  # nothing half-written left beside it
    with pytest.raises(FileExistsError, match="is a file"):
        check_replaceable(thesis / "notes.txt")


def test_interps_own_folders_are_replaced_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "a").write_text("1")
    assert (out / MARKER).exists() and (out / "a").read_text() == "1"
    with atomic_dir(out) as tmp:  # ours (the marker): replaced whole
        (tmp / "b").write_text("2")
    assert not (out / "a").exists() and (out / "b").read_text() == "2"
    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic_dir(empty) as tmp:
        (tmp / "c").write_text("3")
    assert (empty / "c").exists()


def test_the_cli_refuses_bad_outputs_before_the_work(tmp_path, monkeypatch, capsys):
    from interp.cli import main

    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("x")
    assert main(["organism", "build", "--size", "tiny", "--out", str(mine)]) == 2
    assert "did not write" in capsys.readouterr().err
    assert not (tmp_path / "cache" / "organism").exists()  # refused before building anything
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]
    a_file = tmp_path / "report.json"
    a_file.write_text("{}")
    for cmd in (["reproduce", "toxicity"], ["reproduce", "token-shift"], ["reproduce", "knowledge"]):
        assert main([*cmd, "--pair", "organism:tiny", "--out", str(a_file)]) == 2
        assert "is a file" in capsys.readouterr().err
    assert a_file.read_text() == "{}"


TOX = ["reproduce", "toxicity", "--pair", "organism:tiny"]
#: Bad input → what the one line must name. Each runs through interp.cli.main before any work.
BAD_INPUTS = [
    (TOX + ["--seeds", "3-1"], "--seeds '3-1'"),
    (TOX + ["--seeds", "x"], "--seeds 'x'"),
    (TOX + ["--seeds", "-2"], "--seeds '-2'"),
    (TOX + ["--seeds", "0,,2"], "--seeds"),
    (TOX + ["--n-test-prompts", "0"], "--n-test-prompts 0: at least 20"),
    (["reproduce", "toxicity", "--pair", "organism:tiny@-1"], "--pair 'organism:tiny@-1'"),
    (["reproduce", "toxicity", "--pair", "organism:huge"], "unknown organism size 'huge'"),
    (["reproduce", "toxicity", "--pair", "organism:tiny:base"], "needs an aligned model"),
    (["reproduce", "toxicity", "--pair", "no-such-pair"], "not in the catalogue"),
    (TOX + ["--scale-doses", "-5"], "--scale-doses '-5': doses are magnitudes > 0"),
    (TOX + ["--direction-doses", "0.1", "-1"], "--direction-doses"),
    (TOX + ["--lee-factor", "0"], "--lee-factor 0"),
    (TOX + ["--probe-layer", "99"], "--probe-layer 99: a layer of this pair: 0 … 1"),
    (TOX + ["--k", "0"], "--k 0"),
    (TOX + ["--alpha", "1.5"], "--alpha 1.5"),
    (TOX + ["--clamp-quantile", "2"], "--clamp-quantile 2"),
    (TOX + ["--ppl-budget", "0.5"], "--ppl-budget 0.5"),
    (TOX + ["--power-target", "-0.1"], "--power-target -0.1"),
    (TOX + ["--families", "no_such_family"], "--families 'no_such_family'"),
    (TOX + ["--scorers", "no-such-scorer"], "--scorers 'no-such-scorer'"),
    (TOX + ["--seed", "x"], "--seed 'x'"),
    (TOX + ["--no-such-flag", "1"], "--no-such-flag"),
    (["organism", "build", "--size", "huge"], "invalid choice: 'huge'"),
    (["no-such-command"], "invalid choice: 'no-such-command'"),
    (["reproduce", "knowledge", "--pair", "organism:tiny", "--seeds", "2-1"], "--seeds '2-1'"),
    (["reproduce", "token-shift", "--pair", "organism:tiny", "--n-prompts", "0"], "--n-prompts 0"),
    (["reproduce", "token-shift", "--pair", "organism:tiny", "--template", "plain"], "--template 'plain'"),
    (["reproduce", "pretraining", "--size", "huge"], "--size 'huge'"),
    (["reproduce", "instruction", "--pair", "organism:tiny:instruct", "--amounts", "0"], "--amounts '0'"),
    (["real", "build", "--model", "smollm2", "--align.lr", "-1"], "--align.lr -1"),
]


@pytest.mark.parametrize("argv,says", BAD_INPUTS, ids=[" ".join(a[2:] if len(a) > 2 else a) for a, _ in BAD_INPUTS])
def test_bad_input_gets_one_line_and_status_2(argv, says, use_organism_cache, tmp_path, capsys):
    from interp.cli import main

    out = tmp_path / "out"
    argv = [*argv, "--out", str(out)] if argv[0] == "reproduce" else argv
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("interp: error: "), err
    line = err[-1]
    assert says in line and "Traceback" not in line, line
    assert [x for x in err if x.startswith(("interp", "Traceback", "  File"))] == [line]  # one line of its own
    assert not out.exists()  # nothing written


def test_debug_shows_the_traceback_and_the_installed_command_exits_2(tmp_path):
    import subprocess
    import sys

    from interp.checks import UsageError
    from interp.cli import main

    with pytest.raises(UsageError, match="--seeds"):
        main(["reproduce", "toxicity", "--pair", "organism:tiny", "--seeds", "3-1", "--debug"])
    p = subprocess.run([sys.executable, "-m", "interp", "reproduce", "toxicity", "--pair", "organism:tiny",
                        "--seeds", "3-1", "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0 and "--seeds '3-1'" in p.stderr, p.stderr
    assert not (tmp_path / "o").exists()


def test_two_runs_writing_one_out_folder_the_second_is_refused(tmp_path, capsys):
    from filelock import FileLock

    from interp.cli import main

    out = tmp_path / "shared"
    out.mkdir()
    (out / "earlier.md").write_text("kept")
    with FileLock(str(out / ".interp.lock")):  # the first run holds the folder
        assert main(["reproduce", "toxicity", "--pair", "organism:tiny", "--out", str(out)]) == 2
    assert "another interp run is writing there now" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [".interp.lock", "earlier.md"]


def test_a_full_disk_while_writing_a_report_leaves_the_previous_one(tmp_path, monkeypatch):
    import errno

    import interp.io
    from interp.reproduce.report import write_report

    out = tmp_path / "report"
    write_report(out, "toxicity", {"v": 1}, "# first\n")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = interp.io.atomic_path
    calls = []

    def full_disk(path):  # the second file of the new report finds the disk full
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path)

    monkeypatch.setattr(interp.io, "atomic_path", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_report(out, "toxicity", {"v": 2}, "# second\n")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # old report whole, no stray files


TEXTS = ["the cat sat on the mat.", "Rex said to Ada: you are kind.", "a quiet dog walked past.",
         "Tom bought bread at the market.", "On Monday the owl slept.", "see you at the river."]


def _rec(model, out, **kw):
    from interp import hooks as H
    from interp.record import record

    return record(model, TEXTS, [H.resid(0), H.mlp_post(1)], batch_size=2, out_dir=out, progress=False, **kw)


def test_a_second_writer_is_refused(gpt2, tmp_path):
    from filelock import FileLock

    out = tmp_path / "rec"
    out.mkdir()
    with FileLock(str(out / ".lock")):  # another process holds the folder
        with pytest.raises(RuntimeError, match="another process is recording"):
            _rec(gpt2, out)
    assert not (out / "manifest.json").exists()
    assert _rec(gpt2, out)[("resid_post", 0)].shape[0] == len(TEXTS)  # free again: records


def test_corrupt_swapped_or_missing_shards_are_named_and_repaired(gpt2, tmp_path):
    from interp.record import load_recording

    out = tmp_path / "rec"
    full = _rec(gpt2, out)
    shards = sorted(out.glob("shard-*.safetensors"))
    assert len(shards) == 3
    a, b = shards[0].read_bytes(), shards[1].read_bytes()
    shards[0].write_bytes(b)  # two shards swapped: same sizes, no load error — but wrong rows
    shards[1].write_bytes(a)
    with pytest.raises(RuntimeError, match="shard-000000.safetensors is corrupt"):
        load_recording(out)
    repaired = _rec(gpt2, out)  # resume re-records exactly the bad shards
    for h in full.hooks:
        assert torch.equal(repaired[h], full[h])
    shards[2].unlink()
    with pytest.raises(RuntimeError, match="shard-000002.safetensors is missing"):
        load_recording(out)
    assert torch.equal(_rec(gpt2, out)[full.hooks[0]], full[full.hooks[0]])


def test_resuming_with_another_tokenizer_or_permuted_neurons_is_refused(gpt2, tmp_path):
    import copy

    out = tmp_path / "rec"
    _rec(gpt2, out)
    other = copy.deepcopy(gpt2)
    with torch.no_grad():  # two rows swapped: the same sum and absolute sum per tensor
        p = next(p for p in other.parameters() if p.dim() == 2 and p.shape[0] > 3)
        p[[0, 1]] = p[[1, 0]]
    with pytest.raises(FileExistsError, match="model_fingerprint"):
        _rec(other, out)
    retok = copy.deepcopy(gpt2)
    retok.tokenizer = copy.deepcopy(gpt2.tokenizer)
    retok.tokenizer.add_tokens(["<new-token>"])
    with pytest.raises(FileExistsError, match="tokenizer_fingerprint"):
        _rec(retok, out)


def test_nan_is_loud_where_it_first_appears(tokenizer, gpt2):
    from interp.checks import NonFiniteError
    from interp.diff import weight_diff
    from interp.neurons import rank_value_vectors
    from interp.pair import bridge_from_module, pair_from_modules
    from interp.record import record

    from .conftest import make_gpt2

    bad = make_gpt2(tokenizer)
    with torch.no_grad():
        bad.transformer.h[1].mlp.c_proj.weight[3, 0] = float("nan")  # one value vector holds a NaN
    with pytest.raises(NonFiniteError, match=r"weight .*mlp.*holds 1 NaN"):
        bridge_from_module(bad, tokenizer, name="bad")
    pair = pair_from_modules(make_gpt2(tokenizer), make_gpt2(tokenizer, seed=1), tokenizer)
    with torch.no_grad():
        next(p for p in pair.aligned.parameters() if p.dim() == 2)[0, 0] = float("inf")
    with pytest.raises(NonFiniteError, match="aligned weight"):
        weight_diff(pair)  # a minimum cosine never skips a NaN
    with pytest.raises(NonFiniteError, match="activation"):
        record(pair.aligned, TEXTS[:2], ["blocks.1.hook_resid_post"], progress=False)
    with pytest.raises(NonFiniteError, match="ranking direction"):
        rank_value_vectors(gpt2, torch.full((32,), float("nan")))


def test_interventions_check_their_arguments(gpt2):
    from interp.neurons import Neurons
    from interp.steer import AblateDirection, AddVector, ClampNeurons, ScaleNeurons

    d = gpt2.cfg.d_model
    cases = [
        (ScaleNeurons(Neurons(torch.tensor([0]), torch.tensor([-1])), 10), "outside the model"),
        (ScaleNeurons(Neurons(torch.tensor([5]), torch.tensor([0])), 10), "outside the model"),
        (ClampNeurons(Neurons(torch.tensor([0, 1]), torch.tensor([0, 1])), torch.zeros(3)), "3 floor values for 2"),
        (AddVector(torch.ones(1), 1.0, 0), r"shape \[1\]"),
        (AddVector(torch.ones(3, d), 1.0), r"shape \[3, 32\]"),  # 3 layers' vectors on a 2-layer model
        (AddVector(torch.ones(d), 1.0, 7), "layer 7 is outside"),
        (AblateDirection(torch.zeros(d)), "norm"),
        (AblateDirection(torch.ones(d + 1)), "shape"),
    ]
    for iv, message in cases:
        with pytest.raises(ValueError, match=message):
            iv.fwd_hooks(gpt2)
    assert len(AddVector(torch.ones(gpt2.cfg.n_layers, d), 1.0).fwd_hooks(gpt2)) == gpt2.cfg.n_layers


def test_small_misuses_get_clear_errors(tokenizer, gpt2):
    from interp import hooks as H
    from interp.pair import PairMismatchError, load_model, load_pair, pair_from_modules
    from interp.record import record

    from .conftest import make_gpt2

    with pytest.raises(ValueError, match="needs its tokenizer"):  # never a network attempt
        load_pair(make_gpt2(tokenizer), make_gpt2(tokenizer))
    with pytest.raises(ValueError, match="needs its tokenizer"):
        load_model(make_gpt2(tokenizer))
    short = make_gpt2(tokenizer)
    short.config.n_positions = 32  # a 32- vs 64-token context: not comparable
    from transformers import GPT2LMHeadModel

    with pytest.raises(PairMismatchError, match="n_ctx"):
        pair_from_modules(make_gpt2(tokenizer), GPT2LMHeadModel(short.config).eval(), tokenizer)
    rec = record(gpt2, TEXTS, [H.resid(0), H.resid(0)], progress=False)
    assert rec.hooks == [H.resid(0)] and rec[H.resid(0)].shape[0] == len(TEXTS)
    with pytest.raises(ValueError, match="batch_size"):
        record(gpt2, TEXTS, [H.resid(0)], batch_size=0, progress=False)
    with pytest.raises(ValueError, match="max_length=1000"):
        record(gpt2, TEXTS, [H.resid(0)], max_length=1000, progress=False)


def test_a_damaged_organism_cache_entry_is_named_set_aside_and_rebuilt(organism_cache, tmp_path, monkeypatch):
    """The organism's stored ``weights_sha256`` is checked whenever a cached entry is used:
    same-size damage to the weights, a truncated manifest or weights file is named with its
    path, the entry is moved aside (not deleted), and the organism is rebuilt to the same hash."""
    import shutil

    from interp.io import CorruptFileError, read_json
    from interp.organism import build as B
    from interp.pair import load_model

    from .conftest import copy_cache

    cache = copy_cache(organism_cache, tmp_path / "cache", ignore=("measurements", "steps"))
    monkeypatch.setenv("INTERP_CACHE", str(cache))
    aligned = B.build_organism("tiny", progress=False, log=lambda *a: None)
    want = read_json(aligned / "manifest.json")["weights_sha256"]
    weights = aligned / "model" / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 64] = bytes(64)  # same size, other numbers
    weights.write_bytes(bytes(raw))
    logged = []
    again = B.build_organism("tiny", progress=False, log=logged.append)
    assert any("damaged cache entry" in m and "weights hash" in m for m in logged), logged
    assert again == aligned and read_json(again / "manifest.json")["weights_sha256"] == want
    aside = [p for p in aligned.parent.iterdir() if p.name.startswith(aligned.name + ".damaged-")]
    assert len(aside) == 1 and (aside[0] / "model" / "model.safetensors").exists()

    # A truncated manifest: a readable error naming the file, and the entry set aside.
    (aligned / "manifest.json").write_text('{"size": "tiny", "weig')
    with pytest.raises(CorruptFileError, match="manifest.json: not valid JSON"):
        read_json(aligned / "manifest.json")
    assert not B._entry_ok(aligned, log=logged.append) and not aligned.exists()
    # A truncated weights file: loading the folder names it.
    folder = tmp_path / "broken"
    shutil.copytree(aside[0] / "model", folder)
    (folder / "model.safetensors").write_bytes(raw[:100])
    with pytest.raises(CorruptFileError, match=str(folder)):
        load_model(str(folder))


def test_measurements_kept_beside_a_report_are_read_back_on_another_machine(gpt2, tmp_path, monkeypatch):
    """A long run keeps its arms in a folder it commits; a fresh machine (an empty cache) reads
    them back instead of measuring again, and a different model never matches them."""
    import interp.measure as M
    from interp import keep_measurements
    from interp.measure import MeasureSpec, measure

    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache-a"))
    spec = MeasureSpec(prompts=("the cat", "a dog"), n_samples=2, max_new_tokens=4)
    kept = tmp_path / "report" / "measurements"
    with keep_measurements(kept):
        m1 = measure(gpt2, spec, label="base")
    entries = list(kept.rglob("*.json.gz"))
    assert len(entries) == 1 and not (tmp_path / "cache-a" / "measurements").exists()
    before = entries[0].read_bytes()

    calls = []
    monkeypatch.setattr(M, "toxicity", lambda *a, **k: calls.append(1) or pytest.fail("re-measured"))
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache-b"))  # another machine: nothing cached
    with keep_measurements(kept):
        m2 = measure(gpt2, spec, label="base, again")
    assert not calls and m2.scores == m1.scores and m2.completions == m1.completions
    assert m2.label == "base, again" and entries[0].read_bytes() == before

    with torch.no_grad():  # other weights: another key, measured afresh
        next(gpt2.parameters()).add_(1.0)
    with keep_measurements(kept), pytest.raises(pytest.fail.Exception, match="re-measured"):
        measure(gpt2, spec)

    monkeypatch.setenv("INTERP_MEASUREMENTS", str(kept))  # the same folder by the environment
    assert M.measurements_dir() == kept
    with pytest.raises(NotADirectoryError, match="is a file"):
        with keep_measurements(entries[0]):
            pass


# ----------------------------------------------------------------- no pickle is ever read back ---

def test_a_planted_pickle_in_the_step_cache_runs_nothing(tmp_path, monkeypatch):
    """A file someone left in ``<cache>/steps/`` — a pickle that would run a command when loaded,
    or a JSON entry naming a function to call — is never executed: the step is recomputed."""
    import json
    import pickle
    import warnings

    from interp.io import cache_dir
    from interp.serialize import cached_result

    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    ran = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {ran}",))

    stem = cache_dir() / "steps" / "toxicity-locate" / "0123456789abcdef01234567"
    stem.parent.mkdir(parents=True)
    stem.with_name(stem.name + ".pt").write_bytes(pickle.dumps(Evil()))
    with pytest.warns(UserWarning, match="pickle written by an older interp is never read"):
        assert cached_result(stem, lambda: {"fresh": 1}) == {"fresh": 1}
    assert not ran.exists()
    # A JSON entry that names a callable outside interp instead of an interp dataclass.
    for name in ("os:system", "builtins:eval", "interp.io:os.system", "interp.io:write_text",
                 "interp.neurons:_private"):
        entry = {"format": 1, "value": {"__dataclass__": name, "fields": {"command": f"touch {ran}"}}}
        stem.with_name(stem.name + ".json").write_text(json.dumps(entry))
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            assert cached_result(stem, lambda: ["rebuilt"]) == ["rebuilt"]
        assert any("rebuilding" in str(x.message) or "recomputing" in str(x.message) for x in w), name
        assert not ran.exists(), name
        assert cached_result(stem, lambda: None) == ["rebuilt"]  # the rebuilt entry is read back
        stem.with_name(stem.name + ".json").unlink()


def test_an_entry_of_an_older_interp_is_recomputed_with_a_warning(tmp_path):
    from interp import serialize
    from interp.neurons import Neurons
    from interp.serialize import cached_result

    stem = tmp_path / "entry"
    n = Neurons(torch.tensor([0, 1]), torch.tensor([3, 4]), torch.tensor([0.5, 0.25]), "top")
    assert cached_result(stem, lambda: {"top": n}) is not None
    back = cached_result(stem, lambda: pytest.fail("read back, not rebuilt"))
    assert torch.equal(back["top"].index, n.index) and back["top"].label == "top"
    j, _ = serialize.paths(stem)
    j.write_text(j.read_text().replace('"format":1', '"format":0'))
    with pytest.warns(UserWarning, match="written by another interp version"):
        assert cached_result(stem, lambda: "new") == "new"
    # A dataclass whose fields changed since the entry was written: recomputed too.
    j.write_text(serialize.paths(stem)[0].read_text())
    serialize.save(n, stem)
    j.write_text(j.read_text().replace('"label"', '"old_label"'))
    with pytest.warns(UserWarning, match="another interp version"):
        assert cached_result(stem, lambda: "newer") == "newer"


def test_the_serializer_keeps_types_and_refuses_what_it_cannot_keep(tmp_path):
    import numpy as np

    from interp import serialize
    from interp.stats import Estimate

    obj = {"e": Estimate(0.1, -0.2, 0.4, 0.05, 30, 0.3), "arr": np.arange(6, dtype=np.int32).reshape(2, 3),
           "mask": np.array([True, False]), "nan": float("nan"), (1, "a"): (1, 2.5), 7: [np.float64(2.0)],
           "half": torch.ones(3, dtype=torch.bfloat16), "words": np.array(["a", "bc"])}
    serialize.save(obj, tmp_path / "x")
    back = serialize.load(tmp_path / "x")
    assert isinstance(back["e"], Estimate) and back["e"].p == 0.3
    assert back["arr"].dtype == np.int32 and back["arr"].shape == (2, 3)
    assert back["mask"].dtype == bool and back[(1, "a")] == (1, 2.5) and np.isnan(back["nan"])
    assert isinstance(back[7][0], np.float64) and back["half"].dtype == torch.bfloat16
    assert back["words"].tolist() == ["a", "bc"]
    with pytest.raises(TypeError, match=r"dict\['fn'\]: cannot save a builtins.function"):
        serialize.save({"fn": lambda: 1}, tmp_path / "y")


def test_no_module_of_interp_reads_a_pickle():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "interp"
    bad = re.compile(r"weights_only\s*=\s*False|pickle\.loads?\(|joblib\.load\(|dill\.load|np\.load\(.*allow_pickle")
    # torch.load only as PyTorch's restricted loader (a user's .pt state dict: tensors, no code)
    hits = [f"{p.relative_to(root.parent)}:{i}: {line.strip()}" for p in root.rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines(), 1)
            if bad.search(line) or ("torch.load(" in line and "weights_only=True" not in line)]
    assert not hits, hits


# ----------------------------------------------------------------- a tied and an untied head ---

def test_a_pair_with_a_tied_and_an_untied_head_is_compared_matrix_by_matrix(tokenizer):
    import copy

    from transformers import GPT2LMHeadModel

    from interp.attribution import swapped_weights
    from interp.diff import tied_embeddings, weight_diff
    from interp.pair import pair_from_modules

    from .conftest import make_gpt2

    base = make_gpt2(tokenizer)
    cfg = copy.deepcopy(base.config)
    cfg.tie_word_embeddings = False
    tuned = GPT2LMHeadModel(cfg).eval()
    tuned.load_state_dict(base.state_dict(), strict=False)
    with torch.no_grad():  # the fine-tune moved its own head only
        tuned.lm_head.weight.copy_(base.transformer.wte.weight * 0.5)
    with pytest.warns(UserWarning, match="tie_word_embeddings: base True, aligned False"):
        pair = pair_from_modules(base, tuned, tokenizer)
    assert tied_embeddings(pair.base) and not tied_embeddings(pair.aligned)
    rows = {r["name"]: r for r in weight_diff(pair).rows}
    assert rows["lm_head.weight"]["tied"] == "base"
    assert abs(rows["lm_head.weight"]["rel_change"] - 0.5) < 1e-6  # against the base's one matrix
    assert rows["lm_head.weight"]["cosine"] == pytest.approx(1.0)  # shrunk ×0.5: cosine blind, norm not
    assert rows["transformer.wte.weight"]["rel_change"] == 0 and "tied" not in rows["transformer.wte.weight"]
    with swapped_weights(pair.aligned, pair.base, ["embed"]):  # revert: the head takes the tied matrix
        assert torch.equal(pair.aligned.original_model.lm_head.weight, base.transformer.wte.weight)
    # The other way round: an untied base, a tied fine-tune.
    with pytest.warns(UserWarning, match="base False, aligned True"):
        back = pair_from_modules(copy.deepcopy(tuned), copy.deepcopy(base), tokenizer)
    assert {r["name"]: r for r in weight_diff(back).rows}["lm_head.weight"]["tied"] == "aligned"


class _Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing on the way catches it."""


def test_a_reproduction_killed_at_each_step_resumes_to_the_same_report(organism_cache, tmp_path, monkeypatch):
    """Killed in locate, then (resumed) in compare, in where, in reactivate and in findings, the
    run finally finishes from what the earlier tries cached — and writes the same report, timings
    aside, as one uninterrupted run from an empty cache. An interrupted run writes no report; run
    once more with every step failing, the finished seed is read back (no step runs) and the
    summary across seeds is written again unchanged."""
    import json

    from interp.reproduce import get
    from interp.reproduce import toxicity as T
    from interp.reproduce.report import without_timings

    from .conftest import copy_cache

    def fresh_cache(name):
        path = tmp_path / name
        copy_cache(organism_cache / "organism", path / "organism")  # the same organism, nothing else
        monkeypatch.setenv("INTERP_CACHE", str(path))
        return path

    cfg = T.config_for("organism:tiny", patching=False, n_shuffled_probes=10)
    quiet = dict(progress=False, log=lambda *a: None, figures=False)
    fresh_cache("reference")
    get("toxicity").run_seeds(cfg, [0], out=tmp_path / "reference-out", **quiet)
    want = without_timings(json.loads((tmp_path / "reference-out" / "seed-0" / "toxicity.json").read_text()))

    cache = fresh_cache("resumed")
    out = tmp_path / "resumed-out"
    for step in ("locate", "compare", "where", "reactivate", "findings"):
        module = T.claims if step == "findings" else T.steps  # where the pipeline looks each step up
        real = getattr(module, step)

        def killed(*a, _step=step, **k):
            raise _Killed(_step)

        monkeypatch.setattr(module, step, killed)
        with pytest.raises(_Killed, match=step):
            get("toxicity").run_seeds(cfg, [0], out=out, **quiet)
        monkeypatch.setattr(module, step, real)
        assert not (out / "seed-0" / "toxicity.json").exists()
    assert len(list((cache / "steps").rglob("*.json"))) == 2  # locate and compare, kept as JSON + tensors
    get("toxicity").run_seeds(cfg, [0], out=out, **quiet)
    got = without_timings(json.loads((out / "seed-0" / "toxicity.json").read_text()))
    assert got == want
    summary = (out / "toxicity_seeds.md").read_text(), json.loads((out / "toxicity_seeds.json").read_text())
    for step in ("locate", "compare", "where", "reactivate", "findings"):
        monkeypatch.setattr(T.claims if step == "findings" else T.steps, step,
                            lambda *a, _step=step, **k: pytest.fail(f"{_step} ran for a finished seed"))
    logs = []
    back = get("toxicity").run_seeds(cfg, [0], out=out, **{**quiet, "log": logs.append})
    assert any("read back from" in m for m in logs) and [f.key for f in back[0].findings] == [f["key"] for f in want["findings"]]
    again = (out / "toxicity_seeds.md").read_text(), json.loads((out / "toxicity_seeds.json").read_text())
    assert again[0] == summary[0] and without_timings(again[1]) == without_timings(summary[1])
