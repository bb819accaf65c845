"""What every reproduction's run shares: which seeds, and which pair each seed runs on."""

from __future__ import annotations

from ..checks import UsageError

_SEEDS_VALID = "seeds are whole numbers ≥ 0: N, LO-HI with LO ≤ HI, or a comma list, e.g. 0-4 or 0,2,5"


def parse_seeds(spec: str | int | list | tuple) -> list[int]:
    """``"0-4"``, ``"0,2,5"``, ``3`` or a list → sorted seeds; anything else raises
    :class:`~interp.checks.UsageError` naming ``--seeds``."""
    if isinstance(spec, bool):
        raise UsageError("--seeds", spec, _SEEDS_VALID)
    if isinstance(spec, int):
        if spec < 0:
            raise UsageError("--seeds", spec, _SEEDS_VALID)
        return [spec]
    if isinstance(spec, list | tuple):
        return sorted({s for x in spec for s in parse_seeds(x)})
    out: set[int] = set()
    for part in str(spec).split(","):
        lo, dash, hi = part.strip().partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise UsageError("--seeds", spec, _SEEDS_VALID)
        a, b = int(lo), int(hi) if dash else int(lo)
        if b < a:
            raise UsageError("--seeds", spec, f"the range {part.strip()} runs downward; {_SEEDS_VALID}")
        out.update(range(a, b + 1))
    return sorted(out)


def pair_for_seed(pair: str, seed: int) -> str:
    """An organism is rebuilt per seed (pretraining, alignment and prompts all follow it); any
    other pair keeps its weights and varies the sampling and selection seeds only."""
    if pair.startswith("organism:") and "@" not in pair:
        return f"{pair}@{seed}" if seed else pair
    return pair
