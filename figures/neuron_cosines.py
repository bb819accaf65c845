"""Figure `neuron_cosines`: 1 − cosine (base vs aligned) of the located neurons' keys and values, against random neurons."""

import os

# ---- config -------------------------------------------------------------------------------
PAIR = os.environ.get("INTERP_FIGURE_PAIR", "organism:small")
SEED = 0
NAME = "neuron_cosines"
# -------------------------------------------------------------------------------------------

from interp import plot  # noqa: E402
from interp.reproduce.toxicity import cached_report  # noqa: E402


def main(out_dir: str = os.path.join(os.path.dirname(__file__), "out")):
    r = cached_report(PAIR, seed=SEED)
    fig = plot.neuron_cosines(r.neuron_weights)
    return plot.save(fig, os.path.join(out_dir, NAME))


if __name__ == "__main__":
    print(*main(), sep="\n")
