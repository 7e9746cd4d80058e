"""provider: focus: the sample exports of each cloud, runs and restatements, bad files."""

from __future__ import annotations

import asyncio
import gzip
import math
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest

from exporter.config.schema import ConfigError, parse_config
from exporter.core.records import Dataset, Dims, Family, FetchResult, TokenType
from exporter.core.snapshot import AccountSnapshot, SnapshotStore
from exporter.scheduler import AccountPoller
from exporter.sources.providers.base import ProviderError, ProviderSettings
from exporter.sources.providers.focus import (
    FocusProvider,
    provider_label,
    sku_meaning,
    token_multiplier,
)
from exporter.web.collector import SnapshotCollector
from tests.fetched import batch_of, only_failure

SAMPLES = Path(__file__).parent / "fixtures" / "focus"
NOVEMBER = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
DECEMBER = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp())
DAY = 86_400
INPUT, OUTPUT = TokenType.INPUT, TokenType.OUTPUT
AZURE_RUNS = "azure/focus-ai/20261101-20261130"
OLD_RUN = "4b3e8f4a-1d2c-4a5b-8c7d-0e1f2a3b4c5d"
NEW_RUN = "a9c8d7e6-f5a4-4b3c-9d2e-1f0a9b8c7d6e"


def provider(directory: Path, **options: Any) -> FocusProvider:
    settings = ProviderSettings(
        account="cloud", api_key=lambda: "", options={"directory": directory, **options}
    )
    return FocusProvider(settings, observe=lambda endpoint, code: None)


def fetch(source: FocusProvider, start: int = NOVEMBER, end: int = DECEMBER) -> FetchResult:
    return asyncio.run(source.fetch(start, end))


def days(result: FetchResult, dataset: Dataset) -> dict[tuple[int, Any], float]:
    """(day of November, series key) -> value, rounded to the micro-dollar."""
    batch = batch_of(result, dataset)
    return {
        ((day - NOVEMBER) // DAY + 1, key): round(value, 6)
        for day, series in batch.days.items()
        for key, value in series.items()
    }


def copy(tmp_path: Path, cloud: str) -> Path:
    target = tmp_path / cloud
    shutil.copytree(SAMPLES / cloud, target)
    return target


def age_runs(directory: Path, newest: str) -> None:
    """Make ``newest`` the latest Azure run (a checkout sets no meaningful mtimes)."""
    for run in (OLD_RUN, NEW_RUN):
        when = 1_800_000_000 if run == newest else 1_700_000_000
        for part in (directory / "focus-ai/20261101-20261130" / run).iterdir():
            os.utime(part, (when, when))


def test_aws_sample_keeps_bedrock_and_marketplace_models_and_leaves_out_ec2(
    tmp_path: Path,
) -> None:
    result = fetch(provider(copy(tmp_path, "aws")))
    assert result.failures == {}
    assert result.project_names == {"111122223333": "ml-platform"}
    nova = Dims("111122223333", "NovaPro", provider="aws")
    claude = Dims("111122223333", "Claude Sonnet 4.5", provider="aws")
    assert days(result, Dataset.COST) == {
        (1, (Family.BILLED_COST, nova, ("usage",))): 1.92,
        (2, (Family.BILLED_COST, claude, ("usage",))): 10.5,
        (2, (Family.BILLED_COST, nova, ("credit",))): -1.0,
    }  # the EC2 row ($12.34, ServiceCategory Compute) is not AI spend
    assert days(result, Dataset.USAGE) == {
        (1, (Family.TOKENS, nova, (INPUT, "", ""))): 1_200_000,
        (1, (Family.TOKENS, nova, (OUTPUT, "", ""))): 300_000,
        (2, (Family.TOKENS, claude, (INPUT, "", ""))): 2_000_000,
        (2, (Family.TOKENS, claude, (OUTPUT, "", ""))): 300_000,
    }
    # watermark: the end of the latest charge period read
    assert batch_of(result, Dataset.COST).watermark == NOVEMBER + 2 * DAY


def test_azure_newest_run_replaces_an_older_one_of_the_same_billing_period(
    tmp_path: Path,
) -> None:
    directory = copy(tmp_path, "azure")
    age_runs(directory, newest=NEW_RUN)
    subscription = "/subscriptions/0f6e5a3c-1b2d-4c5e-9f7a-8b9c0d1e2f3a"
    gpt5 = Dims(subscription, "GPT 5", provider="azure")
    mini = Dims(subscription, "5 mini", provider="azure")
    source = provider(directory)
    result = fetch(source)
    assert result.project_names == {subscription: "contoso-ai-prod"}
    # the newer run restated 2 November ($3.00 → $3.50) and holds both of its part files
    assert days(result, Dataset.COST) == {
        (1, (Family.BILLED_COST, gpt5, ("usage",))): 9.0,
        (2, (Family.BILLED_COST, gpt5, ("usage",))): 3.5,
        (3, (Family.BILLED_COST, mini, ("usage",))): 0.66,
    }
    assert days(result, Dataset.USAGE) == {  # raw counts; priced per 1M (x_PricingBlockSize)
        (1, (Family.TOKENS, gpt5, (INPUT, "", ""))): 4_000_000,
        (1, (Family.TOKENS, gpt5, (OUTPUT, "", ""))): 400_000,
        (2, (Family.TOKENS, gpt5, (INPUT, "", ""))): 2_800_000,
        (3, (Family.TOKENS, mini, (INPUT, "", ""))): 2_640_000,
    }
    # whichever run is newest counts: the rule is the files' age, not their names
    age_runs(directory, newest=OLD_RUN)
    assert days(fetch(source), Dataset.COST) == {
        (1, (Family.BILLED_COST, gpt5, ("usage",))): 5.0,
        (2, (Family.BILLED_COST, gpt5, ("usage",))): 3.0,
    }


def test_gcp_sample_vertex_ai_by_project(tmp_path: Path) -> None:
    result = fetch(provider(copy(tmp_path, "gcp")))
    pro = Dims("acme-ml-prod", "Gemini 2.5 Pro", provider="gcp")
    flash = Dims("acme-ml-dev", "Gemini 2.5 Flash", provider="gcp")
    assert result.project_names == {"acme-ml-prod": "ACME ML prod", "acme-ml-dev": "ACME ML dev"}
    assert days(result, Dataset.COST) == {
        (1, (Family.BILLED_COST, pro, ("usage",))): 3.75,
        (3, (Family.BILLED_COST, flash, ("usage",))): 0.95,
    }
    assert days(result, Dataset.USAGE)[1, (Family.TOKENS, pro, (OUTPUT, "", ""))] == 250_000


def test_vercel_json_lines_project_from_tags(tmp_path: Path) -> None:
    result = fetch(provider(copy(tmp_path, "vercel")))
    project = Dims("prj_8f2KcW1xQ9", provider="vercel")
    assert result.project_names == {"prj_8f2KcW1xQ9": "storefront"}
    assert days(result, Dataset.COST) == {
        (1, (Family.BILLED_COST, project, ("usage",))): 12.4,
        (2, (Family.BILLED_COST, project, ("usage",))): 3.6,
    }  # Fast Data Transfer is Networking
    assert days(result, Dataset.USAGE) == {}  # billed in USD units, no tokens


def test_gzip_files_and_the_fetch_window(tmp_path: Path) -> None:
    directory = tmp_path / "aws"
    sample = next((SAMPLES / "aws").rglob("*.csv"))
    target = directory / "data" / sample.name
    target.parent.mkdir(parents=True)
    target.with_suffix(".csv.gz").write_bytes(gzip.compress(sample.read_bytes()))
    result = fetch(provider(directory), NOVEMBER + DAY, DECEMBER)  # 2 November onwards
    assert {day for day, _ in days(result, Dataset.COST)} == {2}


def poller(directory: Path, clock: list[float], **options: Any) -> AccountPoller:
    store = SnapshotStore()
    source = provider(directory, **options)
    store.set_accounts([AccountSnapshot(provider="focus", account="cloud")])
    return AccountPoller(
        account="cloud",
        provider_factory=lambda _: source,
        store=store,
        poll_interval=3600,
        settle_window=31 * DAY,  # FocusProvider.default_settle_window
        clock=lambda: clock[0],
    )


def billed_total(poller_: AccountPoller) -> float:
    return round(
        sum(
            v for (family, _, _), v in poller_.ledger.totals.items() if family is Family.BILLED_COST
        ),
        6,
    )


def test_re_reading_counts_nothing_twice_and_late_files_are_picked_up(tmp_path: Path) -> None:
    directory = copy(tmp_path, "gcp")
    clock = [float(NOVEMBER + 10 * DAY)]
    account = poller(directory, clock)
    asyncio.run(account.poll_once())
    assert billed_total(account) == 4.7
    clock[0] += 3600
    asyncio.run(account.poll_once())  # the same files again
    assert billed_total(account) == 4.7
    late = directory / "focus-2026-11-restated.csv"
    lines = (directory / "focus-2026-11.csv").read_text().splitlines()
    # a file of another billing account arrives days later: its rows are added
    late.write_text("\n".join([lines[0], lines[1].replace("01A2B3-C4D5E6-F7A8B9", "99X")]) + "\n")
    clock[0] += 3600
    asyncio.run(account.poll_once())
    assert billed_total(account) == 4.7 + 1.25
    # a restart reads the same history and publishes the same month to date
    again = poller(directory, clock)
    asyncio.run(again.poll_once())
    assert again.ledger.totals == account.ledger.totals


def test_exposition_labels_series_with_the_cloud(tmp_path: Path) -> None:
    clock = [float(NOVEMBER + 10 * DAY)]
    account = poller(copy(tmp_path, "aws"), clock)
    asyncio.run(account.poll_once())
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(lambda: account._store.current))
    text = generate_latest(registry).decode()
    assert (
        'aicost_billed_cost_usd_total{account="cloud",line_item="usage",model="Claude Sonnet 4.5",'
        'project="ml-platform",project_id="111122223333",provider="aws"} 10.5'
    ) in text
    assert 'aicost_collector_up{account="cloud",provider="focus"} 1.0' in text
    assert "aicost_estimated_cost_usd_total{" not in text  # the cloud's own price only
    assert "aicost_unpriced_tokens_total{" not in text


def test_a_malformed_row_is_counted_and_the_others_kept(tmp_path: Path) -> None:
    directory = copy(tmp_path, "gcp")
    path = directory / "focus-2026-11.csv"
    lines = path.read_text().splitlines()
    assert lines[2].startswith("2.50,")
    lines[2] = "two fifty" + lines[2].removeprefix("2.50")
    path.write_text("\n".join(lines) + "\n")
    result = fetch(provider(directory))
    cost = batch_of(result, Dataset.COST)
    assert cost.skipped_rows == 1
    assert cost.skipped_error == "focus-2026-11.csv: row 2: BilledCost is not a number"
    assert round(sum(v for s in cost.days.values() for v in s.values()), 6) == 1.25 + 0.95


def test_a_truncated_file_fails_the_read_and_keeps_the_last_good_data(tmp_path: Path) -> None:
    directory = copy(tmp_path, "gcp")
    clock = [float(NOVEMBER + 10 * DAY)]
    account = poller(directory, clock)
    asyncio.run(account.poll_once())
    broken = directory / "late.csv.gz"
    broken.write_bytes(gzip.compress(b"BilledCost,ServiceCategory\n" * 100)[:40])  # mid-copy
    clock[0] += 3600
    asyncio.run(account.poll_once())
    status = account._store.current.accounts[0].status
    assert not status.up and status.datasets[Dataset.COST].up is False
    assert "late.csv.gz: cannot read (EOFError)" in status.last_error
    assert billed_total(account) == 4.7  # still published
    err = only_failure(fetch(provider(directory)), "secret")
    assert err.reason == "parse"


def test_currencies_convert_only_with_a_rate(tmp_path: Path) -> None:
    directory = copy(tmp_path, "gcp")
    path = directory / "focus-2026-11.csv"
    path.write_text(path.read_text().replace(",USD,", ",EUR,"))
    pro = Dims("acme-ml-prod", "Gemini 2.5 Pro", provider="gcp")
    without = days(fetch(provider(directory)), Dataset.COST)
    assert without[1, (Family.UNCONVERTED_COST, pro, ("eur",))] == 3.75
    assert not [key for key in without if key[1][0] is Family.BILLED_COST]
    converted = days(fetch(provider(directory, currency_rates={"EUR": 1.1})), Dataset.COST)
    assert converted[1, (Family.BILLED_COST, pro, ("usage",))] == 4.125


def test_match_overrides_the_service_category(tmp_path: Path) -> None:
    directory = copy(tmp_path, "aws")
    source = provider(directory, match=[{"service_name": "*Bedrock Edition*"}])
    cost = days(fetch(source), Dataset.COST)
    assert {key[1].model for _, key in cost} == {"Claude Sonnet 4.5"}
    everything = provider(directory, match=[{"service_category": "*"}])
    assert (
        round(sum(days(fetch(everything), Dataset.COST).values()), 6) == 23.76
    )  # 1.92 + 10.5 - 1.00 (credit) + 12.34 (EC2)


def test_a_directory_with_too_many_files_is_refused(tmp_path: Path) -> None:
    for index in range(3):
        (tmp_path / f"part-{index}.csv").write_text("BilledCost\n")
    err = only_failure(fetch(provider(tmp_path, max_files=2)), "secret")
    assert err.reason == "too_large" and "options.max_files" in str(err)
    missing = only_failure(fetch(provider(tmp_path / "absent")), "secret")
    assert missing.reason == "parse" and "is not a directory" in str(missing)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("USE1-NovaPro-input-tokens", ("NovaPro", INPUT)),
        ("EUC1-Llama3-3-70B-output-tokens", ("Llama3-3-70B", OUTPUT)),
        ("USE1-MP:USE1_OutputTokenCount-Units", ("", OUTPUT)),
        ("GPT 5 outpt Glbl 1M Tokens", ("GPT 5", OUTPUT)),
        ("5 mini Inp Gl 1M Tokens", ("5 mini", INPUT)),
        ("gpt-4o-0806-Inp-glbl Tokens", ("gpt-4o-0806", INPUT)),
        ("gpt-4o-mini-0718-Outp-regnl Tokens", ("gpt-4o-mini-0718", OUTPUT)),
        ("USE1-MP:USE1_CacheReadInputTokenCount-Units", ("", TokenType.INPUT_CACHE_READ)),
        ("gpt-4o-0806-cached-inp-glbl Tokens", ("gpt-4o-0806", TokenType.INPUT_CACHE_READ)),
        ("Gemini 2.5 Pro Input Text Tokens", ("Gemini 2.5 Pro", INPUT)),
        ("Standard S0 Storage", ("", None)),
    ],
)
def test_sku_meaning(text: str, expected: tuple[str, TokenType | None]) -> None:
    assert sku_meaning(text) == expected


def test_units_and_provider_names() -> None:
    assert [token_multiplier(u) for u in ("Tokens", "1K Tokens", "1000 Tokens", "1M tokens")] == [
        1,
        1000,
        1000,
        1_000_000,
    ]
    assert token_multiplier("Hours") is None and token_multiplier("GB") is None
    names = ("AWS", "Microsoft", "Google Cloud", "Vercel", "Nebius AI")
    assert [provider_label(n) for n in names] == ["aws", "azure", "gcp", "vercel", "nebius_ai"]


def test_config_takes_no_key_resolves_the_directory_and_allows_cloud_budgets(
    tmp_path: Path,
) -> None:
    text = (
        "accounts:\n  - {name: cloud, provider: focus, options: {directory: exports}}\n"
        "budgets:\n  - {name: bedrock, period: month, limit_usd: 100,"
        " match: {provider: aws, account: cloud}}\n"
    )
    config = parse_config(text, base_dir=tmp_path)
    assert config.accounts[0].options.directory == tmp_path / "exports"
    with pytest.raises(ConfigError, match=r"accounts\[0\].*reads no API key"):
        parse_config(text.replace("provider: focus,", "provider: focus, api_key: x,"))
    with pytest.raises(ConfigError, match=r"accounts\[0\].*options.directory: Field required"):
        parse_config("accounts:\n  - {name: cloud, provider: focus, options: {}}\n")
    with pytest.raises(ConfigError, match=r"options.match: .*rule 0 names no field"):
        parse_config(
            "accounts:\n  - {name: c, provider: focus, options: {directory: /x, match: [{}]}}\n"
        )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_hostile_files_fail_classified_or_read_finite(tmp_path: Path, data: st.DataObject) -> None:
    """Whatever a file holds, a fetch returns: finite sums, or a classified failure."""
    sample = (SAMPLES / "gcp" / "focus-2026-11.csv").read_text().splitlines()
    lines = list(sample)
    for _ in range(data.draw(st.integers(0, 4), label="edits")):
        index = data.draw(st.integers(0, len(lines) - 1), label="line")
        cells = lines[index].split(",")
        cell = data.draw(st.integers(0, len(cells) - 1), label="cell")
        cells[cell] = data.draw(
            st.one_of(
                st.text(max_size=40),
                st.sampled_from(["NaN", "inf", "-1e308", "1e309", "", '"', "{", "9999-12-31"]),
            ),
            label="value",
        )
        lines[index] = ",".join(cells)
    directory = Path(tempfile.mkdtemp(dir=tmp_path))
    (directory / "export.csv").write_text("\n".join(lines) + "\n")
    result = fetch(provider(directory))
    for err in result.failures.values():
        assert isinstance(err, ProviderError), err
    for batch in result.batches:
        for series in batch.days.values():
            assert all(math.isfinite(value) for value in series.values())


HEADER = (
    "ServiceCategory,ServiceProviderName,ChargePeriodStart,BilledCost,BillingPeriodStart,Tags\n"
)


def row(cost: str = "1.5", period: str = "2026-11-01", tags: str = "") -> str:
    return f"AI and Machine Learning,Vercel,2026-11-03T00:00:00Z,{cost},{period},{tags}\n"


def test_a_row_too_long_fails_the_read_before_it_is_held(tmp_path: Path) -> None:
    """A 5 KB gzip of one row of 5 million commas (or one 16 MB JSON line) would take
    gigabytes to split: the read fails once the row passes MAX_ROW_CHARS, holding little."""
    import tracemalloc

    bombs = {
        "bomb.csv.gz": (HEADER + "," * 5_000_000 + "\n").encode(),
        "bomb.jsonl.gz": b'{"BilledCost": "' + b"9" * 16_000_000 + b'"}\n',
    }
    for name, body in bombs.items():
        directory = tmp_path / name.split(".")[1]
        directory.mkdir()
        (directory / name).write_bytes(gzip.compress(body))
        tracemalloc.start()
        try:
            err = only_failure(fetch(provider(directory)), "secret")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert err.reason == "too_large", err
        assert str(err).startswith(f"{name}: line ") and "a row longer than 1048576" in str(err)
        assert peak < 40_000_000, peak  # the old reader held 300 MB+ here
    wide = tmp_path / "wide"
    wide.mkdir()
    (wide / "wide.csv").write_text(",".join(f"c{i}" for i in range(1001)) + "\n")
    err = only_failure(fetch(provider(wide)), "secret")
    assert err.reason == "too_large" and str(err) == "wide.csv: more than 1000 columns"


def test_rows_that_add_nothing_still_count_against_the_series_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("exporter.sources.providers.focus.MAX_SERIES", 100)
    zero_cost = "".join(row("0", period=f"2026-11-{i:05d}") for i in range(150))
    (tmp_path / "zeros.csv").write_text(HEADER + zero_cost)
    err = only_failure(fetch(provider(tmp_path)), "secret")
    assert err.reason == "too_large" and "more than 100 daily series" in str(err)
    (tmp_path / "zeros.csv").write_text(HEADER + "".join(row("0") for _ in range(150)))
    assert days(fetch(provider(tmp_path)), Dataset.COST) == {}  # one period: within the limit


def test_an_empty_later_run_still_replaces_the_older_run_of_its_period(tmp_path: Path) -> None:
    old, new = tmp_path / "run-1", tmp_path / "run-2"
    old.mkdir(), new.mkdir()
    (old / "part.csv").write_text(HEADER + row("4"))
    (new / "part.csv").write_text(HEADER + row("0"))  # restated to nothing
    os.utime(old / "part.csv", (1_700_000_000, 1_700_000_000))
    os.utime(new / "part.csv", (1_800_000_000, 1_800_000_000))
    assert days(fetch(provider(tmp_path)), Dataset.COST) == {}


def test_a_fifo_named_like_an_export_is_left_out_not_waited_for(tmp_path: Path) -> None:
    import threading

    (tmp_path / "part.csv").write_text(HEADER + row("2"))
    fifo = tmp_path / "trap.csv"
    os.mkfifo(fifo)
    source, found = provider(tmp_path), []
    # read() itself, in a daemon thread: a reader stuck in open() must not keep pytest alive.
    reader = threading.Thread(target=lambda: found.append(source.read(NOVEMBER, DECEMBER)))
    reader.daemon = True
    reader.start()
    reader.join(10)
    if reader.is_alive():  # the old code: unblock its open() before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("the read waited on a FIFO")
    batches, _ = found[0]
    assert sum(v for s in batches[0].days.values() for v in s.values()) == 2.0


def test_one_deeply_nested_cell_or_corrupt_gzip_fails_cleanly(tmp_path: Path) -> None:
    nested = '"' + '{""a"":' * 10_000 + "1" + "}" * 10_000 + '"'  # below the field limit
    (tmp_path / "part.csv").write_text(HEADER + row("3", tags=nested) + row("4"))
    cost = batch_of(fetch(provider(tmp_path)), Dataset.COST)
    assert sum(v for s in cost.days.values() for v in s.values()) == 7.0  # tags unread, kept
    (tmp_path / "part.csv").unlink()
    (tmp_path / "deep.jsonl").write_text('{"Tags": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    err = only_failure(fetch(provider(tmp_path)), "secret")
    assert (err.reason, str(err)) == ("parse", "deep.jsonl: line 1: nested too deeply")
    (tmp_path / "deep.jsonl").unlink()
    body = bytearray(gzip.compress((HEADER + row() * 2000).encode()))
    body[20:40] = b"\xff" * 20  # a corrupt deflate stream, not a truncated one
    (tmp_path / "part.csv.gz").write_bytes(bytes(body))
    err = only_failure(fetch(provider(tmp_path)), "secret")
    assert (err.reason, str(err)) == ("parse", "part.csv.gz: cannot read (corrupt data)")


def test_malformed_cells_are_named_without_their_text(tmp_path: Path) -> None:
    leaky = "https://billing:Hunter2@internal.example/x"
    (tmp_path / "part.csv").write_text(
        HEADER
        + row().replace("2026-11-03T00:00:00Z", leaky)
        + row("1_000")
        + row("\u0661\u0662")  # Arabic-Indic digits, which Decimal reads
        + row("2")
    )
    cost = batch_of(fetch(provider(tmp_path)), Dataset.COST)
    assert cost.skipped_rows == 3
    assert cost.skipped_error == "part.csv: row 1: ChargePeriodStart is not an ISO 8601 date-time"
    assert sum(v for s in cost.days.values() for v in s.values()) == 2.0
    assert token_multiplier("9" * 120 + " Tokens") is None
    assert token_multiplier("1000000 Tokens") == 1_000_000
    assert provider_label("---") == "other"  # never "", which renders as provider="focus"


def test_credits_that_grow_through_the_month_are_taken_off_and_no_counter_goes_down(
    tmp_path: Path,
) -> None:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    from exporter.web.exposition import Exposition

    header = "ServiceCategory,ServiceProviderName,ChargeCategory,ChargePeriodStart,BilledCost,"
    header += "BillingPeriodStart\n"

    def charge(day: int, cost: str, category: str) -> str:
        start = f"2026-11-{day:02d}T00:00:00Z"
        return f"AI and Machine Learning,AWS,{category},{start},{cost},2026-11-01\n"

    export = tmp_path / "part.csv"
    export.write_text(header + charge(2, "5", "Usage") + charge(2, "-1", "Credit"))
    clock = [float(NOVEMBER + 10 * DAY)]
    account = poller(tmp_path, clock)
    asyncio.run(account.poll_once())
    export.write_text(export.read_text() + charge(3, "5", "Usage") + charge(3, "-1.5", "Credit"))
    os.utime(export, ns=(export.stat().st_mtime_ns + 10**9,) * 2)  # seen as changed
    clock[0] += 3600
    asyncio.run(account.poll_once())
    _, body = Exposition(lambda: account._store.current).body(
        "application/openmetrics-text;version=1.0.0", gzipped=False
    )
    # prometheus_client's OpenMetrics parser refuses a counter below zero.
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    totals = {
        (name, s.labels["line_item"]): s.value
        for name in ("aicost_billed_cost_usd", "aicost_billed_credit_usd")
        for s in families[name].samples
        if s.name.endswith("_total")
    }
    assert totals == {
        ("aicost_billed_cost_usd", "usage"): 10.0,
        ("aicost_billed_credit_usd", "credit"): 2.5,
    }
    assert account.ledger.revisions == 0
