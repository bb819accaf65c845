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
# # 04 · Knowledge: what the model knows, and what alignment hides without erasing
#
# The knowledge organism is the small GPT-2 architecture pretrained long enough to learn its frequent facts (fictional people: where they were born, what they work as; each seen 0–32 times in 1, 2 or 4 phrasings). Its aligned twin was fine-tuned to answer "unknown" to every *works as* question, on half of the people. This notebook sorts the facts by how well the base knows them (Gekhman et al., 2024), then asks whether the aligned model still holds the hidden answers.

# %%
import os
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
PAIR = os.environ.get("INTERP_KNOWLEDGE_PAIR", "organism:knowledge")

from IPython.display import Markdown
import interp
K = interp.reproduce.knowledge

pair = interp.load_pair(PAIR)
facts = pair.prompts.facts
print(interp.organism.metrics_table(pair.info["organism"]))

# %% [markdown]
# ## What the base knows
# Every fact asked under 10 four-shot prompts greedily, and sampled 16 times at T = 0.5: HighlyKnown (always right greedily), MaybeKnown (sometimes), WeaklyKnown (only when sampling), Unknown.

# %%
levels = interp.knowledge.knowledge_levels(pair.base, facts, interp.organism.TEMPLATES, n_prompts=4, n_samples=8)
print(levels.shares())
interp.plot.knowledge_levels(levels)

# %% [markdown]
# ## Hidden, not erased
# On people the alignment never saw, the aligned model says "unknown" to *works as*. Read the residual stream at the answering position through the model's own unembedding, restricted to the possible jobs (TransformerLens' logit lens): is the right job still ranked first?

# %%

hidden = K.hiding(pair).hidden_facts          # the hidden relation's facts of people alignment never saw
index, ids = interp.knowledge.answer_candidates(pair.tokenizer, [f.answer for f in hidden])
names = [pair.hook("resid_post", layer) for layer in range(pair.cfg.n_layers)]
rec = interp.record_pair(pair, [f.cloze for f in hidden], names, reduction="last", progress=False)
for (role, model), r in zip(pair.models.items(), rec):
    acc = interp.knowledge.lens_accuracy(model, r.stack(names), [f.answer for f in hidden], index, ids)
    print(role, [round(a, 2) for a in acc.tolist()])

# %% [markdown]
# ## The whole reproduction
# Levels, fine-tuning on each category, readouts, reactivation with random controls, and relearning — as `interp reproduce knowledge` writes it (minutes on the small organism).

# %%
report = K.run(K.config_for(PAIR), log=lambda *a: None)
Markdown(K.to_markdown(report))

# %%
interp.plot.finetune_curves(report.finetune)

# %%
interp.plot.hidden_readout(report.readout)

# %%
interp.plot.reactivation(report.reactivation, report.hidden)

# %%
interp.plot.relearning(report.relearning)
