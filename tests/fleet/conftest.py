"""Helpers for the fleet tests: scripted fake replicas, HPA manifests built in place, bounded waits.

Every fleet test runs real processes on 127.0.0.1 and waits for what it expects by polling, never longer
than a stated bound (no fixed sleeps decide an outcome).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jetscale.hpa.spec import parse_hpa
from jetscale.hpa.types import HPASpec

FAKE_REPLICA = Path(__file__).with_name("fake_replica.py")


@dataclass(frozen=True, slots=True)
class FakeCommand:
    """Start ``fake_replica.py``: its backlog comes from ``values`` (a JSON file the test rewrites)."""

    values: Path
    ready_after_s: float = 0.2

    def argv(self, name: str) -> list[str]:
        return [sys.executable, str(FAKE_REPLICA), name, str(self.values), str(self.ready_after_s)]

    def set(self, values: dict[str, float]) -> None:
        """Backlog per replica name, ``"*"`` for the others."""
        self.values.write_text(json.dumps(values))


def hpa(
    *,
    min_replicas: int = 1,
    max_replicas: int = 8,
    target: float = 5,
    down_window_s: int = 0,
    name: str = "fake",
) -> HPASpec:
    """A backlog HPA whose scale-down window is ``down_window_s`` and whose policies allow any step."""
    return parse_hpa(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "test-hpa"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": min_replicas,
                "maxReplicas": max_replicas,
                "metrics": [
                    {
                        "type": "Pods",
                        "pods": {
                            "metric": {"name": "jetstream_prefill_backlog_size"},
                            "target": {"type": "AverageValue", "averageValue": target},
                        },
                    }
                ],
                "behavior": {
                    "scaleUp": {"stabilizationWindowSeconds": 0,
                                "policies": [{"type": "Pods", "value": 8, "periodSeconds": 15}]},
                    "scaleDown": {"stabilizationWindowSeconds": down_window_s,
                                  "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
                },
            },
        }
    )  # fmt: skip


async def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``predicate`` every 20 ms; fail the test if it is not true within ``timeout_s`` wall seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout_s:g} s: {what}")
        await asyncio.sleep(0.02)
