"""Metrics.add of a chunk's count counts exactly what it counts one event at a time."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.events import StatusEvent
from exporter.metrics import Metrics
from exporter.parsers.base import count_events

EVENTS = st.builds(
    StatusEvent,
    st.sampled_from(["postfix", "exim", "unknown"]),
    st.sampled_from(["delivered", "deferred", "bounced", "expired", "rejected"]),
    st.one_of(st.none(), st.sampled_from(["2.0.0", "4.4.1", "5.1.1", "5.7.1", "5.7.606", "4.7.28", "5.9.9"])),
    st.one_of(st.none(), st.sampled_from(["250", "421", "550", "554"])),
    st.one_of(st.none(), st.sampled_from(["gmail-smtp-in.l.google.com", "mx.example.org", "1.2.3.4"])),
    # Timestamps in the past: one further ahead of the clock than metrics.FUTURE_TOLERANCE counts as
    # the time it was added (tests/test_future_timestamps.py), which differs call by call.
    st.one_of(st.none(), st.floats(min_value=-10, max_value=1.7e9, allow_nan=False)),
    st.one_of(st.none(), st.just("3F2A1B")),
)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=4), st.lists(st.lists(EVENTS, max_size=25), max_size=4))
def test_same_counts_as_one_by_one(cap: int, chunks: list[list[StatusEvent]]) -> None:
    one = Metrics(code_cap=cap)
    many = Metrics(code_cap=cap)
    for events in chunks:
        for event in events:
            one.add("mail.log", count_events([event]))
        many.add("mail.log", count_events(events))
    assert list(many.live.status.items()) == list(one.live.status.items())
    assert many.live.folded == one.live.folded
    assert many.live.last_event == one.live.last_event
    assert many.state() == one.state()
