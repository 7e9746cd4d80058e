from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.core.ledger import LOOKBACK, Ledger, history_start, month_start
from exporter.core.records import DAY, Batch, Dataset, Dims, Family, FetchResult, SeriesKey


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


NOV = ts("2026-11-01T00:00:00")
TOKENS_IN: SeriesKey = (Family.TOKENS, Dims("proj_a", "gpt-4.1"), ("input", "text", "default"))
COST: SeriesKey = (Family.BILLED_COST, Dims("proj_a"), ("gpt-4.1, input",))


def fetch(
    start: int, end: int, days: dict[int, dict[SeriesKey, float]], dataset: Dataset = Dataset.USAGE
) -> FetchResult:
    batch = Batch(dataset, start, end)
    for day, series in days.items():
        for key, value in series.items():
            batch.add(day, key, value)
    return FetchResult([batch])


def test_month_start_is_utc_calendar_month() -> None:
    assert month_start(ts("2026-11-26T13:45:00")) == NOV
    assert month_start(ts("2026-12-01T00:00:00")) == ts("2026-12-01T00:00:00")
    assert month_start(ts("2026-11-30T23:59:59")) == NOV


def test_first_fetch_sums_days_of_the_month_only() -> None:
    ledger = Ledger()
    now = NOV + 2 * DAY + 3600
    ledger.apply(
        fetch(
            NOV - DAY,
            now,
            {
                NOV - DAY: {TOKENS_IN: 1000.0},  # October: never counted
                NOV: {TOKENS_IN: 10.0},
                NOV + DAY: {TOKENS_IN: 20.0},
                NOV + 2 * DAY: {TOKENS_IN: 5.0},  # today's partial day counts
            },
        ),
        now,
    )
    assert ledger.totals == {TOKENS_IN: 35.0}
    assert ledger.month_start == NOV


TOKENS_OUT: SeriesKey = (Family.TOKENS, Dims("proj_a", "gpt-4.1"), ("output", "text", "default"))
OLD_MODEL: SeriesKey = (Family.TOKENS, Dims("proj_b", "gpt-4o"), ("input", "text", "default"))


def test_a_month_starts_with_the_series_of_the_week_before_it_at_zero() -> None:
    dec = ts("2026-12-01T00:00:00")
    now = dec + 180  # 00:03 on the 1st: nothing used yet this month
    assert history_start(now) == dec - LOOKBACK == ts("2026-11-24T00:00:00")
    days = {
        dec - 8 * DAY: {OLD_MODEL: 7.0},  # before the lookback: not known
        dec - 2 * DAY: {TOKENS_IN: 50.0, TOKENS_OUT: 5.0},
    }
    ledger = Ledger()
    ledger.apply(fetch(dec - 8 * DAY, now, days), now)
    assert ledger.totals == {TOKENS_IN: 0.0, TOKENS_OUT: 0.0}
    # Later polls read only the recent days; the known series stay, at their month's value.
    later = dec + DAY
    ledger.apply(fetch(dec, later, {dec: {TOKENS_IN: 3.0}}), later, settled_before=dec)
    assert ledger.totals == {TOKENS_IN: 3.0, TOKENS_OUT: 0.0}
    # A restart reads the same days and publishes the same series.
    restarted = Ledger()
    restarted.apply(fetch(history_start(later), later, {**days, dec: {TOKENS_IN: 3.0}}), later)
    assert restarted.totals == ledger.totals
    # The next month knows only what its own week before had.
    jan = ts("2027-01-01T00:00:00")
    ledger.apply(fetch(jan - LOOKBACK, jan + 60, {jan - DAY: {TOKENS_OUT: 1.0}}), jan + 60)
    assert ledger.totals == {TOKENS_OUT: 0.0}


def test_refetched_window_replaces_days_instead_of_adding() -> None:
    ledger = Ledger()
    now = NOV + 3 * DAY
    ledger.apply(fetch(NOV, now, {NOV: {TOKENS_IN: 10.0}, NOV + 2 * DAY: {TOKENS_IN: 7.0}}), now)
    later = now + 600
    ledger.apply(fetch(NOV + 2 * DAY, later, {NOV + 2 * DAY: {TOKENS_IN: 9.0}}), later)
    assert ledger.totals == {TOKENS_IN: 19.0}
    # A day that was in the window but came back empty is cleared, not kept.
    ledger.apply(fetch(NOV + DAY, later, {}, Dataset.COST), later)
    assert ledger.totals == {TOKENS_IN: 19.0}


def test_datasets_are_replaced_independently() -> None:
    ledger = Ledger()
    now = NOV + DAY + 60
    result = fetch(NOV, now, {NOV: {TOKENS_IN: 3.0}})
    cost = Batch(Dataset.COST, NOV, now)
    cost.add(NOV, COST, 1.25)
    result.batches.append(cost)
    ledger.apply(result, now)
    ledger.apply(fetch(NOV, now + 60, {NOV: {TOKENS_IN: 4.0}}), now + 60)
    assert ledger.totals == {TOKENS_IN: 4.0, COST: 1.25}


def test_downward_revision_keeps_higher_value_and_counts_once() -> None:
    ledger = Ledger()
    now = NOV + DAY
    ledger.apply(fetch(NOV, now, {NOV: {TOKENS_IN: 100.0}}), now)
    for minute in range(1, 4):
        ledger.apply(fetch(NOV, now + 60 * minute, {NOV: {TOKENS_IN: 90.0}}), now + 60 * minute)
    assert ledger.totals == {TOKENS_IN: 100.0}
    assert ledger.revisions == 1
    ledger.apply(fetch(NOV, now + 600, {NOV: {TOKENS_IN: 120.0}}), now + 600)
    assert ledger.totals == {TOKENS_IN: 120.0}
    assert ledger.revisions == 1


def test_series_that_vanishes_is_a_revision_and_keeps_its_value() -> None:
    ledger = Ledger()
    now = NOV + DAY
    ledger.apply(fetch(NOV, now, {NOV: {TOKENS_IN: 50.0}}), now)
    ledger.apply(fetch(NOV, now + 60, {}), now + 60)
    assert ledger.totals == {TOKENS_IN: 50.0}
    assert ledger.revisions == 1


def test_new_month_starts_from_zero() -> None:
    ledger = Ledger()
    now = ts("2026-11-30T23:00:00")
    ledger.apply(fetch(NOV, now, {NOV: {TOKENS_IN: 500.0}}), now)
    dec = ts("2026-12-01T00:05:00")
    ledger.apply(
        fetch(ts("2026-12-01T00:00:00"), dec, {ts("2026-12-01T00:00:00"): {TOKENS_IN: 2.0}}), dec
    )
    assert ledger.totals == {TOKENS_IN: 2.0}
    assert ledger.month_start == ts("2026-12-01T00:00:00")
    assert ledger.revisions == 0


def test_watermark_is_kept_when_a_batch_has_none() -> None:
    ledger = Ledger()
    now = NOV + DAY
    result = fetch(NOV, now, {NOV: {TOKENS_IN: 1.0}})
    result.batches[0].watermark = now - 30
    ledger.apply(result, now)
    ledger.apply(fetch(NOV, now + 60, {NOV: {TOKENS_IN: 1.0}}), now + 60)
    assert ledger.watermarks == {Dataset.USAGE: now - 30}


def test_settled_days_are_folded_and_survive_later_windows() -> None:
    ledger = Ledger()
    now = NOV + 5 * DAY
    ledger.apply(fetch(NOV, now, {NOV + d * DAY: {TOKENS_IN: 10.0} for d in range(6)}), now)
    ledger.apply(
        fetch(NOV + 3 * DAY, now + 60, {NOV + d * DAY: {TOKENS_IN: 11.0} for d in range(3, 6)}),
        now + 60,
    )
    assert sorted(ledger.days[Dataset.USAGE]) == [NOV + 3 * DAY, NOV + 4 * DAY, NOV + 5 * DAY]
    assert ledger.totals == {TOKENS_IN: 63.0}
    # A window that starts later folds the next day; the total is unchanged.
    ledger.apply(
        fetch(NOV + 4 * DAY, now + 120, {NOV + d * DAY: {TOKENS_IN: 11.0} for d in range(4, 6)}),
        now + 120,
    )
    assert ledger.totals == {TOKENS_IN: 63.0}
    assert ledger.revisions == 0


def test_refetch_from_month_start_rebuilds_settled_days() -> None:
    ledger = Ledger()
    now = NOV + 5 * DAY
    ledger.apply(fetch(NOV, now, {NOV: {TOKENS_IN: 10.0}, NOV + 4 * DAY: {TOKENS_IN: 1.0}}), now)
    ledger.apply(fetch(NOV + 4 * DAY, now + 60, {NOV + 4 * DAY: {TOKENS_IN: 1.0}}), now + 60)
    ledger.apply(
        fetch(NOV, now + 120, {NOV: {TOKENS_IN: 12.0}, NOV + 4 * DAY: {TOKENS_IN: 1.0}}), now + 120
    )
    assert ledger.totals == {TOKENS_IN: 13.0}


def test_a_fetch_starting_inside_settled_days_replaces_only_the_unsettled_ones() -> None:
    # The window is longer when another dataset failed for a while: the days this dataset had
    # settled are in its sum already and must not be counted again, nor replaced.
    ledger = Ledger()
    now = NOV + 5 * DAY + 3600
    days = {NOV + d * DAY: {TOKENS_IN: 1.0} for d in range(6)}
    ledger.apply(fetch(NOV, now, days), now, settled_before=NOV + 4 * DAY)
    assert ledger.totals == {TOKENS_IN: 6.0}
    again = {NOV + d * DAY: {TOKENS_IN: 1.0} for d in range(2, 6)}
    again[NOV + 5 * DAY] = {TOKENS_IN: 3.0}  # today grew
    ledger.apply(fetch(NOV + 2 * DAY, now + 60, again), now + 60, settled_before=NOV + 4 * DAY)
    assert ledger.totals == {TOKENS_IN: 8.0}
    assert ledger.revisions == 0


def test_budgets_spend_keeps_the_settled_days_the_totals_keep() -> None:
    # A settled day restated in a window made longer for another dataset: the totals keep the
    # settled figure, and so must the daily spend budgets read, or the two disagree.
    ledger = Ledger()
    now = NOV + 5 * DAY + 3600
    days = {NOV + d * DAY: {COST: 2.0} for d in range(6)}
    ledger.apply(fetch(NOV, now, days, Dataset.COST), now, settled_before=NOV + 4 * DAY)
    again = {NOV + d * DAY: {COST: 2.0} for d in range(2, 6)}
    again[NOV + 2 * DAY] = {COST: 5.0}  # a settled day, restated
    ledger.apply(
        fetch(NOV + 2 * DAY, now + 60, again, Dataset.COST), now + 60, settled_before=NOV + 4 * DAY
    )
    spend = ledger.daily_spend(Family.BILLED_COST)
    assert ledger.totals == {COST: 12.0}
    assert sum(sum(v.values()) for v in spend.values()) == 12.0


def test_days_before_settled_before_are_folded_at_once() -> None:
    ledger = Ledger()
    now = NOV + 5 * DAY + 3600
    days = {NOV + d * DAY: {TOKENS_IN: 1.0} for d in range(6)}
    ledger.apply(fetch(NOV, now, days), now, settled_before=NOV + 3 * DAY)
    assert sorted(ledger.days[Dataset.USAGE]) == [NOV + 3 * DAY, NOV + 4 * DAY, NOV + 5 * DAY]
    assert ledger.totals == {TOKENS_IN: 6.0}
    ledger.apply(
        fetch(NOV + 3 * DAY, now + 60, {NOV + 5 * DAY: {TOKENS_IN: 2.0}}),
        now + 60,
        settled_before=NOV + 3 * DAY,
    )
    assert ledger.totals == {TOKENS_IN: 6.0}  # two days came back empty: a revision, kept higher
    assert ledger.revisions == 1
    ledger.apply(fetch(NOV + DAY, now + 120, {}), now + 120)  # settled days are not replaced
    assert ledger.totals == {TOKENS_IN: 6.0} and ledger.revisions == 2


def test_label_sets_beyond_the_cap_count_under_other_with_exact_totals() -> None:
    ledger = Ledger(max_label_sets=2)

    def key(project: str) -> SeriesKey:
        return (Family.TOKENS, Dims(project, "m"), ("input", "text", "default"))

    batch = Batch(Dataset.USAGE, NOV, NOV + 2 * DAY)
    for day, projects in ((NOV, ["a", "b", "c"]), (NOV + DAY, ["d", "a", "e"])):
        for i, project in enumerate(projects):
            batch.add(day, key(project), 10.0 + i)
    ledger.apply(FetchResult([batch]), NOV + 2 * DAY - 1)
    other = (Family.TOKENS, Dims("(other)", "(other)"), ("input", "text", "default"))
    assert ledger.totals == {key("a"): 10.0 + 11.0, key("b"): 11.0, other: 12.0 + 10.0 + 12.0}
    assert sum(ledger.totals.values()) == 10 + 11 + 12 + 10 + 11 + 12  # nothing lost
    assert ledger.overflow_count == 3  # c, d and e
    # The same label sets are kept on the next poll, whatever order it brings them in.
    again = Batch(Dataset.USAGE, NOV + DAY, NOV + 2 * DAY)
    for project in ("e", "b", "a"):
        again.add(NOV + DAY, key(project), 1.0)
    ledger.apply(FetchResult([again]), NOV + 2 * DAY - 1)
    assert set(ledger.totals) == {key("a"), key("b"), other}
    # A new month admits label sets afresh.
    december = Batch(Dataset.USAGE, NOV + 30 * DAY, NOV + 31 * DAY)
    december.add(NOV + 30 * DAY, key("z"), 5.0)
    ledger.apply(FetchResult([december]), NOV + 30 * DAY + 60)
    assert ledger.overflow_count == 0 and ledger.totals[key("z")] == 5.0


def test_an_ungrouped_dimension_stays_empty_under_the_cap() -> None:
    ledger = Ledger(max_label_sets=1)
    batch = Batch(Dataset.COST, NOV, NOV + DAY)
    for project in ("a", "b"):
        batch.add(NOV, (Family.BILLED_COST, Dims(project), ("x",)), 1.0)
    ledger.apply(FetchResult([batch]), NOV + 60)
    assert ledger.totals[(Family.BILLED_COST, Dims("(other)"), ("x",))] == 1.0  # model stays ""


def test_the_bills_settled_days_do_not_wait_for_a_usage_dataset_that_keeps_failing() -> None:
    # Budgets take the billed cost for settled days: an images endpoint failing since the 2nd
    # must not make them use estimates for the whole month.
    ledger = Ledger()
    first = NOV + DAY + 3600
    ledger.apply(fetch(NOV, first, {NOV: {TOKENS_IN: 1.0}}, Dataset.IMAGES), first,
                 settled_before=NOV)
    now = NOV + 10 * DAY + 3600
    ledger.apply(fetch(NOV, now, {NOV + DAY: {COST: 2.0}}, Dataset.COST), now,
                 settled_before=NOV + 8 * DAY)
    assert ledger.settled_before == NOV + 8 * DAY
    # Without a billing dataset the days settled in every dataset count.
    usage_only = Ledger()
    usage_only.apply(fetch(NOV, now, {NOV: {TOKENS_IN: 1.0}}), now, settled_before=NOV + 3 * DAY)
    assert usage_only.settled_before == NOV + 3 * DAY


def test_credits_count_up_and_a_credit_taken_back_becomes_a_charge() -> None:
    ledger = Ledger()
    credit: SeriesKey = (Family.BILLED_CREDIT, Dims("proj_a"), ("credit",))
    back: SeriesKey = (Family.BILLED_COST, Dims("proj_a"), ("credit",))  # its line item
    now = NOV + 2 * DAY

    def net() -> float:
        totals = ledger.totals
        return sum(v for k, v in totals.items() if k[0] is Family.BILLED_COST) - sum(
            v for k, v in totals.items() if k[0] is Family.BILLED_CREDIT
        )

    def spend() -> float:
        return sum(sum(v.values()) for v in ledger.daily_spend(Family.BILLED_COST).values())

    days = {NOV: {COST: 5.0, credit: 1.0}, NOV + DAY: {COST: 5.0}}
    ledger.apply(fetch(NOV, now, days, Dataset.COST), now)
    assert ledger.totals == {COST: 10.0, credit: 1.0}
    # The bill takes more off as the month goes on: the credit rises, nothing is a revision.
    days = {NOV + DAY: {COST: 5.0, credit: 2.5}}
    ledger.apply(fetch(NOV + DAY, now + 60, days, Dataset.COST), now + 60)
    assert ledger.totals == {COST: 10.0, credit: 3.5}
    assert (net(), spend(), ledger.revisions) == (6.5, 6.5, 0)
    # A credit restated smaller: the credit counter cannot go down, so what was taken back is
    # a charge under the credit's line item, and billed less credited is the provider's net.
    days = {NOV + DAY: {COST: 5.0, credit: 1.0}}
    ledger.apply(fetch(NOV + DAY, now + 120, days, Dataset.COST), now + 120)
    assert ledger.totals == {COST: 10.0, credit: 3.5, back: 1.5}
    assert (net(), spend(), ledger.revisions) == (8.0, 8.0, 1)
    # Credits that rise again later still move the credit counter (what was taken back stays).
    days = {NOV + DAY: {COST: 5.0, credit: 3.0}}
    ledger.apply(fetch(NOV + DAY, now + 180, days, Dataset.COST), now + 180)
    assert ledger.totals == {COST: 10.0, credit: 5.5, back: 1.5}
    assert (net(), spend()) == (6.0, 6.0)
    # ... and a credit that turns into a charge (an adjustment -3 restated +2).
    days = {NOV + DAY: {COST: 5.0, back: 2.0}}
    ledger.apply(fetch(NOV + DAY, now + 240, days, Dataset.COST), now + 240)
    assert ledger.totals == {COST: 10.0, credit: 5.5, back: 6.5}
    assert (net(), spend()) == (11.0, 11.0)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2),  # the first day the fetch re-reads (0: the whole month)
            st.lists(st.integers(0, 9), min_size=3, max_size=3),  # credit per day, in dollars
        ),
        min_size=1,
        max_size=8,
    )
)
def test_credits_restated_any_way_keep_every_counter_rising_and_the_net_exact(
    fetches: list[tuple[int, list[int]]],
) -> None:
    ledger = Ledger()
    credit: SeriesKey = (Family.BILLED_CREDIT, Dims("proj_a"), ("credit",))
    now = NOV + 3 * DAY
    provider: dict[int, float] = {}  # the provider's credit per day, as restated so far
    before: dict[SeriesKey, float] = {}
    settled = 0
    for step, (drawn, credits) in enumerate(fetches):
        # As a poller fetches: the month from its start, or from no earlier than the days
        # settled by the fetch before.
        first = settled = 0 if step == 0 or drawn == 0 else max(drawn, settled)
        days = {NOV + d * DAY: {COST: 5.0, credit: float(credits[d])} for d in range(first, 3)}
        for d in range(first, 3):
            provider[d] = float(credits[d])
        ledger.apply(fetch(NOV + first * DAY, now + step, days, Dataset.COST), now + step)
        totals = ledger.totals
        assert all(totals[key] >= value for key, value in before.items())
        billed = sum(v for k, v in totals.items() if k[0] is Family.BILLED_COST)
        net = billed - totals.get(credit, 0.0)
        charged = 5.0 * len(provider)  # charges are never revised here: the net is exact
        assert net == pytest.approx(charged - sum(provider.values()))
        spend = ledger.daily_spend(Family.BILLED_COST)
        assert sum(sum(v.values()) for v in spend.values()) == pytest.approx(net)
        before = dict(totals)
