"""Row vectors (SeriesGroup): expansion, sums, pricing and the ledger agree with scalar series."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from exporter.gcpause import paused_gc
from exporter.ledger import Ledger
from exporter.pricing import PriceOverride, Pricer, PricingConfig
from exporter.records import (
    DAY,
    Batch,
    Dataset,
    Dims,
    Family,
    FetchResult,
    SeriesGroup,
    SeriesKey,
    Vector,
    expand_rows,
    sum_rows,
)

NOV = 1793491200  # 2026-11-01T00:00:00Z
MINI = Dims("proj_a", "gpt-4.1-mini-2025-04-14")
OTHER = Dims("proj_b", "gpt-4.1-2025-04-14")
M = 1_000_000


def tokens(dims: Dims, token_type: str, modality: str = "text", tier: str = "default") -> SeriesKey:
    return (Family.TOKENS, dims, (token_type, modality, tier))


def cost(dims: Dims, token_type: str, tier: str = "default") -> SeriesKey:
    return (Family.ESTIMATED_COST, dims, (token_type, tier))


def completion(dims: Dims) -> SeriesGroup:
    """A layout like OpenAI's: text and image input, cache read, output, requests."""
    return SeriesGroup(
        [
            tokens(dims, "input"),
            tokens(dims, "input", "image"),
            tokens(dims, "input_cache_read"),
            tokens(dims, "output"),
            (Family.REQUESTS, dims, ("default",)),
        ]
    )


def scalar_batch(rows_by_day: dict[int, dict[SeriesGroup, Vector]], start: int, end: int) -> Batch:
    """The same data as ``rows_by_day``, added one series at a time."""
    batch = Batch(Dataset.USAGE, start, end)
    for day, rows in rows_by_day.items():
        for group, values in rows.items():
            for key, value in zip(group.keys, values, strict=True):
                if key is not None:
                    batch.add(day, key, value)
    return batch


def row_batch(rows_by_day: dict[int, dict[SeriesGroup, Vector]], start: int, end: int) -> Batch:
    batch = Batch(Dataset.USAGE, start, end)
    for day, rows in rows_by_day.items():
        for group, values in rows.items():
            batch.add_row(day, group, values)
    return batch


# --- SeriesGroup, expand_rows, sum_rows ------------------------------------------------------


def test_a_group_has_one_dims_and_a_scale_per_key() -> None:
    with pytest.raises(ValueError, match="exactly one Dims"):
        SeriesGroup([tokens(MINI, "input"), tokens(OTHER, "input")])
    with pytest.raises(ValueError, match="one factor per key"):
        SeriesGroup([tokens(MINI, "input")], scale=(1.0, 2.0))
    mixed = completion(MINI)
    assert (mixed.dims, mixed.family) == (MINI, None)
    assert SeriesGroup([None, cost(MINI, "input")]).family is Family.ESTIMATED_COST


def test_a_group_for_other_dims_keeps_families_labels_and_scale() -> None:
    group = SeriesGroup([cost(MINI, "input"), None, cost(MINI, "output")], scale=(2.0, 5.0, 3.0))
    other = group.with_dims(OTHER)
    assert other.keys == (cost(OTHER, "input"), None, cost(OTHER, "output"))
    assert (other.dims, other.family, other.scale) == (OTHER, Family.ESTIMATED_COST, group.scale)
    assert other.total((1, 1, 1)) == group.total((1, 1, 1)) == 5.0  # the None slot counts 0


def test_expansion_skips_zeros_and_unpublished_slots_adds_repeated_keys_and_scales() -> None:
    group = SeriesGroup(
        [cost(MINI, "input"), cost(MINI, "input"), None, cost(MINI, "output")],
        scale=(0.5, 2.0, 7.0, 1.0),
    )
    into: dict[SeriesKey, float] = {cost(MINI, "output"): 1.0}
    expand_rows({group: (10, 3, 99, 0)}, into)
    # 10 x 0.5 + 3 x 2.0 into one key; the None slot and the zero slot publish nothing new.
    assert into == {cost(MINI, "input"): 11.0, cost(MINI, "output"): 1.0}


def test_sum_rows_is_the_same_for_aligned_days_and_for_days_listing_other_groups() -> None:
    a, b = completion(MINI), completion(OTHER)
    aligned = [{a: (1, 2, 3, 4, 5), b: (10, 0, 0, 1, 1)}, {a: (1, 1, 1, 1, 1), b: (5, 5, 5, 5, 5)}]
    assert sum_rows(aligned) == {a: (2, 3, 4, 5, 6), b: (15, 5, 5, 6, 6)}
    shuffled = [{b: (10, 0, 0, 1, 1), a: (1, 2, 3, 4, 5)}, {a: (1, 1, 1, 1, 1)}, {}]
    assert sum_rows(shuffled) == {b: (10, 0, 0, 1, 1), a: (2, 3, 4, 5, 6)}
    assert sum_rows([]) == {} and sum_rows([{}, {}]) == {}


def test_sum_rows_shares_a_sum_only_between_groups_holding_the_same_vectors() -> None:
    token, priced = (
        completion(MINI),
        SeriesGroup([cost(MINI, "input"), None, None, None, None], scale=(1.0, 0.0, 0.0, 0.0, 0.0)),
    )
    first, middle, last = (1, 0, 0, 0, 1), (2, 0, 0, 0, 1), (4, 0, 0, 0, 1)
    other_middle = (100, 0, 0, 0, 1)
    # Same first and last vector objects, a different one in between: its own sum.
    days = [
        {token: first, priced: first},
        {token: middle, priced: other_middle},
        {token: last, priced: last},
    ]
    assert sum_rows(days) == {token: (7, 0, 0, 0, 3), priced: (105, 0, 0, 0, 3)}


def test_batch_sums_merge_scalar_series_and_rows() -> None:
    batch = Batch(Dataset.USAGE, NOV, NOV + DAY)
    batch.add(NOV, tokens(MINI, "input"), 5.0)
    batch.add_row(NOV, completion(MINI), (1, 0, 0, 2, 1))
    batch.add_row(NOV, completion(MINI), (1, 0, 0, 0, 1))
    assert batch.sums() == {
        NOV: {
            tokens(MINI, "input"): 7.0,
            tokens(MINI, "output"): 2.0,
            (Family.REQUESTS, MINI, ("default",)): 2.0,
        }
    }


# --- pricing ---------------------------------------------------------------------------------


def test_rows_are_priced_exactly_as_the_same_scalar_series() -> None:
    unknown = Dims("proj_a", "my-private-model")
    free = Dims("proj_a", "ft:free-model")  # priced at $0 by an override: $0, not unpriced
    embedding = Dims("proj_a", "text-embedding-3-small")  # an input price, no output price
    data = {
        NOV + DAY: {
            completion(MINI): (2 * M, 0, M, 3 * M, 12),
            completion(OTHER): (M, 500, 0, M, 3),
            completion(unknown): (1000, 0, 0, 70, 1),
            completion(Dims("proj_c", "my-private-model")): (10, 0, 0, 7, 1),
            completion(free): (1000, 0, 0, 70, 1),
            completion(embedding): (M, 0, 0, 70, 1),
            completion(Dims("proj_c", "text-embedding-3-small")): (M, 0, 0, 7, 1),
            completion(Dims("proj_c", MINI.model)): (M, 0, 0, 0, 1),
        }
    }
    config = PricingConfig(overrides=(PriceOverride(model="ft:free-*", input=0, output=0),))
    by_rows = row_batch(data, NOV, NOV + 2 * DAY)
    by_series = scalar_batch(data, NOV, NOV + 2 * DAY)
    Pricer(config).annotate("openai", "acct", FetchResult([by_rows]))
    Pricer(config).annotate("openai", "acct", FetchResult([by_series]))
    rows_sums, series_sums = by_rows.sums()[NOV + DAY], by_series.sums()[NOV + DAY]
    assert rows_sums.keys() == series_sums.keys()
    for key, value in series_sums.items():
        assert rows_sums[key] == pytest.approx(value, rel=1e-12), key
    # gpt-4.1-mini: $0.40 / $0.10 cache read / $1.60 output per Mtok; gpt-4.1 has no image
    # price of its own (image input is priced as input). The unknown model is unpriced.
    assert rows_sums[cost(MINI, "input")] == pytest.approx(0.8)
    assert rows_sums[cost(MINI, "input_cache_read")] == pytest.approx(0.1)
    assert rows_sums[cost(MINI, "output")] == pytest.approx(4.8)
    assert rows_sums[(Family.UNPRICED_TOKENS, unknown, ("input",))] == 1000
    assert rows_sums[(Family.UNPRICED_TOKENS, unknown, ("output",))] == 70
    assert not [k for k in rows_sums if k[0] is Family.ESTIMATED_COST and k[1] == unknown]
    assert (rows_sums[cost(free, "input")], rows_sums[cost(free, "output")]) == (0.0, 0.0)
    assert not [k for k in rows_sums if k[0] is Family.UNPRICED_TOKENS and k[1] == free]
    assert rows_sums[cost(embedding, "input")] == pytest.approx(0.02)
    # A second project of a known layout: its own keys, the same prices (a prototype's).
    assert rows_sums[cost(Dims("proj_c", MINI.model), "input")] == pytest.approx(0.4)
    assert rows_sums[(Family.UNPRICED_TOKENS, Dims("proj_c", "my-private-model"), ("output",))] == 7
    assert rows_sums[(Family.UNPRICED_TOKENS, embedding, ("output",))] == 70
    assert cost(embedding, "output") not in rows_sums


def test_a_price_change_within_the_month_prices_each_day_at_its_own_price() -> None:
    o3 = Dims("p", "o3")
    group = SeriesGroup([tokens(o3, "input"), (Family.REQUESTS, o3, ("default",))])
    june = int(datetime(2025, 6, 1, tzinfo=UTC).timestamp())
    before, after = june + 7 * DAY, june + 11 * DAY  # o3's price cut on 2025-06-10
    data = {before: {group: (M, 1)}, before + DAY: {group: (M, 1)}, after: {group: (M, 1)}}
    batch = row_batch(data, june, june + 12 * DAY)
    Pricer().annotate("openai", "acct", FetchResult([batch]))
    ledger = Ledger()
    ledger.apply(FetchResult([batch]), june + 12 * DAY, settled_before=june + 10 * DAY)
    assert ledger.totals[cost(o3, "input")] == pytest.approx(10.0 + 10.0 + 2.0)
    assert ledger.totals[tokens(o3, "input")] == 3 * M
    spend = ledger.daily_spend(Family.ESTIMATED_COST)
    assert {day: usd[o3] for day, usd in spend.items()} == pytest.approx(
        {before: 10.0, before + DAY: 10.0, after: 2.0}
    )


# --- ledger ----------------------------------------------------------------------------------


def polls() -> Iterator[tuple[dict[int, dict[SeriesGroup, Vector]], int, int, int]]:
    """(days, fetch start, now, settled_before) of a first poll and two later ones."""
    a, b = completion(MINI), completion(OTHER)
    first = {NOV + d * DAY: {a: (d + 1, 0, d, 2 * d, 1), b: (3, d, 0, 1, 1)} for d in range(6)}
    yield first, NOV, NOV + 5 * DAY + 3600, NOV + 3 * DAY
    # Later data for day 3 (revised up), day 5 grows, b disappears from day 4.
    yield (
        {NOV + 3 * DAY: {a: (9, 9, 9, 9, 9)}, NOV + 4 * DAY: {a: (1, 1, 1, 1, 1)},
         NOV + 5 * DAY: {a: (7, 0, 0, 7, 2), b: (1, 1, 1, 1, 1)}},
        NOV + 3 * DAY, NOV + 5 * DAY + 7200, NOV + 4 * DAY,
    )  # fmt: skip
    yield {NOV + 4 * DAY: {b: (2, 0, 0, 2, 2)}}, NOV + 4 * DAY, NOV + 5 * DAY + 9000, NOV + 4 * DAY


def test_ledger_of_priced_rows_matches_the_ledger_of_the_same_scalar_series() -> None:
    by_rows, by_series = Ledger(), Ledger()
    pricer_rows, pricer_series = Pricer(), Pricer()
    for days, start, now, settled_before in polls():
        rows = FetchResult([row_batch(days, start, now)])
        series = FetchResult([scalar_batch(days, start, now)])
        pricer_rows.annotate("openai", "acct", rows)
        pricer_series.annotate("openai", "acct", series)
        by_rows.apply(rows, now, settled_before=settled_before)
        by_series.apply(series, now, settled_before=settled_before)
        assert by_rows.totals.keys() == by_series.totals.keys()
        for key, value in by_series.totals.items():
            assert by_rows.totals[key] == pytest.approx(value, rel=1e-12), key
        assert by_rows.revisions == by_series.revisions
        assert by_rows.settled_before == by_series.settled_before
        rows_spend = by_rows.daily_spend(Family.ESTIMATED_COST)
        series_spend = by_series.daily_spend(Family.ESTIMATED_COST)
        assert rows_spend.keys() == series_spend.keys()
        for day, usd in series_spend.items():
            assert rows_spend[day] == pytest.approx(usd), day
    # a's input: days 0-2 settled (1 + 2 + 3), day 3 revised to 9, days 4 and 5 to 1 and 7; the
    # last poll drops a's days 4 and 5, which is counted as a revision, never published lower.
    assert by_rows.totals[tokens(MINI, "input")] == 1 + 2 + 3 + 9 + 1 + 7
    assert by_rows.totals[tokens(OTHER, "input")] == 3 * 6  # the first poll's, the highest
    assert by_rows.revisions > 0


# --- paused GC -------------------------------------------------------------------------------


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
