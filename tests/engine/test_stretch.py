"""DecodeStretch: the closed-form sums against the per-step definition, and the two searches
against a brute-force scan over ``span`` itself (they must agree with it to the last bit)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jetscale.engine.stretch import NEVER, DecodeStretch, flat_steps


def stretch(p: float, q: float, *, gamma: float = 0.012, g: float = 1.0, o: float = 0.0) -> DecodeStretch:
    s = DecodeStretch(gamma=gamma, g=g, o=o)
    s.restart(p, q)
    return s


def per_step(p: float, q: float, gamma: float, g: float, o: float, k: int) -> float:
    """The definition: one step at a time."""
    return sum(g * max(p + q * j, gamma) + o for j in range(k))


def general_span(s: DecodeStretch, k: int) -> float:
    """The series as written before the flat == 0 shortcut (the engine's results must not move)."""
    m = k if k < s.flat else s.flat
    linear = s.p * (k - m) + s.q * 0.5 * (k * (k - 1) - m * (m - 1))
    return s.o * k + s.g * (s.gamma * m + linear)


@pytest.mark.parametrize(
    ("p", "q", "gamma", "flat"),
    [
        # binary fractions, so that the division is exact
        pytest.param(1.5, 0.25, 1.0, 0, id="past-the-floor"),
        pytest.param(1.0, 0.25, 1.0, 0, id="on-the-floor"),
        pytest.param(0.5, 0.25, 1.0, 2, id="reaches-it-at-step-2"),
        pytest.param(0.625, 0.25, 1.0, 2, id="crosses-it-during-step-2"),
        pytest.param(0.5, 0.0, 1.0, NEVER, id="never-crosses"),
    ],
)
def test_flat_steps(p: float, q: float, gamma: float, flat: int) -> None:
    assert flat_steps(p, q, gamma) == flat


@pytest.mark.parametrize(
    ("p", "q", "gamma", "g", "o"),
    [
        pytest.param(0.02, 0.0004, 0.012, 1.0, 0.0, id="memory-bound"),
        pytest.param(0.008, 0.0004, 0.012, 1.0, 0.0, id="crosses-the-floor"),
        pytest.param(0.008, 0.0, 0.012, 1.0, 0.0, id="compute-bound"),
        pytest.param(0.02, 0.0004, 0.012, 4.0, 0.0005, id="efficiency-and-overhead"),
    ],
)
def test_span_is_the_sum_of_its_steps(p: float, q: float, gamma: float, g: float, o: float) -> None:
    s = stretch(p, q, gamma=gamma, g=g, o=o)
    for k in range(40):
        assert s.span(k) == pytest.approx(per_step(p, q, gamma, g, o, k), rel=1e-12, abs=1e-15)


finite = st.floats(min_value=1e-3, max_value=0.1, allow_nan=False)
growth = st.one_of(st.just(0.0), st.floats(min_value=1e-9, max_value=1e-3))


@settings(max_examples=200, deadline=None)
@given(
    p=finite,
    q=growth,
    gamma=finite,
    g=st.sampled_from([1.0, 2.0, 1 / 0.248]),
    o=st.sampled_from([0.0, 0.0005]),
    tau=st.floats(min_value=0.0, max_value=5.0),
)
def test_searches_agree_with_a_scan_of_span(p: float, q: float, gamma: float, g: float, o: float, tau: float) -> None:
    s = stretch(p, q, gamma=gamma, g=g, o=o)
    spans = [s.span(k) for k in range(int(tau / (g * min(p, gamma) + o)) + 3)]
    # the shortcut for flat == 0 gives the very same floats as the general series
    assert spans == [general_span(s, k) for k in range(len(spans))]
    first = next(k for k, v in enumerate(spans) if v >= tau)
    assert s.first_boundary(tau) == (first, spans[first])
    assert s.steps_in(tau) == max(k for k, v in enumerate(spans) if v <= tau)


@pytest.mark.parametrize(
    ("p", "q"),
    [pytest.param(0.02, 0.0004, id="past-the-floor"), pytest.param(0.008, 0.0004, id="crosses-the-floor")],
)
def test_a_boundary_is_its_own_first_boundary(p: float, q: float) -> None:
    s = stretch(p, q)
    for k in range(30):
        assert s.first_boundary(s.span(k)) == (k, s.span(k))
        assert s.steps_in(s.span(k)) == k
        assert s.steps_in(math.nextafter(s.span(k), -math.inf)) == max(0, k - 1)


@pytest.mark.parametrize("q_seen", [0.0, 0.004], ids=["estimate-too-high", "estimate-too-low"])
@pytest.mark.parametrize("p", [0.02, 0.008], ids=["past-the-floor", "crosses-the-floor"])
def test_searches_are_exact_whatever_the_estimate(p: float, q_seen: float) -> None:
    """The root of the quadratic only says where to start; the walk over ``span`` decides. Here the
    estimate is given a wrong growth rate (``q``; ``span`` reads ``half_q``) so that it misses by many steps."""
    s = stretch(p, 0.0004)
    spans = [s.span(k) for k in range(200)]
    s.q = q_seen
    for tau in (0.05, 0.3, 1.0, spans[150], spans[150] + 1e-9):
        first = next(k for k, v in enumerate(spans) if v >= tau)
        assert s.first_boundary(tau) == (first, spans[first])
        assert s.steps_in(tau) == max(k for k, v in enumerate(spans) if v <= tau)


def test_restart_replaces_the_stretch() -> None:
    s = stretch(0.008, 0.0004)
    assert s.flat > 0
    s.restart(0.02, 0.0004)
    assert (s.flat, s.half_q) == (0, 0.0002)
    assert s.span(3) == pytest.approx(per_step(0.02, 0.0004, 0.012, 1.0, 0.0, 3), rel=1e-12)
