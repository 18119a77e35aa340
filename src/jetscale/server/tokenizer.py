"""A deterministic, fast stand-in tokenizer, and the model's (made-up) output tokens.

The simulated accelerator needs only token *counts*, but clients send text and read text back, so the
server needs a tokenizer that is cheap, stable across processes and versions, and round-trips ids.

Vocabulary (``VOCAB_SIZE`` = 32000, Llama 2's size):

* ids 0, 1, 2 are ``<unk>``, ``<s>`` and ``</s>`` (never produced as output);
* every other id ``i`` has one spelling: ``j = i - 3`` written in base 70 with syllables of one consonant
  and one vowel (``"ba"``, ``"be"``, ..., ``"zu"``): ids 3..72 are one syllable, the next 4900 two, the
  rest three (``"kotame"``).

Encoding splits text into words (``\\w+``) and single punctuation characters; a word that is the
spelling of an id becomes that id, any other piece becomes ``3 + crc32(piece) % 31997`` (a stable hash).
Decoding writes each id as ``" " + spelling``, so ``encode(decode(ids)) == ids`` for ordinary ids.

``huggingface_files()`` describes the same vocabulary and splitting as a Hugging Face ``tokenizer.json``
(a WordLevel model), so clients that count tokens with ``transformers`` (guidellm's ``--tokenizer``, a
local directory, offline) count exactly what the server counts. Only the counts agree for arbitrary text:
a piece that is not a spelling becomes id 3 (``"ba"``) there, rather than a hash.

Output tokens are a pure function of (seed, request id, position): a SplitMix64 hash, so a response can be
written in pieces, in any order, and is the same on every run. Text is only made when a response is
written; the engine never sees it.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Sequence

__all__ = ["BOS_ID", "EOS_ID", "UNK_ID", "VOCAB_SIZE", "Tokenizer", "huggingface_files", "output_token_ids"]

VOCAB_SIZE = 32000
UNK_ID = 0
BOS_ID = 1
EOS_ID = 2
_FIRST_ORDINARY = 3
_ORDINARY = VOCAB_SIZE - _FIRST_ORDINARY

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_SYLLABLES = tuple(c + v for c in _CONSONANTS for v in _VOWELS)  # 70
_BASE = len(_SYLLABLES)
_SYLLABLE_INDEX = {s: i for i, s in enumerate(_SYLLABLES)}
_ONE = _BASE  # ids spelled with one syllable
_TWO = _BASE * _BASE  # ... with two
_SPECIAL_TEXT = {UNK_ID: "<unk>", BOS_ID: "<s>", EOS_ID: "</s>"}

_PIECE = re.compile(r"\w+|[^\w\s]")
_SPELLING = re.compile(r"(?:[bdfgklmnprstvz][aeiou]){1,3}")

_MASK64 = (1 << 64) - 1


def _spell(token_id: int) -> str:
    if token_id in _SPECIAL_TEXT:
        return _SPECIAL_TEXT[token_id]
    j = token_id - _FIRST_ORDINARY
    if j < _ONE:
        digits, width = j, 1
    elif j < _ONE + _TWO:
        digits, width = j - _ONE, 2
    else:
        digits, width = j - _ONE - _TWO, 3
    out = []
    for _ in range(width):
        digits, r = divmod(digits, _BASE)
        out.append(_SYLLABLES[r])
    return "".join(reversed(out))


def _parse(word: str) -> int | None:
    """The id spelled by ``word``, or None when it is not a spelling."""
    if not _SPELLING.fullmatch(word):
        return None
    digits = 0
    for k in range(0, len(word), 2):
        digits = digits * _BASE + _SYLLABLE_INDEX[word[k : k + 2]]
    width = len(word) // 2
    j = digits + (0 if width == 1 else _ONE if width == 2 else _ONE + _TWO)
    return j + _FIRST_ORDINARY if j < _ORDINARY else None


class Tokenizer:
    """Words and punctuation to ids and back; see the module docstring for the exact rules."""

    __slots__ = ("_spellings",)

    vocab_size = VOCAB_SIZE

    def __init__(self) -> None:
        self._spellings: dict[int, str] = {}

    def encode(self, text: str) -> list[int]:
        ids = []
        for piece in _PIECE.findall(text):
            parsed = _parse(piece)
            if parsed is None:
                parsed = _FIRST_ORDINARY + zlib.crc32(piece.encode("utf-8")) % _ORDINARY
            ids.append(parsed)
        return ids

    def count(self, text: str) -> int:
        """``len(encode(text))`` without building the list."""
        return sum(1 for _ in _PIECE.finditer(text))

    def piece(self, token_id: int) -> str:
        """The text of one token: a space and its spelling."""
        text = self._spellings.get(token_id)
        if text is None:
            text = " " + _spell(token_id)
            self._spellings[token_id] = text
        return text

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.piece(i) for i in ids)


def huggingface_files() -> dict[str, str]:
    """``tokenizer.json`` and ``tokenizer_config.json`` (name -> text) of this tokenizer, for
    ``transformers.AutoTokenizer.from_pretrained(<a directory holding them>)``; see the module docstring."""
    specials = [
        {"id": i, "content": text, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
         "special": True}
        for i, text in sorted(_SPECIAL_TEXT.items())
    ]  # fmt: skip
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": specials,
        "normalizer": None,
        # the server's pieces: words (\w+) and single punctuation characters, whitespace dropped
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "WhitespaceSplit"},
                {"type": "Split", "pattern": {"Regex": _PIECE.pattern}, "behavior": "Isolated", "invert": False},
            ],
        },
        "post_processor": None,
        "decoder": None,  # ids are written as their spellings joined by spaces
        "model": {
            "type": "WordLevel",
            "vocab": {_spell(i): i for i in range(VOCAB_SIZE)},
            "unk_token": _spell(_FIRST_ORDINARY),  # an ordinary one-piece token, so counts still agree
        },
    }
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": _SPECIAL_TEXT[UNK_ID],
        "bos_token": _SPECIAL_TEXT[BOS_ID],
        "eos_token": _SPECIAL_TEXT[EOS_ID],
        "model_max_length": 1 << 20,
        "clean_up_tokenization_spaces": False,
    }
    return {"tokenizer.json": json.dumps(tokenizer), "tokenizer_config.json": json.dumps(config, indent=2)}


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def output_token_ids(*, seed: int, request_id: int, start: int, stop: int) -> list[int]:
    """Output tokens ``start..stop-1`` of ``request_id``: ordinary ids, the same for the same seed."""
    base = _splitmix64((seed & _MASK64) ^ _splitmix64(request_id & _MASK64))
    return [_FIRST_ORDINARY + _splitmix64(base + k) % _ORDINARY for k in range(start, stop)]
