"""Figure `value_vectors`: the top MLP value vectors by cosine with the toxicity probe, with their top tokens."""

import os

# ---- config -------------------------------------------------------------------------------
PAIR = os.environ.get("INTERP_FIGURE_PAIR", "organism:small")
SEED = 0
NAME = "value_vectors"
# -------------------------------------------------------------------------------------------

from interp import plot  # noqa: E402
from interp.reproduce.toxicity import cached_report  # noqa: E402


def main(out_dir: str = os.path.join(os.path.dirname(__file__), "out")):
    r = cached_report(PAIR, seed=SEED)
    fig = plot.value_vectors(r.ranking)
    return plot.save(fig, os.path.join(out_dir, NAME))


if __name__ == "__main__":
    print(*main(), sep="\n")
