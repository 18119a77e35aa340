"""Builders for small simulation scenarios shared by the simulator's tests (a few hundred requests)."""

from __future__ import annotations

from jetscale.engine.presets import ReplicaConfig, resolve_preset
from jetscale.hpa.spec import parse_hpa
from jetscale.hpa.types import HPASpec
from jetscale.load.arrivals import parse_shape
from jetscale.load.workload import parse_workload
from jetscale.sim.scenario import Delay, OpenTraffic, Startup

PRESET = "v5e-8/llama2-7b"
FAST_STARTUP = Startup(
    provision=Delay(low_s=5.0), pull=Delay(low_s=10.0), load=Delay(low_s=20.0), ready=Delay(low_s=5.0)
)


def hpa_yaml(
    *,
    metric: str = "jetstream_prefill_backlog_size",
    target: str = "5",
    min_replicas: int = 1,
    max_replicas: int = 8,
    down_window_s: int = 300,
    metric_type: str = "Pods",
) -> str:
    source = (
        f"""    - type: Pods
      pods:
        metric:
          name: {metric}
        target:
          type: AverageValue
          averageValue: {target}
"""
        if metric_type == "Pods"
        else f"""    - type: External
      external:
        metric:
          name: {metric}
        target:
          type: AverageValue
          averageValue: {target}
"""
    )
    return f"""apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: test-hpa
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: server
  minReplicas: {min_replicas}
  maxReplicas: {max_replicas}
  metrics:
{source}  behavior:
    scaleUp:
      stabilizationWindowSeconds: 0
      policies:
        - type: Pods
          value: 4
          periodSeconds: 15
    scaleDown:
      stabilizationWindowSeconds: {down_window_s}
      policies:
        - type: Percent
          value: 100
          periodSeconds: 15
"""


def make_hpa(**kwargs: object) -> HPASpec:
    return parse_hpa(hpa_yaml(**kwargs))  # type: ignore[arg-type]


def open_traffic(
    rate: float,
    duration_s: float,
    *,
    shape: str = "constant",
    workload: str = "fixed:input=100,output=40",
    seed: int = 0,
) -> OpenTraffic:
    return OpenTraffic(
        shape=parse_shape(shape, rate_rps=rate, duration_s=duration_s),
        workload=parse_workload(workload),
        seed=seed,
    )


def replica(**overrides: object) -> ReplicaConfig:
    """The preset, with ``overrides`` (few ``decode_slots`` make small loads saturate a replica)."""
    return resolve_preset(PRESET, **overrides)
