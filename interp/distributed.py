"""Data parallelism under ``torchrun``: each process takes every N-th batch, results are gathered.

``torchrun --nproc-per-node N -m interp reproduce toxicity --pair P`` (one node or several, with
torchrun's usual ``--nnodes``/``--rdzv-*`` flags) starts N processes; :func:`init` joins them
(``gloo`` on CPU, ``nccl`` when CUDA is there). Rank ``r`` computes batches ``r, r+N, r+2N, …`` of
the very layout one process would use, so every batch is computed exactly as alone; sampling is
keyed per (seed, prompt, sample) (:func:`interp.generate.sample_keys`), never per process. The
gathered result is therefore the single-process one, on every rank; rank 0 alone writes reports.
Each rank holds its own copy of the pair. Nothing here schedules: torch.distributed does.

One idiom for a batch loop::

    mine = [(i, work(b)) for i, b in enumerate(batches) if distributed.owns(i)]
    results = distributed.gather(mine, len(batches))   # every batch's result, in order, everywhere
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist

_ALONE = False  # inside main_first, rank 0 works as one process (no collectives)


def world() -> tuple[int, int]:
    """``(rank, world size)``; ``(0, 1)`` outside a process group, and on rank 0 inside
    :func:`main_first` (it then works alone: its batch loops take every batch)."""
    if dist.is_available() and dist.is_initialized() and not _ALONE:
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init() -> bool:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1 in the environment): NCCL
    with one GPU per local rank where CUDA is available (and ``$INTERP_DEVICE`` does not say
    ``cpu``), else gloo. Returns whether distributed."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_initialized():
        cuda = torch.cuda.is_available() and not os.environ.get("INTERP_DEVICE", "").startswith("cpu")
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo")
    return True


def is_main() -> bool:
    return world()[0] == 0


def owns(batch: int) -> bool:
    """Whether this rank computes batch number ``batch`` (round robin)."""
    rank, size = world()
    return batch % size == rank


def gather(local: list[tuple[int, Any]], n: int) -> list[Any]:
    """Every rank's ``(batch index, result)`` pairs → all ``n`` results in batch order, on every
    rank (picklable results; tensors should be on the CPU)."""
    rank, size = world()
    parts = [local]
    if size > 1:
        parts = [None] * size
        dist.all_gather_object(parts, local)
    got = {i: r for part in parts for i, r in part}
    missing = [i for i in range(n) if i not in got]
    if missing:
        raise RuntimeError(f"batches {missing[:5]} were computed by no rank (world size {size})")
    return [got[i] for i in range(n)]


@contextmanager
def main_first():
    """Rank 0 runs the block first, alone (e.g. builds a cache entry, generating as one process);
    the others wait, then run it (and find the entry). One process: just runs it."""
    global _ALONE
    rank, size = world()
    if size > 1 and rank != 0:
        dist.barrier()
    if size > 1 and rank == 0:
        _ALONE = True
        try:
            yield
        finally:
            _ALONE = False
            dist.barrier()
    else:
        yield


def barrier() -> None:
    if world()[1] > 1:
        dist.barrier()
