"""What a profile writes: ``profile.yaml`` (a replica config), ``report.html`` and its PNG plots.

``profile.yaml`` is a replica YAML (docs/replica.md) that every command taking ``--replica`` reads: the
base replica's chip and model (for HBM), the measured slot count, the fitted ``timing``, and a
``profile`` mapping that the loader checks and otherwise leaves alone: where and when it was measured,
what the server said about itself, the fit's quality and notes, and every measured point.
"""

from __future__ import annotations

import base64
import dataclasses
import html
from pathlib import Path
from typing import Any

import yaml

from jetscale.engine.presets import replica_config_to_mapping
from jetscale.profile.fit import Fit, LineFit
from jetscale.profile.points import Measurements
from jetscale.profile.predict import closed_loop_tokens_s, ttft_alone_s, wave_step_s

__all__ = ["PROFILE_FILE", "capacity_rows", "describe", "profile_document", "write_profile", "write_report"]

PROFILE_FILE = "profile.yaml"


def describe(fit: LineFit) -> str:
    """``R² 0.9990, worst residual 1.2% (9 points)``."""
    quality = fit.quality
    outliers = f", {quality.outliers} outliers" if quality.outliers else ""
    worst = f"{quality.max_relative_residual:.1%}"
    return f"R² {quality.r2:.4f}, worst residual {worst} ({quality.points} points{outliers})"


def _quality(fit: LineFit) -> dict[str, object]:
    return {
        "points": fit.quality.points,
        "r2": round(fit.quality.r2, 6) if fit.quality.r2 == fit.quality.r2 else None,
        "max_relative_residual": round(fit.quality.max_relative_residual, 6),
        "outliers": fit.quality.outliers,
    }


def capacity_rows(fit: Fit, points: Measurements) -> list[dict[str, float]]:
    """Each measured closed loop beside what the fitted replica predicts for it (clients resubmitting
    after their measured overhead)."""
    rows = []
    for p in points.capacity:
        predicted = closed_loop_tokens_s(fit.config, p.concurrency, p.prompt_tokens, p.output_tokens,
                                         think_s=fit.client_overhead_s)  # fmt: skip
        rows.append({"concurrency": p.concurrency, "measured_tokens_s": p.output_tokens_s,
                     "predicted_tokens_s": predicted, "error": predicted / p.output_tokens_s - 1.0})  # fmt: skip
    return rows


def profile_document(fit: Fit, points: Measurements) -> dict[str, Any]:
    """The ``profile.yaml`` mapping of a fitted replica."""
    doc = replica_config_to_mapping(fit.config)
    doc["profile"] = {
        "target": points.target,
        "api": points.api,
        "measured": points.started,
        "server_speed": points.server_speed,
        "server": points.server,
        "slots": points.slots,
        "slots_source": points.slots_source,
        "client_overhead_s": fit.client_overhead_s,
        "stopped": points.stopped or None,
        "fit": {"decode": _quality(fit.decode), "prefill": _quality(fit.prefill), "notes": list(fit.notes)},
        "points": {
            "prefill": [dataclasses.asdict(p) for p in points.prefill],
            "decode": [dataclasses.asdict(p) for p in points.decode],
            "capacity": [dataclasses.asdict(p) for p in points.capacity],
        },
    }
    return doc


def write_profile(out: Path, fit: Fit, points: Measurements) -> Path:
    path = out / PROFILE_FILE
    header = (
        f"# jetscale profile of {points.target} ({points.api}), measured {points.started}.\n"
        "# A replica YAML (docs/replica.md): pass it as --replica to simulate, tune, serve, up and k8s render.\n"
    )
    path.write_text(header + yaml.safe_dump(profile_document(fit, points), sort_keys=False), encoding="utf-8")
    return path


def _plots(out: Path, fit: Fit, points: Measurements) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    fig, (top, bottom) = plt.subplots(2, 2, figsize=(11, 7), gridspec_kw={"height_ratios": [3, 1]})
    lengths = [p.prompt_tokens for p in points.prefill]
    ttft = [p.ttft_s * 1e3 for p in points.prefill]
    config = fit.config
    fitted = [(ttft_alone_s(config, n) + fit.client_overhead_s) * 1e3 for n in lengths]
    top[0].plot(lengths, ttft, "o", label="measured")
    top[0].plot(lengths, fitted, "-", label="fitted")
    top[0].set(title="prefill: TTFT at concurrency 1", xlabel="prompt tokens", ylabel="ms")
    top[0].legend()
    bottom[0].axhline(0, color="grey", lw=0.5)
    bottom[0].plot(lengths, [100 * (f / m - 1) for f, m in zip(fitted, ttft, strict=True)], "o")
    bottom[0].set(xlabel="prompt tokens", ylabel="residual %")
    contexts = [p.context_tokens for p in points.decode]
    steps = [p.step_s * 1e3 for p in points.decode]
    fitted_steps = [wave_step_s(config, c) * 1e3 for c in contexts]
    top[1].plot(contexts, steps, "o", label="measured")
    top[1].plot(sorted(contexts), sorted(fitted_steps), "-", label="fitted")
    top[1].set(title="decode: step time by the batch's context", xlabel="context tokens in the batch", ylabel="ms")
    top[1].legend()
    bottom[1].axhline(0, color="grey", lw=0.5)
    bottom[1].plot(contexts, [100 * (f / m - 1) for f, m in zip(fitted_steps, steps, strict=True)], "o")
    bottom[1].set(xlabel="context tokens in the batch", ylabel="residual %")
    fig.tight_layout()
    path = plots / "fit.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return [path]


def write_report(out: Path, fit: Fit, points: Measurements) -> Path:
    """``report.html``: the fit's coefficients and quality, measured vs fitted plots, capacity checks."""
    images = "".join(
        f'<img alt="{p.stem}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
        for p in _plots(out, fit, points)
    )
    timing = fit.timing
    rows = [
        ("decode step, fixed", f"{timing.decode_step_fixed_s * 1e3:.3f} ms"),
        ("decode step, per context token", f"{timing.decode_step_per_token_s * 1e6:.4f} µs"),
        ("prefill, fixed", f"{timing.prefill_fixed_s * 1e3:.3f} ms"),
        ("prefill, per prompt token", f"{timing.prefill_per_token_s * 1e6:.3f} µs"),
        ("client overhead in TTFT", f"{fit.client_overhead_s * 1e3:.3f} ms"),
        ("prefill buckets", ", ".join(map(str, timing.prefill_buckets)) if timing.prefill_buckets else "none found"),
        ("decode fit", describe(fit.decode)),
        ("prefill fit", describe(fit.prefill)),
        ("slots", f"{points.slots} ({points.slots_source})"),
    ]  # fmt: skip
    capacity = "".join(
        f"<tr><td>{r['concurrency']:.0f}</td><td>{r['measured_tokens_s']:.1f}</td><td>{r['predicted_tokens_s']:.1f}"
        f"</td><td>{r['error']:+.1%}</td></tr>"
        for r in capacity_rows(fit, points)
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in fit.notes) or "<li>none</li>"
    stopped = f"<p><b>Stopped early:</b> {html.escape(points.stopped)}</p>" if points.stopped else ""
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>jetscale profile</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}td,th{{padding:2px 10px;text-align:left}}
img{{max-width:100%}}</style></head><body>
<h1>Profile of {html.escape(points.target)}</h1>
<p>API {html.escape(points.api)}, measured {html.escape(points.started)}, server speed {points.server_speed:g};
model times are wall times x speed.</p>{stopped}
<h2>Fitted timing</h2><table>{"".join(f"<tr><th>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)}</table>
<h2>Notes</h2><ul>{notes}</ul>
<h2>Measured vs fitted</h2>{images}
<h2>Capacity: closed loops, measured vs predicted by the fitted replica</h2>
<table><tr><th>clients</th><th>measured tokens/s</th><th>predicted tokens/s</th><th>error</th></tr>{capacity}</table>
</body></html>"""
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
