"""The ``--prometheus`` metrics path: a real Prometheus scrapes the replicas, the HPA reads it with PromQL.

``PrometheusServer`` runs Debian's ``prometheus`` binary on 127.0.0.1 with a generated config: one job
whose targets come from a ``file_sd`` JSON file that the fleet rewrites (atomically) whenever a replica
starts running or goes away, labelled ``namespace`` and ``pod`` as Kubernetes service discovery labels
them; the scrape interval is 15 s / speed; storage is a temporary directory. If the process dies it is
started again after a back-off, as a pod would be; meanwhile the metrics source is down.

``PrometheusSource`` reads the way prometheus-adapter serves the custom metrics API. For a ``Pods``
metric it runs the adapter's ``metricsQuery``, ``<agg>(<<.Series>>{<<.LabelMatchers>>}) by (pod)``, with
the namespace and the HPA's pods as label matchers (plus the metric's own selector), ``<agg>`` being
``avg`` or ``sum`` exactly as ``jetscale k8s`` renders the adapter rule; each value becomes a milli-unit
quantity as the adapter truncates it. An ``External`` metric returns every matching series. Any failure of
the HTTP API (refused, timed out, an error answer) makes every reading ``MetricUnavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shutil
import socket
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import aiohttp
import yaml

from jetscale.errors import ConfigError, ServingError
from jetscale.fleet import procs
from jetscale.fleet.clock import FleetClock
from jetscale.fleet.scrape import NOT_SERVED, SIGNALS, ScrapeTarget, to_milli
from jetscale.hpa.types import (
    ExternalMetric,
    MetricReading,
    MetricSourceType,
    MetricSpec,
    MetricUnavailable,
    PodMetric,
    PodMetrics,
)
from jetscale.k8s.metrics import pod_aggregation

__all__ = [
    "JOB",
    "PrometheusServer",
    "PrometheusSource",
    "external_query",
    "pods_query",
    "prometheus_config",
    "promql_duration",
    "signal_query",
    "targets_document",
]

JOB = "jetscale-fleet"
TARGETS_FILE = "targets.json"


def promql_duration(seconds: float) -> str:
    """A Prometheus duration, in whole milliseconds (at least 1 ms)."""
    return f"{max(1, round(seconds * 1000))}ms"


def prometheus_config(*, scrape_interval_wall_s: float, targets_file: str = TARGETS_FILE) -> dict[str, Any]:
    """prometheus.yml for the fleet: one job, its targets from ``targets_file`` (file_sd)."""
    interval = promql_duration(scrape_interval_wall_s)
    timeout = promql_duration(min(scrape_interval_wall_s, 10.0))
    return {
        "global": {"scrape_interval": interval, "scrape_timeout": timeout, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": JOB,
                "metrics_path": "/metrics",
                "file_sd_configs": [{"files": [targets_file], "refresh_interval": "5s"}],
            }
        ],
    }


def targets_document(targets: Sequence[ScrapeTarget], namespace: str) -> list[dict[str, Any]]:
    """The file_sd JSON: one group per replica, labelled with its pod name and namespace."""
    out = []
    for target in targets:
        address = target.url.split("://", 1)[-1].rstrip("/")
        out.append({"targets": [address], "labels": {"namespace": namespace, "pod": target.pod}})
    return out


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _pod_regex(pods: Sequence[str]) -> str:
    return "|".join(p.replace(".", "\\\\.") for p in pods)


def _matchers(metric_selector: tuple[tuple[str, str], ...] | None, namespace: str, pods: Sequence[str]) -> str:
    parts = [f'namespace="{_escape(namespace)}"', f'pod=~"{_pod_regex(pods)}"']
    parts += [f'{key}="{_escape(value)}"' for key, value in metric_selector or ()]
    return "{" + ",".join(parts) + "}"


def pods_query(metric: MetricSpec, namespace: str, pods: Sequence[str]) -> str:
    """prometheus-adapter's metricsQuery for a Pods metric, grouped by pod."""
    return f"{pod_aggregation(metric.name)}({metric.name}{_matchers(metric.selector, namespace, pods)}) by (pod)"


def external_query(metric: MetricSpec, namespace: str, pods: Sequence[str]) -> str:
    """Every series of an External metric matching its selector (among the fleet's pods)."""
    return f"{metric.name}{_matchers(metric.selector, namespace, pods)}"


def signal_query(name: str, namespace: str, pods: Sequence[str]) -> str:
    """The fleet average of one timeline signal: the mean over pods of each pod's value."""
    return f"avg({pod_aggregation(name)}({name}{_matchers(None, namespace, pods)}) by (pod))"


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class PrometheusServer:
    """A supervised ``prometheus`` process. Inert until ``start()``."""

    def __init__(
        self,
        *,
        clock: FleetClock,
        scrape_interval_s: float = 15.0,
        binary: str = "prometheus",
        host: str = "127.0.0.1",
        work_dir: Path | None = None,
        restart_backoff_s: float = 10.0,
        ready_timeout_wall_s: float = 30.0,
    ) -> None:
        self._clock = clock
        self._interval_wall_s = clock.to_wall_s(scrape_interval_s)
        self._binary = binary
        self._host = host
        self._own_dir = work_dir is None
        self._dir = work_dir.absolute() if work_dir is not None else None  # prometheus runs in it: paths absolute
        self._backoff_s = restart_backoff_s
        self._ready_timeout = ready_timeout_wall_s
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._log: IO[bytes] | None = None
        self.port: int | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    async def start(self) -> None:
        path = shutil.which(self._binary)
        if path is None:
            raise ConfigError(
                f"'--prometheus' needs the prometheus binary on PATH (got {self._binary!r}: not found; "
                "`apt-get install prometheus`)"
            )
        self._binary = str(Path(path).absolute())  # PATH may hold a relative folder; prometheus runs elsewhere
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="jetscale-prometheus-")).absolute()
        (self._dir / "data").mkdir(parents=True, exist_ok=True)
        config = prometheus_config(scrape_interval_wall_s=self._interval_wall_s)
        (self._dir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        self.write_targets([], "default")
        self._log = (self._dir / "prometheus.log").open("ab")
        for _ in range(3):
            if await self._launch():
                break
        else:
            await self.stop()
            raise ServingError(f"prometheus did not become ready; see {self._dir / 'prometheus.log'}")
        self._task = asyncio.create_task(self._supervise(), name="jetscale-prometheus")

    def write_targets(self, targets: Sequence[ScrapeTarget], namespace: str) -> None:
        """Rewrite the file_sd targets in one rename, so Prometheus never reads half a file."""
        assert self._dir is not None
        tmp = self._dir / f".{TARGETS_FILE}.tmp"
        tmp.write_text(json.dumps(targets_document(targets, namespace)), encoding="utf-8")
        os.replace(tmp, self._dir / TARGETS_FILE)

    async def _launch(self) -> bool:
        assert self._dir is not None
        if self.port is None:
            self.port = _free_port(self._host)
        argv = [
            self._binary,
            f"--config.file={self._dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self._dir / 'data'}",
            f"--web.listen-address={self._host}:{self.port}",
            "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
        ]
        self._proc = await procs.spawn(argv, cwd=self._dir, stdout=self._log, stderr=self._log)
        if await self._wait_ready():
            return True
        await procs.terminate(self._proc, 2.0)
        self.port = None  # perhaps the port was taken meanwhile: pick another
        return False

    async def _wait_ready(self) -> bool:
        assert self._proc is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._ready_timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0)) as http:
            while loop.time() < deadline and self._proc.returncode is None:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(f"{self.url}/-/ready") as response:
                        if response.status == 200:
                            return True
                await asyncio.sleep(0.05)
        return False

    async def _supervise(self) -> None:
        while not self._stopping:
            assert self._proc is not None
            await procs.wait(self._proc)
            if self._stopping:
                return
            self.restarts += 1
            await asyncio.sleep(self._clock.to_wall_s(self._backoff_s))
            while not self._stopping and not await self._launch():
                await asyncio.sleep(self._clock.to_wall_s(self._backoff_s))

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._proc is not None:
            await procs.terminate(self._proc, 5.0)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._own_dir and self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


class PrometheusSource:
    """The HPA's readings from Prometheus' HTTP API (see the module docstring). Inert until ``start()``."""

    def __init__(
        self,
        server: PrometheusServer,
        *,
        clock: FleetClock,
        namespace: str = "default",
        timeout_wall_s: float = 2.0,
    ) -> None:
        self.server = server
        self._clock = clock
        self._namespace = namespace
        self._timeout = aiohttp.ClientTimeout(total=timeout_wall_s)
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        await self.server.start()
        self._http = aiohttp.ClientSession(timeout=self._timeout)

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        await self.server.stop()

    def set_targets(self, targets: Sequence[ScrapeTarget]) -> None:
        self.server.write_targets(targets, self._namespace)

    async def prime(self, pods: Sequence[str], timeout_wall_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_wall_s
        promql = f"up{_matchers(None, self._namespace, pods)} == 1"
        while pods and loop.time() < deadline:
            with contextlib.suppress(ServingError):
                if len(await self.query(promql)) >= len(pods):
                    return
            await asyncio.sleep(0.05)

    async def query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        """An instant query: each series' labels and value. ``ServingError`` when Prometheus cannot answer."""
        assert self._http is not None
        try:
            async with self._http.get(f"{self.server.url}/api/v1/query", params={"query": promql}) as response:
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ServingError(f"prometheus at {self.server.url} did not answer: {type(exc).__name__} {exc}") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else body
            raise ServingError(f"prometheus query {promql!r} failed: {error}")
        return [(dict(item["metric"]), float(item["value"][1])) for item in body["data"]["result"]]

    async def readings(self, metrics: Sequence[MetricSpec], pods: Sequence[str]) -> tuple[MetricReading, ...]:
        now_s = self._clock.model_s()
        out: list[MetricReading] = []
        try:
            for metric in metrics:
                if not pods and metric.type in (MetricSourceType.PODS, MetricSourceType.EXTERNAL):
                    out.append(PodMetrics(values={}) if metric.type is MetricSourceType.PODS else
                               MetricUnavailable(error=f"no pods to read {metric.name} from"))  # fmt: skip
                elif metric.type is MetricSourceType.PODS:
                    rows = await self.query(pods_query(metric, self._namespace, pods))
                    values = {
                        labels["pod"]: PodMetric(value_milli=to_milli(value), timestamp_s=now_s)
                        for labels, value in rows
                        if labels.get("pod") in pods and not math.isnan(value)
                    }
                    out.append(PodMetrics(values=values))
                elif metric.type is MetricSourceType.EXTERNAL:
                    rows = await self.query(external_query(metric, self._namespace, pods))
                    if rows:
                        out.append(ExternalMetric(values_milli=tuple(to_milli(v) for _, v in rows), timestamp_s=now_s))
                    else:
                        out.append(MetricUnavailable(error=f"no series of external metric {metric.name}"))
                else:
                    out.append(MetricUnavailable(error=NOT_SERVED.format(type=metric.type.value)))
        except ServingError as exc:
            return tuple(MetricUnavailable(error=str(exc)) for _ in metrics)
        return tuple(out)

    async def signals(self, pods: Sequence[str]) -> dict[str, float]:
        out = {column: math.nan for column in SIGNALS}
        if not pods:
            return out
        for column, names in SIGNALS.items():
            for name in names:
                try:
                    rows = await self.query(signal_query(name, self._namespace, pods))
                except ServingError:
                    return out
                if rows:
                    out[column] = rows[0][1]
                    break
        return out
