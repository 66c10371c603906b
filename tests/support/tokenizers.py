"""Tokenizers of the kinds real checkpoints ship, trained in-test on a few sentences with the
`tokenizers` library (nothing downloaded): LLaMA-style (SentencePiece: Metaspace + BPE with
byte fallback, BOS from the post-processor, <s>/</s> pieces of the model vocabulary),
Qwen2-style (byte-level BPE after a split regex, no BOS) and a SentencePiece Unigram."""

import json

from tokenizers import (
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import PreTrainedTokenizerFast

CORPUS = [
    '笔记：{"图片":"<IMG>"}，压缩为一个词：“<IMG_EMB>”。笔记：{"标题":"周末探店","话题":"美食","内容":"今天去了新店"}',
    "周末 探店 记录 今天 去了 新店 好吃 美食 咖啡 拿铁 很好喝 这家店 秋天 红叶 徒步",
    "Autumn hike with red leaves everywhere, a cat on the sofa, bread baking at home.",
    "compress this note into one word: title topic content image note",
] * 3
QWEN_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+"
              r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA_SPECIALS = ["<unk>", "<s>", "</s>"]


def llama_style_tokenizer(vocab_size: int = 420) -> PreTrainedTokenizerFast:
    """LLaMA-2's layout: ids 0-2 <unk> <s> </s>, 3-258 the byte pieces <0x00>..<0xFF>, then
    the merged pieces; Metaspace('▁', prepend_scheme='first'); BOS added by the post-processor."""
    trained = Tokenizer(models.BPE(unk_token="<unk>"))
    trained.pre_tokenizer = _metaspace()
    trained.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=LLAMA_SPECIALS, show_progress=False))
    state = json.loads(trained.to_str())["model"]
    vocab = {name: i for i, name in enumerate(LLAMA_SPECIALS)}
    vocab.update({f"<0x{byte:02X}>": 3 + byte for byte in range(256)})
    for name, _ in sorted(state["vocab"].items(), key=lambda item: item[1]):
        vocab.setdefault(name, len(vocab))
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>",
                                     byte_fallback=True, fuse_unk=True))
    tokenizer.pre_tokenizer = _metaspace()
    tokenizer.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                           decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tokenizer.add_special_tokens(LLAMA_SPECIALS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>",
                                   eos_token="</s>", unk_token="<unk>")


def llama_style_unigram() -> PreTrainedTokenizerFast:
    """A SentencePiece-converted Unigram: <s> and </s> are pieces of the model itself (every
    printable ASCII character is a piece too, no byte fallback)."""
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = _metaspace()
    tokenizer.train_from_iterator(CORPUS, trainers.UnigramTrainer(
        vocab_size=300, special_tokens=LLAMA_SPECIALS, unk_token="<unk>", show_progress=False,
        initial_alphabet=[chr(c) for c in range(33, 127)]))
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B",
        special_tokens=[("<s>", tokenizer.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>",
                                   eos_token="</s>", unk_token="<unk>")


def qwen_style_tokenizer(vocab_size: int = 600) -> PreTrainedTokenizerFast:
    """Qwen2's layout: NFC, the Qwen split regex, byte-level BPE, no BOS."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokenizer.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>")


def _metaspace():
    return pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
