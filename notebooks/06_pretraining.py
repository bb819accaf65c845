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
# # 06 · Pretraining data: repetition, duplication, and rephrasing for extraction
#
# Every model here is trained from scratch on a *stream* of documents, once, so arms see the same budget. Repetition: `U` unique documents each `E` times (`U·E` fixed; every fact mentioned equally often). Rephrasing: each person's biography seen as one fixed text or in five phrasings with the sentences permuted (Allen-Zhu & Li, 2023); QA fine-tuning on half the people, extraction measured on the others. `INTERP_PRETRAINING_SIZE=tiny` runs the test-sized preset in a minute; `small` is the reproduction's (≈ 1 hour per seed).

# %%
import os
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
SIZE = os.environ.get("INTERP_PRETRAINING_SIZE", "small")

from IPython.display import Markdown
import interp
D = interp.organism.pretraining
P = interp.reproduce.pretraining

data, bio, train = D.data_preset(SIZE)
s16 = D.repetition_stream(data, 16)
print(f"{len(s16.docs)} documents, {s16.info['unique_docs']} unique; a fact's mentions at E=16:")
f = s16.facts[0]
print([d for d in s16.docs if f.entity in d][:3])

# %% [markdown]
# ## One biography, or five
# The same person in the two biography streams: the first phrasing is shared.

# %%
one, five = D.bio_stream(bio, 1), D.bio_stream(bio, 5)
person = one.facts[0].entity
print(sorted({d for d in one.docs if person in d}))
print(sorted({d for d in five.docs if person in d}))

# %% [markdown]
# ## The reproduction
# Every arm trained (cached per arm), measured on the same validation documents and facts, judged by criteria fixed in code — as `interp reproduce pretraining` writes it.

# %%
report = P.run(P.config_for(SIZE), log=lambda *a: None)
Markdown(P.to_markdown(report))

# %%
interp.plot.repetition(report.repetition)

# %%
interp.plot.extraction(report.extraction)
