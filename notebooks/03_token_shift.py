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
# # 03 · How little alignment shifts
#
# Lin et al. (URIAL, 2023) let the aligned model decode greedily and ask, at each position, where the base model ranks the aligned model's token. Most tokens are ones the base already ranked first; what changes are a few tokens in a few places. Hewitt et al. (2024) showed that three hand rules on a base model go a long way. This notebook measures both on a pair, and looks for where the shift lives in the residual stream.

# %%
import os
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
PAIR = os.environ.get("INTERP_NOTEBOOK_PAIR", "organism:small")

from IPython.display import Markdown
import interp
S = interp.reproduce.token_shift

pair = interp.load_pair(PAIR)
report = S.run(S.TokenShiftConfig(pair=PAIR, n_prompts=60, max_new_tokens=16, n_tox_samples=1), pair=pair)

# %% [markdown]
# ## Shares: unshifted, marginal, shifted
# Beside Lin et al.'s numbers for Llama-2-7b and its chat model, and with the rule-based adapter (fitted on training prompts) in place of the base.

# %%
interp.plot.shift_shares({"base vs aligned": report.shift, "base + rules vs aligned": report.adapter_shift},
                         reference=S.LIN_ET_AL)

# %%
interp.plot.shift_profile(report.shift)

# %%
interp.plot.shifted_tokens(report.shift)

# %% [markdown]
# ## The whole report

# %%
Markdown(S.to_markdown(report))
