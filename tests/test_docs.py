"""Drift checks between the code and the documentation a user reads."""

from __future__ import annotations

from pathlib import Path

from exporter.scheduler import ERROR_REASONS
from exporter.sources.providers import PROVIDERS
from exporter.web import metrics
from exporter.web.metrics import MetricDef

ROOT = Path(__file__).resolve().parent.parent


def exposed_name(definition: MetricDef) -> str:
    return definition.name + ("_total" if definition.type == "counter" else "")


def test_every_metric_is_documented() -> None:
    text = (ROOT / "docs" / "metrics.md").read_text()
    definitions = [v for v in vars(metrics).values() if isinstance(v, MetricDef)]
    assert len(definitions) > 20
    missing = [exposed_name(d) for d in definitions if f"`{exposed_name(d)}" not in text]
    assert missing == []


def test_every_provider_is_documented_and_in_the_readme() -> None:
    providers = (ROOT / "docs" / "providers.md").read_text()
    readme = (ROOT / "README.md").read_text()
    for name in PROVIDERS:
        assert f"`provider: {name}`" in providers, name
        assert f"| `{name}` |" in readme, name


def _row(text: str, start: str) -> str:
    (row,) = [line for line in text.splitlines() if line.startswith(start)]
    return row


def test_metrics_page_names_every_provider_and_error_reason() -> None:
    text = (ROOT / "docs" / "metrics.md").read_text()
    providers = _row(text, "| `provider` |")
    assert [name for name in PROVIDERS if f"`{name}`" not in providers] == []
    errors = _row(text, "| `aicost_collector_errors_total` |")
    assert [reason for reason in ERROR_REASONS if f"`{reason}`" not in errors] == []
