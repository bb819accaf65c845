# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · The toxicity mechanism, with controls
#
# Lee et al. (ICML 2024) found that DPO against toxicity leaves GPT-2's toxic value vectors in place and instead shifts the residual stream so that their keys stop matching. This notebook runs every analysis of that story on a pair — probe, value vectors, weights, keys, residual offset, where the change lives, reactivation with random controls — and states which findings reproduce.

# %%
import os
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
PAIR = os.environ.get("INTERP_NOTEBOOK_PAIR", "organism:small")

from IPython.display import Markdown
import interp
T = interp.reproduce.toxicity

# Minutes the first time; every measurement is cached, so a re-run only recomputes the analysis.
report = T.run(T.config_for(PAIR), progress=False, log=lambda *a: None)
figs = report.figures()
print(report.splits.info())

# %% [markdown]
# ## Lee et al.'s claims
# Each claim with its criterion (fixed in code before the run), under every scorer; p-values are Holm-corrected across the claims, and a claim is *yes* only where it holds under every scorer.

# %%
Markdown(interp.findings_table(report.findings, scorers=report.scorers, paper="Lee et al."))

# %% [markdown]
# ## Locate: the probe and the value vectors that write along it

# %%
figs["value_vectors"]

# %%
figs["value_vector_cosines"]

# %% [markdown]
# ## Compare: weights kept, keys suppressed, a residual offset — each beside its null

# %%
figs["neuron_cosines"]

# %%
figs["weight_change"]

# %%
figs["key_activations_post"]

# %%
figs["residual_offset"]

# %%
figs["residual_pca"]

# %% [markdown]
# ## Where the change lives
# Revert one weight group in the aligned model to the base (or apply it alone to the base), on the test prompts.

# %%
figs["change_location"]

# %% [markdown]
# ## Reactivate
# Doses are chosen on the dev split (the dose–response curves below), frozen, and measured on the test prompts, each arm beside a random control of the same size.

# %%
figs["dose_lee_scale_keys"]

# %%
figs["effects"]

# %%
Markdown(T.effects_table(report))

# %% [markdown]
# The full report, as `interp reproduce toxicity` writes it:

# %%
Markdown(T.to_markdown(report))
