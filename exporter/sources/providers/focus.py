"""FOCUS billing exports: the AI spend of the clouds (AWS, Azure, Google Cloud, Vercel).

The clouds export their bills in the FinOps Foundation's FOCUS format (1.0-1.3) into a bucket;
``options.directory`` is a local copy of it (an ``rclone sync`` sidecar, a mounted volume). Every
poll reads the files that are new or changed since the last one (CSV, CSV.gz, and the JSON Lines
of Vercel's ``/v1/billing/charges``), keeps the rows of AI services (``ServiceCategory`` "AI and
Machine Learning", or ``options.match``) and publishes them like polled data: ``BilledCost`` as
billed cost, ``ConsumedQuantity`` as tokens where ``ConsumedUnit`` counts tokens.

Clouds restate a month for days, and write each restatement as a new *run*: Azure a new
directory per run, AWS files overwritten in place. The files of one directory are one run; of
the runs holding a (provider, billing account, billing period), only the newest directory counts,
so a re-read or a restatement never counts a row twice (see docs/focus.md).
"""

from __future__ import annotations

import asyncio
import csv
import fnmatch
import functools
import gzip
import io
import json
import logging
import os
import re
import stat
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from exporter.config.secrets import redact
from exporter.core.records import (
    DAY,
    Batch,
    Dataset,
    Dims,
    Family,
    FetchResult,
    SeriesKey,
    TokenType,
    day_start,
)
from exporter.sources.providers.base import (
    DatasetReader,
    ProviderError,
    ProviderSettings,
    RequestObserver,
)
from exporter.sources.providers.fields import CurrencyRates

logger = logging.getLogger(__name__)

AI_CATEGORY = "AI and Machine Learning"
SUFFIXES = (".csv", ".csv.gz", ".jsonl", ".jsonl.gz")
MAX_FILES = 10_000
MAX_SERIES = 200_000
"""Distinct (day, series) sums one file may hold: a file that would grow more fails the read."""
MAX_ROW_CHARS = 1 << 20
"""Characters of one row (a CSV record, a JSON line): a longer one fails the read. FOCUS rows
are a few KB; without a bound, one row of a million commas takes gigabytes to split."""
MAX_COLUMNS = 1_000
"""Columns of a CSV header (FOCUS 1.3 defines fewer than 100, the clouds add a few dozen)."""
MAX_LABEL_CHARS = 128
MAX_AMOUNT = Decimal("1e15")
"""Larger costs and quantities are malformed: no bill has them, and their sums would overflow."""
CURRENCY = re.compile(r"^[A-Z]{3}$")
NUMBER = re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$")
PROVIDER_NAMES = {
    "aws": "aws",
    "amazon web services": "aws",
    "amazon": "aws",
    "microsoft": "azure",
    "microsoft azure": "azure",
    "azure": "azure",
    "google cloud": "gcp",
    "google cloud platform": "gcp",
    "google": "gcp",
    "gcp": "gcp",
    "vercel": "vercel",
}
"""``ServiceProviderName``/``ProviderName`` values (lower case) and their ``provider`` label;
another name becomes its lower-case slug."""
TOKEN_UNIT = re.compile(
    r"^\s*(?:([0-9]{1,7}(?:\.[0-9]{1,6})?)\s*([kKmM])?\s+)?tokens?\s*$", re.IGNORECASE
)
"""FOCUS's unit format for tokens: ``Tokens``, ``1000 Tokens``, ``1K Tokens``, ``1M Tokens``."""
DIRECTIONS: tuple[tuple[re.Pattern[str], TokenType], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), token_type)
    for pattern, token_type in (
        (r"cache[\s_-]*(?:read|hit)s?|cached[\s_-]*inp(?:ut)?", TokenType.INPUT_CACHE_READ),
        (r"cache[\s_-]*writes?(?:[\s_-]*1h)?|cache[\s_-]*creation", TokenType.INPUT_CACHE_WRITE),
        (r"\b(?:input|inpt?|prompt)(?:\b|(?=tokens?))|(?<=[a-z0-9])[\s_-]*input", TokenType.INPUT),
        (
            r"\b(?:output|outpt?|completion)(?:\b|(?=tokens?))|(?<=[a-z0-9])[\s_-]*output",
            TokenType.OUTPUT,
        ),
    )
)
"""How a SKU's meter text names the kind of token it counts (first match wins)."""
SKU_COLUMNS = ("x_UsageType", "x_SkuMeterName", "x_SkuDescription", "SkuMeter", "ChargeDescription")
"""Where the model and the kind of token are named, in order: AWS's usage type, Azure's meter
name, Google's SKU description, FOCUS 1.1's SkuMeter, then the charge description."""
REGION_PREFIX = re.compile(r"^[A-Z]{2,4}\d?-(?:MP:)?(?:[A-Z]{2,4}\d?_)?")
"""AWS usage types start with a region code (``USE1-``, ``EUC1-``; Marketplace ``USE1-MP:``)."""
MARKETPLACE_SERVICE = re.compile(r"^(.+?)\s*\((?:Amazon Bedrock|[^()]*) Edition\)$")
MODEL_TAIL = re.compile(
    r"[\s_-]*(?:(?:batch|regional|regnl|global|glbl|data[\s_-]*zone|dzone|provisioned)"
    r"[\s_-]*)*(?:text[\s_-]*)?$",
    re.IGNORECASE,
)


def _glob(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("must not be empty")
    return value


class FocusMatch(BaseModel):
    """One rule of ``options.match``: a row is kept if every field given matches (globs, in
    any case: Google's FOCUS view writes some values in lower case)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service_category: str | None = None
    service_name: str | None = None
    sku_id: str | None = None

    _check = field_validator("service_category", "service_name", "sku_id")(_glob)

    def matches(self, category: str, service: str, sku: str) -> bool:
        """Whether a row of this category, service and SKU is kept by this rule."""
        return all(
            pattern is None or fnmatch.fnmatchcase(value.lower(), pattern.lower())
            for pattern, value in (
                (self.service_category, category),
                (self.service_name, service),
                (self.sku_id, sku),
            )
        )


class FocusOptions(BaseModel):
    """``options:`` of a ``provider: focus`` account."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    directory: Path
    """The FOCUS files (searched recursively); relative to the configuration file."""
    match: tuple[FocusMatch, ...] = Field(
        default=(FocusMatch(service_category=AI_CATEGORY),), min_length=1
    )
    """A row is kept if any rule matches it (default: ServiceCategory "AI and Machine Learning")."""
    currency_rates: CurrencyRates = Field(default_factory=dict)
    """US dollars per unit of each other ``BillingCurrency``, e.g. ``{EUR: 1.08}``."""
    max_files: int = Field(default=MAX_FILES, gt=0, le=1_000_000, strict=True)

    @field_validator("match", mode="after")
    @classmethod
    def _some_field(cls, value: tuple[FocusMatch, ...]) -> tuple[FocusMatch, ...]:
        for index, rule in enumerate(value):
            if rule == FocusMatch():
                fields = "service_category, service_name, sku_id"
                raise ValueError(f"rule {index} names no field ({fields})")
        return value

    @field_validator("directory", mode="after")
    @classmethod
    def _resolve(cls, value: Path, info: ValidationInfo) -> Path:
        path = value.expanduser()
        base = info.context.get("base_dir") if isinstance(info.context, dict) else None
        if not path.is_absolute() and isinstance(base, Path):
            path = base / path
        return path


@functools.lru_cache(maxsize=1024)
def provider_label(name: str) -> str:
    """The ``provider`` label of a FOCUS provider name (``AWS`` → ``aws``, ``Microsoft`` →
    ``azure``, ``Google Cloud`` → ``gcp``)."""
    key = " ".join(name.lower().split())
    if key in PROVIDER_NAMES:
        return PROVIDER_NAMES[key]
    # Never empty: an empty label would render as the account's own provider label, "focus".
    return re.sub(r"[^a-z0-9]+", "_", key).strip("_")[:32] or "other"


def token_multiplier(unit: str) -> float | None:
    """Tokens per unit of ``ConsumedUnit``, or None if it does not count tokens."""
    found = TOKEN_UNIT.match(unit)
    if found is None:
        return None
    number, scale = found.groups()
    factor = float(number) if number else 1.0
    return factor * {"": 1.0, "k": 1e3, "m": 1e6}[(scale or "").lower()]


@functools.lru_cache(maxsize=4096)  # an export repeats a few hundred SKUs over millions of rows
def sku_meaning(text: str) -> tuple[str, TokenType | None]:
    """(model, kind of token) named by a SKU's meter text: ``USE1-NovaPro-input-tokens`` →
    (``NovaPro``, input); ``gpt-4o-0806-Inp-glbl Tokens`` → (``gpt-4o-0806``, input);
    ``Gemini 2.5 Pro Input Text Tokens`` → (``Gemini 2.5 Pro``, input). No kind of token named:
    (``""``, None), the text names a service, not a model; a kind before any model name
    (``USE1-MP:USE1_InputTokenCount-Units``): (``""``, that kind)."""
    text = REGION_PREFIX.sub("", text.strip())
    for pattern, token_type in DIRECTIONS:
        found = pattern.search(text)
        if found is not None:
            model = MODEL_TAIL.sub("", text[: found.start()]).strip(" _-:")
            return model[:MAX_LABEL_CHARS], token_type
    return "", None


def marketplace_model(service: str) -> str:
    """The model a marketplace listing is named after (AWS sells third-party models as services
    such as ``Claude Sonnet 4.5 (Amazon Bedrock Edition)``), else ``""``."""
    found = MARKETPLACE_SERVICE.match(service)
    return found.group(1).strip()[:MAX_LABEL_CHARS] if found else ""


def tags(value: Any) -> Mapping[str, Any]:
    """A cell holding a JSON object (``Tags``, Google's ``x_Project``) as a mapping; in JSON
    Lines already parsed. Anything else is an empty mapping."""
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            return {}
    return value if isinstance(value, dict) else {}


def _time(value: str, column: str) -> int:
    """Unix seconds of a FOCUS date-time (ISO 8601; UTC where no offset is given)."""
    text = value.strip()
    if not text:
        raise ValueError(f"{column} is empty")
    try:
        parsed = datetime.fromisoformat(text.replace(" UTC", "Z"))
    except ValueError:  # its message quotes the cell: no cell text reaches the log
        raise ValueError(f"{column} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def _number(value: Any, column: str) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    text = str(value).strip()
    if not NUMBER.match(text):  # Decimal also reads "1_000" and non-ASCII digits
        raise ValueError(f"{column} is not a number")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{column} is not a number") from None
    if not number.is_finite() or abs(number) > MAX_AMOUNT:
        raise ValueError(f"{column} is not a finite number below 1e15")
    return number


def _text(row: Mapping[str, Any], column: str) -> str:
    value = row.get(column)
    if value is None:
        return ""
    text = str(value).strip()
    if not text.isprintable():  # no control characters in a label value
        text = "".join(ch for ch in text if ch.isprintable())
    return text[:MAX_LABEL_CHARS]


PeriodKey = tuple[str, str, str]
"""(provider label, BillingAccountId, BillingPeriodStart) of rows: the unit a run replaces."""


@dataclass
class FileDigest:
    """What one FOCUS file holds, summed per billing period, UTC day and series."""

    periods: dict[PeriodKey, dict[int, dict[SeriesKey, float]]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    watermark: float | None = None
    rows: int = 0
    kept: int = 0
    skipped: int = 0
    first_error: str = ""
    sums: int = 0


class _Lines:
    """The lines of a text stream, failing the read once a row (the lines between two
    :meth:`mark` calls) is longer than ``MAX_ROW_CHARS``, before that row is held whole."""

    def __init__(self, text: io.TextIOBase) -> None:
        self._text = text
        self._row_chars = 0
        self.number = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._text.readline(MAX_ROW_CHARS + 1 - self._row_chars)
        if not line:
            raise StopIteration
        self.number += 1
        self._row_chars += len(line)
        if self._row_chars > MAX_ROW_CHARS:
            raise ProviderError(
                "too_large", f"line {self.number}: a row longer than {MAX_ROW_CHARS} characters"
            )
        return line

    def mark(self) -> None:
        """A row ends here."""
        self._row_chars = 0


class ExportReader:
    """Reads FOCUS files into :class:`FileDigest` sums: what a provider account does each poll."""

    def __init__(self, options: FocusOptions, group_by: tuple[str, ...]) -> None:
        self.options = options
        self._by_project = "project" in group_by
        self._by_model = "model" in group_by
        self._unconvertible: set[str] = set()

    def rows(self, path: Path) -> Iterator[Mapping[str, Any]]:
        """The rows of ``path`` as mappings of column name to value."""
        name = path.name.lower()
        # Non-blocking: a FIFO put in place of a file must not hang the poll in open().
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with open(descriptor, "rb") as raw:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise ProviderError("parse", "not a regular file")
            stream = gzip.GzipFile(fileobj=raw) if name.endswith(".gz") else raw
            lines = _Lines(io.TextIOWrapper(stream, encoding="utf-8-sig", newline=""))
            if name.removesuffix(".gz").endswith(".jsonl"):
                for line in lines:
                    lines.mark()
                    if line.strip():
                        try:
                            item = json.loads(line)
                        except RecursionError:
                            raise ValueError(f"line {lines.number}: nested too deeply") from None
                        if not isinstance(item, dict):
                            raise ValueError("a line is not a JSON object")
                        yield item
            else:
                reader = csv.DictReader(lines)
                if len(reader.fieldnames or ()) > MAX_COLUMNS:
                    raise ProviderError("too_large", f"more than {MAX_COLUMNS} columns")
                for row in reader:
                    lines.mark()
                    yield row

    def digest(self, path: Path) -> FileDigest:
        """Every kept row of ``path``, summed; a malformed row is counted and left out."""
        digest = FileDigest()
        for row in self.rows(path):
            digest.rows += 1
            try:
                self._add(row, digest)
            except ValueError as exc:
                digest.skipped += 1
                if not digest.first_error:
                    digest.first_error = f"row {digest.rows}: {exc}"
            if digest.sums > MAX_SERIES:
                raise ProviderError("too_large", f"more than {MAX_SERIES} daily series")
        return digest

    def _add(self, row: Mapping[str, Any], digest: FileDigest) -> None:
        """Add ``row``'s cost and tokens, if it is kept. Every entry it adds counts in
        ``digest.sums`` (its billing period, its sums), so a file of rows that add nothing is
        bounded too."""
        category = _text(row, "ServiceCategory")
        service, sku = _text(row, "ServiceName"), _text(row, "SkuId")
        if not any(rule.matches(category, service, sku) for rule in self.options.match):
            return
        provider_name = _text(row, "ServiceProviderName") or _text(row, "ProviderName")
        if not provider_name:
            raise ValueError("neither ServiceProviderName nor ProviderName")
        provider = provider_label(provider_name)
        start = _time(str(row.get("ChargePeriodStart") or ""), "ChargePeriodStart")
        end_text = str(row.get("ChargePeriodEnd") or "")
        end = _time(end_text, "ChargePeriodEnd") if end_text.strip() else start + DAY
        day = day_start(start)
        cost = _number(row.get("BilledCost"), "BilledCost")
        currency = _text(row, "BillingCurrency").upper()
        if currency and not CURRENCY.match(currency):
            raise ValueError("BillingCurrency is not an ISO 4217 code")
        quantity = _number(row.get("ConsumedQuantity"), "ConsumedQuantity")
        multiplier = token_multiplier(_text(row, "ConsumedUnit"))
        model, token_type = "", None
        for column in SKU_COLUMNS:
            if _text(row, column):
                model, token_type = sku_meaning(_text(row, column))
                if token_type is not None:
                    break
        model = model or marketplace_model(service)
        project_id, project_name = _text(row, "SubAccountId"), _text(row, "SubAccountName")
        google_project = tags(row.get("x_Project"))
        if google_project:  # Google: SubAccountId is the billing account, the project this
            project_id = _text(google_project, "id")
            project_name = _text(google_project, "name")
        if not project_id:  # Vercel: the project is a tag
            labels = tags(row.get("Tags"))
            project_id = _text(labels, "ProjectId") or _text(labels, "projectId")
            project_name = _text(labels, "ProjectName") or _text(labels, "projectName")
        if not self._by_project:
            project_id = ""
        dims = Dims(project_id=project_id, model=model if self._by_model else "", provider=provider)
        additions: list[tuple[SeriesKey, float]] = []
        if cost:
            # Cut after lowering: lowering can lengthen a text ("İ" is two characters lowered).
            line_item = _text(row, "ChargeCategory").lower()[:MAX_LABEL_CHARS] or "usage"
            if currency in ("USD", ""):
                additions.append(((Family.BILLED_COST, dims, (line_item,)), float(cost)))
            elif currency in self.options.currency_rates:
                usd = cost * Decimal(str(self.options.currency_rates[currency]))
                additions.append(((Family.BILLED_COST, dims, (line_item,)), float(usd)))
            else:
                unconverted = (Family.UNCONVERTED_COST, dims, (currency.lower(),))
                additions.append((unconverted, float(cost)))
        if multiplier is not None and token_type is not None and quantity:
            tokens = float(quantity) * multiplier
            additions.append(((Family.TOKENS, dims, (token_type, "", "")), tokens))
        period = (provider, _text(row, "BillingAccountId"), _text(row, "BillingPeriodStart"))
        if period not in digest.periods:  # kept even empty: this run restates the period
            digest.periods[period] = {}
            digest.sums += 1
        if additions:
            if project_id and project_name:
                digest.names[project_id] = project_name
            series = digest.periods[period].setdefault(day, {})
            for key, value in additions:
                if key not in series:
                    digest.sums += 1
                series[key] = series.get(key, 0.0) + value
        digest.kept += 1
        digest.watermark = max(digest.watermark or 0.0, float(end))


@dataclass(frozen=True)
class _Seen:
    size: int
    mtime_ns: int
    digest: FileDigest


class FocusProvider:
    """A ``provider: focus`` account: the FOCUS files of one directory."""

    name: ClassVar[str] = "focus"
    needs_api_key: ClassVar[bool] = False
    provider_labels: ClassVar[tuple[str, ...]] = tuple(sorted(set(PROVIDER_NAMES.values())))
    """The ``provider`` labels its series carry besides ``focus`` (budgets may match them)."""
    estimates: ClassVar[bool] = False
    """Its rows carry the cloud's own price: list-price estimates would only mislead."""
    expected_lag: ClassVar[Mapping[Dataset, float]] = {
        Dataset.COST: 3 * DAY,
        Dataset.USAGE: 3 * DAY,
    }
    """The clouds export a day's charges within 24-48 hours (and restate them later)."""
    Options: ClassVar[type[FocusOptions]] = FocusOptions
    default_settle_window: ClassVar[str] = "31d"
    """Clouds restate a month's days until its invoice: every poll re-reads the whole month
    (from the files already parsed, so it costs nothing)."""

    def __init__(self, settings: ProviderSettings, *, observe: RequestObserver, **_: Any) -> None:
        options = settings.options
        if not isinstance(options, FocusOptions):
            options = FocusOptions.model_validate(options or {})
        self.options = options
        self._account = settings.account
        self._reader = ExportReader(options, settings.group_by)
        self._seen: dict[Path, _Seen] = {}

    async def fetch(self, start: int, end: int) -> FetchResult:
        """Cost and tokens of every UTC day in ``[start, end)`` from the newest run of each
        billing period (the files are read in a thread: a large export takes seconds)."""
        reader = DatasetReader()
        names: dict[str, str] = {}

        async def read() -> list[Batch]:
            batches, found = await asyncio.to_thread(self.read, start, end)
            names.update(found)
            return batches

        await reader.read((Dataset.COST, Dataset.USAGE), read)
        return reader.result(names)

    def read(self, start: int, end: int) -> tuple[list[Batch], dict[str, str]]:
        """The cost and usage batches of ``[start, end)``, and the sub-account names."""
        digests = self._digests()
        newest: dict[PeriodKey, tuple[int, Path]] = {}
        for path, seen in digests.items():
            for period in seen.digest.periods:
                run = (seen.mtime_ns, path.parent)
                if period not in newest or run > newest[period]:
                    newest[period] = run
        winner = {period: parent for period, (_, parent) in newest.items()}
        cost = Batch(Dataset.COST, start, end)
        usage = Batch(Dataset.USAGE, start, end)
        names: dict[str, str] = {}
        skipped, first_error = 0, ""
        watermark: float | None = None
        for path, seen in sorted(digests.items()):
            digest = seen.digest
            names.update(digest.names)
            skipped += digest.skipped
            if digest.skipped and not first_error:
                first_error = f"{path.name}: {digest.first_error}"
            for period, days in digest.periods.items():
                if winner[period] != path.parent:
                    continue  # an older run of this billing period: restated since
                for day, series in days.items():
                    if not start <= day < end:
                        continue
                    for key, value in series.items():
                        batch = usage if key[0] is Family.TOKENS else cost
                        batch.add(day, key, value)
            if digest.watermark is not None:
                watermark = max(watermark or 0.0, min(digest.watermark, float(end)))
        for batch in (cost, usage):
            batch.watermark = watermark
        cost.skipped_rows, cost.skipped_error = skipped, first_error
        self._warn_unconverted(cost)
        return [cost, usage], names

    def _digests(self) -> dict[Path, _Seen]:
        """Every export file's sums, reading only the files new or changed since last time."""
        files = export_files(self.options.directory, self.options.max_files)
        seen: dict[Path, _Seen] = {}
        for path in files:
            try:
                status = path.stat()
            except OSError:
                continue  # removed while listed
            cached = self._seen.get(path)
            if cached is not None and (cached.size, cached.mtime_ns) == (
                status.st_size,
                status.st_mtime_ns,
            ):
                seen[path] = cached
                continue
            where = path.relative_to(self.options.directory)
            try:
                digest = self._reader.digest(path)
            except ProviderError as err:
                raise ProviderError(err.reason, f"{where}: {err}") from None
            except csv.Error as exc:  # its messages name no cell text
                raise ProviderError("parse", f"{where}: not CSV ({exc})") from None
            except (OSError, EOFError, gzip.BadGzipFile, zlib.error, UnicodeDecodeError) as exc:
                # A file still being copied, or not a FOCUS file: this read fails, the last
                # good data stays published, and the next poll tries again.
                kind = "corrupt data" if isinstance(exc, zlib.error) else type(exc).__name__
                problem = f"{where}: cannot read ({kind})"
                raise ProviderError("parse", problem) from None
            except ValueError as exc:
                raise ProviderError("parse", f"{where}: {exc}") from None
            seen[path] = _Seen(status.st_size, status.st_mtime_ns, digest)
        self._seen = seen
        return seen

    def _warn_unconverted(self, batch: Batch) -> None:
        currencies = {
            key[2][0]
            for series in batch.days.values()
            for key in series
            if key[0] is Family.UNCONVERTED_COST
        }
        new = sorted(currencies - self._reader._unconvertible)
        if new:
            self._reader._unconvertible.update(new)
            logger.warning(
                "account %s: FOCUS rows billed in %s are exported as "
                "aicost_unconverted_cost_total, not in US dollars (set options.currency_rates)",
                self._account,
                ", ".join(c.upper() for c in new),
            )

    async def aclose(self) -> None:
        """Nothing to release."""

    def redact(self, text: str) -> str:
        """No key is involved: only key-like text is scrubbed, and the length cut."""
        return redact(text)


def export_files(directory: Path, max_files: int) -> list[Path]:
    """The FOCUS files under ``directory`` (hidden ones, symbolic links to directories and
    anything but regular files left out), in name order; more than ``max_files`` fails the
    read."""
    if not directory.is_dir():
        raise ProviderError("parse", f"{directory} is not a directory")
    found: list[Path] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or not name.lower().endswith(SUFFIXES):
                continue
            path = Path(root) / name
            try:
                regular = stat.S_ISREG(path.stat().st_mode)
            except OSError:
                continue  # removed while listed, or a dangling link
            if not regular:
                continue  # a FIFO or device named *.csv: reading it could block forever
            found.append(path)
            if len(found) > max_files:
                raise ProviderError(
                    "too_large", f"{directory}: more than {max_files} files (options.max_files)"
                )
    return found
