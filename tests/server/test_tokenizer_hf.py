"""The Hugging Face description of the server's tokenizer (for offline clients such as guidellm) counts as it."""

from __future__ import annotations

import random
from pathlib import Path

from transformers import AutoTokenizer

from jetscale.server.tokenizer import Tokenizer, huggingface_files

TEXTS = [
    "Why is the sky blue?",
    "  spaces\tand\nnewlines ,, double punctuation!! (brackets) [x]=3+4 ",
    "naïve café, 東京 and émigré: unicode words; £5 & 10% off?!",
    "snake_case and digits 12345 and mixed w0rds",
]


def test_transformers_loads_it_from_a_directory_and_counts_what_the_server_counts(tmp_path: Path) -> None:
    for name, text in huggingface_files().items():
        (tmp_path / name).write_text(text)
    hf = AutoTokenizer.from_pretrained(str(tmp_path))
    ours = Tokenizer()
    rng = random.Random(7)
    spelled = ours.decode([rng.randrange(3, ours.vocab_size) for _ in range(200)])
    for text in [*TEXTS, spelled]:
        assert len(hf.encode(text)) == ours.count(text), text
    ids = [rng.randrange(3, ours.vocab_size) for _ in range(200)]
    assert hf.encode(ours.decode(ids)) == ids  # spellings are the same ids
    assert ours.encode(hf.decode(ids, skip_special_tokens=True)) == ids  # and decode back to them
