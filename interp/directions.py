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
                seed: int = 0, groups=None) -> Direction:
    """Logistic-regression probe for ``y`` from ``X`` (scikit-learn, L2, no feature scaling).

    Fitting on the raw residual keeps the weight vector in residual-stream coordinates, so the
    returned direction can be compared with value vectors and added to the stream as it is.
    """
    from sklearn.linear_model import LogisticRegression

    Xn, yn = _check(X, y)
    tr, te = split(len(yn), test_size, seed, yn, groups)
    if len(np.unique(yn[tr])) < 2:
        raise ValueError(f"probe labels are all {int(yn[0])} in the training split: nothing to separate")
    clf = LogisticRegression(C=C, max_iter=5000, random_state=seed)
    clf.fit(Xn[tr], yn[tr])
    w = torch.tensor(clf.coef_[0], dtype=torch.float32)
    return Direction(
        vector=w / w.norm(),
        kind="probe",
        hook=hook,
        scale=float(w.norm()),
        bias=float(clf.intercept_[0]),
        train_acc=float(clf.score(Xn[tr], yn[tr])),
        test_acc=float(clf.score(Xn[te], yn[te])),
        n_train=len(tr),
        n_test=len(te),
        meta={"C": C, "seed": seed, "test_size": test_size, "positive_rate": float(yn.mean()),
              "split": "by group" if groups is not None else "stratified by label",
              "majority_acc": float(max(yn[te].mean(), 1 - yn[te].mean()))},
    )


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
