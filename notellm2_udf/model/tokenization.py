"""Token ids of text in which no string is special: user text (a title `hello <IMG> world`,
a content holding `</s>` or `<|im_end|>`) is always plain characters, never a control token.

Two facts of the tokenizers library shape this module (transformers 5.24, tokenizers 0.23):
- `encode_special_tokens=True` (= transformers' `split_special_tokens=True`) stops the
  added-token matcher from matching *special* added tokens, but a SentencePiece-converted
  Unigram vocabulary that holds `<s>` as a piece still produces its id from the model; so
  every result is checked and such tokens are re-tokenised character by character.
- A Metaspace pre-tokenizer with prepend_scheme "first" puts a word-boundary `▁` before the
  first piece of the whole input only: text that follows an added token (`<IMG>`) inside one
  input gets none. `encode(text, starts_input=False)` reproduces that for a piece encoded on
  its own, so that concatenated pieces equal one call over the whole string split at the
  added tokens.
"""

from __future__ import annotations

import json

from tokenizers import Tokenizer


class PlainTextEncoder:
    """Encodes text with a Hugging Face tokenizer, every special-token string kept literal.

    prefix_ids / end_ids: what the tokenizer's post-processor puts before / after a sequence
    (BOS for LLaMA; nothing for Qwen2).
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
        # The unknown token is what a tokenizer without byte fallback makes of a character it
        # does not know: it stays, unless the text itself spelled `<unk>`.
        self.unknown_id = tokenizer.unk_token_id
        self.special_ids = frozenset(tokenizer.all_special_ids) | frozenset(
            index for index, token in added.items() if getattr(token, "special", False))
        backend = getattr(tokenizer, "backend_tokenizer", None)
        self._first = self._continuation = None
        if backend is not None:
            self._first = _copy(backend.to_str())
            state = json.loads(backend.to_str())
            state["pre_tokenizer"] = _without_first_prefix(state.get("pre_tokenizer"))
            self._continuation = _copy(json.dumps(state))
        with_specials = self._call("x", add_special_tokens=True)[0]
        bare = self._call("x", add_special_tokens=False)[0]
        start = _find(with_specials, bare)
        self.prefix_ids = with_specials[:start]
        self.end_ids = with_specials[start + len(bare):]

    def encode_with_specials(self, text: str) -> list[int]:
        """Ids of template text (no user text) with the post-processor's prefix and end."""
        return self._call(text, add_special_tokens=True)[0]

    def encode(self, text: str, *, starts_input: bool = True) -> list[int]:
        return self.encode_batch([text], starts_input=starts_input)[0]

    def encode_batch(self, texts: list[str], *, starts_input: bool = True) -> list[list[int]]:
        """Token ids of each text (no BOS/EOS), none of them a special token.

        starts_input=False: the text as it tokenises right after an added token inside a
        longer input (no word-boundary prefix of a Metaspace tokenizer).
        """
        if not texts:
            return []
        results = []
        for text, (ids, tokens, offsets) in zip(texts, self._call_batch(texts, starts_input)):
            if self.special_ids.intersection(ids):
                ids = self._respell_specials(text, ids, tokens, offsets)
            results.append(ids)
        return results

    def _call(self, text: str, add_special_tokens: bool) -> tuple[list[int], list[str]]:
        if self._first is not None:
            encoding = self._first.encode(text, add_special_tokens=add_special_tokens)
            return list(encoding.ids), list(encoding.tokens)
        ids = self.tokenizer(text, add_special_tokens=add_special_tokens,
                             split_special_tokens=True)["input_ids"]
        return list(ids), self.tokenizer.convert_ids_to_tokens(ids)

    def _call_batch(self, texts: list[str], starts_input: bool):
        if self._first is None:
            if not starts_input:
                raise ValueError("continuation pieces need a fast (tokenizers) tokenizer")
            return [(*self._call(text, False), None) for text in texts]
        backend = self._first if starts_input else self._continuation
        return [(list(e.ids), list(e.tokens), list(e.offsets))
                for e in backend.encode_batch(texts, add_special_tokens=False)]

    def _respell_specials(self, text: str, ids: list[int], tokens: list[str],
                          offsets: list[tuple[int, int]] | None) -> list[int]:
        """Replaces each special id that the model itself produced (a Unigram piece `<s>`)
        by the model's tokens of its characters one by one."""
        if self._first is None:
            found = sorted(self.special_ids.intersection(ids) - {self.unknown_id})
            if found:
                raise ValueError(f"user text produced special token ids {found}")
            return ids
        model = self._first.model
        out: list[int] = []
        for index, token, (start, end) in zip(ids, tokens, offsets):
            genuine_unknown = (index == self.unknown_id
                               and text[start:end] != self.tokenizer.unk_token)
            if index not in self.special_ids or genuine_unknown:
                out.append(index)
                continue
            out.extend(piece.id for char in token for piece in model.tokenize(char))
        leftover = self.special_ids.intersection(out) - {self.unknown_id}
        if leftover:
            raise ValueError(f"cannot spell special tokens {sorted(leftover)} as plain text")
        return out


def _copy(tokenizer_json: str) -> Tokenizer:
    tokenizer = Tokenizer.from_str(tokenizer_json)
    tokenizer.no_truncation()
    tokenizer.no_padding()
    tokenizer.encode_special_tokens = True
    return tokenizer


def _without_first_prefix(pre_tokenizer: dict | None) -> dict | None:
    """The pre-tokenizer with every Metaspace prepend_scheme "first" turned to "never"."""
    if not isinstance(pre_tokenizer, dict):
        return pre_tokenizer
    pre_tokenizer = dict(pre_tokenizer)
    if pre_tokenizer.get("type") == "Metaspace" and pre_tokenizer.get("prepend_scheme") == "first":
        pre_tokenizer["prepend_scheme"] = "never"
    if isinstance(pre_tokenizer.get("pretokenizers"), list):
        pre_tokenizer["pretokenizers"] = [_without_first_prefix(p)
                                          for p in pre_tokenizer["pretokenizers"]]
    return pre_tokenizer


def _find(haystack: list[int], needle: list[int]) -> int:
    for start in range(len(haystack) - len(needle) + 1):
        if haystack[start:start + len(needle)] == needle:
            return start
    raise ValueError(f"tokenizer post-processing changed the text's ids: {haystack} vs {needle}")
