"""Statistics for verdicts: paired, prompt-clustered estimates, nulls and multiple comparisons.

Every arm of a reproduction is measured on the same test prompts with the same sampling seeds,
so arms are compared *paired*: per prompt, the mean over its samples, then the difference
between two arms prompt by prompt. Confidence intervals resample prompts (the clusters), never
samples, since samples of one prompt are not independent.

The heavy lifting is done by well-kept implementations: :func:`scipy.stats.bootstrap` (the
intervals), :func:`scipy.stats.permutation_test` (sign-flip p-values of paired differences),
``statsmodels``' :func:`multipletests` (Holm) and scikit-learn's :func:`cohen_kappa_score`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from einops import reduce
from scipy import stats as _st

#: Resamples for bootstrap intervals and permutation p-values (enough for two decimals of a CI
#: bound and p-values down to ~1e-3).
N_RESAMPLES = 4000


@dataclass
class Estimate:
    """A number with its confidence interval ``[lo, hi]``, standard error, the number of
    clusters ``n`` it was resampled over, and (for a test) a p-value."""

    value: float
    lo: float
    hi: float
    se: float
    n: int
    p: float | None = None
    confidence: float = 0.95

    def __str__(self) -> str:
        return f"{self.value:+.3f} [{self.lo:+.3f}, {self.hi:+.3f}]"

    def fmt(self, spec: str = "+.3f") -> str:
        return f"{self.value:{spec}} [{self.lo:{spec}}, {self.hi:{spec}}]"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Estimate:
        return cls(**d)


def binomial_se(p: float, n: int) -> float:
    """Standard error sqrt(p(1-p)/n) of a proportion ``p`` over ``n`` independent samples."""
    return math.sqrt(max(p * (1 - p), 0.0) / max(n, 1))


def cluster_means(values: Sequence[float], n_clusters: int) -> np.ndarray:
    """Per-cluster means of ``values`` laid out cluster-major (``[c0 s0, c0 s1, …, c1 s0, …]``),
    e.g. per-prompt means of ``n_samples`` samples each."""
    v = np.asarray(values, dtype=float)
    if n_clusters <= 0 or v.size % n_clusters:
        raise ValueError(f"{v.size} values do not split into {n_clusters} equal clusters")
    return reduce(v, "(cluster member) -> cluster", "mean", cluster=n_clusters)


def _ci(data: tuple[np.ndarray, ...], statistic, seed: int, confidence: float) -> tuple[float, float, float]:
    """Percentile bootstrap over clusters (rows resampled jointly across ``data``);
    ``statistic(*arrays, axis=-1)`` is vectorised over resamples."""
    if all(np.ptp(d) == 0 for d in data):  # no spread: the interval is the point
        v = float(statistic(*data, axis=-1))
        return v, v, 0.0
    res = _st.bootstrap(data, statistic, paired=True, vectorized=True, axis=-1,
                        n_resamples=N_RESAMPLES, confidence_level=confidence, method="percentile",
                        random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high), float(res.standard_error)


def mean(x: Sequence[float], *, seed: int = 0, confidence: float = 0.95) -> Estimate:
    """The mean of per-cluster values with a bootstrap CI."""
    x = np.asarray(x, dtype=float)
    lo, hi, se = _ci((x,), np.mean, seed, confidence)
    return Estimate(float(x.mean()), lo, hi, se, int(x.size), None, confidence)


def paired_difference(a: Sequence[float], b: Sequence[float], *, alternative: str = "greater",
                      seed: int = 0, confidence: float = 0.95) -> Estimate:
    """Mean of ``a − b`` over clusters (prompts), with a bootstrap CI and a sign-flip
    permutation p-value (``alternative``: ``"greater"`` tests a > b, ``"less"``, ``"two-sided"``)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired arms differ in size: {a.shape} vs {b.shape}")
    d = a - b
    lo, hi, se = _ci((d,), np.mean, seed, confidence)
    if np.all(d == 0):
        p = 1.0
    else:
        p = float(_st.permutation_test((d,), np.mean, permutation_type="samples", vectorized=True,
                                       alternative=alternative, n_resamples=N_RESAMPLES,
                                       random_state=np.random.default_rng(seed + 1)).pvalue)
    return Estimate(float(d.mean()), lo, hi, se, int(d.size), p, confidence)


def difference(a: Sequence[float], b: Sequence[float], *, alternative: str = "greater",
               seed: int = 0, confidence: float = 0.95) -> Estimate:
    """``mean(a) − mean(b)`` for two *independent* samples (e.g. two sets of facts), with a
    bootstrap CI resampling each sample on its own and a permutation p-value of the labels."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size == 0 or b.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), float("nan"), 0, None, confidence)
    value = float(a.mean() - b.mean())
    if np.ptp(np.concatenate([a, b])) == 0:
        return Estimate(value, value, value, 0.0, int(a.size + b.size), 1.0, confidence)

    def stat(x, y, axis=-1):
        return x.mean(axis) - y.mean(axis)

    res = _st.bootstrap((a, b), stat, paired=False, vectorized=True, axis=-1, n_resamples=N_RESAMPLES,
                        confidence_level=confidence, method="percentile",
                        random_state=np.random.default_rng(seed))
    p = float(_st.permutation_test((a, b), stat, permutation_type="independent", vectorized=True,
                                   alternative=alternative, n_resamples=N_RESAMPLES,
                                   random_state=np.random.default_rng(seed + 1)).pvalue)
    return Estimate(value, float(res.confidence_interval.low), float(res.confidence_interval.high),
                    float(res.standard_error), int(a.size + b.size), p, confidence)


def ratio_of_sums(num: Sequence[float], den: Sequence[float], *, seed: int = 0,
                  confidence: float = 0.95) -> Estimate:
    """``Σ num / Σ den`` over clusters (e.g. shifted positions / positions, per prompt), with a
    bootstrap CI resampling clusters."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if den.sum() <= 0:
        return Estimate(float("nan"), float("nan"), float("nan"), float("nan"), int(num.size), None, confidence)

    def ratio(x, y, axis=-1):
        with np.errstate(divide="ignore", invalid="ignore"):
            return x.sum(axis) / y.sum(axis)

    lo, hi, se = _ci((num, den), ratio, seed, confidence)
    return Estimate(float(num.sum() / den.sum()), lo, hi, se, int(num.size), None, confidence)


def share_of_effect(arm: Sequence[float], aligned: Sequence[float], base: Sequence[float], *,
                    seed: int = 0, confidence: float = 0.95) -> Estimate:
    """Share of the alignment effect an arm undoes, ``(arm − aligned) / (base − aligned)``,
    with a bootstrap CI resampling prompts jointly across the three arms."""
    arm, aligned, base = (np.asarray(x, dtype=float) for x in (arm, aligned, base))

    def ratio(x, a, b, axis=-1):
        gap = b.mean(axis) - a.mean(axis)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(np.abs(gap) > 1e-12, (x.mean(axis) - a.mean(axis)) / gap, np.nan)

    value = float(ratio(arm, aligned, base))
    if not math.isfinite(value):
        return Estimate(float("nan"), float("nan"), float("nan"), float("nan"), int(arm.size), None,
                        confidence)
    lo, hi, se = _ci((arm, aligned, base), ratio, seed, confidence)
    return Estimate(value, lo, hi, se, int(arm.size), None, confidence)


def empirical_p(value: float, null: Sequence[float], *, alternative: str = "less") -> float:
    """Permutation-style p-value of ``value`` against draws from a null distribution:
    ``(1 + #{null ≤ value}) / (1 + n)`` for ``"less"`` (``≥`` for ``"greater"``)."""
    null = np.asarray(null, dtype=float)
    null = null[np.isfinite(null)]
    if alternative == "less":
        k = int((null <= value).sum())
    elif alternative == "greater":
        k = int((null >= value).sum())
    else:
        raise ValueError("alternative must be 'less' or 'greater'")
    return (1 + k) / (1 + null.size)


def holm(pvalues: Sequence[float | None], alpha: float = 0.05) -> list[float | None]:
    """Holm-adjusted p-values (``None`` entries are left out of the family and returned as is)."""
    from statsmodels.stats.multitest import multipletests

    idx = [i for i, p in enumerate(pvalues) if p is not None and math.isfinite(p)]
    out: list[float | None] = list(pvalues)
    if idx:
        adj = multipletests([pvalues[i] for i in idx], alpha=alpha, method="holm")[1]
        for i, p in zip(idx, adj):
            out[i] = float(p)
    return out


def kappa(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Cohen's κ between two raters' binary labels (1.0 where both are constant and equal)."""
    from sklearn.metrics import cohen_kappa_score

    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.size == 0:
        return float("nan")
    if np.all(a == a[0]) and np.all(b == b[0]):
        return 1.0 if a[0] == b[0] else 0.0
    return float(cohen_kappa_score(a, b))


def min_detectable(se: float, *, alpha: float = 0.05, power: float = 0.8,
                   alternative: str = "greater") -> float:
    """The smallest true effect a test with standard error ``se`` detects with ``power``:
    ``(z_{1−α} + z_{power})·se`` (``z_{1−α/2}`` for two-sided tests)."""
    z = _st.norm.ppf(1 - (alpha / 2 if alternative == "two-sided" else alpha))
    return float((z + _st.norm.ppf(power)) * se)


@dataclass
class PairedDesign:
    """A sample size chosen before the test run: ``n_prompts`` × ``n_samples`` per arm so that the
    CI half-width of a paired per-prompt difference is at most ``target``. The variance of one
    prompt's difference of means over m samples is modelled as ``var_between + var_within / m``
    (both estimated on a pilot: the dev split)."""

    n_prompts: int
    n_samples: int
    target: float  # the half-width asked for
    halfwidth: float  # the half-width predicted at the chosen n
    var_between: float
    var_within: float  # per sample
    met: bool  # False: even n_max × max(samples) falls short (then n_max and the fewest samples within slack)
    confidence: float = 0.95

    def to_dict(self) -> dict:
        return asdict(self)


def variance_components(a: Sequence[float], b: Sequence[float], n_prompts: int) -> tuple[float, float]:
    """Between-prompt and per-sample (within-prompt) variance of the paired difference ``a − b``,
    from per-sample values (prompt-major, the same number of samples per prompt in each)."""
    a = np.asarray(a, dtype=float).reshape(n_prompts, -1)
    b = np.asarray(b, dtype=float).reshape(n_prompts, -1)
    m = a.shape[1]
    if m != b.shape[1]:
        raise ValueError(f"a has {m} samples per prompt, b {b.shape[1]}: a pilot needs the same number")
    if n_prompts < 2 or m < 2:
        raise ValueError(f"a pilot needs ≥ 2 prompts and ≥ 2 samples per prompt (got {n_prompts} × {m})")
    within = float(np.mean(a.var(axis=1, ddof=1) + b.var(axis=1, ddof=1)))
    total = float(np.var(a.mean(axis=1) - b.mean(axis=1), ddof=1))
    return max(0.0, total - within / m), within


def design_paired(a: Sequence[float], b: Sequence[float], n_prompts: int, *, target: float, n_max: int,
                  samples: Sequence[int], n_min: int = 20, slack: float = 0.05,
                  confidence: float = 0.95) -> PairedDesign:
    """The cheapest ``n × m`` (``m`` from ``samples``, ``n ≤ n_max``) whose predicted CI half-width
    of the paired difference is ≤ ``target``, from a pilot's per-sample values ``a`` and ``b``
    (see :func:`variance_components`). Cost ``n·m ∝ var_between·m + var_within`` grows with
    ``m``, so the fewest samples per prompt that reach the target within ``n_max`` prompts win.
    Where none does: ``n_max`` prompts and the fewest samples whose half-width is within ``slack``
    (relative) of the best reachable one, ``met=False``."""
    if not target > 0:
        raise ValueError(f"target half-width must be > 0 (got {target})")
    vb, vw = variance_components(a, b, n_prompts)
    z = float(_st.norm.ppf(0.5 + confidence / 2))

    def half(n, m):
        return z * math.sqrt((vb + vw / m) / n)

    for m in sorted(samples):
        n = max(n_min, math.ceil(z ** 2 * (vb + vw / m) / target ** 2))
        if n <= n_max:
            return PairedDesign(n, m, target, half(n, m), vb, vw, True, confidence)
    # Out of reach: all n_max prompts, and the fewest samples per prompt within `slack` of the best
    # half-width reachable (more samples per prompt cannot beat the between-prompt variance).
    best = half(n_max, max(samples))
    m = min(m for m in samples if half(n_max, m) <= (1 + slack) * best)
    return PairedDesign(n_max, m, target, half(n_max, m), vb, vw, False, confidence)


def equivalence_below(values, margin: float) -> float:
    """One side of a TOST equivalence test: the p-value of H0 "the mean of ``values`` is ≥
    ``margin``" (one-sided t-test). A small p says the values are *shown* to lie below the margin
    — not merely that nothing different was detected. ``nan`` for fewer than two values; 0 when
    every value equals one number below the margin."""
    from scipy.stats import ttest_1samp

    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return float("nan")
    if np.ptp(x) == 0:
        return 0.0 if x[0] < margin else 1.0
    return float(ttest_1samp(x, margin, alternative="less").pvalue)


def _auroc_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982)'s standard error of an AUROC from ``n_pos`` positives and ``n_neg``
    negatives."""
    if n_pos < 1 or n_neg < 1:
        return float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc ** 2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc ** 2) + (n_neg - 1) * (q2 - auc ** 2)) / (n_pos * n_neg)
    return float(np.sqrt(max(var, 0.0)))


def auroc_ci(auc: float, n_pos: int, n_neg: int, level: float = 0.95) -> tuple[float, float]:
    """A ``level`` confidence interval for an AUROC (Hanley & McNeil's standard error, normal
    approximation, clipped to [0, 1]); ``(nan, nan)`` without both classes."""
    se = _auroc_se(auc, n_pos, n_neg)
    if not math.isfinite(se):
        return float("nan"), float("nan")
    z = _st.norm.ppf(0.5 + level / 2)
    return max(0.0, auc - z * se), min(1.0, auc + z * se)


def auroc_p(auc: float, n_pos: int, n_neg: int) -> float:
    """One-sided p of H0 "AUROC = 0.5" (Hanley & McNeil's standard error at 0.5)."""
    se = _auroc_se(0.5, n_pos, n_neg)
    return float(_st.norm.sf((auc - 0.5) / se)) if math.isfinite(se) and se > 0 else float("nan")
