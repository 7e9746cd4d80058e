"""Validation of pushed usage events: what is accepted, and the field-level errors."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.core.records import DAY
from exporter.sources.push.events import EventValidator, UsageEvent, retention_start

NOV = 1793491200  # 2026-11-01T00:00:00Z
NOW = NOV + 25 * DAY + 13 * 3600  # 2026-11-26T13:00:00Z
VALIDATOR = EventValidator({"team-a": "perplexity"}, max_clock_skew=300)


def event(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "evt-1",
        "timestamp": "2026-11-26T10:00:00Z",
        "provider": "perplexity",
        "account": "team-a",
        "project": "search",
        "model": "sonar-pro",
        "tokens": {"input": 1200, "input_cache_read": 0, "output": 300},
        "requests": 1,
        "cost_usd": 0.0123,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def errors(raw: object, index: int = 0) -> list[tuple[str, str]]:
    parsed, problems = VALIDATOR.validate(raw, index, NOW)
    assert parsed is None
    assert all(p.event == index for p in problems)
    return [(p.field, p.message) for p in problems]


def test_a_full_event_is_parsed() -> None:
    parsed, problems = VALIDATOR.validate(event(), 0, NOW)
    assert problems == []
    assert parsed == UsageEvent(
        id="evt-1",
        account="team-a",
        timestamp=NOV + 25 * DAY + 10 * 3600,
        project="search",
        model="sonar-pro",
        service_tier="default",
        tokens=(1200, 0, 0, 0, 300),
        requests=1,
        cost_usd=0.0123,
    )


def test_optional_fields_default() -> None:
    raw = event(provider=..., project=..., requests=..., cost_usd=..., tokens=..., model=...)
    parsed, problems = VALIDATOR.validate(raw, 0, NOW)
    assert problems == []
    assert parsed == UsageEvent("evt-1", "team-a", NOV + 25 * DAY + 10 * 3600)


def test_unix_seconds_and_offsets_are_accepted() -> None:
    for stamp in (NOW - 60, float(NOW - 60), "2026-11-26T13:59:00+01:00"):
        parsed, problems = VALIDATOR.validate(event(timestamp=stamp), 0, NOW)
        assert problems == [] and parsed is not None
        assert parsed.timestamp == NOW - 60


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"id": ""}, [("id", "must not be empty")]),
        ({"id": ...}, [("id", "required")]),
        ({"id": 7}, [("id", "must be a string")]),
        ({"id": "a\nb"}, [("id", "must not contain control characters")]),
        ({"id": "a\x85b"}, [("id", "must not contain control characters")]),  # C1 (NEL)
        (
            {"model": "gpt\ud800"},
            [("model", "must be valid Unicode (it contains a lone surrogate)")],
        ),
        (
            {"project": "team-\u202egnp.exe"},  # right-to-left override: reads as another label
            [("project", "must not contain bidirectional control characters")],
        ),
        (
            {"timestamp": "2026-11-26 10:00"},
            [("timestamp", "needs a time zone, e.g. a trailing Z for UTC")],
        ),
        (
            {"timestamp": "yesterday"},
            [
                (
                    "timestamp",
                    "must be an RFC 3339 time such as 2026-11-26T10:00:00Z, or Unix seconds",
                )
            ],
        ),
        ({"timestamp": True}, [("timestamp", "must be an RFC 3339 time string or Unix seconds")]),
        ({"account": "team-b"}, [("account", "not a push account: 'team-b'")]),
        (
            {"provider": "openai"},
            [("provider", "account 'team-a' is configured with provider 'perplexity'")],
        ),
        ({"tokens": {"output": -1}}, [("tokens.output", "must not be negative")]),
        ({"tokens": {"output": 1.5}}, [("tokens.output", "must be a whole number")]),
        ({"tokens": {"output": True}}, [("tokens.output", "must be a whole number")]),
        (
            {"tokens": {"reasoning": 3}},
            [
                (
                    "tokens.reasoning",
                    "unknown token type; one of input, input_cache_read, input_cache_write, "
                    "input_cache_write_1h, output",
                )
            ],
        ),
        ({"tokens": [1, 2]}, [("tokens", "must be an object of token counts")]),
        ({"requests": "1"}, [("requests", "must be a whole number")]),
        ({"cost_usd": -0.01}, [("cost_usd", "must be a finite number, 0 or more")]),
        ({"cost_usd": "0.01"}, [("cost_usd", "must be a number of US dollars")]),
        ({"cost_usd": 2e6}, [("cost_usd", "must be at most 1e+06 per event")]),
        ({"model": "m" * 201}, [("model", "must be at most 200 characters")]),
        ({"colour": "red"}, [("colour", "unknown field")]),
    ],
)
def test_field_errors(overrides: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert errors(event(**overrides)) == expected


def test_every_problem_of_an_event_is_reported() -> None:
    raw = event(id=..., tokens={"output": -1, "input": "x"}, cost_usd=-1)
    assert errors(raw, 4) == [
        ("id", "required"),
        ("cost_usd", "must be a finite number, 0 or more"),
        ("tokens.input", "must be a whole number"),
        ("tokens.output", "must not be negative"),
    ]


def test_not_an_object() -> None:
    assert errors(["evt"], 2) == [("", "must be a JSON object")]


def test_time_window() -> None:
    oldest = retention_start(NOW)
    assert oldest == NOV - 7 * DAY
    for ok in (oldest, NOW + 300):
        assert VALIDATOR.validate(event(timestamp=ok), 0, NOW)[1] == []
    assert errors(event(timestamp=NOW + 301)) == [("timestamp", "is in the future")]
    assert errors(event(timestamp=oldest - 1)) == [
        (
            "timestamp",
            "is older than the retention window (this month and the 7 days before it: "
            "from 2026-10-25)",
        )
    ]
