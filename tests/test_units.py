from fractions import Fraction

import pytest

from jetscale.errors import ConfigError
from jetscale.units import format_milli, parse_duration_s, parse_quantity, quantity_to_milli


@pytest.mark.parametrize(
    ("text", "milli"),
    [
        ("500m", 500),
        ("1.5", 1500),
        ("10", 10_000),
        (10, 10_000),
        (0.25, 250),
        ("2Gi", 2 * 2**30 * 1000),
        ("1e3", 1_000_000),
        ("1E-3", 1),
        ("1k", 1_000_000),
        ("1u", 1),  # MilliValue rounds up
        ("100n", 1),
        ("-1", -1000),
        (".5", 500),
    ],
)
def test_quantity_to_milli(text: object, milli: int) -> None:
    assert quantity_to_milli(text) == milli


def test_exact_value() -> None:
    assert parse_quantity("1.5Ki") == Fraction(1536)


@pytest.mark.parametrize("bad", ["", "abc", "1.2.3", "5 m", "1Zi", True, None, [1]])
def test_bad_quantity_names_field(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"^spec\.x: must be a quantity"):
        parse_quantity(bad, "spec.x")


def test_format_milli() -> None:
    assert format_milli(4000) == "4"
    assert format_milli(500) == "500m"


@pytest.mark.parametrize(("text", "seconds"), [("15s", 15), ("5m", 300), ("500ms", 0.5), (7, 7), ("2h", 7200)])
def test_duration(text: object, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h30m", 5400), ("2m30s", 150), ("1h0m0.5s", 3600.5), ("1m500ms", 60.5), ("24h", 86400), (" 1h5s ", 3605)],
)
def test_compound_duration(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["soon", "30m1h", "1h1h", "1h 30m", "h", "1h30", "-1h", "1d"])
def test_bad_duration(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"^sync: must be a duration such as 15s, 5m, 1h30m or 500ms"):
        parse_duration_s(bad, "sync")
