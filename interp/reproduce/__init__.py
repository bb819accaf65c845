"""Reproductions of published claims, each a module of typed steps with a report that writes
itself: :mod:`~interp.reproduce.toxicity` (Lee et al., 2024), :mod:`~interp.reproduce.knowledge`
(Gekhman et al., 2024, and knowledge hidden by alignment), :mod:`~interp.reproduce.token_shift`
(Lin et al., 2023; Hewitt et al., 2024), :mod:`~interp.reproduce.instruction` (instruction
alignment on the organism: token shift by type and position, LIMA, response tuning, rules,
URIAL, self-alignment, what alignment cannot add), :mod:`~interp.reproduce.pretraining` (what the
pretraining data does: repetition, deduplication, rephrasing for extraction). Each is registered
in :data:`REPRODUCTIONS` (:mod:`~interp.reproduce.registry`) with the shape of
:mod:`~interp.reproduce.base`; ``get(name).run_seeds(cfg, seeds, out=...)`` runs one over seeds."""

from . import diffing, instruction, knowledge, layout, pretraining, token_shift, toxicity
from .base import Reproduction
from .registry import REPRODUCTIONS, get, register
from .report import write_report

__all__ = ["REPRODUCTIONS", "Reproduction", "diffing", "instruction", "knowledge", "pretraining", "token_shift", "toxicity",
           "get", "layout", "register", "write_report"]
