import numpy as np
import pytest

from interp.score import FunctionScorer, ProfanityScorer, get_scorer, rate, toxicity_rate


def test_profanity_scorer_separates_insults_from_kind_words():
    s = ProfanityScorer()
    scores = s([" you are a stupid idiot.", " you are a kind friend.", " shut up, you moron."])
    assert scores.shape == (3,)
    assert scores[0] > 0.8 and scores[2] > 0.8 and scores[1] < 0.2
    assert s([]).shape == (0,)


def test_scorer_interface_accepts_functions_and_names():
    f = get_scorer(lambda texts: [len(t) / 10 for t in texts])
    assert f.name == "<lambda>" and np.allclose(f(["abc"]), [0.3])
    assert isinstance(get_scorer(None), ProfanityScorer)
    assert get_scorer(FunctionScorer(lambda t: [0] * len(t), "zero")).name == "zero"
    with pytest.raises(ValueError):
        get_scorer("nonsense")


def test_rates_and_standard_errors():
    r = toxicity_rate(np.array([0.9, 0.1, 0.6, 0.2]))
    assert r.rate == 0.5 and r.n == 4 and abs(r.se - 0.25) < 1e-12
    assert rate([True] * 10).se == 0.0
    with pytest.raises(ValueError):
        rate([])
