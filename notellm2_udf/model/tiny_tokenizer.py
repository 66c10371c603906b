"""A byte-level tokenizer for tiny test models: no training, no download, any language."""

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast


def build_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """One token per UTF-8 byte (256 ids), so English and Chinese both round-trip.

    Special tokens (`<IMG>`, `<IMG_EMB>`, pad) are added by the caller like for a real LLM.
    """
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    # BPE without merges = a fixed byte vocabulary: deterministic, unlike a trained one.
    tokenizer = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer)
