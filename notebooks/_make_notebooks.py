"""Writes the notebooks in this folder (stored without outputs): python notebooks/_make_notebooks.py"""
import hashlib

import nbformat as nbf

def nb(cells, path):
    n = nbf.v4.new_notebook()
    n.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    n.cells = [nbf.v4.new_markdown_cell(c[3:]) if c.startswith("md:") else nbf.v4.new_code_cell(c) for c in cells]
    for i, cell in enumerate(n.cells):  # stable ids: regenerating changes nothing that did not change
        cell["id"] = hashlib.sha256(f"{path}:{i}".encode()).hexdigest()[:8]
    nbf.write(n, path)

nb([
"md:# 01 · Quickstart: a pair, a recording, the toxic value vectors, one reactivation\n\n"
"interp loads a **base** model and its **aligned** version as two TransformerLens bridges. "
"Here the pair is the model organism: a small GPT-2 pretrained on a generated corpus with insults, "
"then aligned against toxicity with DPO (built and cached on first use, ~4 minutes).",
"""import os
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
PAIR = os.environ.get("INTERP_NOTEBOOK_PAIR", "organism:small")

import interp
pair = interp.load_pair(PAIR)
pair""",
"md:The organism's manifest holds what its build measured: toxicity of sampled continuations, held-out perplexity, fact recall. "
"`pair.prompts` is the prompt set it was aligned on (`train_prompts`) and is measured on (`eval_prompts`, `heldout_neutral`).",
"""print(interp.organism.metrics_table(pair.info["organism"]))""",
"md:## Record\nResidual vectors at the last layer, averaged over each text's real tokens, for both models.",
"""ev = interp.toxicity(pair.base, pair.prompts.train_prompts[:150], n_samples=2)   # base samples, scored
last = pair.hook("resid_post", -1)
rec = interp.record_pair(pair, ev.texts, [last], reduction="mean", progress=False)
rec.base["resid_post", -1].shape""",
"md:## Locate\nA linear probe for toxicity on the base model's residual stream, and the MLP value vectors that write along it.",
"""probe = interp.train_probe(rec.base["resid_post", -1], ev.labels(), hook=last)
print(f"probe held-out accuracy {probe.test_acc:.3f} (n={probe.n_test})")
ranking = interp.rank_value_vectors(pair.base, probe, k=10)
interp.plot.value_vectors(ranking)""",
"md:## Compare\nThe located neurons' activations (how strongly each key matched) on the same texts, base vs aligned.",
"""keys = interp.key_activation_change(pair, ev.texts, ranking.top)
interp.plot.key_activations(keys, "post")""",
"md:## Reactivate\nScale the located neurons' keys ×10 in the aligned model (Lee et al.'s intervention: the pre-activation) and compare with the same scaling of random neurons. (Here on few prompts and one seed: `interp reproduce toxicity` does it with a dev/test split, paired statistics and two scorers.)",
"""prompts = pair.prompts.eval_prompts[:100]
rand = interp.random_neurons(pair.cfg.n_layers, pair.cfg.d_mlp, 10, seed=0, exclude=ranking.top)
for label, model, hooks in [("base", pair.base, []), ("aligned", pair.aligned, []),
                            ("aligned, top-10 keys ×10", pair.aligned, [interp.ScaleNeurons(ranking.top, 10)]),
                            ("aligned, random-10 ×10", pair.aligned, [interp.ScaleNeurons(rand, 10)])]:
    print(f"{label:28s} {interp.toxicity(model, prompts, n_samples=2, hooks=hooks).rate}")""",
"""interp.plot.residual_offset(interp.residual_offset(pair, ev.texts, direction=probe, neurons=ranking.top))""",
], "notebooks/01_quickstart.ipynb")

nb([
"md:# 02 · The toxicity mechanism, with controls\n\n"
"Lee et al. (ICML 2024) found that DPO against toxicity leaves GPT-2's toxic value vectors in place "
"and instead shifts the residual stream so that their keys stop matching. This notebook runs every "
"analysis of that story on a pair — probe, value vectors, weights, keys, residual offset, where the "
"change lives, reactivation with random controls — and states which findings reproduce.",
"""import os
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
PAIR = os.environ.get("INTERP_NOTEBOOK_PAIR", "organism:small")

from IPython.display import Markdown
import interp
T = interp.reproduce.toxicity

# Minutes the first time; every measurement is cached, so a re-run only recomputes the analysis.
report = T.run(T.config_for(PAIR), progress=False, log=lambda *a: None)
figs = report.figures()
print(report.splits.info())""",
"md:## Lee et al.'s claims\nEach claim with its criterion (fixed in code before the run), under every scorer; "
"p-values are Holm-corrected across the claims, and a claim is *yes* only where it holds under every scorer.",
"""Markdown(interp.findings_table(report.findings, scorers=report.scorers, paper="Lee et al."))""",
"md:## Locate: the probe and the value vectors that write along it",
"""figs["value_vectors"]""",
"""figs["value_vector_cosines"]""",
"md:## Compare: weights kept, keys suppressed, a residual offset — each beside its null",
"""figs["neuron_cosines"]""",
"""figs["weight_change"]""",
"""figs["key_activations_post"]""",
"""figs["residual_offset"]""",
"""figs["residual_pca"]""",
"md:## Where the change lives\nRevert one weight group in the aligned model to the base (or apply it alone to the base), on the test prompts.",
"""figs["change_location"]""",
"md:## Reactivate\nDoses are chosen on the dev split (the dose–response curves below), frozen, and measured on the test prompts, each arm beside a random control of the same size.",
"""figs["dose_lee_scale_keys"]""",
"""figs["effects"]""",
"""Markdown(T.effects_table(report))""",
"md:The full report, as `interp reproduce toxicity` writes it:",
"Markdown(T.to_markdown(report))",
], "notebooks/02_toxicity_mechanism.ipynb")

nb([
"md:# 03 · How little alignment shifts\n\n"
"Lin et al. (URIAL, 2023) let the aligned model decode greedily and ask, at each position, where the "
"base model ranks the aligned model's token. Most tokens are ones the base already ranked first; "
"what changes are a few tokens in a few places. Hewitt et al. (2024) showed that three hand rules on "
"a base model go a long way. This notebook measures both on a pair, and looks for where the shift "
"lives in the residual stream.",
"""import os
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
PAIR = os.environ.get("INTERP_NOTEBOOK_PAIR", "organism:small")

from IPython.display import Markdown
import interp
S = interp.reproduce.token_shift

pair = interp.load_pair(PAIR)
report = S.run(S.TokenShiftConfig(pair=PAIR, n_prompts=60, max_new_tokens=16, n_tox_samples=1), pair=pair)""",
"md:## Shares: unshifted, marginal, shifted\nBeside Lin et al.'s numbers for Llama-2-7b and its chat model, and with the rule-based adapter (fitted on training prompts) in place of the base.",
"""interp.plot.shift_shares({"base vs aligned": report.shift, "base + rules vs aligned": report.adapter_shift},
                         reference=S.LIN_ET_AL)""",
"interp.plot.shift_profile(report.shift)",
"interp.plot.shifted_tokens(report.shift)",
"md:## The whole report",
"Markdown(S.to_markdown(report))",
], "notebooks/03_token_shift.ipynb")

nb([
"md:# 04 · Knowledge: what the model knows, and what alignment hides without erasing\n\n"
"The knowledge organism is the small GPT-2 architecture pretrained long enough to learn its frequent "
"facts (fictional people: where they were born, what they work as; each seen 0–32 times in 1, 2 or 4 "
"phrasings). Its aligned twin was fine-tuned to answer \"unknown\" to every *works as* question, on "
"half of the people. This notebook sorts the facts by how well the base knows them (Gekhman et al., "
"2024), then asks whether the aligned model still holds the hidden answers.",
"""import os
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
PAIR = os.environ.get("INTERP_KNOWLEDGE_PAIR", "organism:knowledge")

from IPython.display import Markdown
import interp
K = interp.reproduce.knowledge

pair = interp.load_pair(PAIR)
facts = pair.prompts.facts
print(interp.organism.metrics_table(pair.info["organism"]))""",
"md:## What the base knows\nEvery fact asked under 10 four-shot prompts greedily, and sampled 16 times at T = 0.5: "
"HighlyKnown (always right greedily), MaybeKnown (sometimes), WeaklyKnown (only when sampling), Unknown.",
"""levels = interp.knowledge.knowledge_levels(pair.base, facts, interp.organism.TEMPLATES, n_prompts=4, n_samples=8)
print(levels.shares())
interp.plot.knowledge_levels(levels)""",
"md:## Hidden, not erased\nOn people the alignment never saw, the aligned model says \"unknown\" to *works as*. "
"Read the residual stream at the answering position through the model's own unembedding, restricted to "
"the possible jobs (TransformerLens' logit lens): is the right job still ranked first?",
"""import torch

hidden = K.hiding(pair).hidden_facts          # the hidden relation's facts of people alignment never saw
index, ids = interp.knowledge.answer_candidates(pair.tokenizer, [f.answer for f in hidden])
names = [pair.hook("resid_post", layer) for layer in range(pair.cfg.n_layers)]
rec = interp.record_pair(pair, [f.cloze for f in hidden], names, reduction="last", progress=False)
for (role, model), r in zip(pair.models.items(), rec):
    acc = interp.knowledge.lens_accuracy(model, r.stack(names), [f.answer for f in hidden], index, ids)
    print(role, [round(a, 2) for a in acc.tolist()])""",
"md:## The whole reproduction\nLevels, fine-tuning on each category, readouts, reactivation with random controls, "
"and relearning — as `interp reproduce knowledge` writes it (minutes on the small organism).",
"""report = K.run(K.config_for(PAIR), log=lambda *a: None)
Markdown(K.to_markdown(report))""",
"interp.plot.finetune_curves(report.finetune)",
"interp.plot.hidden_readout(report.readout)",
"interp.plot.reactivation(report.reactivation, report.hidden)",
"interp.plot.relearning(report.relearning)",
], "notebooks/04_knowledge.ipynb")

nb([
"md:# 05 · Instruction alignment: where the shift lives, how shallow it is, how little it takes\n\n"
"The instruction organism was pretrained on the toxicity organism's corpus plus question/answer pages whose "
"answers run on into the next question, as web text does; its base therefore answers and keeps going. "
"Alignment is SFT to answer with a polite opener and stop. Test questions are about people alignment never saw.",
"""import os
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
PAIR = os.environ.get("INTERP_INSTRUCT_PAIR", "organism:small:instruct")

from IPython.display import Markdown
import interp
N = interp.reproduce.instruction

pair = interp.load_pair(PAIR)
print(interp.organism.metrics_table(pair.info["organism"]))""",
"md:## Token shift\nThe SFT model answers greedily; the base ranks each of its tokens given the same prefix "
"(Lin et al., 2023). By token type, and KL(SFT ‖ base) by position (Qi et al., 2025).",
"""qs = interp.organism.load_questions(interp.organism.build.base_dir_of(pair.info["organism"]))
test = [q for q in qs if q.split == "test"][:150]
ts = interp.shift.token_shift(pair, [q.prompt for q in test], max_new_tokens=24)
print(ts.shares())
interp.plot.shift_by_type(ts)""",
"interp.plot.kl_profile(ts, first=3)",
"md:## Instruction following, scored from the grammar\nAnswers (names the person and a town or trade), "
"stops (end of sequence after one sentence), correct (the person's own town or trade).",
"""for role, model in pair.models.items():
    ev = interp.organism.instruction_following(model, test)
    print(role, {k: round(ev.rate(k), 3) for k in ev.criteria})""",
"md:## The whole reproduction\nEvery arm (less data, noisy data, response tuning, rules, URIAL, DPO on the "
"base's own answers judged from outside or by its own residual stream) and every claim, as "
"`interp reproduce instruction` writes it (each arm is an organism built and cached on first use).",
"""report = N.run(N.config_for(PAIR), log=lambda *a: None)
Markdown(N.to_markdown(report))""",
"interp.plot.instruction_arms(N.arms_table(report))",
], "notebooks/05_instruction.ipynb")


nb([
"md:# 06 · Pretraining data: repetition, duplication, and rephrasing for extraction\n\n"
"Every model here is trained from scratch on a *stream* of documents, once, so arms see the same budget. "
"Repetition: `U` unique documents each `E` times (`U·E` fixed; every fact mentioned equally often). "
"Rephrasing: each person's biography seen as one fixed text or in five phrasings with the sentences permuted "
"(Allen-Zhu & Li, 2023); QA fine-tuning on half the people, extraction measured on the others. "
"`INTERP_PRETRAINING_SIZE=tiny` runs the test-sized preset in a minute; `small` is the reproduction's (≈ 1 hour per seed).",
"""import os
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
print([d for d in s16.docs if f.entity in d][:3])""",
"md:## One biography, or five\nThe same person in the two biography streams: the first phrasing is shared.",
"""one, five = D.bio_stream(bio, 1), D.bio_stream(bio, 5)
person = one.facts[0].entity
print(sorted({d for d in one.docs if person in d}))
print(sorted({d for d in five.docs if person in d}))""",
"md:## The reproduction\nEvery arm trained (cached per arm), measured on the same validation documents and facts, "
"judged by criteria fixed in code — as `interp reproduce pretraining` writes it.",
"""report = P.run(P.config_for(SIZE), log=lambda *a: None)
Markdown(P.to_markdown(report))""",
"interp.plot.repetition(report.repetition)",
"interp.plot.extraction(report.extraction)",
], "notebooks/06_pretraining.ipynb")
