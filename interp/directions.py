"""Directions in the residual stream: a linear probe and a difference of means.

Both take residual vectors ``X`` ``[n d_model]`` (typically a :class:`~interp.record.Recording`
of ``blocks.{l}.hook_resid_post`` reduced by ``"mean"``) and binary labels ``y`` ``[n]``
(1 = the behaviour, e.g. toxic), and return a :class:`Direction`: a unit vector in residual
space oriented so that a larger projection means more of the behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class Direction:
    """A unit direction ``vector`` ``[d_model]`` in the residual stream at ``hook``.

    ``kind`` is ``"probe"`` or ``"diff_in_means"``; ``scale`` is the norm of the raw vector
    (probe weight or mean difference) before normalising. For a probe, ``train_acc`` and
    ``test_acc`` are the accuracies on the two splits (``n_train``/``n_test`` samples).
    """

    vector: torch.Tensor
    kind: str
    hook: str | None = None
    scale: float = 1.0
    bias: float = 0.0
    train_acc: float | None = None
    test_acc: float | None = None
    n_train: int = 0
    n_test: int = 0
    meta: dict = field(default_factory=dict)

    def project(self, X: torch.Tensor) -> torch.Tensor:
        """Projection of ``X`` ``[..., d_model]`` on the unit direction ``[...]``."""
        return X.float() @ self.vector.to(X.device).float()

    def __neg__(self) -> Direction:
        return Direction(-self.vector, self.kind, self.hook, self.scale, -self.bias,
                         self.train_acc, self.test_acc, self.n_train, self.n_test, dict(self.meta))


def _check(X, y) -> tuple[np.ndarray, np.ndarray]:
    X = torch.as_tensor(X).float().cpu().numpy()
    y = np.asarray(torch.as_tensor(y).cpu()).astype(int)
    if X.ndim != 2:
        raise ValueError(f"X must be [n, d_model], got shape {X.shape}")
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)} labels")
    if set(np.unique(y)) != {0, 1}:
        raise ValueError("y must hold both labels 0 and 1")
    return X, y


def split(n: int, test_size: float, seed: int, y: np.ndarray | None = None,
          groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Train/test row indices: stratified by ``y``, or — with ``groups`` (e.g. the prompt each
    text was sampled from) — whole groups on one side only, so no prompt is on both."""
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    idx = np.arange(n)
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (n,):
            raise ValueError(f"groups has shape {groups.shape}, expected ({n},)")
        tr, te = next(GroupShuffleSplit(1, test_size=test_size, random_state=seed).split(idx, groups=groups))
        return np.sort(tr), np.sort(te)
    tr, te = train_test_split(idx, test_size=test_size, random_state=seed, stratify=y)
    return np.sort(tr), np.sort(te)


def train_probe(X, y, *, hook: str | None = None, test_size: float = 0.3, C: float = 1.0,
                seed: int = 0, groups=None, standardize: bool = False, class_weight: str | None = None,
                Cs: tuple[float, ...] | None = None, n_folds: int = 5) -> Direction:
    """Logistic-regression probe for ``y`` from ``X`` (scikit-learn, L2).

    The defaults fit the raw residual at ``C``: the weight vector is in residual-stream
    coordinates, so the direction can be compared with value vectors and added to the stream as
    it is. At real scale (a few thousand texts in a 576–640-dim residual, ~10% positives) use
    ``standardize=True`` (features scaled on the training split; the direction is mapped back to
    residual coordinates, ``w_j / σ_j``), ``class_weight="balanced"`` and ``Cs`` (C chosen by
    ``n_folds``-fold cross-validation on the training split, grouped by ``groups`` so no prompt is
    on both sides, by AUROC). Whatever the options, the held-out split (by group) gives
    ``test_acc`` and, in ``meta``, the AUROC, the balanced accuracy and the majority-class rate.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    Xn, yn = _check(X, y)
    tr, te = split(len(yn), test_size, seed, yn, groups)
    if len(np.unique(yn[tr])) < 2:
        raise ValueError(f"probe labels are all {int(yn[0])} in the training split: nothing to separate")
    mu, sd = (Xn[tr].mean(0), Xn[tr].std(0) + 1e-6) if standardize else (0.0, 1.0)
    Z = (Xn - mu) / sd
    chosen, cv = C, None
    if Cs:
        chosen, cv = _choose_C(Z[tr], yn[tr], None if groups is None else np.asarray(groups)[tr], Cs,
                               class_weight, n_folds, seed)
    clf = LogisticRegression(C=chosen, max_iter=5000, random_state=seed, class_weight=class_weight)
    clf.fit(Z[tr], yn[tr])
    w = torch.tensor(clf.coef_[0] / sd, dtype=torch.float32)  # back to residual coordinates
    has_both = len(np.unique(yn[te])) == 2
    score_te = clf.decision_function(Z[te])
    return Direction(
        vector=w / w.norm(),
        kind="probe",
        hook=hook,
        scale=float(w.norm()),
        bias=float(clf.intercept_[0] - float(np.sum(clf.coef_[0] * mu / sd))),
        train_acc=float(clf.score(Z[tr], yn[tr])),
        test_acc=float(clf.score(Z[te], yn[te])),
        n_train=len(tr),
        n_test=len(te),
        meta={"C": float(chosen), "seed": seed, "test_size": test_size, "positive_rate": float(yn.mean()),
              "split": "by group" if groups is not None else "stratified by label",
              "majority_acc": float(max(yn[te].mean(), 1 - yn[te].mean())),
              "standardize": standardize, "class_weight": class_weight, "cv_auroc": cv,
              "test_auroc": float(roc_auc_score(yn[te], score_te)) if has_both else None,
              "test_balanced_acc": float(balanced_accuracy_score(yn[te], clf.predict(Z[te]))) if has_both else None,
              "n_test_positive": int(yn[te].sum())},
    )


def _choose_C(Z, y, groups, Cs, class_weight, n_folds, seed) -> tuple[float, dict]:
    """The C of ``Cs`` with the best mean cross-validated AUROC (folds grouped when ``groups``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    if groups is not None:
        folds = list(GroupKFold(n_splits=min(n_folds, len(np.unique(groups)))).split(Z, y, groups))
    else:
        folds = list(StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(Z, y))
    scores = {}
    for c in Cs:
        aucs = []
        for a, b in folds:
            if len(np.unique(y[a])) < 2 or len(np.unique(y[b])) < 2:
                continue
            m = LogisticRegression(C=c, max_iter=5000, random_state=seed, class_weight=class_weight).fit(Z[a], y[a])
            aucs.append(roc_auc_score(y[b], m.decision_function(Z[b])))
        scores[float(c)] = float(np.mean(aucs)) if aucs else float("nan")
    valid = {c: v for c, v in scores.items() if np.isfinite(v)}
    best = max(valid, key=lambda c: (valid[c], -c)) if valid else float(Cs[0])
    return best, scores


def diff_in_means(X, y, *, hook: str | None = None) -> Direction:
    """Unit vector of mean(X | y=1) − mean(X | y=0)."""
    Xn, yn = _check(X, y)
    d = torch.tensor(Xn[yn == 1].mean(0) - Xn[yn == 0].mean(0), dtype=torch.float32)
    return Direction(d / d.norm(), "diff_in_means", hook, float(d.norm()), n_train=len(yn),
                     meta={"n_pos": int(yn.sum()), "n_neg": int((1 - yn).sum())})


def random_direction(d_model: int, seed: int = 0) -> Direction:
    """A random unit direction (a control of the same size as any other direction)."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(d_model, generator=g)
    return Direction(v / v.norm(), "random", meta={"seed": seed})


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity along the last dimension."""
    return torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=-1)
