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
# # 01 · Quickstart: a pair, a recording, the toxic value vectors, one reactivation
#
# interp loads a **base** model and its **aligned** version as two TransformerLens bridges. Here the pair is the model organism: a small GPT-2 pretrained on a generated corpus with insults, then aligned against toxicity with DPO (built and cached on first use, ~4 minutes).

# %%
import os
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
PAIR = os.environ.get("INTERP_NOTEBOOK_PAIR", "organism:small")

import interp
pair = interp.load_pair(PAIR)
pair

# %% [markdown]
# The organism's manifest holds what its build measured: toxicity of sampled continuations, held-out perplexity, fact recall. `pair.prompts` is the prompt set it was aligned on (`train_prompts`) and is measured on (`eval_prompts`, `heldout_neutral`).

# %%
print(interp.organism.metrics_table(pair.info["organism"]))

# %% [markdown]
# ## Record
# Residual vectors at the last layer, averaged over each text's real tokens, for both models.

# %%
ev = interp.toxicity(pair.base, pair.prompts.train_prompts[:150], n_samples=2)   # base samples, scored
last = pair.hook("resid_post", -1)
rec = interp.record_pair(pair, ev.texts, [last], reduction="mean", progress=False)
rec.base["resid_post", -1].shape

# %% [markdown]
# ## Locate
# A linear probe for toxicity on the base model's residual stream, and the MLP value vectors that write along it.

# %%
probe = interp.train_probe(rec.base["resid_post", -1], ev.labels(), hook=last)
print(f"probe held-out accuracy {probe.test_acc:.3f} (n={probe.n_test})")
ranking = interp.rank_value_vectors(pair.base, probe, k=10)
interp.plot.value_vectors(ranking)

# %% [markdown]
# ## Compare
# The located neurons' activations (how strongly each key matched) on the same texts, base vs aligned.

# %%
keys = interp.key_activation_change(pair, ev.texts, ranking.top)
interp.plot.key_activations(keys, "post")

# %% [markdown]
# ## Reactivate
# Lee et al.'s un-alignment in the aligned model: the top 7 keys' weight columns (`W_in`) ×10, bias untouched, as their code does it (`interp.ScaleKeyWeights`), beside the same edit on 7 random neurons. (Here on few prompts and one seed: `interp reproduce toxicity` does it with a dev/test split, paired statistics and two scorers.)

# %%
prompts = pair.prompts.eval_prompts[:100]
top7 = ranking.top[:7]
rand = interp.random_neurons(pair.cfg.n_layers, pair.cfg.d_mlp, 7, seed=0, exclude=ranking.top)
for label, model, hooks in [("base", pair.base, []), ("aligned", pair.aligned, []),
                            ("aligned, top-7 keys ×10", pair.aligned, [interp.ScaleKeyWeights(top7, 10)]),
                            ("aligned, random-7 keys ×10", pair.aligned, [interp.ScaleKeyWeights(rand, 10)])]:
    print(f"{label:28s} {interp.toxicity(model, prompts, n_samples=2, hooks=hooks).rate}")

# %%
interp.plot.residual_offset(interp.residual_offset(pair, ev.texts, direction=probe, neurons=ranking.top))
