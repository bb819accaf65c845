import pytest
import torch

from interp import hooks as H
from interp.record import (
    iter_shards,
    load_recording,
    record,
    record_pair,
    reduce,
    write_shards,
)
from interp.tokens import SequenceTooLongError, encode

TEXTS = [
    "Rex said to Ada: you are a stupid idiot.",
    "The old cat sat near the market.",
    "Ada",
    "On Monday the fox and the owl waited in the rain. Tom bought tea at the bakery.",
    "Lily turned to Sam: thank you for the bread.",
]


def _hooks(m):
    L = m.cfg.n_layers
    return H.hook_names("mlp_pre", L) + H.hook_names("mlp_post", L) + H.hook_names("resid_post", L)


@pytest.mark.parametrize("reduction", ["mean", "last", 0, 2, -1, "all"])
def test_shapes(any_model, reduction):
    hooks = _hooks(any_model)
    rec = record(any_model, TEXTS[:2] + TEXTS[3:], hooks, reduction=reduction, batch_size=2, progress=False)
    n_tokens = sum(len(x) for x in any_model.tokenizer(TEXTS[:2] + TEXTS[3:])["input_ids"])
    rows = n_tokens if reduction == "all" else 4
    assert rec[H.mlp_post(0)].shape == (rows, any_model.cfg.d_mlp)
    assert rec[H.resid(1)].shape == (rows, any_model.cfg.d_model)
    assert rec.stack(H.hook_names("resid_post", 2)).shape == (2, rows, any_model.cfg.d_model)
    if reduction == "all":
        assert rec.token_index.shape == (n_tokens, 2)


@pytest.mark.parametrize("reduction", ["mean", "last", 1, -2, "all"])
def test_padding_never_enters_a_statistic(any_model, reduction):
    hooks = _hooks(any_model)
    together = record(any_model, TEXTS[:2] + TEXTS[3:], hooks, reduction=reduction, batch_size=4, progress=False)
    alone = [record(any_model, [t], hooks, reduction=reduction, batch_size=1, progress=False)
             for t in TEXTS[:2] + TEXTS[3:]]
    for h in hooks:
        joined = torch.cat([a[h] for a in alone])
        assert torch.allclose(together[h], joined, atol=1e-5), h


@pytest.mark.parametrize("reduction", ["all", "mean", -1])
def test_columns_are_the_whole_hooks_columns(any_model, reduction):
    hooks = [H.mlp_post(0), H.resid(1)]
    whole = record(any_model, TEXTS, hooks, reduction=reduction, batch_size=2, progress=False)
    some = record(any_model, TEXTS, hooks, reduction=reduction, batch_size=2, progress=False,
                  columns={H.mlp_post(0): [5, 0, 5, 3]})
    assert torch.equal(some[H.mlp_post(0)], whole[H.mlp_post(0)][:, [5, 0, 5, 3]])
    assert torch.equal(some[H.resid(1)], whole[H.resid(1)])  # a hook columns= does not name: whole
    assert some.meta["columns"] == {H.mlp_post(0): [5, 0, 5, 3]} and "columns" not in whole.meta


def test_columns_errors_name_the_culprit(any_model, tmp_path):
    h = H.mlp_post(0)
    with pytest.raises(ValueError, match="not recorded"):
        record(any_model, TEXTS, [h], columns={H.mlp_post(1): [0]}, progress=False)
    with pytest.raises(ValueError, match="non-negative"):
        record(any_model, TEXTS, [h], columns={h: [-1]}, progress=False)
    with pytest.raises(IndexError, match=str(any_model.cfg.d_mlp)):
        record(any_model, TEXTS, [h], columns={h: [any_model.cfg.d_mlp]}, progress=False)
    with pytest.raises(ValueError, match="in-memory"):
        record(any_model, TEXTS, [h], columns={h: [0]}, out_dir=tmp_path / "rec", progress=False)
    assert not (tmp_path / "rec").exists()


def test_reduce_matches_hand_computation():
    act = torch.arange(2 * 4 * 3, dtype=torch.float).view(2, 4, 3)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    assert torch.allclose(reduce(act, mask, "mean")[1], act[1, :2].mean(0))
    assert torch.equal(reduce(act, mask, "last"), torch.stack([act[0, 2], act[1, 1]]))
    assert torch.equal(reduce(act, mask, -1), reduce(act, mask, "last"))
    assert reduce(act, mask, "all").shape == (5, 3)
    with pytest.raises(IndexError):
        reduce(act, mask, 2)
    with pytest.raises(ValueError):
        reduce(act, mask, "median")


def test_bad_input_is_rejected(gpt2):
    with pytest.raises(ValueError, match="no texts"):
        record(gpt2, [], [H.mlp_post(0)], progress=False)
    with pytest.raises(KeyError, match="unknown hook"):
        record(gpt2, TEXTS, ["blocks.9.mlp.hook_post"], progress=False)
    long = " ".join(["the cat sat"] * 40)
    with pytest.raises(SequenceTooLongError):
        record(gpt2, [long], [H.mlp_post(0)], on_overflow="error", progress=False)
    with pytest.warns(UserWarning, match="truncated"):
        rec = record(gpt2, [long], [H.mlp_post(0)], reduction="all", progress=False)
    assert rec[H.mlp_post(0)].shape[0] == gpt2.cfg.n_ctx
    with pytest.raises(TypeError):
        encode(gpt2.tokenizer, "one string")


def test_disk_round_trip_equals_memory(any_model, tmp_path):
    hooks = _hooks(any_model)
    for reduction in ("mean", "all"):
        mem = record(any_model, TEXTS, hooks, reduction=reduction, batch_size=2, progress=False)
        disk = record(any_model, TEXTS, hooks, reduction=reduction, batch_size=2,
                      out_dir=tmp_path / str(reduction), progress=False)
        for h in hooks:
            assert torch.equal(mem[h], disk[h])
        if reduction == "all":
            assert torch.equal(mem.token_index, disk.token_index)
        assert len(list(iter_shards(tmp_path / str(reduction)))) == 3


def test_resume_after_a_crash_and_no_partial_shard_is_read(gpt2, tmp_path, monkeypatch):
    import interp.record as R

    hooks = _hooks(gpt2)
    full = record(gpt2, TEXTS, hooks, batch_size=1, progress=False)
    real = R._forward_collect
    calls = {"n": 0}

    def crashing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated crash")
        return real(*a, **k)

    monkeypatch.setattr(R, "_forward_collect", crashing)
    with pytest.raises(KeyboardInterrupt):
        write_shards(gpt2, TEXTS, hooks, tmp_path, batch_size=1, progress=False)
    # Two shards made it; the manifest says incomplete and readers refuse it.
    with pytest.raises(RuntimeError, match="incomplete"):
        load_recording(tmp_path)
    assert len(list(iter_shards(tmp_path, allow_partial=True))) == 2
    # A half-written shard (a temp file) and a shard the manifest does not list are never read.
    (tmp_path / ".shard-000002.safetensors.abc.tmp").write_bytes(b"garbage")
    (tmp_path / "shard-000003.safetensors").write_bytes(b"garbage")
    assert len(list(iter_shards(tmp_path, allow_partial=True))) == 2

    calls["n"] = -100
    monkeypatch.setattr(R, "_forward_collect", lambda *a, **k: (calls.__setitem__("n", calls["n"] + 1), real(*a, **k))[1])
    write_shards(gpt2, TEXTS, hooks, tmp_path, batch_size=1, progress=False)
    assert calls["n"] == -100 + 3  # only the three missing batches ran
    resumed = load_recording(tmp_path)
    for h in hooks:
        assert torch.equal(resumed[h], full[h])


def test_other_settings_in_the_same_folder_are_refused(gpt2, tmp_path):
    write_shards(gpt2, TEXTS, [H.mlp_post(0)], tmp_path, batch_size=2, progress=False)
    with pytest.raises(FileExistsError, match="reduction"):
        write_shards(gpt2, TEXTS, [H.mlp_post(0)], tmp_path, reduction="last", batch_size=2, progress=False)
    write_shards(gpt2, TEXTS, [H.mlp_post(0)], tmp_path, reduction="last", batch_size=2,
                 progress=False, overwrite=True)
    assert load_recording(tmp_path).reduction == "last"


def test_record_pair(tokenizer, tmp_path):
    from interp.pair import pair_from_modules

    from .conftest import make_gpt2

    pair = pair_from_modules(make_gpt2(tokenizer, seed=0), make_gpt2(tokenizer, seed=1), tokenizer)
    rec = record_pair(pair, TEXTS, [H.resid(1)], progress=False, out_dir=tmp_path)
    assert (tmp_path / "base" / "manifest.json").exists()
    assert not torch.equal(rec.base[H.resid(1)], rec.aligned[H.resid(1)])


def test_token_input_equals_text_input(any_model, tmp_path):
    from interp.tokens import Tokens, encode

    hooks = _hooks(any_model)
    ids, mask = encode(any_model.tokenizer, TEXTS)
    for reduction in ("mean", "all", -1):
        from_text = record(any_model, TEXTS, hooks, reduction=reduction, batch_size=2, progress=False)
        from_ids = record(any_model, Tokens(ids, mask), hooks, reduction=reduction, batch_size=2,
                          progress=False)
        for h in hooks:
            assert torch.allclose(from_text[h], from_ids[h], atol=1e-6)
    disk = record(any_model, Tokens(ids, mask), hooks, batch_size=2, out_dir=tmp_path, progress=False)
    mean = record(any_model, TEXTS, hooks, batch_size=2, progress=False)
    assert torch.allclose(disk[hooks[0]], mean[hooks[0]], atol=1e-6)
    with pytest.raises(ValueError, match="right-padded"):
        Tokens(ids, mask.flip(-1))


def test_short_keys_like_transformer_lens(gpt2):
    from interp import hooks as H

    hooks = [H.resid(0), H.resid(1), H.mlp_post(1), H.mlp_pre(0)]
    rec = record(gpt2, TEXTS, hooks, progress=False)
    assert torch.equal(rec["resid_post", -1], rec[H.resid(1)])
    assert torch.equal(rec["resid_post", 0], rec[H.resid(0)])
    assert torch.equal(rec["post", -1], rec[H.mlp_post(1)])
    assert torch.equal(rec["mlp_pre", 0], rec[H.mlp_pre(0)])
    with pytest.raises(KeyError, match="was not recorded"):
        rec["resid_mid", 0]


def test_the_pass_stops_once_every_hook_has_fired(any_model):
    """A recording of layer 0 alone runs no later layer and no unembedding, and reads the same
    values as one that also records the last layer (which needs the whole body)."""
    fired = []
    later = H.resid(any_model.cfg.n_layers - 1)
    with any_model.hooks(fwd_hooks=[(later, lambda act, hook: fired.append(hook.name))]):
        early = record(any_model, TEXTS, [H.mlp_post(0)], batch_size=2, progress=False)
    assert fired == []
    both = record(any_model, TEXTS, [H.mlp_post(0), later], batch_size=2, progress=False)
    assert torch.equal(early[H.mlp_post(0)], both[H.mlp_post(0)])
    # the model still runs whole afterwards (no hook left behind)
    out = any_model(TEXTS[1])
    assert out.shape[-1] == any_model.cfg.d_vocab
