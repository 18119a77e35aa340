"""The fleet's two times: wall seconds, and model seconds (wall seconds since the start x ``speed``).

Every replica runs its engine ``speed`` times faster than the wall clock, so the fleet keeps the
autoscaler on the same compressed time: the HPA's sync period, stabilization windows and policy periods,
the scrape interval, restart back-off and readiness probes are all stated in model seconds and waited for
in wall seconds (model / speed). Timelines are recorded in model seconds, so a demo at ``--speed 10``
reads like the real thing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from jetscale.errors import ConfigError

__all__ = ["FleetClock"]


class FleetClock:
    """Model time since ``start()``; ``now`` is a monotonic wall clock (a test may pass a fake)."""

    def __init__(self, speed: float, now: Callable[[], float] = time.monotonic) -> None:
        if not (math.isfinite(speed) and speed > 0):
            raise ConfigError(f"'speed' must be > 0 (got {speed!r})")
        self.speed = speed
        self._now = now
        self._t0: float | None = None

    def start(self) -> None:
        if self._t0 is None:
            self._t0 = self._now()

    def wall_elapsed_s(self) -> float:
        return 0.0 if self._t0 is None else self._now() - self._t0

    def model_s(self) -> float:
        """Model seconds since ``start()`` (0 before it)."""
        return self.wall_elapsed_s() * self.speed

    def to_wall_s(self, model_s: float) -> float:
        """How many wall seconds ``model_s`` model seconds take."""
        return model_s / self.speed
