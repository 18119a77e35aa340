"""The virtual clock: events come out by (time, priority, sequence) and time never goes back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jetscale.sim.clock import EventQueue, Priority


@pytest.mark.parametrize(
    ("pushed", "expected"),
    [
        pytest.param([(2.0, Priority.ARRIVAL, "b"), (1.0, Priority.SYNC, "a")], ["a", "b"], id="earlier-time-first"),
        pytest.param(
            [(1.0, Priority.SYNC, "sync"), (1.0, Priority.SCRAPE, "scrape"), (1.0, Priority.ENGINE, "engine")],
            ["engine", "scrape", "sync"],
            id="same-time-by-priority",
        ),
        pytest.param(
            [(1.0, Priority.ARRIVAL, "first"), (1.0, Priority.ARRIVAL, "second"), (1.0, Priority.ARRIVAL, "third")],
            ["first", "second", "third"],
            id="same-time-and-priority-in-push-order",
        ),
    ],
)
def test_events_come_out_by_time_priority_then_sequence(
    pushed: list[tuple[float, Priority, str]], expected: list[str]
) -> None:
    queue = EventQueue()
    for time_s, priority, name in pushed:
        queue.push(time_s, priority, 0, name)
    assert [queue.pop()[3] for _ in pushed] == expected


@given(st.lists(st.tuples(st.floats(0, 1e6), st.sampled_from(list(Priority))), min_size=1, max_size=50))
def test_pop_order_is_sorted_and_now_follows(events: list[tuple[float, Priority]]) -> None:
    queue = EventQueue()
    for i, (t, p) in enumerate(events):
        queue.push(t, p, 0, i)
    out = []
    while len(queue):
        t, p, _, i = queue.pop()
        assert queue.now_s == t
        out.append((t, int(p), i))
    assert out == sorted(out)


def test_an_event_in_the_past_is_refused() -> None:
    queue = EventQueue()
    queue.push(5.0, Priority.SYNC, 0)
    queue.pop()
    with pytest.raises(ValueError, match="'time_s' must be >= now"):
        queue.push(4.0, Priority.SYNC, 0)


def test_peek_of_an_empty_queue_is_infinitely_late() -> None:
    assert EventQueue().peek()[0] == float("inf")
