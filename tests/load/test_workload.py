"""Request sizes: seeded determinism, the presets' published means, spec parsing, datasets, synthetic prompts."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jetscale.errors import ConfigError
from jetscale.load import workload as wl
from jetscale.load.workload import (
    DatasetWorkload,
    DistributionWorkload,
    LengthDist,
    LengthKind,
    load_dataset,
    parse_workload,
    synthetic_prompt,
)


def _rng(seed: int = 7) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.mark.parametrize("spec", ["sharegpt-like", "openorca-like", "uniform:input=4..64,output=1..9"])
def test_same_seed_same_sizes_other_seed_other_sizes(spec: str) -> None:
    w = parse_workload(spec)
    a, b, c = w.sample(_rng(1), 500), w.sample(_rng(1), 500), w.sample(_rng(2), 500)
    assert np.array_equal(a.input_tokens, b.input_tokens) and np.array_equal(a.output_tokens, b.output_tokens)
    assert np.array_equal(a.prompt_offset, b.prompt_offset)
    assert not np.array_equal(a.input_tokens, c.input_tokens)


@pytest.mark.parametrize(
    ("spec", "input_mean", "output_mean"),
    [
        pytest.param("sharegpt-like", wl.SHAREGPT_INPUT_MEAN, wl.SHAREGPT_OUTPUT_MEAN, id="sharegpt"),
        pytest.param("openorca-like", wl.OPENORCA_INPUT_MEAN, wl.OPENORCA_OUTPUT_MEAN, id="openorca"),
    ],
)
def test_presets_reproduce_the_published_means_within_ten_percent(
    spec: str, input_mean: float, output_mean: float
) -> None:
    sizes = parse_workload(spec).sample(_rng(), 200_000)
    # clipping to 4..1024 tokens (JetStream's benchmark limits) moves the mean a little; not by more than 10%
    assert abs(sizes.input_tokens.mean() / input_mean - 1) < 0.10
    assert abs(sizes.output_tokens.mean() / output_mean - 1) < 0.10
    assert sizes.input_tokens.min() >= wl.MIN_TOKENS and sizes.input_tokens.max() <= wl.MAX_PRESET_TOKENS


def test_lognormal_parameters_follow_mean_and_cv() -> None:
    d = LengthDist(kind=LengthKind.LOGNORMAL, low=1, high=32_768, mean=300.0, cv=0.5)
    draws = d.sample(_rng(3), 400_000).astype(float)
    assert abs(draws.mean() / 300 - 1) < 0.01
    assert abs(draws.std() / draws.mean() / 0.5 - 1) < 0.03
    assert d.sigma**2 == pytest.approx(np.log(1.25))


@given(low=st.integers(1, 500), span=st.integers(0, 500), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=50, deadline=None)
def test_uniform_sizes_stay_inside_their_range(low: int, span: int, seed: int) -> None:
    w = parse_workload(f"uniform:input={low}..{low + span},output={low}..{low + span}")
    s = w.sample(np.random.default_rng(seed), 200)
    for column in (s.input_tokens, s.output_tokens):
        assert column.min() >= low and column.max() <= low + span


@pytest.mark.parametrize(
    ("spec", "inp", "out"),
    [
        pytest.param("fixed:input=128,output=256", (128, 128), (256, 256), id="fixed"),
        pytest.param("uniform:input=10..20,output=1..2", (10, 20), (1, 2), id="uniform"),
        pytest.param(
            "lognormal:input_mean=50,output_mean=60,max_input=99,max_output=98", (4, 99), (4, 98), id="lognormal"
        ),
    ],
)
def test_spec_parameters_reach_the_distributions(spec: str, inp: tuple[int, int], out: tuple[int, int]) -> None:
    w = parse_workload(spec)
    assert isinstance(w, DistributionWorkload)
    assert (w.input.low, w.input.high) == inp
    assert (w.output.low, w.output.high) == out


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param("nonsense", "'--workload' must be sharegpt-like", id="unknown-kind"),
        pytest.param("fixed:input=10", "needs output=N", id="missing-output"),
        pytest.param("fixed:input=ten,output=1", "input must be a whole number", id="not-a-number"),
        pytest.param("fixed:input=0,output=1", "input must be in 1..32768", id="zero"),
        pytest.param("uniform:input=5,output=1..2", "input must be LOW..HIGH", id="not-a-range"),
        pytest.param("uniform:input=9..5,output=1..2", "'high' (5) must be >= 'low' (9)", id="reversed-range"),
        pytest.param("fixed:input=1,output=1,colour=red", "unknown parameter(s) colour", id="unknown-param"),
        pytest.param("lognormal:input_cv=-1", "input_cv must be > 0", id="negative-cv"),
        pytest.param("fixed:input", "must be key=value", id="no-equals"),
    ],
)
def test_bad_specs_name_the_field_and_value(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        parse_workload(spec)
    assert message in str(info.value)


def test_dataset_of_prompts_and_sizes() -> None:
    lines = [
        json.dumps({"prompt": "x" * 40, "output_tokens": 7}),
        "",
        json.dumps({"input_tokens": 30, "output_tokens": 9}),
        json.dumps({"prompt": "hello there", "input_tokens": 3}),
    ]
    d = load_dataset(lines, source="set.jsonl", default_output_tokens=11)
    assert d.input_tokens.tolist() == [10, 30, 3]  # 40 characters / 4
    assert d.output_tokens.tolist() == [7, 9, 11]
    s = d.sample(_rng(), 300)
    assert set(s.prompt_index.tolist()) == {0, -1, 2}  # the sizes-only row gets a synthetic prompt
    rows = s.prompt_index[s.prompt_index >= 0]
    assert all(d.prompt(int(i)) is not None for i in rows)


def test_dataset_workload_from_a_file_spec(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text(json.dumps({"input_tokens": 5, "output_tokens": 6}) + "\n")
    w = parse_workload(str(path), read_lines=lambda p: Path(p).read_text().splitlines())
    assert isinstance(w, DatasetWorkload)
    assert w.sample(_rng(), 3).output_tokens.tolist() == [6, 6, 6]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        pytest.param("not json", "set.jsonl:1: invalid JSON", id="not-json"),
        pytest.param("[1, 2]", "must be a JSON object", id="a-list"),
        pytest.param('{"output_tokens": 3}', "needs 'prompt' or 'input_tokens'", id="no-input"),
        pytest.param('{"input_tokens": 0}', "'input_tokens' must be a whole number in 1..32768 (got 0)", id="zero"),
        pytest.param('{"prompt": ""}', "'prompt' must be a non-empty string", id="empty-prompt"),
    ],
)
def test_bad_dataset_rows_name_the_line(line: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_dataset([line], source="set.jsonl")
    assert message in str(info.value)


@given(tokens=st.integers(1, 3000), offset=st.integers(0, 2**40))
@settings(max_examples=60, deadline=None)
def test_synthetic_prompts_have_one_word_per_token(tokens: int, offset: int) -> None:
    from jetscale.server.tokenizer import Tokenizer

    text = synthetic_prompt(tokens, offset)
    assert len(text.split()) == tokens
    assert len(text) == 4 * tokens - 1  # 3 letters and a space per token: chars / 4 agrees too
    assert Tokenizer().count(text) == tokens  # and so does the server's tokenizer


def test_synthetic_prompts_from_different_offsets_do_not_share_a_prefix() -> None:
    starts = {synthetic_prompt(16, offset)[:40] for offset in range(0, 4000, 40)}
    assert len(starts) == 100


def test_pure_modules_import_only_the_standard_library_numpy_errors_and_units() -> None:
    # workload, arrivals and trace: no clock, no I/O, no shells; jetscale's errors, units and safeload only
    allowed_jetscale = {"jetscale.errors", "jetscale.units", "jetscale.safeload"}
    forbidden = {"time", "asyncio", "socket", "gevent", "locust", "random", "threading", "subprocess", "os"}
    for name in ("workload", "arrivals", "trace"):
        module = __import__(f"jetscale.load.{name}", fromlist=["_"])
        tree = ast.parse(Path(module.__file__ or "").read_text())
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        jetscale = {n for n in names if n.startswith("jetscale")}
        assert jetscale <= allowed_jetscale, module.__name__
        assert not {n.split(".")[0] for n in names} & forbidden, module.__name__
