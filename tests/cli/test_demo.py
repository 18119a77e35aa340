"""The interim demo: the HPA core on the example manifests."""

from __future__ import annotations

import pytest

from jetscale.cli.demo import demo, queued_requests


def test_queue_shape_rises_spikes_and_falls() -> None:
    assert queued_requests(0) == 0
    assert queued_requests(300) == 30
    assert queued_requests(400) == 60
    assert queued_requests(900) == 0


def test_demo_scales_up_then_back_down(capsys: pytest.CaptureFixture[str]) -> None:
    demo()
    out = capsys.readouterr().out
    assert "above target" in out
    assert "All metrics below target" in out
    assert "The first scale-up, step by step:" in out
