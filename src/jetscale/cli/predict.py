"""``jetscale predict``: what a replica gives before you rent it: peak throughput, TTFT, TPOT and HBM.

Example: ``jetscale predict --preset v5e-8/llama2-7b --slots 128 --workload sharegpt-like``;
``--preset v5e-8/llama2-7b --model llama3-8b-int8 --slots 256`` for Llama-3-8B int8 with 256 slots on
v5e-8 (also ``--accelerator``, ``--cache-length``, ``--data-parallel``, ``--stack``); or
``--replica R.yaml`` for a setup no preset names (your own chip and model, int8, another cache length;
docs/replica.md), or ``--replica DIR/profile.yaml`` for a profiled server. The request shape is
``--input-tokens``/``--output-tokens``, or the means a ``--workload`` produces once its prompts are cut
to the replica's ``max_prefill_length`` (how many are cut is shown). Figures are the engine's: full batch
with the prefill backlog never empty (``modeled_peak``), TTFT of a request on an idle replica, and where
the timing comes from (calibrated, borrowed, given, or fitted to a profile). ``--json`` prints the same
as one document.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jetscale.cli.output import make_console, print_json
from jetscale.errors import ConfigError

__all__ = ["predict_command", "register", "timing_source"]

_GIB = 2**30
_WORKLOAD_SAMPLES = 20_000


def timing_source(config: object) -> str:
    """Where a replica's step times come from, in a few words."""
    from jetscale.engine.presets import ReplicaConfig

    assert isinstance(config, ReplicaConfig)
    if config.timing is not None:
        return f"fitted: {config.timing.source}" if config.timing.source else "measured timing"
    return config.resolved_efficiency.provenance


def predict_command(
    preset: Annotated[str | None, typer.Option("--preset", help="A preset; see `jetscale presets`.")] = None,
    replica: Annotated[
        Path | None, typer.Option("--replica", help="A replica YAML (docs/replica.md) or a profile.yaml.")
    ] = None,
    slots: Annotated[int | None, typer.Option("--slots", help="Decode slots (overrides the replica's).")] = None,
    accelerator: Annotated[
        str | None, typer.Option("--accelerator", help="A chip by name (tpu-v5e-8, h100-80gb-x1, l4-24gb-x1, ...).")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="A model by name; `-int8` names int8 weights and KV (llama3-8b-int8).")
    ] = None,
    cache_length: Annotated[
        int | None, typer.Option("--cache-length", help="KV cache tokens per slot; below the target: a rolling window.")
    ] = None,
    data_parallel: Annotated[
        int | None, typer.Option("--data-parallel", help="Groups of chips each holding all the weights.")
    ] = None,
    stack: Annotated[
        str | None, typer.Option("--stack", help="jetstream-maxtext or jetstream-pytorch (picks the efficiency).")
    ] = None,
    input_tokens: Annotated[int | None, typer.Option("--input-tokens", help="Prompt tokens per request.")] = None,
    output_tokens: Annotated[int | None, typer.Option("--output-tokens", help="Output tokens per request.")] = None,
    workload: Annotated[
        str | None, typer.Option("--workload", metavar="SPEC", help="Request sizes as `jetscale load` takes them.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON document on stdout, nothing else.")] = False,
) -> None:
    """Predict a replica's peak throughput, TTFT, TPOT and HBM from the engine model."""
    from rich.table import Table

    from jetscale.engine.presets import modeled_peak, replica_config_from_mapping, replica_config_to_mapping
    from jetscale.sim.options import one_replica_option

    if workload is not None and (input_tokens is not None or output_tokens is not None):
        raise ConfigError("'--workload' must not be given with --input-tokens/--output-tokens (got both)")
    config = one_replica_option(preset, replica)
    if slots is not None and slots < 1:
        raise ConfigError(f"'--slots' must be an integer >= 1 (got {slots})")
    overrides = {
        "accelerator": accelerator, "model": model, "decode_slots": slots, "cache_length": cache_length,
        "data_parallel": data_parallel, "stack": stack,
    }  # fmt: skip
    given = {k: v for k, v in overrides.items() if v is not None}
    if given:
        changed = ", ".join(f"{k}={v}" for k, v in given.items())
        name = f"{config.name or preset or replica} with {changed}"
        base = replica_config_to_mapping(config)
        if "stack" in given:
            base.pop("kv_read", None)  # the new stack's own
        config = replica_config_from_mapping({**base, **given, "name": name})
    cut_share = 0.0
    if workload is not None:
        input_tokens, output_tokens, cut_share = _workload_means(workload, config.max_prefill_length,
                                                                 config.max_target_length)  # fmt: skip
    peak = modeled_peak(config, input_tokens=input_tokens, output_tokens=output_tokens)
    ttft_s = peak.prefill_s
    requests_s = peak.output_tokens_s / peak.output_tokens
    doc = {
        "setup": config.name or (preset or str(replica)), "accelerator": config.accelerator.name,
        "model": config.model.name, "decode_slots": config.decode_slots,
        "max_prefill_length": config.max_prefill_length, "max_target_length": config.max_target_length,
        "cache_length": config.cache_tokens, "kv_read": config.kv_read_mode.value,
        "data_parallel": config.data_parallel, "stack": config.stack.value,
        "input_tokens": peak.input_tokens, "output_tokens": peak.output_tokens,
        "prompts_cut_share": cut_share,
        "peak_output_tokens_s": peak.output_tokens_s, "peak_input_tokens_s": requests_s * peak.input_tokens,
        "peak_requests_s": requests_s, "decode_step_s": peak.decode_step_s, "ttft_idle_s": ttft_s,
        "tpot_full_batch_s": peak.decode_step_s, "hbm_used_bytes": peak.hbm_used_bytes,
        "hbm_total_bytes": peak.hbm_total_bytes, "hbm_mode": config.hbm_mode.value,
        "timing_source": timing_source(config),
    }  # fmt: skip
    if json_out:
        print_json(doc)
        return
    table = Table(title=f"{doc['setup']}: {config.accelerator.name}, {config.model.name}, {config.decode_slots} slots")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("request shape", f"{peak.input_tokens} in, {peak.output_tokens} out"),
        ("cache per slot", f"{config.cache_tokens} tokens, read {config.kv_read_mode.value}"
                           + (f", {config.data_parallel} data-parallel groups" if config.data_parallel > 1 else "")),
        ("peak output tokens/s", f"{peak.output_tokens_s:,.0f}"),
        ("peak requests/s", f"{requests_s:,.2f}"),
        ("TTFT, idle replica", f"{ttft_s * 1e3:,.1f} ms"),
        ("TPOT at full batch", f"{peak.decode_step_s * 1e3:,.1f} ms"),
        ("HBM used / total", f"{peak.hbm_used_bytes / _GIB:,.1f} / {peak.hbm_total_bytes / _GIB:,.0f} GiB "
                             f"({config.hbm_mode.value})"),
        ("timing from", _short(str(doc["timing_source"]))),
    ]  # fmt: skip
    if workload is not None:
        rows.insert(1, ("prompts cut to max_prefill_length", f"{cut_share:.1%}"))
    for name, value in rows:
        table.add_row(name, value)
    make_console().print(table)


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _workload_means(spec: str, max_prefill: int, max_target: int) -> tuple[int, int, float]:
    """Mean input and output tokens of ``spec`` as the replica serves them (prompts cut to ``max_prefill``,
    outputs to what the cache leaves), and the share of prompts that were cut."""
    import numpy as np

    from jetscale.load.workload import parse_workload
    from jetscale.sim.options import read_lines

    sizes = parse_workload(spec, read_lines=read_lines).sample(np.random.default_rng(0), _WORKLOAD_SAMPLES)
    inputs = np.minimum(sizes.input_tokens, max_prefill)
    outputs = np.minimum(sizes.output_tokens, max_target - inputs)
    cut = float(np.mean(sizes.input_tokens > max_prefill))
    return max(1, round(float(inputs.mean()))), max(2, round(float(outputs.mean()))), cut


def register(app: typer.Typer) -> None:
    """Add ``predict`` to the ``jetscale`` app."""
    app.command("predict")(predict_command)
