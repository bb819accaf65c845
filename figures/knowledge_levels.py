"""Figure `knowledge_levels`: SliCK categories of the base organism's facts, by pretraining frequency."""

import os

# ---- config -------------------------------------------------------------------------------
PAIR = os.environ.get("INTERP_KNOWLEDGE_PAIR", "organism:knowledge")
SEED = 0
NAME = "knowledge_levels"
# -------------------------------------------------------------------------------------------

from interp import plot  # noqa: E402
from interp.reproduce.knowledge import cached_report  # noqa: E402


def main(out_dir: str = os.path.join(os.path.dirname(__file__), "out")):
    r = cached_report(PAIR, seed=SEED)
    fig = plot.knowledge_levels(r.levels)
    return plot.save(fig, os.path.join(out_dir, NAME))


if __name__ == "__main__":
    print(*main(), sep="\n")
