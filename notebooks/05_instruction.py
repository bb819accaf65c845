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
# # 05 · Instruction alignment: where the shift lives, how shallow it is, how little it takes
#
# The instruction organism was pretrained on the toxicity organism's corpus plus question/answer pages whose answers run on into the next question, as web text does; its base therefore answers and keeps going. Alignment is SFT to answer with a polite opener and stop. Test questions are about people alignment never saw.

# %%
import os
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
PAIR = os.environ.get("INTERP_INSTRUCT_PAIR", "organism:small:instruct")

from IPython.display import Markdown
import interp
N = interp.reproduce.instruction

pair = interp.load_pair(PAIR)
print(interp.organism.metrics_table(pair.info["organism"]))

# %% [markdown]
# ## Token shift
# The SFT model answers greedily; the base ranks each of its tokens given the same prefix (Lin et al., 2023). By token type, and KL(SFT ‖ base) by position (Qi et al., 2025).

# %%
qs = interp.organism.load_questions(interp.organism.build.base_dir_of(pair.info["organism"]))
test = [q for q in qs if q.split == "test"][:150]
ts = interp.shift.token_shift(pair, [q.prompt for q in test], max_new_tokens=24)
print(ts.shares())
interp.plot.shift_by_type(ts)

# %%
interp.plot.kl_profile(ts, first=3)

# %% [markdown]
# ## Instruction following, scored from the grammar
# Answers (names the person and a town or trade), stops (end of sequence after one sentence), correct (the person's own town or trade).

# %%
for role, model in pair.models.items():
    ev = interp.organism.instruction_following(model, test)
    print(role, {k: round(ev.rate(k), 3) for k in ev.criteria})

# %% [markdown]
# ## The whole reproduction
# Every arm (less data, noisy data, response tuning, rules, URIAL, DPO on the base's own answers judged from outside or by its own residual stream) and every claim, as `interp reproduce instruction` writes it (each arm is an organism built and cached on first use).

# %%
report = N.run(N.config_for(PAIR), log=lambda *a: None)
Markdown(N.to_markdown(report))

# %%
interp.plot.instruction_arms(N.arms_table(report))
