"""The stand-in tokenizer: stable ids, exact round trips, counts that match, and seeded output tokens."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jetscale.server.tokenizer import BOS_ID, EOS_ID, UNK_ID, VOCAB_SIZE, Tokenizer, output_token_ids

TOKENIZER = Tokenizer()


@pytest.mark.parametrize(
    ("token_id", "text"),
    [
        pytest.param(3, " ba", id="first ordinary id"),
        pytest.param(72, " zu", id="last one-syllable id"),
        pytest.param(73, " baba", id="first two-syllable id"),
        pytest.param(4973, " bababa", id="first three-syllable id"),
        pytest.param(VOCAB_SIZE - 1, TOKENIZER.piece(VOCAB_SIZE - 1), id="last id"),
        pytest.param(BOS_ID, " <s>", id="bos"),
        pytest.param(EOS_ID, " </s>", id="eos"),
        pytest.param(UNK_ID, " <unk>", id="unk"),
    ],
)
def test_spellings(token_id: int, text: str) -> None:
    assert TOKENIZER.decode([token_id]) == text


@given(st.lists(st.integers(min_value=3, max_value=VOCAB_SIZE - 1), max_size=50))
def test_ordinary_ids_round_trip_through_text(ids: list[int]) -> None:
    assert TOKENIZER.encode(TOKENIZER.decode(ids)) == ids


@given(st.text(max_size=200))
def test_count_is_the_length_of_encode_and_ids_are_in_the_vocabulary(text: str) -> None:
    ids = TOKENIZER.encode(text)
    assert TOKENIZER.count(text) == len(ids)
    assert all(3 <= i < VOCAB_SIZE for i in ids)


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        pytest.param("Hello, world!", 4, id="words and punctuation"),
        pytest.param("  spaced   out  ", 2, id="runs of spaces"),
        pytest.param("", 0, id="empty"),
        pytest.param("naïve café", 2, id="unicode words"),
    ],
)
def test_pieces_are_words_and_punctuation(text: str, pieces: int) -> None:
    assert TOKENIZER.count(text) == pieces


def test_unknown_words_hash_to_the_same_id_everywhere() -> None:
    assert TOKENIZER.encode("Hello") == Tokenizer().encode("Hello") == [3 + 0xF7D18982 % 31997]  # CRC-32 of "Hello"


def test_output_tokens_depend_on_seed_request_and_position_only() -> None:
    whole = output_token_ids(seed=1, request_id=42, start=0, stop=10)
    pieces = output_token_ids(seed=1, request_id=42, start=0, stop=4) + output_token_ids(
        seed=1, request_id=42, start=4, stop=10
    )
    assert whole == pieces
    assert whole != output_token_ids(seed=2, request_id=42, start=0, stop=10)
    assert whole != output_token_ids(seed=1, request_id=43, start=0, stop=10)
    assert all(3 <= i < VOCAB_SIZE for i in whole)
