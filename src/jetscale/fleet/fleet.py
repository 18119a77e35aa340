"""The local fleet, wired: replicas behind a router, a metrics pipeline, and the HPA loop over them.

``Fleet(config)`` is inert; ``start()`` brings the parts up in dependency order (clock, router, metrics
source, the initial replicas, and once they are ready the HPA loop); ``stop()`` takes them down in the
reverse order: no more scaling, the router stops taking requests (in-flight ones finish), every replica
drains and exits, Prometheus stops. ``async with Fleet(config) as fleet`` does both.

The ``ReplicaSet`` tells the fleet when a replica becomes ready or leaves service; the fleet passes that
on to the router (traffic) and to the metrics source (scrape targets) at once.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from jetscale.errors import ConfigError, ServingError
from jetscale.fleet.clock import FleetClock
from jetscale.fleet.controller import FleetController, scrape_targets
from jetscale.fleet.prometheus import PrometheusServer, PrometheusSource
from jetscale.fleet.replicas import ReplicaCommand, ReplicaSet, ReplicaTiming, ReplicaView
from jetscale.fleet.router import Router, RoutingPolicy
from jetscale.fleet.scrape import DirectScrape, MetricsSource
from jetscale.hpa.controller import HorizontalController
from jetscale.hpa.types import ControllerConfig, HPASpec

__all__ = ["Fleet", "FleetConfig"]


def _require(ok: bool, name: str, constraint: str, value: object) -> None:
    if not ok:
        raise ConfigError(f"'{name}' must be {constraint} (got {value!r})")


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetConfig:
    """One local fleet. Periods and windows are model seconds (the HPA's own units); ``speed`` compresses
    them onto the wall clock, together with the replicas' engines."""

    hpa: HPASpec
    command: ReplicaCommand
    speed: float = 1.0
    policy: RoutingPolicy = RoutingPolicy.ROUND_ROBIN
    host: str = "127.0.0.1"
    port: int = 8000  # the router's; 0 picks a free one
    prometheus: bool = False
    prometheus_binary: str = "prometheus"
    namespace: str = "default"
    sync_period_s: float = 15.0
    scrape_interval_s: float = 15.0
    initial_replicas: int | None = None  # None: the HPA's minReplicas
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    timing: ReplicaTiming = field(default_factory=ReplicaTiming)
    log_dir: Path | None = None
    ready_timeout_wall_s: float = 120.0
    router_shutdown_wall_s: float = 5.0

    def __post_init__(self) -> None:
        _require(math.isfinite(self.speed) and self.speed > 0, "speed", "> 0", self.speed)
        _require(0 <= self.port <= 65535, "port", "in 0..65535", self.port)
        for name in ("sync_period_s", "scrape_interval_s", "ready_timeout_wall_s", "router_shutdown_wall_s"):
            value = getattr(self, name)
            _require(math.isfinite(value) and value > 0, name, "a finite number > 0", value)
        if self.initial_replicas is not None:
            _require(
                self.hpa.min_replicas <= self.initial_replicas <= self.hpa.max_replicas,
                "replicas",
                f"within the HPA's {self.hpa.min_replicas}..{self.hpa.max_replicas}",
                self.initial_replicas,
            )

    @property
    def start_replicas(self) -> int:
        return self.initial_replicas if self.initial_replicas is not None else max(1, self.hpa.min_replicas)


class Fleet:
    """See the module docstring. The parts are public for the view, the demo and tests."""

    def __init__(self, config: FleetConfig) -> None:
        self.config = config
        # absolute: Prometheus runs in its own folder, and messages name where the logs are
        self._log_dir = config.log_dir.absolute() if config.log_dir is not None else None
        self.clock = FleetClock(config.speed)
        self.router = Router(
            policy=config.policy, host=config.host, port=config.port, shutdown_timeout_s=config.router_shutdown_wall_s
        )
        self.source: MetricsSource
        self.prometheus: PrometheusServer | None = None
        if config.prometheus:
            self.prometheus = PrometheusServer(
                clock=self.clock,
                scrape_interval_s=config.scrape_interval_s,
                binary=config.prometheus_binary,
                host=config.host,
                work_dir=self._log_dir / "prometheus" if self._log_dir is not None else None,
            )
            sync_wall_s = self.clock.to_wall_s(config.sync_period_s)
            self.source = PrometheusSource(
                self.prometheus,
                clock=self.clock,
                namespace=config.namespace,
                timeout_wall_s=min(2.0, max(0.2, 0.4 * sync_wall_s)),  # an outage must not stall the loop
            )
        else:
            names = [m.name for m in config.hpa.metrics]
            self.source = DirectScrape(clock=self.clock, names=names, interval_s=config.scrape_interval_s)
        self.replicas = ReplicaSet(
            config.command,
            clock=self.clock,
            prefix=config.hpa.scale_target_ref.name or "jetstream",
            listener=self._on_replica,
            log_dir=self._log_dir,
            timing=config.timing,
        )
        hpa_config = dataclasses.replace(config.controller, sync_period_s=config.sync_period_s)
        self.controller = FleetController(
            HorizontalController(config.hpa, hpa_config),
            replicas=self.replicas,
            source=self.source,
            router=self.router,
            clock=self.clock,
            sync_period_s=config.sync_period_s,
        )
        self._started = False

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.router.port}"

    def views(self) -> tuple[ReplicaView, ...]:
        return self.replicas.views()

    def _on_replica(self, name: str, url: str | None) -> None:
        self.router.update(name, url)
        if self._started:
            self.source.set_targets(scrape_targets(self.replicas.views()))

    async def start(self) -> None:
        """Bring the fleet up; returns once the initial replicas are ready and the HPA loop runs."""
        self.clock.start()
        self._started = True
        try:
            await self.router.start()
            await self.source.start()
            await self.replicas.start()
            await self.replicas.scale(self.config.start_replicas)
            if not await self.replicas.wait_ready(self.config.start_replicas, self.config.ready_timeout_wall_s):
                raise ServingError(
                    f"{self.config.start_replicas} replica(s) were not ready within "
                    f"{self.config.ready_timeout_wall_s:g} s"
                    + (f"; see the logs in {self._log_dir}" if self._log_dir else "")
                )
            views = self.replicas.views()
            self.source.set_targets(scrape_targets(views))
            scrape_wall_s = self.clock.to_wall_s(self.config.scrape_interval_s)
            await self.source.prime([v.name for v in views], 3 * scrape_wall_s + 5.0)
            await self.controller.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """No more scaling; the router finishes what it proxies; replicas drain; the metrics source stops."""
        await self.controller.stop()
        await self.router.stop()
        await self.replicas.stop()
        await self.source.stop()

    async def __aenter__(self) -> Fleet:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
