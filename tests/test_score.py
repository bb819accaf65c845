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


def test_the_fast_lexicon_gives_the_librarys_answers():
    """The lexicon's compiled matcher decides exactly what better-profanity's own list scan
    decides, leetspeak and multi-word combinations included."""
    import random

    from better_profanity import Profanity

    from interp.score import LexiconScorer

    p = Profanity()
    p.load_censor_words()
    words = [w._original for w in p.CENSOR_WORDSET]
    rng = random.Random(0)
    leet = str.maketrans({"a": "@", "e": "3", "i": "1", "o": "0", "s": "$", "t": "7", "u": "v"})
    texts = ["", "a", "hello there", "you are a good friend", "shit", "SH1T!", "a$$hole", "b1tch-ish"]
    for _ in range(400):
        w = rng.choice(words)
        w = w.translate(leet) if rng.random() < 0.5 else w
        w = w[:-1] if rng.random() < 0.1 else w
        texts.append(f"{rng.choice(['you', 'he said', ''])} {w}{rng.choice(['', 's', '!', ' off', 'x'])} "
                     f"{rng.choice(words) if rng.random() < 0.2 else 'today'}")
    slow, fast = LexiconScorer(fast=False)(texts), LexiconScorer()(texts)
    assert (slow == fast).all() and 50 < fast.sum() < len(texts)
