"""Drift checks between the code and the documentation a user reads."""

from __future__ import annotations

from pathlib import Path

from exporter import metrics
from exporter.metrics import MetricDef
from exporter.providers import PROVIDERS

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
