"""Calibration: replay the published JetStream throughput setups through ReplicaEngine.

Each published setup (tpu-recipes JetStream-MaxText README, jetstream-pytorch benchmarks/summary.md)
sent all its prompts at t=0 (benchmark_serving with request rate 0) to one replica; output tok/s =
output tokens / time of the last completion. Request sizes follow the published averages: the MaxText
run printed its totals (openorca, 217,011 input and 934,964 output tokens over 995 requests, outputs
capped at 1024); the jetstream-pytorch runs used ShareGPT (2000 prompts, input <= 1024, input + output
<= 2048), whose mean lengths (161 in, 338 out) are those the vLLM paper reports for ShareGPT (Kwon et
al., SOSP 2023), not re-measured on JetStream's filtered sample. The pytorch table does not say whether
its throughput counts output or all tokens; output is assumed.

Run: ``python benchmarks/calibration.py`` (table) or ``--fit`` (also the decode efficiency that
would match each figure exactly, to paste into ``jetscale.engine.presets.CALIBRATED_EFFICIENCY``).
"""

from __future__ import annotations

import dataclasses
import math
import random
import sys
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from jetscale.engine.api import EngineRequest
from jetscale.engine.presets import ReplicaConfig, resolve_preset
from jetscale.engine.replica import ReplicaEngine


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    """Request sizes with given means, lognormal-shaped, clipped as benchmark_serving filters them."""

    name: str
    requests: int
    mean_input: float
    mean_output: float
    max_input: int = 1024
    max_total: int = 2048
    output_cap: int | None = None  # --max-output-length: share of outputs at the cap (EOS ends the rest)
    sigma: float = 0.9
    seed: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Setup:
    name: str
    preset: str
    overrides: tuple[tuple[str, object], ...]
    workload: Workload
    published_tok_s: float
    source: str

    def config(self) -> ReplicaConfig:
        return resolve_preset(self.preset, prefill_backlog_limit=self.workload.requests, **dict(self.overrides))


OPENORCA_995 = Workload(
    name="openorca 995", requests=995, mean_input=217_011 / 995, mean_output=934_964 / 995, output_cap=1024
)
SHAREGPT_2000 = Workload(name="sharegpt 2000", requests=2000, mean_input=161.0, mean_output=338.0)
_PYTORCH = "jetstream-pytorch benchmarks/summary.md"

SETUPS: tuple[Setup, ...] = (
    Setup(
        name="Llama2-7B bf16 v5e-8 MaxText b88",
        preset="v5e-8/llama2-7b",
        overrides=(("decode_slots", 88),),
        workload=OPENORCA_995,
        published_tok_s=3061.78,
        source="tpu-recipes v5e/JetStream-Maxtext/Llama2-7B README",
    ),
    Setup(
        name="Llama2-7B bf16 v5e-8 PyTorch b96",
        preset="v5e-8/llama2-7b",
        overrides=(("decode_slots", 96),),
        workload=SHAREGPT_2000,
        published_tok_s=3663.0,
        source=f"{_PYTORCH} (2024-03-28)",
    ),
    Setup(
        name="Llama2-13B bf16 v5e-8 PyTorch b48",
        preset="v5e-8/llama2-13b",
        overrides=(("decode_slots", 48),),
        workload=SHAREGPT_2000,
        published_tok_s=2056.0,
        source=f"{_PYTORCH} (2024-03-28)",
    ),
    Setup(
        name="Gemma-7B bf16 v5e-8 PyTorch b96",
        preset="v5e-8/gemma-7b",
        overrides=(("decode_slots", 96),),
        workload=SHAREGPT_2000,
        published_tok_s=3236.0,
        source=f"{_PYTORCH} (2024-05-10)",
    ),
)


def request_sizes(workload: Workload) -> list[tuple[int, int]]:
    """(input, output) per request: lognormal quantiles scaled to the means, in a seeded order."""
    n = workload.requests
    quantiles = [_lognormal_quantile((i + 0.5) / n, workload.sigma) for i in range(n)]
    inputs = _scaled_to_mean(quantiles, workload.mean_input, 4, workload.max_input)
    rng = random.Random(workload.seed)
    rng.shuffle(inputs)
    if workload.output_cap is not None:
        cap = workload.output_cap
        # a share at the cap, the rest ended early by EOS, evenly spread over [4, cap)
        early_mean = (4 + cap) / 2
        at_cap = round(n * (workload.mean_output - early_mean) / (cap - early_mean))
        early = n - at_cap
        outputs = [cap] * at_cap + [4 + (cap - 4) * (i + 0.5) / early for i in range(early)]
        outputs = [round(o) for o in outputs]
    else:
        outputs = _scaled_to_mean(quantiles, workload.mean_output, 4, workload.max_total - workload.max_input)
    rng.shuffle(outputs)
    return [(i, min(o, workload.max_total - i)) for i, o in zip(inputs, outputs, strict=True)]


def _lognormal_quantile(u: float, sigma: float) -> float:
    return math.exp(sigma * math.sqrt(2.0) * _erfinv(2.0 * u - 1.0))


def _erfinv(y: float) -> float:
    lo, hi = -6.0, 6.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if math.erf(mid) < y:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _scaled_to_mean(shape: list[float], mean: float, low: int, high: int) -> list[int]:
    """``shape`` scaled so that its clipped, rounded values have ``mean`` (bisection on the scale)."""
    lo, hi = 0.0, mean * 100
    for _ in range(100):
        scale = (lo + hi) / 2
        values = [min(high, max(low, round(s * scale))) for s in shape]
        if sum(values) / len(values) < mean:
            lo = scale
        else:
            hi = scale
    return [min(high, max(low, round(s * hi))) for s in shape]


def replay(config: ReplicaConfig, sizes: list[tuple[int, int]]) -> tuple[float, int, int]:
    """Send every request at t=0 and run to the end: (output tok/s, output tokens, steps of the loop)."""
    engine = ReplicaEngine(config)
    for rid, (n_in, n_out) in enumerate(sizes):
        if not engine.submit(EngineRequest(request_id=rid, input_tokens=n_in, output_tokens=n_out, arrival_s=0.0), 0.0):
            raise RuntimeError(f"request {rid} refused")
    tokens = 0
    done = 0
    last = 0.0
    loops = 0
    while (t := engine.next_event_time()) is not None:
        loops += 1
        _, completions = engine.advance(t)
        for c in completions:
            tokens += c.output_tokens
            last = max(last, c.end_s)
        done += len(completions)
    if done != len(sizes):
        raise RuntimeError(f"{len(sizes) - done} requests did not complete")
    return tokens / last, tokens, loops


def measure(setup: Setup, config: ReplicaConfig | None = None) -> float:
    return replay(config or setup.config(), request_sizes(setup.workload))[0]


def fit_decode_efficiency(setup: Setup) -> float:
    """The decode efficiency at which the replay matches the published figure (bisection)."""
    base = setup.config()
    lo, hi = 0.01, 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        efficiency = dataclasses.replace(base.resolved_efficiency, decode=mid)
        if measure(setup, dataclasses.replace(base, efficiency=efficiency)) < setup.published_tok_s:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def main(argv: list[str]) -> int:
    fit = "--fit" in argv
    table = Table(title="ReplicaEngine vs published JetStream throughput (all prompts sent at t=0)")
    for column in ("setup", "workload", "published tok/s", "ours tok/s", "error %", "decode eff.", "source"):
        table.add_column(column, justify="right" if "tok" in column or "%" in column else "left")
    if fit:
        table.add_column("fitted eff.", justify="right")
    worst = 0.0
    for setup in SETUPS:
        config = setup.config()
        ours = measure(setup, config)
        error = 100.0 * (ours - setup.published_tok_s) / setup.published_tok_s
        worst = max(worst, abs(error))
        row = [
            setup.name,
            setup.workload.name,
            f"{setup.published_tok_s:,.0f}",
            f"{ours:,.0f}",
            f"{error:+.1f}",
            f"{config.resolved_efficiency.decode:.3f}",
            setup.source,
        ]
        if fit:
            row.append(f"{fit_decode_efficiency(setup):.4f}")
        table.add_row(*row)
    console = Console(width=170)
    console.print(table)
    console.print(f"worst error {worst:.1f}% (target: within 10%)")
    return 0 if worst <= 10.0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
