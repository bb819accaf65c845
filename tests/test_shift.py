"""Token shift: ranks on hand-made pairs whose answer is known, the rules, the command."""

import copy

import pytest
import torch

from interp.pair import pair_from_modules
from interp.shift import (
    RuleAdapter,
    fit_adapter,
    shift_class,
    shift_location,
    token_shift,
    token_type,
    word_types,
)

from .conftest import make_gpt2

PROMPTS = ["Rex said to Ada:", "The old cat", "Lily turned to Sam:", "On Monday the fox"]


@pytest.fixture
def same_pair(tokenizer):
    base = make_gpt2(tokenizer, seed=0)
    return pair_from_modules(base, copy.deepcopy(base), tokenizer)


def test_an_aligned_model_equal_to_the_base_is_fully_unshifted(same_pair):
    ts = token_shift(same_pair, PROMPTS, max_new_tokens=10)
    assert len(ts) > 0 and ts.shares()["unshifted"] == 1.0
    assert torch.allclose(ts.kl, torch.zeros_like(ts.kl), atol=1e-5)
    assert torch.allclose(ts.p_aligned, ts.p_base)
    assert sum(v["n"] for v in ts.shares_by_type().values()) == len(ts)


class PlantedPenalty:
    """Pushes the aligned model's own token to the bottom of the reference's ranking, at chosen steps."""

    def __init__(self, targets: dict, steps: set):
        self.targets, self.steps = targets, steps

    def adjust(self, seq, logits, width):
        step = seq.shape[1] - width
        if step in self.steps:
            logits = logits.clone()
            logits[0, self.targets[(tuple(seq[0, :width].tolist()), step)]] = -1e9
        return logits


def test_a_planted_logit_change_shifts_exactly_the_planted_positions(same_pair):
    clean = token_shift(same_pair, PROMPTS, max_new_tokens=10)
    targets = {}
    for i, pos in enumerate(clean.positions):
        width = pos[0] if pos else 0
        prefix = tuple(clean.seqs.input_ids[i, :width].tolist())
        for s, p in enumerate(pos):
            targets[(prefix, s)] = int(clean.seqs.input_ids[i, p])
    planted = token_shift(same_pair, PROMPTS, max_new_tokens=10, processor=PlantedPenalty(targets, {1, 3}))
    expected = (planted.step == 1) | (planted.step == 3)
    assert torch.equal(planted.rank > 3, expected)
    assert (planted.rank[~expected] == 1).all()
    prof = planted.kl_profile()  # the shallow-alignment curve sees the planted steps and no others
    assert prof["step"] == list(range(10)) and all(n == len(PROMPTS) for n in prof["n"])
    assert all((k > 1.0) == (s in (1, 3)) for s, k in zip(prof["step"], prof["kl"]))
    assert all(lo <= k <= hi for k, lo, hi in zip(prof["kl"], prof["lo"], prof["hi"]))
    assert shift_class(torch.tensor([1, 2, 3, 4])) == ["unshifted", "marginal", "marginal", "shifted"]


def test_token_types():
    assert token_type("", is_eos=True) == "eos"
    assert token_type(" ,") == "punctuation" and token_type("\n") == "punctuation"
    assert token_type(" However") == "connective" and token_type(" the") == "function"
    assert token_type(" Sure") == "opener" and token_type("Thanks") == "opener" and token_type(" so") == "connective"
    # by word: subwords take their word's type; punctuation and the end of sequence stay their own
    pieces = [" C", "ertain", "ly", ".", " Bel", "kor", " was", " born", "<eos>", "So"]
    eos = [p == "<eos>" for p in pieces]
    assert word_types(pieces, eos) == ["opener"] * 3 + ["punctuation", "content", "content", "function",
                                                         "content", "eos", "connective"]
    assert token_type(" idiot") == "content"


def test_rule_adapter_semantics():
    ad = RuleAdapter(eos_token_id=0, eos_slope=0.5, boost_tokens=[3, 4], boost=2.0, repeat_penalty=1.0)
    seq = torch.tensor([[9, 9, 5, 5, 7]])  # prompt of width 2, then 5, 5, 7 generated
    out = ad.adjust(seq, torch.zeros(1, 10), prompt_width=2)
    assert out[0, 0] == pytest.approx(1.5)  # three generated tokens × 0.5
    assert out[0, 3] == out[0, 4] == 2.0
    assert out[0, 5] == -2.0 and out[0, 7] == -1.0 and out[0, 9] == 0.0  # the prompt is not penalised
    ad.begin(seq[:, :2])
    assert torch.equal(ad(seq, torch.zeros(1, 10)), out)


def test_fitting_the_rules_on_an_identical_pair_keeps_them_off(same_pair):
    adapter, fit = fit_adapter(same_pair, PROMPTS, max_new_tokens=8, eos_slopes=(0.0, 1.0),
                               boosts=(0.0,), repeat_penalties=(0.0, 1.0))
    assert fit["unshifted_without_rules"] == 1.0
    assert adapter.eos_slope == 0.0 and adapter.repeat_penalty == 0.0 and adapter.boost_tokens == []
    ts = token_shift(same_pair, PROMPTS, max_new_tokens=8)
    loc = shift_location(same_pair, ts)
    assert loc["n_shifted"] == 0 and all(v == 0 for v in loc["offset_unshifted"])


def test_reproduce_token_shift_on_the_tiny_organism(tiny_pair, tmp_path):
    import json

    from interp.reproduce import token_shift as S

    cfg = S.TokenShiftConfig(pair="organism:tiny", n_prompts=30, max_new_tokens=12, n_tox_samples=1)
    report = S.run(cfg, pair=tiny_pair, log=lambda *a: None)
    written = S.write(report, tmp_path)
    data = json.loads((tmp_path / "token_shift.json").read_text())
    shares = data["base_vs_aligned"]["shares"]
    assert abs(shares["unshifted"] + shares["marginal"] + shares["shifted"] - 1) < 1e-9
    assert set(data["toxicity"]) == {"base", "base + rules", "aligned", "paired"}
    assert set(data["toxicity"]["paired"]) == {"alt-profanity-check", "better-profanity"}
    ci = data["base_vs_aligned"]["share_intervals"]
    for band in ("unshifted", "marginal", "shifted"):
        assert ci[band]["value"] == pytest.approx(shares[band])
        assert ci[band]["lo"] <= ci[band]["value"] <= ci[band]["hi"]
    assert ci["unshifted"]["n"] == report.shift.meta["n_prompts"]
    # Held-out prompts never served fitting the rules (nor aligning the organism).
    heldout = report.meta["heldout_prompts"]
    assert len(set(heldout)) == len(heldout) == report.shift.meta["n_prompts"]
    assert not set(heldout) & set(tiny_pair.prompts.train_prompts)
    rc = data["rules_close"]
    assert rc["lo"] <= rc["value"] <= rc["hi"] or rc["value"] != rc["value"]
    assert "Lin et al." in (tmp_path / "token_shift.md").read_text()
    assert any(str(w).endswith("token_shift_shares.html") for w in written)


def test_a_reference_template_ranks_the_same_tokens_under_another_context(same_pair):
    plain = token_shift(same_pair, PROMPTS, max_new_tokens=8)
    same = token_shift(same_pair, PROMPTS, max_new_tokens=8, reference_template="{prompt}")
    assert torch.equal(plain.rank, same.rank) and torch.allclose(plain.kl, same.kl, atol=1e-6)
    ctx = token_shift(same_pair, PROMPTS, max_new_tokens=8, reference_template="The old cat said to Rex: {prompt}")
    assert torch.equal(ctx.token, plain.token)  # the aligned model's decoding is unchanged
    # ranked by hand: the reference reads the context, the prompt, then the aligned tokens
    tok = same_pair.tokenizer
    i, pos = 0, plain.positions[0]
    ids = tok("The old cat said to Rex: " + PROMPTS[0])["input_ids"] + plain.seqs.input_ids[0, pos].tolist()
    with torch.no_grad():
        logits = same_pair.base(torch.tensor([ids]))[0]
    start = len(ids) - len(pos)
    want = [int((logits[start + k - 1] > logits[start + k - 1, t]).sum()) + 1
            for k, t in enumerate(plain.seqs.input_ids[0, pos].tolist())]
    assert ctx.rank[ctx.prompt == i].tolist() == want and (ctx.kl > 1e-4).any()
