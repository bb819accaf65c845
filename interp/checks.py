"""Finite or loud: NaN and inf are reported where they first appear, with the name of the
weight, activation or statistic, instead of flowing silently into a ranking or a rate.

The checks are cheap (one ``isfinite`` per tensor) and on by default; ``INTERP_CHECK_FINITE=0``
switches them off for speed.
"""

from __future__ import annotations

import os

import torch


class NonFiniteError(ValueError):
    """A weight, activation or statistic holds NaN or inf."""


def enabled() -> bool:
    return os.environ.get("INTERP_CHECK_FINITE", "1") not in ("0", "false", "no")


def finite(t: torch.Tensor, what: str) -> torch.Tensor:
    """Return ``t``; raise :class:`NonFiniteError` naming ``what`` if any entry is NaN or inf."""
    if enabled() and t.is_floating_point() and not bool(torch.isfinite(t).all()):
        n_nan, n_inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
        raise NonFiniteError(f"{what} holds {n_nan} NaN and {n_inf} inf values "
                             "(set INTERP_CHECK_FINITE=0 to skip this check)")
    return t


def finite_weights(model, name: str = "model") -> None:
    """Every parameter of ``model`` is finite; else the first bad one is named."""
    if not enabled():
        return
    for pname, p in model.named_parameters():
        finite(p.detach(), f"{name}: weight {pname}")
