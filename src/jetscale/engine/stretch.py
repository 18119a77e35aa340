"""A decode stretch: the generate steps between two events, over a fixed batch, as exact sums.

Between two events of a replica (a prefill end, a request end, a step boundary where a prefill must
start) the batch is fixed, so step ``j`` of the stretch reads a context of ``p + q j`` seconds' worth
of HBM traffic (every active slot's context grows by one token per step). A step takes
``g * max(p + q j, gamma) + o``: ``gamma`` is the compute floor, ``g`` the inverse of the decode
efficiency, ``o`` the fixed overhead. The steps below the floor come first (``flat`` of them), so the
time of the first ``k`` steps is an arithmetic series, summed in closed form: nothing is done per step.

``DecodeStretch`` holds one stretch (the engine keeps one and restarts it at each event) and answers
three questions: the time of ``k`` steps (``span``), how many steps fit in ``tau`` seconds
(``steps_in``) and which step boundary comes first at or after ``tau`` (``first_boundary``). The two
searches start from the quadratic's root and then walk to the exact answer over ``span`` itself, so
they agree with ``span`` to the last bit. The engine inlines ``span`` where it is hot (once per event);
the expressions here are the reference its inlined copies must match bit for bit.
"""

from __future__ import annotations

import math

__all__ = ["NEVER", "DecodeStretch", "flat_steps"]

NEVER = 1 << 62  # a step count no stretch reaches


def flat_steps(p: float, q: float, gamma: float) -> int:
    """Steps of a stretch starting at ``p`` (growing by ``q`` a step) spent at the compute floor."""
    if p >= gamma:
        return 0
    if q <= 0.0:
        return NEVER
    return math.ceil((gamma - p) / q)


class DecodeStretch:
    """One decode stretch of a replica whose steps take ``g * max(p + q j, gamma) + o`` seconds."""

    __slots__ = ("flat", "g", "gamma", "half_q", "o", "p", "q")

    def __init__(self, *, gamma: float, g: float, o: float) -> None:
        self.gamma = gamma
        self.g = g
        self.o = o
        self.p = 0.0
        self.q = 0.0
        self.half_q = 0.0  # q * 0.5, the series' quadratic coefficient before g
        self.flat = NEVER

    def restart(self, p: float, q: float) -> None:
        """Begin a new stretch whose step ``j`` reads ``p + q j``."""
        self.p = p
        self.q = q
        self.half_q = q * 0.5
        self.flat = flat_steps(p, q, self.gamma)

    def span(self, k: int) -> float:
        """Time of the first ``k`` steps: sum over j < k of g * max(p + q j, gamma) + o."""
        flat = self.flat
        if flat == 0:
            # the same value as the general expression with m = 0 (gamma * 0 adds an exact 0.0)
            return self.o * k + self.g * (self.p * k + self.half_q * (k * (k - 1)))
        m = k if k < flat else flat
        linear = self.p * (k - m) + self.half_q * (k * (k - 1) - m * (m - 1))
        return self.o * k + self.g * (self.gamma * m + linear)

    def estimate_steps(self, tau: float) -> int:
        """About the number of steps that fit in ``tau`` seconds (exact up to float rounding, >= 0)."""
        g, o = self.g, self.o
        flat = self.flat
        flat_step = g * self.gamma + o
        if flat > 0 and flat_step * flat >= tau:
            return max(0, int(tau / flat_step))
        # past the compute floor, span(k) = a k^2 + b k + c
        p, q = self.p, self.q
        m = 0 if flat >= NEVER else flat
        a = 0.5 * g * q
        b = o + g * (p - 0.5 * q)
        c = g * (self.gamma * m - p * m - 0.5 * q * (m * m - m))
        root = (-b + math.sqrt(b * b + 4.0 * a * (tau - c))) / (2.0 * a) if a > 0.0 else (tau - c) / b
        return max(0, int(root))

    def steps_in(self, tau: float) -> int:
        """Steps completed within ``tau`` seconds of the start (the largest k with span(k) <= tau)."""
        if tau <= 0.0:
            return 0
        k = self.estimate_steps(tau)
        span = self.span
        if span(k) > tau:
            k -= 1
            while k > 0 and span(k) > tau:
                k -= 1
            return k
        while span(k + 1) <= tau:
            k += 1
        return k

    def first_boundary(self, tau: float) -> tuple[int, float]:
        """The first step boundary at or after ``tau``: (steps from the start, their span).

        Called once per request (a prefill cuts the stretch there), so the usual case, every step past
        the compute floor (``flat == 0``), has ``estimate_steps`` and ``span`` inlined: same values.
        """
        if self.flat != 0:
            return self._first_boundary_any(tau)
        g, o, p, q, half_q = self.g, self.o, self.p, self.q, self.half_q
        a = 0.5 * g * q
        b = o + g * (p - 0.5 * q)  # and c = 0: span(k) = a k^2 + b k
        root = (-b + math.sqrt(b * b + 4.0 * a * tau)) / (2.0 * a) if a > 0.0 else tau / b
        k = int(root)
        if k < 0:
            k = 0
        s = o * k + g * (p * k + half_q * (k * (k - 1)))
        if s >= tau:
            while k > 0:
                j = k - 1
                before = o * j + g * (p * j + half_q * (j * (j - 1)))
                if before < tau:
                    break
                k, s = j, before
            return k, s
        while s < tau:
            k += 1
            s = o * k + g * (p * k + half_q * (k * (k - 1)))
        return k, s

    def _first_boundary_any(self, tau: float) -> tuple[int, float]:
        """``first_boundary`` for any stretch, over ``span`` itself."""
        span = self.span
        k = self.estimate_steps(tau)
        s = span(k)
        if s >= tau:
            while k > 0:
                before = span(k - 1)
                if before < tau:
                    break
                k, s = k - 1, before
            return k, s
        k += 1
        s = span(k)
        while s < tau:
            k += 1
            s = span(k)
        return k, s
