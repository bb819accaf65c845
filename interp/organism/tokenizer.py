"""A byte-level BPE tokenizer trained on the organism's corpus, saved as a ``PreTrainedTokenizerFast``."""

from __future__ import annotations

from collections.abc import Sequence

EOS = "<|endoftext|>"
PAD = "<|pad|>"


def train_tokenizer(texts: Sequence[str], vocab_size: int = 1024):
    """Train byte-level BPE on ``texts``.

    GPT-2 style: one ``<|endoftext|>`` token is BOS and EOS (documents are separated by it, and
    the tokenizer puts it in front of every text it encodes), ``<|pad|>`` pads.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    eos_id = tok.token_to_id(EOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{EOS} $A", pair=f"{EOS} $A $B", special_tokens=[(EOS, eos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=EOS, eos_token=EOS, pad_token=PAD, padding_side="right",
        add_bos_token=True,
    )
