"""The cyclic collector paused around bulk ingest, and restored whatever happens."""

from __future__ import annotations

import gc

import pytest

from exporter.core.gcpause import paused_gc


def test_paused_gc_restores_the_collector_also_after_an_error_and_when_nested() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block does not re-enable what the outer paused
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def test_paused_gc_hands_what_it_allocated_to_the_oldest_generation_and_collects_cycles() -> None:
    gc.collect()
    with paused_gc():
        kept = [[i] for i in range(1000)]
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
    assert gc.get_count()[0] < 100  # no young-generation backlog left to traverse
    assert not gc.get_freeze_count()  # nothing stays frozen
    assert gc.collect() >= 1  # the cycle made in the block is still found and freed
    assert len(kept) == 1000
