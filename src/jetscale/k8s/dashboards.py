"""Dashboards for an autoscaled JetStream: Cloud Monitoring (GKE) and Grafana (any Prometheus).

Both show the same panels, all PromQL: the HPA's current, desired, min and max replicas (from
kube-state-metrics, which GKE also exports), the scaling signals as per-replica averages with the HPA's
target drawn as a line (prefill backlog, decode slots used, HBM used), TTFT and TPOT percentiles, and
throughput (requests and output tokens per second). Any other metric of the HPA gets its own panel and
target line. On GKE the HBM series come from the TPU device plugin (namespace label ``exported_namespace``);
elsewhere from the servers (``namespace``).

For a vLLM server (``kind=ServerKind.VLLM``) the panels are vLLM's: the three signals GKE recommends for
it (requests waiting, requests running, KV cache use, each with the HPA's target line), TTFT, inter-token
and end-to-end latency percentiles from vLLM's histograms, preemptions, and request and token throughput.
Pure: dicts out, serialized by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

from jetscale.engine.config import ServerKind
from jetscale.hpa.types import HPASpec, MetricSourceType, MetricSpec
from jetscale.k8s import vllm
from jetscale.k8s.metrics import HBM_FRACTION_NAMES, HBM_TOTAL, HBM_USED
from jetscale.k8s.workload import Doc, server_title

__all__ = ["Panel", "cloud_monitoring_dashboard", "grafana_dashboard", "panels", "vllm_panels"]

BACKLOG = "jetstream_prefill_backlog_size"
SLOTS = "jetstream_slots_used_percentage"
TTFT = "jetstream_time_to_first_token"
TPOT = "jetstream_time_per_output_token"
REQUESTS = "jetstream_request_success_count_total"
OUTPUT_TOKENS = "jetstream_request_output_length_sum"
KSM = "kube_horizontalpodautoscaler"
_QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True, slots=True, kw_only=True)
class Panel:
    """One chart: PromQL series (legend, query) and constant target lines (label, value)."""

    title: str
    unit: str
    queries: tuple[tuple[str, str], ...]
    targets: tuple[tuple[str, float], ...] = ()


def _target_value(metric: MetricSpec) -> float | None:
    target = metric.target
    milli = target.average_value_milli if target.average_value_milli is not None else target.value_milli
    return None if milli is None else milli / 1000


def _matcher(label: str, value: str) -> str:
    return f'{label}=~"{value}"'


def _hpa_targets(
    spec: HPASpec | None, ns: str, shown: frozenset[str]
) -> tuple[dict[str, list[tuple[str, float]]], list[Panel]]:
    """The HPA's target lines by metric (HBM fractions under ``hbm``), and a panel for each metric that no
    panel of ``shown`` draws."""
    targets: dict[str, list[tuple[str, float]]] = {}
    extra: list[Panel] = []
    for metric in spec.metrics if spec is not None else ():
        value = _target_value(metric)
        if value is None or metric.type in (MetricSourceType.RESOURCE, MetricSourceType.CONTAINER_RESOURCE):
            continue
        key = "hbm" if metric.name in HBM_FRACTION_NAMES else metric.name
        targets.setdefault(key, []).append((f"HPA target ({metric.target.type.value})", value))
        if key not in shown:
            query = f"avg(sum by (pod) ({metric.name}{ns}))"
            extra.append(
                Panel(
                    title=f"{metric.name} per replica vs HPA target",
                    unit="1",
                    queries=((metric.name, query),),
                    targets=((f"HPA target ({metric.target.type.value})", value),),
                )
            )
    return targets, extra


def _replicas(spec: HPASpec | None, namespace: str) -> tuple[Panel, str]:
    """The HPA's replicas panel and the kube-state-metrics selector of the HPA."""
    ns = "{" + _matcher("namespace", namespace) + "}"
    hpa = (
        ns if spec is None else "{" + _matcher("namespace", namespace) + f',horizontalpodautoscaler="{spec.name}"' + "}"
    )
    panel = Panel(
        title="Replicas (HPA)",
        unit="1",
        queries=(
            ("current", f"sum({KSM}_status_current_replicas{hpa})"),
            ("desired", f"sum({KSM}_status_desired_replicas{hpa})"),
            ("min", f"sum({KSM}_spec_min_replicas{hpa})"),
            ("max", f"sum({KSM}_spec_max_replicas{hpa})"),
        ),
    )
    return panel, hpa


def _hpa_target_panel(hpa: str) -> Panel:
    return Panel(
        title="HPA targets (kube-state-metrics)",
        unit="1",
        queries=(("{{metric_name}} {{metric_target_type}}", f"{KSM}_spec_target_metric{hpa}"),),
    )


def _quantiles(metric: str, ns: str) -> tuple[tuple[str, str], ...]:
    return tuple(
        (f"p{round(q * 100)}", f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{ns}[5m])))")
        for q in _QUANTILES
    )


def panels(spec: HPASpec | None, *, namespace: str, hbm_namespace_label: str) -> tuple[Panel, ...]:
    """The panels, their queries restricted to ``namespace`` (a PromQL regex value: ``llm`` or ``$namespace``)."""
    ns = "{" + _matcher("namespace", namespace) + "}"
    hbm_ns = "{" + _matcher(hbm_namespace_label, namespace) + "}"
    targets, extra = _hpa_targets(spec, ns, frozenset({BACKLOG, SLOTS, "hbm"}))
    replicas, hpa = _replicas(spec, namespace)
    out = [
        replicas,
        Panel(
            title="Prefill backlog per replica",
            unit="1",
            queries=(
                ("average per replica", f"avg(sum by (pod) ({BACKLOG}{ns}))"),
                ("total", f"sum({BACKLOG}{ns})"),
            ),
            targets=tuple(targets.get(BACKLOG, ())),
        ),
        Panel(
            title="Decode slots used (fraction)",
            unit="1",
            queries=(("average per replica", f"avg(avg by (pod) ({SLOTS}{ns}))"),),
            targets=tuple(targets.get(SLOTS, ())),
        ),
        Panel(
            title="HBM used (fraction)",
            unit="1",
            queries=(("used / total", f"sum({HBM_USED}{hbm_ns}) / sum({HBM_TOTAL}{hbm_ns})"),),
            targets=tuple(targets.get("hbm", ())),
        ),
        Panel(title="Time to first token", unit="s", queries=_quantiles(TTFT, ns)),
        Panel(title="Time per output token", unit="s", queries=_quantiles(TPOT, ns)),
        Panel(
            title="Throughput",
            unit="1/s",
            queries=(
                ("requests/s", f"sum(rate({REQUESTS}{ns}[5m]))"),
                ("output tokens/s", f"sum(rate({OUTPUT_TOKENS}{ns}[5m]))"),
            ),
        ),
        _hpa_target_panel(hpa),
        *extra,
    ]
    return tuple(out)


def vllm_panels(spec: HPASpec | None, *, namespace: str) -> tuple[Panel, ...]:
    """vLLM's panels (see the module docstring), restricted to ``namespace`` as ``panels`` does."""
    ns = "{" + _matcher("namespace", namespace) + "}"
    waiting, running, kv = vllm.REQUESTS_WAITING, vllm.REQUESTS_RUNNING, vllm.KV_CACHE_USAGE
    targets, extra = _hpa_targets(spec, ns, frozenset({waiting, running, kv}))
    replicas, hpa = _replicas(spec, namespace)
    out = [
        replicas,
        Panel(
            title="Requests waiting (queue size) per replica",
            unit="1",
            queries=(
                ("average per replica", f"avg(sum by (pod) ({waiting}{ns}))"),
                ("total", f"sum({waiting}{ns})"),
            ),
            targets=tuple(targets.get(waiting, ())),
        ),
        Panel(
            title="Requests running (batch size) per replica",
            unit="1",
            queries=(
                ("average per replica", f"avg(sum by (pod) ({running}{ns}))"),
                ("total", f"sum({running}{ns})"),
            ),
            targets=tuple(targets.get(running, ())),
        ),
        Panel(
            title="KV cache used (fraction)",
            unit="1",
            queries=(
                ("average per replica", f"avg(avg by (pod) ({kv}{ns}))"),
                ("fullest replica", f"max(avg by (pod) ({kv}{ns}))"),
            ),
            targets=tuple(targets.get(kv, ())),
        ),
        Panel(title="Time to first token", unit="s", queries=_quantiles(vllm.TTFT, ns)),
        Panel(title="Inter-token latency", unit="s", queries=_quantiles(vllm.ITL, ns)),
        Panel(title="End-to-end request latency", unit="s", queries=_quantiles(vllm.E2E, ns)),
        Panel(
            title="Preemptions",
            unit="1/s",
            queries=(("preemptions/s", f"sum(rate({vllm.PREEMPTIONS}{ns}[5m]))"),),
        ),
        Panel(
            title="Throughput",
            unit="1/s",
            queries=(
                ("requests/s", f"sum(rate({vllm.REQUEST_SUCCESS}{ns}[5m]))"),
                ("prompt tokens/s", f"sum(rate({vllm.PROMPT_TOKENS}{ns}[5m]))"),
                ("generation tokens/s", f"sum(rate({vllm.GENERATION_TOKENS}{ns}[5m]))"),
            ),
        ),
        _hpa_target_panel(hpa),
        *extra,
    ]
    return tuple(out)


def _title(spec: HPASpec | None, kind: ServerKind) -> str:
    return f"{server_title(kind)} autoscaling" + (f": {spec.name}" if spec is not None else "")


def _panels(spec: HPASpec | None, namespace: str, hbm_namespace_label: str, kind: ServerKind) -> tuple[Panel, ...]:
    if kind is ServerKind.VLLM:
        return vllm_panels(spec, namespace=namespace)
    return panels(spec, namespace=namespace, hbm_namespace_label=hbm_namespace_label)


def cloud_monitoring_dashboard(
    spec: HPASpec | None, *, namespace: str = ".*", kind: ServerKind = ServerKind.JETSTREAM
) -> Doc:
    """A Cloud Monitoring dashboard (``gcloud monitoring dashboards create --config-from-file``)."""
    tiles: list[Doc] = []
    for index, panel in enumerate(_panels(spec, namespace, "exported_namespace", kind)):
        data_sets: list[Doc] = [
            {
                "timeSeriesQuery": {"prometheusQuery": query, "unitOverride": panel.unit},
                "plotType": "LINE",
                "legendTemplate": legend,
                "targetAxis": "Y1",
            }
            for legend, query in panel.queries
        ]
        chart: Doc = {
            "dataSets": data_sets,
            "thresholds": [{"label": label, "value": value, "targetAxis": "Y1"} for label, value in panel.targets],
            "yAxis": {"label": panel.unit, "scale": "LINEAR"},
            "chartOptions": {"mode": "COLOR"},
        }
        tiles.append(
            {
                "xPos": (index % 2) * 24,
                "yPos": (index // 2) * 16,
                "width": 24,
                "height": 16,
                "widget": {"title": panel.title, "xyChart": chart},
            }
        )
    return {"displayName": _title(spec, kind), "mosaicLayout": {"columns": 48, "tiles": tiles}}


def grafana_dashboard(
    spec: HPASpec | None, *, namespace: str | None = None, kind: ServerKind = ServerKind.JETSTREAM
) -> Doc:
    """A Grafana dashboard (import JSON) with ``$datasource`` and ``$namespace`` variables."""
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    grafana_panels: list[Doc] = []
    for index, panel in enumerate(_panels(spec, "$namespace", "namespace", kind)):
        steps: list[Doc] = [{"color": "green", "value": None}]
        steps += [{"color": "red", "value": value} for _, value in panel.targets]
        grafana_panels.append(
            {
                "id": index + 1,
                "type": "timeseries",
                "title": panel.title,
                "datasource": datasource,
                "gridPos": {"x": (index % 2) * 12, "y": (index // 2) * 8, "w": 12, "h": 8},
                "targets": [
                    {"refId": chr(ord("A") + n), "datasource": datasource, "expr": query, "legendFormat": legend}
                    for n, (legend, query) in enumerate(panel.queries)
                ],
                "fieldConfig": {
                    "defaults": {
                        "unit": {"s": "s", "1/s": "reqps"}.get(panel.unit, "short"),
                        "thresholds": {"mode": "absolute", "steps": steps},
                        "custom": {"thresholdsStyle": {"mode": "line" if panel.targets else "off"}},
                    },
                    "overrides": [],
                },
            }
        )
    namespace_var: Doc = {
        "name": "namespace",
        "type": "query",
        "datasource": datasource,
        "query": f"label_values({vllm.REQUESTS_WAITING if kind is ServerKind.VLLM else BACKLOG}, namespace)",
        "refresh": 2,
        "includeAll": False,
    }
    if namespace is not None:
        namespace_var["current"] = {"text": namespace, "value": namespace}
    return {
        "title": _title(spec, kind),
        "uid": ("jetscale-" + (spec.name if spec is not None else kind.value))[:40],
        "tags": ["jetscale", kind.value, "autoscaling"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}, namespace_var]},
        "panels": grafana_panels,
    }
