"""One type for a published claim tested here, and one renderer for tables of them.

A :class:`Finding` carries its criterion (fixed in code before the run), what was measured,
whether the criterion holds under each scorer, the claim's p-value and its Holm-adjusted value
over the family of claims, the headline effect with its CI, and — for a "no" — the smallest
effect the run could have detected. A claim is "yes" only where it holds under every scorer
*and* survives the correction; it is **not tested** — a third verdict, never a "no" — where a
claim it ``requires`` (alignment lowered toxicity; a locator found the neurons it is about) did
not hold. :func:`summarize_seeds` counts, per claim, in how many seeds it holds and in how many
it was tested; a claim that holds in some seeds but not all is *mixed*, never a plain yes or no.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from .stats import Estimate, holm

ALPHA = 0.05


@dataclass
class Finding:
    key: str
    claim: str
    anchor: str
    criterion: str
    measured: str
    holds_by: dict[str, bool]
    p: float | None = None
    p_holm: float | None = None
    effect: Estimate | None = None
    mde: float | None = None
    requires: str | list[str] | None = None  # keys of claims this one needs (all must hold)
    note: str = ""
    alpha: float = ALPHA
    ungated: dict[str, bool] | None = None  # holds_by before the precondition was applied
    untested: str = ""  # why the claim was not tested (a precondition or a locator failed); "" if tested

    @property
    def tested(self) -> bool:
        return not self.untested

    @property
    def holds(self) -> bool:
        if self.untested or not self.holds_by or not all(self.holds_by.values()):
            return False
        return self.p_holm is None or self.p_holm < self.alpha

    @property
    def verdict(self) -> str:
        return "not tested" if self.untested else ("yes" if self.holds else "no")

    @property
    def needs(self) -> list[str]:
        """The keys of the claims this one requires."""
        r = self.requires
        return [] if not r else ([r] if isinstance(r, str) else list(r))

    @property
    def holds_ungated(self) -> bool:
        """Whether the criterion itself is met, precondition aside (for testing the statistic)."""
        by = self.ungated if self.ungated is not None else self.holds_by
        return bool(by) and all(by.values()) and (self.p_holm is None or self.p_holm < self.alpha)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["holds"], d["verdict"] = self.holds, self.verdict
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Finding:
        d = {k: v for k, v in d.items() if k not in ("holds", "verdict")}
        if d.get("effect") is not None:
            d["effect"] = Estimate.from_dict(d["effect"])
        return cls(**d)


def finalize(findings: list[Finding], alpha: float = ALPHA) -> list[Finding]:
    """Holm-adjust the claims' p-values as one family, then apply preconditions: a claim that
    ``requires`` others (e.g. "alignment lowered toxicity", "a locator found toxic neurons") is
    **not tested** where one of them does not hold (or was not tested itself) — its criterion's
    own result is kept in ``ungated``; its verdict is "not tested", never "no"."""
    adj = holm([f.p for f in findings], alpha)
    for f, p in zip(findings, adj):
        f.p_holm, f.alpha = p, alpha
    by_key = {f.key: f for f in findings}
    for f in findings:  # in order: a precondition is decided before the claims that need it
        failed = [by_key[k] for k in f.needs if k in by_key and not by_key[k].holds]
        if failed and not f.untested:
            f.ungated = dict(f.holds_by)
            f.untested = "; ".join(f"'{pre.claim}' " + ("was not tested" if pre.untested else "does not hold")
                                   for pre in failed)
    return findings


def format_p(p: float | None) -> str:
    """A p-value for a table: three decimals, ``<0.001`` below that, empty where there is none —
    the one formatter every report and page uses."""
    if p is None or not math.isfinite(p):
        return ""
    return f"{p:.3f}" if p >= 0.001 else "<0.001"


def findings_table(findings: list[Finding], *, scorers: list[str] | None = None,
                   paper: str = "the paper", any_label: str = "any") -> str:
    """Markdown table: claim, measured, per-scorer criterion, Holm p, verdict, criterion (for
    claims without scorers one column, ``scorers=["any"]``, headed ``any_label``)."""
    scorers = scorers or sorted({s for f in findings for s in f.holds_by if s != "any"})
    head = (f"| {paper}'s claim | measured here | " + " | ".join(any_label if s == "any" else s for s in scorers)
            + " | p (Holm) | verdict | criterion (fixed before the run) |")
    lines = [head, "|" + "---|" * (5 + len(scorers))]
    for f in findings:
        cells = []
        for s in scorers:
            v = f.holds_by.get(s, f.holds_by.get("any"))
            cells.append("" if v is None else ("✓" if v else "✗"))
        verdict = {"yes": "yes", "no": "**no**"}.get(f.verdict, f"*{f.verdict}*")
        extra = f" ({f.note})" if f.note else ""
        if f.untested:
            extra += f" (not tested: {f.untested})"
        elif not f.holds and f.mde is not None and math.isfinite(f.mde) and f.mde > 0:
            extra += f"; smallest detectable effect {f.mde:.3f}"
        lines.append(f"| {f.claim} | {f.measured}{extra} | " + " | ".join(cells)
                     + f" | {format_p(f.p_holm)} | {verdict} | {f.criterion} |")
    return "\n".join(lines)


@dataclass
class SeedSummary:
    """One claim across seeds: per seed whether it held (overall and under each scorer)."""

    key: str
    claim: str
    criterion: str
    seeds: list[int]
    holds: list[bool]
    holds_by: dict[str, list[bool]] = field(default_factory=dict)
    effects: list[Estimate | None] = field(default_factory=list)
    measured: list[str] = field(default_factory=list)
    tested: list[bool] | None = None  # per seed whether the claim was tested (None: every seed)

    @property
    def k(self) -> int:
        return sum(self.holds)

    @property
    def n_tested(self) -> int:
        return len(self.holds) if self.tested is None else sum(self.tested)

    @property
    def verdict(self) -> str:
        n, t = len(self.holds), self.n_tested
        untested = "" if t == n else f"; not tested in {n - t}"
        if t == 0:
            return f"not tested ({n}/{n})"
        if self.k == n:
            return f"yes ({n}/{n})"
        if self.k == 0:
            return f"no (0/{t}{untested})"
        return f"mixed ({self.k}/{n}{untested})"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["verdict"], d["k"] = self.verdict, self.k
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SeedSummary:
        d = {k: v for k, v in d.items() if k not in ("verdict", "k")}
        d["effects"] = [None if e is None else Estimate.from_dict(e) for e in d.get("effects", [])]
        return cls(**d)


def summarize_seeds(per_seed: dict[int, list[Finding]]) -> list[SeedSummary]:
    """Per claim (in the first seed's order), in how many seeds it holds."""
    seeds = sorted(per_seed)
    first = per_seed[seeds[0]]
    out = []
    for f0 in first:
        fs = [next(f for f in per_seed[s] if f.key == f0.key) for s in seeds]
        scorers = sorted({k for f in fs for k in f.holds_by})
        out.append(SeedSummary(
            f0.key, f0.claim, f0.criterion, seeds, [f.holds for f in fs],
            {s: [bool(f.holds_by.get(s, False)) for f in fs] for s in scorers},
            [f.effect for f in fs], [f.measured for f in fs],
            None if all(f.tested for f in fs) else [f.tested for f in fs]))
    return out


def seeds_table(summaries: list[SeedSummary], *, paper: str = "the paper", any_label: str = "any") -> str:
    """Markdown: per claim, the verdict with k/n and how many seeds each scorer supports (for
    claims without scorers one column, headed ``any_label``)."""
    scorers = sorted({s for m in summaries for s in m.holds_by if s != "any"}) or ["any"]
    lines = [f"| {paper}'s claim | " + " | ".join(f"{any_label if s == 'any' else s} (seeds)" for s in scorers)
             + " | verdict (seeds where it holds under every scorer, Holm-corrected) | effect per seed [95% CI] |",
             "|" + "---|" * (3 + len(scorers))]
    for m in summaries:
        n = len(m.seeds)
        cells = []
        for s in scorers:
            v = m.holds_by.get(s) or m.holds_by.get("any")
            cells.append("" if v is None else f"{sum(v)}/{n}")
        eff = "; ".join(e.fmt("+.3f") if e is not None else "—" for e in m.effects)
        verdict = m.verdict if m.k == n or m.n_tested == 0 else f"**{m.verdict}**"
        lines.append(f"| {m.claim} | " + " | ".join(cells) + f" | {verdict} | {eff} |")
    return "\n".join(lines)


def _measured_short(measured: str) -> str:
    """A finding's measured text for a table cell: its per-layer profile (a figure's job) left out."""
    return "; ".join(part for part in measured.split("; ") if not part.startswith("per layer"))


def _cell(f: Finding | SeedSummary | None, scorers: list[str]) -> str:
    if f is None:
        return "—"
    if isinstance(f, SeedSummary):
        effs = [e for e in f.effects if e is not None]
        span = (f"; effect {min(e.value for e in effs):+.3f} … {max(e.value for e in effs):+.3f}" if len(effs) > 1
                else (f"; {effs[0].fmt()}" if effs else ""))
        return f"{f.verdict if f.k in (0, len(f.seeds)) else '**' + f.verdict + '**'}{span}"
    # A claim that no scorer decides (weights, keys: holds_by {"any": …}) gets no per-scorer marks.
    marks = " ".join(("✓" if f.holds_by[s] else "✗") for s in scorers if s in f.holds_by)
    if f.untested:
        return f"*not tested*: {f.untested}"
    out = "yes" if f.holds else "**no**"
    if f.effect is not None:
        out += f"; {f.effect.fmt()}, n = {f.effect.n}"
    elif f.measured:  # a claim read off counts, weights or a cosine against its null: what was measured
        out += "; " + _measured_short(f.measured)
    if not f.holds and f.mde is not None and math.isfinite(f.mde) and f.mde > 0:
        out += f"; detectable ≥ {f.mde:.3f}"
    return out + (f" ({marks})" if marks and len(scorers) > 1 else "")


def pairs_table(columns: dict[str, list[Finding] | list[SeedSummary] | None], *, scorers: list[str],
                paper: str = "the paper") -> str:
    """Markdown: one row per claim, one column per pair. A column holds one report's findings
    (verdict, headline effect [95% CI], n — or, for a claim with no effect estimate, what was
    measured, per scorer; for a "no" the smallest detectable effect; ✓/✗ per
    scorer in ``scorers`` order) or a multi-seed summary (verdict with k/n seeds and the range of
    effects), or ``None`` for a pair not yet run under the protocol (shown as "—"). Rows follow the
    first column that has findings; a claim missing from a column is "—"."""
    order: list[tuple[str, str]] = []
    for col in columns.values():
        for f in col or []:
            if f.key not in {k for k, _ in order}:
                order.append((f.key, f.claim))
    by = {label: {f.key: f for f in (col or [])} for label, col in columns.items()}
    head = f"| {paper}'s claim | " + " | ".join(columns) + " |"
    lines = [head, "|" + "---|" * (1 + len(columns))]
    for key, claim in order:
        lines.append(f"| {claim} | " + " | ".join(_cell(by[label].get(key), scorers) for label in columns) + " |")
    return "\n".join(lines)
