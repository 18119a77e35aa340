"""What a schedule of replicas costs: replica-hours, chip-hours, and money from a price per chip-hour.

The price table is editable: ``examples/prices.yaml`` holds the defaults below, and ``--prices FILE``
reads another. Prices are looked up by the accelerator's name (``tpu-v5e-8``), then its family
(``tpu-v5e``). A replica costs from the moment its pod is created until it is gone (the node is paid
while it provisions, pulls the image, loads the model and drains).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from jetscale.engine.accelerator import Accelerator
from jetscale.errors import ConfigError
from jetscale.safeload import load_yaml

__all__ = ["DEFAULT_PRICES", "Cost", "PriceTable", "cost_of", "parse_prices"]

# On-demand list prices per chip-hour (Google Cloud, us-central regions, 2024-25; H100 = a3-highgpu-8g / 8).
# Estimates to edit for your region, commitments and discounts.
DEFAULT_PRICES: dict[str, float] = {
    "tpu-v5e": 1.20,
    "tpu-v6e": 2.70,
    "tpu-v5p": 4.20,
    "h100": 11.06,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceTable:
    """Prices per chip-hour by accelerator name or family."""

    chip_hour: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    currency: str = "USD"
    source: str = "built-in defaults (jetscale.sim.cost.DEFAULT_PRICES)"

    def price(self, accelerator: Accelerator) -> float | None:
        """Price per chip-hour of ``accelerator``; None when the table has neither its name nor family."""
        for key in (accelerator.name, accelerator.family):
            if key in self.chip_hour:
                return self.chip_hour[key]
        return None


def parse_prices(text: str, *, source: str = "") -> PriceTable:
    """A price table from YAML: ``currency: USD`` and ``chip_hour: {tpu-v5e: 1.2, ...}``."""
    doc = load_yaml(text, what=source or "prices")
    if not isinstance(doc, dict) or not isinstance(doc.get("chip_hour"), dict):
        raise ConfigError(
            f"'chip_hour' must be a mapping of accelerator to price per chip-hour (in {source or 'prices'})"
        )
    prices: dict[str, float] = {}
    for key, value in doc["chip_hour"].items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"'chip_hour.{key}' must be a price >= 0 (got {value!r})")
        prices[str(key)] = float(value)
    currency = doc.get("currency", "USD")
    if not isinstance(currency, str) or not currency:
        raise ConfigError(f"'currency' must be a non-empty string (got {currency!r})")
    return PriceTable(chip_hour=prices, currency=currency, source=source or "prices")


@dataclass(frozen=True, slots=True, kw_only=True)
class Cost:
    replica_hours: float
    chip_hours: float
    money: float | None  # None: no price for this accelerator
    currency: str

    def describe(self) -> str:
        money = f", {self.currency} {self.money:,.2f}" if self.money is not None else ""
        return f"{self.replica_hours:,.2f} replica-h, {self.chip_hours:,.1f} chip-h{money}"


def cost_of(replica_hours: float, accelerator: Accelerator, prices: PriceTable) -> Cost:
    chip_hours = replica_hours * accelerator.chips
    price = prices.price(accelerator)
    return Cost(
        replica_hours=replica_hours,
        chip_hours=chip_hours,
        money=chip_hours * price if price is not None else None,
        currency=prices.currency,
    )
