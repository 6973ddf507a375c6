"""The store's background TTL sweeper (``ttl={"sweep_interval_minutes": ...}``) removes
expired items on every backend and stops when the store closes."""

from __future__ import annotations

import time

from .conftest import FakeClock, Place


def test_the_sweeper_removes_expired_items_and_stops_on_close(place: Place, clock: FakeClock) -> None:
    # 0.001 minutes: the sweeper wakes every 60 ms.
    ttl = {"default_ttl": 1.0, "sweep_interval_minutes": 0.001, "refresh_on_read": False}
    with place.store(clock=clock, ttl=ttl) as store:
        sweeper = store._sweeper
        assert sweeper is not None and sweeper.running
        store.put(("s",), "old", {"v": 1})
        store.put(("s",), "kept", {"v": 2}, ttl=None)
        clock.advance(61)
        assert store.get(("s",), "old") is None  # gone to reads at once
        start = sweeper.sweeps
        deadline = time.monotonic() + 10
        while sweeper.sweeps < start + 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sweeper.sweeps >= start + 2, "the sweeper keeps sweeping"
        assert store.sweep_ttl() == 0, "the sweeper had already removed the expired item"
        assert store.get(("s",), "kept") is not None
    assert not sweeper.running
