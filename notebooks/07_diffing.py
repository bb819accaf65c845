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
# # 07 · Model diffing without a probe
#
# What did alignment change, if nobody tells us what to look for? Two of the methods diffing-toolkit (Minder et al.) builds on, step by step on a pair: the **activation-difference lens** — the mean aligned − base residual on the first tokens of text unrelated to the fine-tune, read through the base's unembedding — and a **BatchTopK crosscoder** — one sparse dictionary over both models' residuals, whose *aligned-only* latents (decoder norm only on the aligned side) latent scaling checks the base does not carry. Whether either *reads as* the alignment's objective is scored without a judge: the objective's tokens' rank-AUROC in the readout, against random token sets. `interp reproduce diffing` adds null pairs, steering and the claims.

# %%
import os
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
PAIR = os.environ.get("INTERP_NOTEBOOK_PAIR", "organism:small")

import pandas as pd
import interp

pair = interp.load_pair(PAIR)
neutral = list(pair.prompts.heldout_neutral)
layer = pair.cfg.n_layers // 2  # the middle layer, declared (as Minder et al. read it)

# %% [markdown]
# ## The activation difference, per layer
# Its size relative to the base's residual at each of the first five tokens of 200 neutral texts.

# %%
adl = interp.adl.activation_difference(pair, neutral[:200], k=5)
interp.plot.adl_norms(adl)

# %% [markdown]
# What it promotes and suppresses at each layer, through the base's final norm and unembedding — and whether the toxic tokens (every token a scorer flags) are pushed down more than random token sets of the same size would be.

# %%
flags = interp.locate.token_flags(pair.base, interp.get_scorers(None))
rows = []
for lay in adl.layers:
    words = interp.adl.readout(pair.base, adl.vector(lay), 8)
    scores = {n: interp.adl.identify(pair.base, adl, f, lay, n_perm=200) for n, f in flags.items() if 0 < f.sum() < len(f)}
    rows.append({"layer": lay, **{f"AUROC ({n})": round(x.auroc, 3) for n, x in scores.items()},
                 "promotes": ", ".join(w.strip() for w in words["promotes"]),
                 "suppresses": ", ".join(w.strip() for w in words["suppresses"])})
pd.DataFrame(rows).set_index("layer")

# %% [markdown]
# ## A crosscoder at the middle layer
# Trained, as Minder et al. mix pretraining and chat text, on the organism's pretraining documents and the alignment's own prompts, every real token (the organism preset: 1,024 latents, k = 16, 1M tokens — minutes on two cores).

# %%
texts = interp.reproduce.diffing.organism_documents(pair)[:40_000] + list(pair.prompts.train_prompts)
acts = interp.paired_activations(pair, texts, layer)
preset = interp.crosscoder.PRESETS["tiny" if "tiny" in PAIR else "organism"]
trained = interp.train_crosscoder(acts, preset, progress=True)
analysis = interp.crosscoder.analyse(trained, acts, pair.base, texts=texts,
                                     targets={n: f for n, f in flags.items() if 0 < f.sum() < len(f)}, n_perm=200)
print(f"{len(acts.x):,} tokens; explained variance base {trained.explained_variance[0]:.3f}, "
      f"aligned {trained.explained_variance[1]:.3f}; latents: {analysis.classes}")
interp.plot.crosscoder_latents(analysis)

# %% [markdown]
# The aligned-only latents, most frequent first: their latent-scaling ratios (near 0: the aligned model's own), what their aligned decoder vector promotes in the base's logit lens, and where they fire most.

# %%
pd.DataFrame([{"latent": lat.index, "Δ": round(lat.delta, 3), "fires on": f"{lat.freq:.2%}",
               "ν^ε": round(lat.nu_eps, 2), "ν^r": round(lat.nu_r, 2), "specific": lat.specific,
               "promotes": ", ".join(w.strip() for w in lat.promotes[:8]),
               "top context": lat.contexts[0] if lat.contexts else ""} for lat in analysis.aligned_only[:15]])

# %% [markdown]
# Does the specific latents' readout read as the objective? (Empty where no latent is specific: there is nothing to read.)

# %%
{n: x.to_dict() for n, x in analysis.identification.items()}
