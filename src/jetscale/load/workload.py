"""Request sizes for load tests: how many tokens each request sends and how many it asks for.

A workload is pure and seeded. ``sample(rng, n)`` draws the sizes of ``n`` requests from a numpy
``Generator`` that the caller owns; the same generator state gives the same sizes. A workload is one of:

- a distribution of input and output lengths: ``fixed``, ``uniform``, ``lognormal``, or one of the two
  presets ``sharegpt-like`` and ``openorca-like`` (log-normals fitted to published statistics, below);
- a dataset: a JSONL file of prompts (``{"prompt": ..., "output_tokens": ...}``) or of sizes
  (``{"input_tokens": ..., "output_tokens": ...}``), sampled uniformly with replacement.

Requests without a prompt of their own get a synthetic one (``synthetic_prompt``): 3-letter English
words, each one token in LLaMA/GPT tokenizers and exactly 4 characters with its space, so that words,
``len(text) / 4`` and a real BPE tokenizer all count about the same. Each request starts at its own
offset in a long aperiodic word table, so prompts do not share prefixes (no accidental prefix caching).

Reading files is the caller's business: ``parse_workload`` takes a ``read_lines`` function.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache

import numpy as np

from jetscale.errors import ConfigError
from jetscale.safeload import load_json

__all__ = [
    "OPENORCA_INPUT_MEAN",
    "OPENORCA_OUTPUT_MEAN",
    "SHAREGPT_INPUT_MEAN",
    "SHAREGPT_OUTPUT_MEAN",
    "DatasetWorkload",
    "DistributionWorkload",
    "LengthDist",
    "LengthKind",
    "Sizes",
    "Workload",
    "estimate_tokens",
    "parse_workload",
    "synthetic_prompt",
]

# --- Published statistics behind the presets (docs/load.md has the same table) -------------------------
# ShareGPT (ShareGPT_V3_unfiltered_cleaned_split, first human turn -> first reply, LLaMA tokenizer):
# mean input 161.31 tokens, mean output 337.99 tokens, as reported by Kwon et al., "Efficient Memory
# Management for Large Language Model Serving with PagedAttention" (SOSP 2023), Fig. 11(a).
SHAREGPT_INPUT_MEAN = 161.31
SHAREGPT_OUTPUT_MEAN = 337.99
# OpenOrca as JetStream and MLPerf use it (open_orca_gpt4_tokenized_llama, LLaMA tokenizer):
# input: 217,011 tokens over 995 requests = 218.1 per request (AI-Hypercomputer/tpu-recipes,
# inference/v5e/JetStream-Maxtext/Llama2-7B/README.md, benchmark_serving on 1000 openorca prompts);
# output: 294.45 tokens per sample (mlcommons/inference, language/llama2-70b/README.md, "Tokens per sample").
OPENORCA_INPUT_MEAN = 217_011 / 995
OPENORCA_OUTPUT_MEAN = 294.45
# The sources give means only. The spread is our assumption, stated as a coefficient of variation
# (std / mean): chat prompts and replies are heavy-tailed (cv 1.0); OpenOrca's instruction prompts less so.
SHAREGPT_CV = 1.0
OPENORCA_CV = 0.8
# JetStream's benchmark_serving drops prompts and outputs shorter than 4 tokens and prompts longer than
# 1024 (its default --max-input-length); we clip to the same range instead of dropping.
MIN_TOKENS = 4
MAX_PRESET_TOKENS = 1024
MAX_PROMPT_TOKENS = 32_768  # JetStream's largest prefill bucket


class LengthKind(StrEnum):
    FIXED = "fixed"
    UNIFORM = "uniform"
    LOGNORMAL = "lognormal"


@dataclass(frozen=True, slots=True, kw_only=True)
class LengthDist:
    """A distribution of token counts: fixed, uniform on [low, high], or log-normal clipped to [low, high]."""

    kind: LengthKind
    low: int  # fixed: the value; uniform: smallest; lognormal: clip minimum
    high: int  # fixed: the value; uniform: largest; lognormal: clip maximum
    mean: float = 0.0  # lognormal: mean before clipping
    cv: float = 0.0  # lognormal: std / mean before clipping

    def __post_init__(self) -> None:
        if self.low < 1:
            raise ConfigError(f"'low' must be >= 1 token (got {self.low})")
        if self.high < self.low:
            raise ConfigError(f"'high' ({self.high}) must be >= 'low' ({self.low})")
        if self.kind is LengthKind.FIXED and self.high != self.low:
            raise ConfigError(f"a fixed length has low == high (got {self.low} and {self.high})")
        if self.kind is LengthKind.LOGNORMAL and not (self.mean > 0 and self.cv > 0):
            raise ConfigError(f"'mean' and 'cv' must be > 0 (got {self.mean} and {self.cv})")

    @property
    def sigma(self) -> float:
        """Log-normal shape parameter: sigma^2 = ln(1 + cv^2)."""
        return math.sqrt(math.log1p(self.cv * self.cv))

    @property
    def mu(self) -> float:
        """Log-normal location parameter: mu = ln(mean) - sigma^2 / 2."""
        return math.log(self.mean) - self.sigma**2 / 2

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.kind is LengthKind.FIXED:
            return np.full(n, self.low, dtype=np.int64)
        if self.kind is LengthKind.UNIFORM:
            return rng.integers(self.low, self.high + 1, size=n, dtype=np.int64)
        draws = rng.lognormal(self.mu, self.sigma, size=n)
        return np.clip(np.rint(draws), self.low, self.high).astype(np.int64)

    def describe(self) -> str:
        if self.kind is LengthKind.FIXED:
            return str(self.low)
        if self.kind is LengthKind.UNIFORM:
            return f"uniform {self.low}..{self.high}"
        return f"lognormal mean {self.mean:g} cv {self.cv:g} in {self.low}..{self.high}"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Sizes:
    """The sizes of a batch of requests. ``prompt_index`` -1 means a synthetic prompt starting at ``prompt_offset``."""

    input_tokens: np.ndarray
    output_tokens: np.ndarray
    prompt_index: np.ndarray
    prompt_offset: np.ndarray

    def __len__(self) -> int:
        return len(self.input_tokens)


def _offsets(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, _TABLE_WORDS, size=n, dtype=np.int64)


@dataclass(frozen=True, slots=True, kw_only=True)
class DistributionWorkload:
    """Input and output lengths drawn independently from two distributions; prompts are synthetic."""

    name: str
    input: LengthDist
    output: LengthDist

    def sample(self, rng: np.random.Generator, n: int) -> Sizes:
        inputs = self.input.sample(rng, n)
        outputs = self.output.sample(rng, n)
        return Sizes(
            input_tokens=inputs,
            output_tokens=outputs,
            prompt_index=np.full(n, -1, dtype=np.int64),
            prompt_offset=_offsets(rng, n),
        )

    def prompt(self, index: int) -> str | None:
        return None

    def describe(self) -> str:
        return f"{self.name}: input {self.input.describe()}, output {self.output.describe()}"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class DatasetWorkload:
    """Rows of a dataset (sizes, and prompts where the file has them), drawn uniformly with replacement."""

    name: str
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    prompts: tuple[str | None, ...] = field(default=())

    def sample(self, rng: np.random.Generator, n: int) -> Sizes:
        rows = rng.integers(0, len(self.input_tokens), size=n, dtype=np.int64)
        has_text = np.array([p is not None for p in self.prompts], dtype=bool) if self.prompts else None
        index = np.where(has_text[rows], rows, -1) if has_text is not None else np.full(n, -1, dtype=np.int64)
        return Sizes(
            input_tokens=self.input_tokens[rows],
            output_tokens=self.output_tokens[rows],
            prompt_index=index,
            prompt_offset=_offsets(rng, n),
        )

    def prompt(self, index: int) -> str | None:
        return self.prompts[index] if 0 <= index < len(self.prompts) else None

    def describe(self) -> str:
        return (
            f"{self.name}: {len(self.input_tokens)} rows, mean input {float(np.mean(self.input_tokens)):.1f}, "
            f"mean output {float(np.mean(self.output_tokens)):.1f}"
        )


Workload = DistributionWorkload | DatasetWorkload


def estimate_tokens(text: str) -> int:
    """Tokens in ``text`` by the usual rule of thumb for English BPE tokenizers: 4 characters per token."""
    return max(1, round(len(text) / 4))


# --- Synthetic prompts ------------------------------------------------------------------------------------
_WORDS_TEXT = (
    "the and for are but not you all any can had her was one our out day get has him his how man new now old "
    "see two way who boy did its let put say she too use end far few got run set try why yes big law"
)
_TABLE_WORDS = 1 << 16


@cache
def _word_text() -> str:
    # A fixed, aperiodic word sequence: a constant table built from a private seeded generator.
    words = _WORDS_TEXT.split(" ")
    table = np.random.default_rng(20240601).integers(0, len(words), size=_TABLE_WORDS + MAX_PROMPT_TOKENS)
    return "".join(words[i] + " " for i in table)


def synthetic_prompt(tokens: int, offset: int) -> str:
    """``tokens`` words of filler text starting at word ``offset`` of the table (4 characters per word)."""
    if not 1 <= tokens <= MAX_PROMPT_TOKENS:
        raise ConfigError(f"'input_tokens' must be in 1..{MAX_PROMPT_TOKENS} (got {tokens})")
    start = (offset % _TABLE_WORDS) * 4
    return _word_text()[start : start + tokens * 4 - 1]


# --- Spec parsing -----------------------------------------------------------------------------------------
def _params(text: str, spec: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise ConfigError(f"'--workload' parameters must be key=value (got {part!r} in {spec!r})")
        out[key.strip()] = value.strip()
    return out


def _int(params: dict[str, str], key: str, spec: str, default: int | None = None) -> int:
    raw = params.pop(key, None)
    if raw is None:
        if default is None:
            raise ConfigError(f"'--workload' {spec!r} needs {key}=N")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"'--workload' {key} must be a whole number of tokens (got {raw!r})") from None
    if not 1 <= value <= MAX_PROMPT_TOKENS:
        raise ConfigError(f"'--workload' {key} must be in 1..{MAX_PROMPT_TOKENS} (got {value})")
    return value


def _float(params: dict[str, str], key: str, spec: str, default: float) -> float:
    raw = params.pop(key, None)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"'--workload' {key} must be a number (got {raw!r})") from None
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"'--workload' {key} must be > 0 (got {raw!r})")
    return value


def _range(params: dict[str, str], key: str, spec: str) -> tuple[int, int]:
    raw = params.pop(key, None)
    if raw is None:
        raise ConfigError(f"'--workload' {spec!r} needs {key}=LOW..HIGH")
    low, sep, high = raw.partition("..")
    if not sep:
        raise ConfigError(f"'--workload' {key} must be LOW..HIGH (got {raw!r})")
    lo, hi = (_int({key: v}, key, spec) for v in (low, high))
    return lo, hi


def _lognormal(mean: float, cv: float, high: int) -> LengthDist:
    return LengthDist(kind=LengthKind.LOGNORMAL, low=MIN_TOKENS, high=high, mean=mean, cv=cv)


PRESETS: dict[str, DistributionWorkload] = {
    "sharegpt-like": DistributionWorkload(
        name="sharegpt-like",
        input=_lognormal(SHAREGPT_INPUT_MEAN, SHAREGPT_CV, MAX_PRESET_TOKENS),
        output=_lognormal(SHAREGPT_OUTPUT_MEAN, SHAREGPT_CV, MAX_PRESET_TOKENS),
    ),
    "openorca-like": DistributionWorkload(
        name="openorca-like",
        input=_lognormal(OPENORCA_INPUT_MEAN, OPENORCA_CV, MAX_PRESET_TOKENS),
        output=_lognormal(OPENORCA_OUTPUT_MEAN, OPENORCA_CV, MAX_PRESET_TOKENS),
    ),
}


def parse_workload(spec: str, *, read_lines: Callable[[str], Iterable[str]] | None = None) -> Workload:
    """A workload from its ``--workload`` spec.

    ``sharegpt-like`` | ``openorca-like`` | ``fixed:input=128,output=256`` |
    ``uniform:input=16..512,output=16..256`` |
    ``lognormal:input_mean=200,input_cv=1,output_mean=300,output_cv=1[,max_input=1024,max_output=1024]`` |
    ``jsonl:PATH`` or a path ending in ``.jsonl`` (read with ``read_lines``).
    """
    text = spec.strip()
    if text in PRESETS:
        return PRESETS[text]
    kind, _, rest = text.partition(":")
    if kind == "jsonl" or text.endswith(".jsonl"):
        path = rest if kind == "jsonl" else text
        if read_lines is None:
            raise ConfigError(f"'--workload' {spec!r} names a file, but no file reader was given")
        return load_dataset(read_lines(path), source=path)
    params = _params(rest, spec)
    if kind == "fixed":
        inp, out = _int(params, "input", spec), _int(params, "output", spec)
        dists = (
            LengthDist(kind=LengthKind.FIXED, low=inp, high=inp),
            LengthDist(kind=LengthKind.FIXED, low=out, high=out),
        )
    elif kind == "uniform":
        (ilo, ihi), (olo, ohi) = _range(params, "input", spec), _range(params, "output", spec)
        dists = (
            LengthDist(kind=LengthKind.UNIFORM, low=ilo, high=ihi),
            LengthDist(kind=LengthKind.UNIFORM, low=olo, high=ohi),
        )
    elif kind == "lognormal":
        dists = (
            LengthDist(
                kind=LengthKind.LOGNORMAL,
                low=_int(params, "min_input", spec, MIN_TOKENS),
                high=_int(params, "max_input", spec, MAX_PRESET_TOKENS),
                mean=_float(params, "input_mean", spec, SHAREGPT_INPUT_MEAN),
                cv=_float(params, "input_cv", spec, SHAREGPT_CV),
            ),
            LengthDist(
                kind=LengthKind.LOGNORMAL,
                low=_int(params, "min_output", spec, MIN_TOKENS),
                high=_int(params, "max_output", spec, MAX_PRESET_TOKENS),
                mean=_float(params, "output_mean", spec, SHAREGPT_OUTPUT_MEAN),
                cv=_float(params, "output_cv", spec, SHAREGPT_CV),
            ),
        )
    else:
        raise ConfigError(
            "'--workload' must be sharegpt-like, openorca-like, fixed:..., uniform:..., lognormal:... "
            f"or a .jsonl file (got {spec!r})"
        )
    if params:
        raise ConfigError(f"'--workload' {kind} has unknown parameter(s) {', '.join(sorted(params))} (in {spec!r})")
    return DistributionWorkload(name=text, input=dists[0], output=dists[1])


def _row_int(row: dict[str, object], key: str, where: str) -> int | None:
    value = row.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PROMPT_TOKENS:
        raise ConfigError(f"{where}: '{key}' must be a whole number in 1..{MAX_PROMPT_TOKENS} (got {value!r})")
    return value


def load_dataset(lines: Iterable[str], *, source: str, default_output_tokens: int = 256) -> DatasetWorkload:
    """A dataset workload from JSONL lines: ``prompt`` and/or ``input_tokens``, and ``output_tokens``.

    A row with a prompt but no ``input_tokens`` is counted with ``estimate_tokens``; a row without
    ``output_tokens`` asks for ``default_output_tokens``.
    """
    inputs: list[int] = []
    outputs: list[int] = []
    prompts: list[str | None] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        row = load_json(line, what=where)
        if not isinstance(row, dict):
            raise ConfigError(f"{where}: must be a JSON object (got {type(row).__name__})")
        prompt = row.get("prompt", row.get("text"))
        if prompt is not None and (not isinstance(prompt, str) or not prompt):
            raise ConfigError(f"{where}: 'prompt' must be a non-empty string (got {prompt!r})")
        n_in = _row_int(row, "input_tokens", where)
        if n_in is None:
            if prompt is None:
                raise ConfigError(f"{where}: needs 'prompt' or 'input_tokens'")
            n_in = min(estimate_tokens(prompt), MAX_PROMPT_TOKENS)
        n_out = _row_int(row, "output_tokens", where) or default_output_tokens
        inputs.append(n_in)
        outputs.append(n_out)
        prompts.append(prompt)
    if not inputs:
        raise ConfigError(f"{source}: the workload file has no rows")
    return DatasetWorkload(
        name=source,
        input_tokens=np.asarray(inputs, dtype=np.int64),
        output_tokens=np.asarray(outputs, dtype=np.int64),
        prompts=tuple(prompts) if any(p is not None for p in prompts) else (),
    )
