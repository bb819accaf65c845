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


class UsageError(ValueError):
    """A bad input from the user — a flag's value, a pair's name, a seed list — caught before any
    work: ``flag``, the ``value`` given and what would be ``valid``. The command line prints it as
    one line and exits with status 2 (``--debug`` shows the traceback)."""

    def __init__(self, flag: str, value, valid: str) -> None:
        self.flag, self.value, self.valid = flag, value, valid
        if isinstance(value, tuple | list):
            value = " ".join(f"{x:g}" if isinstance(x, float) else str(x) for x in value)
        shown = repr(value) if isinstance(value, str) else (f"{value:g}" if isinstance(value, float) else value)
        super().__init__(f"{flag} {shown}: {valid}")


def flag_of(field: str) -> str:
    """The command-line flag of a config field (``n_test_prompts`` → ``--n-test-prompts``)."""
    return "--" + field.replace("_", "-")


def check_config(cfg, *, zero_ok: tuple[str, ...] = (), prefix: str = "") -> None:
    """The checks every reproduction's config passes before any work, by each field's name and
    type (a config class adds its own after these): counts are whole numbers ≥ 1 (``zero_ok``
    fields ≥ 0; ``seed`` ≥ 0), shares, quantiles and bars lie in [0, 1], ``alpha`` in (0, 1),
    learning rates, factors and every dose are > 0, a perplexity budget ≥ 1. Raises
    :class:`UsageError` naming the flag."""
    import dataclasses
    import math

    def _bad(field: str, value, valid: str) -> UsageError:
        return UsageError("--" + (prefix + field).replace("_", "-"), value, valid)

    for f in dataclasses.fields(cfg):
        name, v = f.name, getattr(cfg, f.name)
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            check_config(v, zero_ok=zero_ok, prefix=f"{prefix}{name}.")
            continue
        if v is None or isinstance(v, str):
            continue
        items = v if isinstance(v, tuple) else (v,)
        if not all(isinstance(x, int | float) for x in items):
            continue  # structured (hide recipes, a nested recipe): the config checks it itself
        if any(isinstance(x, float) and not math.isfinite(x) for x in items):
            raise _bad(name, v, "a finite number")
        if name == "seed" or name.endswith("_layer"):
            if any(int(x) < 0 for x in items):
                raise _bad(name, v, "a whole number ≥ 0")
        elif all(isinstance(x, bool) for x in items):
            continue
        elif all(isinstance(x, int) for x in items):
            low = 0 if name in zero_ok else 1
            if any(x < low for x in items):
                raise _bad(name, v, f"whole numbers ≥ {low}" if isinstance(v, tuple) else f"a whole number ≥ {low}")
        elif name == "alpha":
            if not 0 < v < 1:
                raise _bad(name, v, "a significance level between 0 and 1, e.g. 0.05")
        elif any(w in name for w in ("share", "quantile", "bar", "target")):
            if any(not 0 <= x <= 1 for x in items):
                raise _bad(name, v, "between 0 and 1")
        elif name.endswith("budget"):
            if v < 1:
                raise _bad(name, v, "a ratio ≥ 1 (the most a dose may raise perplexity, e.g. 1.25)")
        elif name.endswith(("doses", "factor", "lr")) or "temperature" in name:
            low = "≥ 0" if "temperature" in name else "> 0"
            if any((x < 0) if "temperature" in name else (x <= 0) for x in items):
                what = ("doses are magnitudes > 0 (the sign is the family's: a negative scale would flip "
                        "the keys)" if name.endswith("doses") else f"a number {low}")
                raise _bad(name, v, what)
