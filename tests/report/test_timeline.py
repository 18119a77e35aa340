from __future__ import annotations

import math
from pathlib import Path

from jetscale.report.timeline import Sample, ScalingEvent, Timeline, write_report


def _timeline() -> Timeline:
    samples = [
        Sample(
            t_s=float(t),
            replicas_desired=1 + t // 30,
            replicas_ready=1 + t // 45,
            prefill_backlog=t / 10,
            slots_used=min(1.0, t / 100),
            request_rate_rps=5.0,
            ttft_p50_s=0.2,
            ttft_p95_s=0.5,
            ttft_p99_s=0.9,
            e2e_p50_s=3.0,
            e2e_p95_s=6.0,
            e2e_p99_s=9.0,
        )
        for t in range(0, 120, 15)
    ]
    events = [ScalingEvent(t_s=30.0, from_replicas=1, to_replicas=2, reason="pods metric x above target")]
    return Timeline(samples=samples, events=events, targets={"prefill_backlog": 5.0}, title="test <run>")


def test_report_writes_page_png_and_csv(tmp_path: Path) -> None:
    page = write_report(_timeline(), tmp_path, summary={"requests": 42})
    text = page.read_text()
    assert "data:image/png;base64," in text
    assert "test &lt;run&gt;" in text  # escaped
    assert "pods metric x above target" in text
    assert (tmp_path / "timeline.png").read_bytes().startswith(b"\x89PNG")
    csv = (tmp_path / "timeline.csv").read_text().splitlines()
    assert csv[0].startswith("t_s,replicas_desired,replicas_ready")
    assert len(csv) == 1 + 8


def test_signals_without_data_are_not_drawn() -> None:
    timeline = _timeline()
    assert all(math.isnan(v) for v in timeline.column("hbm_usage"))
    assert timeline.column("prefill_backlog")[2] == 3.0
    assert timeline.to_dict()["targets"] == {"prefill_backlog": 5.0}
