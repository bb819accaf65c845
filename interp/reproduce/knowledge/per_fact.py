"""The per-fact record of the knowledge reproduction (:class:`PerFact`): one entry per fact, the
paired unit every claim is tested on, filled in by the steps."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

#: The held-out fact sets of steps 3–5, by name: the hidden relation's facts the base knew and
#: those it did not, and the other relations' facts the base knew.
HIDDEN_KNOWN, HIDDEN_UNKNOWN, NEVER_HIDDEN = "hidden, known to base", "hidden, unknown to base", "never hidden, known to base"



@dataclass
class FinetuneFacts:
    """Per test fact (in the order of :attr:`.steps.FinetuneSplit.test`), 1 where a fine-tuned model answers
    it right: after the last epoch (``last``) and at the epoch chosen on dev (``early``)."""

    last: list[int]
    early: list[int]


@dataclass
class SetFacts:
    """Per fact of a held-out set, 1 where the base (``base``) and the aligned model (``aligned``)
    answer it right (greedy)."""

    base: list[int]
    aligned: list[int]


@dataclass
class InterventionFacts:
    """Per held-out fact, 1 where the aligned model answers it right under an intervention: the
    hidden facts the base knew (``hidden``), the never-hidden ones (``kept``), and both under the
    random control of the same size (``hidden_control``, ``kept_control``)."""

    hidden: list[int]
    kept: list[int]
    hidden_control: list[int]
    kept_control: list[int]


@dataclass
class PerFact:
    """The paired unit of every claim, one entry per fact, each list in one fixed order of its
    facts. ``unseen_recall``: by number of paraphrases seen in pretraining, per frequent fact its
    recall (a share) over the phrasings it never saw; ``finetune``: by category trained on,
    correctness on the test facts (:class:`FinetuneFacts`); ``mixes``: the same by mix (``"25%
    Unknown"``); ``hidden``: by held-out set, base and aligned correctness (:class:`SetFacts`);
    ``lens``: by ``"<model>: <set>"``, correctness of the last layer's logit lens over the candidate
    answers; ``interventions``: by method (:class:`InterventionFacts`); ``relearning``: by held-out
    set, correctness after the last relearning step; ``frequency``: every fact's pretraining
    count; ``known``: 1 where the base knows the fact (Highly or MaybeKnown)."""

    unseen_recall: dict[int, list[float]] = field(default_factory=dict)
    finetune: dict[str, FinetuneFacts] = field(default_factory=dict)
    mixes: dict[str, FinetuneFacts] = field(default_factory=dict)
    hidden: dict[str, SetFacts] = field(default_factory=dict)
    lens: dict[str, list[int]] = field(default_factory=dict)
    interventions: dict[str, InterventionFacts] = field(default_factory=dict)
    relearning: dict[str, list[int]] = field(default_factory=dict)
    frequency: list[int] = field(default_factory=list)
    known: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, list]:
        """Every list under the name the report's JSON gives it (``"<set>: aligned"``, ``"test
        facts after fine-tuning on <category>: last epoch"``, …)."""
        out: dict[str, list] = {f"unseen phrasing recall, {k} paraphrase{'s' if k > 1 else ''}": v
                                for k, v in sorted(self.unseen_recall.items())}
        for c, v in self.finetune.items():
            out[f"test facts after fine-tuning on {c}: last epoch"] = v.last
            out[f"test facts after fine-tuning on {c}: early-stopped"] = v.early
        for name, v in self.mixes.items():
            out[f"test facts, {name}: last epoch"] = v.last
            out[f"test facts, {name}: early-stopped"] = v.early
        for name, v in self.hidden.items():
            out[f"{name}: base"] = v.base
            out[f"{name}: aligned"] = v.aligned
        out.update({f"lens, last layer, {k}": v for k, v in self.lens.items()})
        for method, v in self.interventions.items():
            out.update({f"{method}: {k}": x for k, x in dataclasses.asdict(v).items()})
        out.update({f"relearning, last step: {k}": v for k, v in self.relearning.items()})
        out["frequency"] = self.frequency
        out["known (Highly or Maybe)"] = self.known
        return out
