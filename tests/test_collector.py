from __future__ import annotations

import subprocess

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from exporter import __version__
from exporter.core.records import Dataset, Dims, Family, SeriesKey
from exporter.core.snapshot import AccountSnapshot, AccountStatus, Snapshot, build_account_data
from exporter.web.collector import SnapshotCollector
from exporter.web.metrics import DURATION_BUCKETS

NOV = 1793491200  # 2026-11-01T00:00:00Z


def snapshot() -> Snapshot:
    totals: dict[SeriesKey, float] = {
        (Family.TOKENS, Dims("proj_a", "gpt-4.1"), ("input", "text", "default")): 1200.0,
        (Family.REQUESTS, Dims("proj_a", "gpt-4.1"), ("default",)): 7.0,
        (Family.BILLED_COST, Dims("proj_a"), ("gpt-4.1, input",)): 3.4125,
    }
    data = build_account_data(
        "openai",
        "main",
        NOV,
        totals,
        {"proj_a": "Search"},
        {Dataset.USAGE: NOV + 3600.0},
        0,
        expected_lags={Dataset.USAGE: 21600.0},
    )
    buckets = [0] * len(DURATION_BUCKETS)
    buckets[2] = 1  # one poll that took between 0.25 s and 0.5 s
    status = AccountStatus(
        up=True,
        polled=True,
        last_success=NOV + 3600.0,
        errors={"auth": 0, "rate_limited": 2},
        api_requests={("/organization/costs", "200"): 3},
        duration_buckets=tuple(buckets),
        duration_count=1,
        duration_sum=0.3,
    )
    return Snapshot((AccountSnapshot("openai", "main", data, status),))


def render(openmetrics: bool = False) -> str:
    registry = CollectorRegistry()
    snap = snapshot()
    registry.register(SnapshotCollector(lambda: snap, openmetrics=openmetrics))
    return (generate_openmetrics if openmetrics else generate_latest)(registry).decode()


def test_series_exposition_text_is_exact() -> None:
    text = render()
    labels = 'account="main",model="gpt-4.1",project="Search",project_id="proj_a",provider="openai"'
    assert (
        'aicost_tokens_total{account="main",modality="text",model="gpt-4.1",project="Search",'
        'project_id="proj_a",provider="openai",service_tier="default",token_type="input"} 1200.0'
        in text.splitlines()
    )
    assert f'aicost_requests_total{{{labels},service_tier="default"}} 7.0' in text.splitlines()
    assert (
        'aicost_billed_cost_usd_total{account="main",line_item="gpt-4.1, input",project="Search",'
        'project_id="proj_a",provider="openai"} 3.4125' in text.splitlines()
    )
    assert "_created" not in text  # no extra gauge series in the text format


def test_health_exposition_text_is_exact() -> None:
    lines = render().splitlines()
    base = 'account="main",provider="openai"'
    for expected in [
        f"aicost_collector_up{{{base}}} 1.0",
        f"aicost_collector_last_success_timestamp_seconds{{{base}}} 1.7934948e+09",
        f'aicost_collector_errors_total{{{base},reason="auth"}} 0.0',
        f'aicost_collector_errors_total{{{base},reason="rate_limited"}} 2.0',
        'aicost_api_requests_total{account="main",code="200",endpoint="/organization/costs",'
        'provider="openai"} 3.0',
        'aicost_data_watermark_timestamp_seconds{account="main",dataset="usage",provider="openai"} '
        "1.7934948e+09",
        'aicost_data_expected_lag_seconds{account="main",dataset="usage",provider="openai"} '
        "21600.0",
        f"aicost_data_revisions_total{{{base}}} 0.0",
        'aicost_collector_duration_seconds_bucket{account="main",le="0.1",provider="openai"} 0.0',
        'aicost_collector_duration_seconds_bucket{account="main",le="0.5",provider="openai"} 1.0',
        'aicost_collector_duration_seconds_bucket{account="main",le="+Inf",provider="openai"} 1.0',
        f"aicost_collector_duration_seconds_count{{{base}}} 1.0",
        f"aicost_collector_duration_seconds_sum{{{base}}} 0.3",
        f'aicost_build_info{{version="{__version__}"}} 1.0',
    ]:
        assert expected in lines, expected


def test_openmetrics_counters_carry_month_start_as_created() -> None:
    text = render(openmetrics=True)
    assert "# TYPE aicost_tokens counter" in text
    assert "# UNIT aicost_billed_cost_usd usd" in text
    assert (
        'aicost_tokens_created{account="main",modality="text",model="gpt-4.1",project="Search",'
        'project_id="proj_a",provider="openai",service_tier="default",token_type="input"} '
        "1.7934912e+09"
    ) in text.splitlines()
    assert text.endswith("# EOF\n")
    lines = text.splitlines()
    total = lines.index(next(line for line in lines if line.startswith("aicost_tokens_total{")))
    assert lines[total + 1].startswith("aicost_tokens_created{")  # a series' samples adjacent


def test_exposition_passes_promtool_lint(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "check", "metrics"], input=render(), text=True, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_empty_snapshot_renders_only_the_process_level_gauges() -> None:
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(Snapshot))
    text = generate_latest(registry).decode()
    samples = [line for line in text.splitlines() if not line.startswith("#")]
    assert samples == [
        "aicost_config_last_reload_successful 1.0",
        "aicost_config_last_reload_success_timestamp_seconds 0.0",
        f'aicost_build_info{{version="{__version__}"}} 1.0',
    ]
    # A family without samples has no HELP and TYPE lines either.
    helped = {line.split()[2] for line in text.splitlines() if line.startswith("# HELP ")}
    assert helped == {
        "aicost_config_last_reload_successful",
        "aicost_config_last_reload_success_timestamp_seconds",
        "aicost_build_info",
    }


def test_families_without_samples_are_left_out() -> None:
    text = render()
    assert "# HELP aicost_tokens_total " in text
    assert "aicost_images" not in text  # this OpenAI account generated no image
    assert "aicost_budget_" not in text  # no budget is configured


def test_gauges_from_the_last_poll_have_no_total_and_no_created() -> None:
    data = build_account_data(
        "openrouter",
        "or",
        NOV,
        {},
        {},
        {},
        0,
        gauges={(Family.CREDITS_REMAINING, Dims(), ()): 12.5},
    )
    snap = Snapshot((AccountSnapshot("openrouter", "or", data),))
    for openmetrics in (False, True):
        registry = CollectorRegistry()
        registry.register(SnapshotCollector(lambda: snap, openmetrics=openmetrics))
        text = (generate_openmetrics if openmetrics else generate_latest)(registry).decode()
        assert 'aicost_credits_remaining_usd{account="or",provider="openrouter"} 12.5' in text
        assert "aicost_credits_remaining_usd_created" not in text
        assert "# TYPE aicost_credits_remaining_usd gauge" in text
