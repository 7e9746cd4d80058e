from __future__ import annotations

import pytest

from exporter.config.durations import EXPECTED_FORM, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("2d", 172_800.0),
        ("1w", 604_800.0),
        ("1w2d3h4m5s6ms", 604_800 + 2 * 86_400 + 3 * 3_600 + 4 * 60 + 5 + 0.006),
        ("1.5h", 5400.0),
        ("0s", 0.0),
        (" 10s ", 10.0),
    ],
)
def test_parse_duration_valid(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "5", "300", "-5m", "5x", "5 m", "m", "5M", "1h 30m", "30m1h", "5m5m", "1.s", "abc"],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert EXPECTED_FORM in str(info.value)
    assert "use a duration such as 30s or 5m" in str(info.value)


def test_parse_duration_messages() -> None:
    with pytest.raises(ValueError, match=r"^invalid duration '5x'; use a duration"):
        parse_duration("5x")
    with pytest.raises(ValueError, match=r"^negative duration '-5m'; "):
        parse_duration("-5m")
    with pytest.raises(ValueError, match=r"^empty duration; "):
        parse_duration("")
    with pytest.raises(ValueError, match=r"largest to smallest"):
        parse_duration("30m1h")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (300, "5m"),
        (5400, "1h30m"),
        (0.5, "500ms"),
        (172_800, "2d"),
        (604_800, "1w"),
        (1_209_600, "2w"),
        (31 * 86_400, "31d"),
        (10, "10s"),
        (0, "0s"),
        (90061.5, "1d1h1m1s500ms"),
        (-60, "-1m"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("text", ["5m", "1h30m", "500ms", "2d", "1w", "31d", "1d1h1m1s500ms"])
def test_round_trip(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


def test_format_duration_rejects_nan() -> None:
    with pytest.raises(ValueError):
        format_duration(float("nan"))
