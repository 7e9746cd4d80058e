"""Strict parsers for the values providers return: counts, money, labels, dimensions, times."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator

from exporter.core.records import DAY, Batch, Dims, SeriesKey
from exporter.sources.providers.base import DIMENSIONS, ProviderError

# --- values ---------------------------------------------------------------------------------

QUOTE_CHARS = 40


def quote(value: Any) -> str:
    """A value from a response as an error message shows it: its ``repr``, at most 40
    characters (a provider controls it, and may echo anything in it)."""
    text = repr(value)
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"


_INT = {int}
MAX_COUNT = 10**15
"""Larger counts are no usage but a broken (or hostile) answer: beyond a float's exact range,
they would turn a month-to-date counter into +Inf."""
MAX_AMOUNT_DIGITS = 12
"""An amount of a trillion (dollars, cents) or more in one row is a broken answer."""


def count(row: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> int:
    """A non-negative integer field; a missing optional one is 0."""
    value = row.get(key)
    if type(value) is int and 0 <= value <= MAX_COUNT:  # the usual case, first (not a bool)
        return value
    if value is None and not required:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problem = "missing" if value is None else f"not a non-negative integer ({quote(value)})"
        raise ProviderError("parse", f"{where}: {key!r} {problem}")
    if value > MAX_COUNT:
        raise ProviderError("parse", f"{where}: {key!r} is implausibly large ({quote(value)})")
    return value


class Counts:
    """Reads a row's non-negative integer fields ``keys`` at once; the first ``required`` must
    be present, a missing later one is 0 (as :func:`count` reads each)."""

    def __init__(self, keys: Sequence[str], *, required: int) -> None:
        self._keys, self._required = tuple(keys), required
        self._get = operator.itemgetter(*self._keys)

    def __call__(self, row: Mapping[str, Any], where: str) -> list[int]:
        """The fields' values in the order of ``keys``."""
        # A usage row is usually all plain ints: told by one C-level read and check. Anything
        # else is read field by field, for the defaults and the precise error.
        try:
            values = list(self._get(row))
        except (KeyError, TypeError):
            values = []
        if values and set(map(type, values)) == _INT and 0 <= min(values) <= max(values):
            if max(values) <= MAX_COUNT:
                return values
        required = self._required
        return [count(row, key, where, required=i < required) for i, key in enumerate(self._keys)]


def quantity(row: Mapping[str, Any], key: str, where: str) -> float:
    """A required non-negative finite number (e.g. seconds of audio)."""
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        problem = "missing" if value is None else f"not a non-negative number ({quote(value)})"
        raise ProviderError("parse", f"{where}: {key!r} {problem}")
    if value > MAX_COUNT:
        raise ProviderError("parse", f"{where}: {key!r} is implausibly large ({quote(value)})")
    return float(value)


def label(row: Mapping[str, Any], key: str, where: str) -> str | None:
    """A string-or-null grouping field (a lone surrogate, which JSON can escape but UTF-8
    cannot encode, becomes ``?``: it would fail every exposition and report holding it)."""
    value = row.get(key)
    if value is not None and not isinstance(value, str):
        raise ProviderError("parse", f"{where}: {key!r} is not a string ({quote(value)})")
    if value is not None and not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


_NAME = re.compile(r"[A-Za-z0-9_./:@+-]{1,256}")
_CURRENCY = re.compile(r"[A-Za-z]{3}")


def plain_name(row: Mapping[str, Any], key: str, where: str) -> str | None:
    """A string-or-null field that must be a plain name (ASCII letters, digits and
    ``_./:@+-``, at most 256): a model, key or user id, which becomes a label value."""
    value = row.get(key)
    if value is not None and (not isinstance(value, str) or _NAME.fullmatch(value) is None):
        raise ProviderError("parse", f"{where}: {key!r} {quote(value)} is not a name")
    return value


def currency_code(value: Any, where: str) -> str:
    """A three-letter ASCII currency code, upper-case."""
    if not isinstance(value, str) or _CURRENCY.fullmatch(value) is None:
        raise ProviderError("parse", f"{where}: unsupported currency {quote(value)}")
    return value.upper()


def money(value: Any, where: str) -> Decimal:
    """An amount given as a JSON number or a decimal string (both occur in the wild)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ProviderError("parse", f"{where}: amount {quote(value)} is not a number")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ProviderError("parse", f"{where}: amount {quote(value)} is not a number") from None
    if not amount.is_finite():
        raise ProviderError("parse", f"{where}: amount {quote(value)} is not finite")
    if amount and amount.adjusted() >= MAX_AMOUNT_DIGITS:  # (abs() could overflow the context)
        raise ProviderError("parse", f"{where}: amount {quote(value)} is implausibly large")
    return amount


def _check_rates(value: dict[str, float]) -> dict[str, float]:
    rates: dict[str, float] = {}
    for code, rate in value.items():
        if len(code) != 3 or not code.isalpha():
            raise ValueError(f"{quote(code)} is not a three-letter currency code")
        if not 0 < rate < math.inf:
            raise ValueError(f"rate for {code} must be a positive number")
        rates[code.upper()] = rate
    return rates


CurrencyRates = Annotated[dict[str, float], AfterValidator(_check_rates)]
"""``options.currency_rates``: US dollars per unit of each other currency, e.g. ``{CNY: 0.14}``;
an amount in a currency without a rate is never relabelled as dollars."""


def make_dims(
    row: Mapping[str, Any],
    group_by: Iterable[str],
    fields: Mapping[str, str],
    where: str,
    *,
    null_project: str = "",
) -> Dims:
    """Dims from the row's fields for the grouped dimensions (``fields``: dimension -> field)."""
    values = dict.fromkeys(DIMENSIONS, "")
    for dim in group_by:
        if dim in fields:
            value = label(row, fields[dim], where)
            values[dim] = value if value is not None else (null_project if dim == "project" else "")
    return Dims(values["project"], values["model"], values["api_key"], values["user"])


class DimsReader:
    """Reads a row's grouping fields into :class:`Dims`, memoised per distinct raw values.

    Rows repeat the same few projects and models on every bucket; building and
    validating Dims once per distinct combination keeps parsing fast.
    """

    def __init__(
        self,
        group_by: Iterable[str],
        fields: Mapping[str, str],
        *,
        null_project: str = "",
    ) -> None:
        self._group_by = tuple(dim for dim in DIMENSIONS if dim in set(group_by) and dim in fields)
        self._fields = fields
        self._names = tuple(fields[dim] for dim in self._group_by)
        self.fields = self._names
        """The row fields read, in :data:`DIMENSIONS` order."""
        self._null_project = null_project
        self._memo: dict[tuple[Any, ...], Dims] = {}

    def __call__(self, row: Mapping[str, Any], where: str) -> Dims:
        """The row's dimensions."""
        raw = tuple(map(row.get, self._names))
        try:
            dims = self._memo.get(raw)
        except TypeError:  # a list or object where a label belongs: make_dims rejects it
            return make_dims(
                row, self._group_by, self._fields, where, null_project=self._null_project
            )
        if dims is None:
            dims = make_dims(
                row, self._group_by, self._fields, where, null_project=self._null_project
            )
            self._memo[raw] = dims
        return dims


def grouped_fields(group_by: Iterable[str], fields: Mapping[str, str]) -> tuple[str, ...]:
    """The provider's ``group_by`` field names for the grouped dimensions, canonical order."""
    wanted = set(group_by)
    return tuple(fields[dim] for dim in DIMENSIONS if dim in wanted and dim in fields)


def skip_row(batch: Batch, err: ProviderError) -> None:
    """Leave a malformed row out of ``batch``, counted (``aicost_collector_errors_total``
    reason ``parse``); any other error is the dataset's and is raised again.

    A row is read in full before anything of it is added, so a skipped row adds nothing.
    """
    if err.reason != "parse":
        raise err
    batch.skipped_rows += 1
    if not batch.skipped_error:
        batch.skipped_error = str(err)


def check_usable(batch: Batch, rows: int) -> Batch:
    """``batch``, unless every one of its ``rows`` rows was malformed: then nothing in it can
    be trusted and the dataset fails with the first row's error."""
    if rows and batch.skipped_rows >= rows:
        raise ProviderError("parse", f"every row is malformed ({batch.skipped_error})")
    return batch


def add_money(batch: Batch, totals: Mapping[tuple[int, SeriesKey], Decimal]) -> None:
    """Add exact per-(day, series) sums to ``batch`` as float dollars."""
    for (day, key), amount in totals.items():
        batch.add(day, key, float(amount))


# --- time -----------------------------------------------------------------------------------


def query_end(start: int, end: float) -> int:
    """The first UTC midnight at or after ``end`` (and after ``start``): includes today's bucket."""
    return max(math.ceil(end / DAY) * DAY, start + DAY)


def rfc3339(ts: int) -> str:
    """Unix seconds as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: Any, where: str) -> int:
    """An RFC 3339 timestamp with offset as Unix seconds."""
    if not isinstance(value, str):
        raise ProviderError("parse", f"{where}: timestamp {quote(value)} is not a string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ProviderError("parse", f"{where}: bad timestamp {quote(value)}") from None
    if parsed.tzinfo is None:
        raise ProviderError("parse", f"{where}: timestamp {quote(value)} has no UTC offset")
    return math.floor(parsed.timestamp())


def parse_date(value: Any, field: str, where: str) -> int:
    """A ``YYYY-MM-DD`` date (anything after the first ten characters ignored) as the Unix
    seconds of that UTC day's start."""
    if not isinstance(value, str):
        raise ProviderError("parse", f"{where}: {field!r} {quote(value)} is not a string")
    try:
        parsed = datetime.strptime(value[:10], "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ProviderError("parse", f"{where}: bad date {quote(value)}") from None
    return int(parsed.timestamp())


def watermark(end: int, bucket_ends: Iterable[int]) -> float | None:
    """``min(end, latest bucket end)``; None when no bucket came back."""
    latest = max(bucket_ends, default=None)
    return None if latest is None else float(min(end, latest))


def project_ids(batches: Iterable[Batch]) -> set[str]:
    """Every non-empty project id that occurs in ``batches``."""
    ids: set[str] = set()
    for batch in batches:
        for series in batch.days.values():
            ids.update(key[1].project_id for key in series)
    ids.discard("")
    return ids
