"""``ai-cost-exporter report``: a month's daily spend of every account, for chargeback.

One row per UTC day, provider, account, project and model. A day of an account whose provider
billed anything is reported as billed (``BilledCost``, the provider's own figure); a day without
billed cost (it is not settled yet, or the provider has no cost API) as estimated: ``BilledCost``
0, the estimate in ``EffectiveCost``, and ``x_CostSource`` says which. Summed over the report,
``BilledCost`` is ``aicost_billed_cost_usd_total`` less ``aicost_billed_credit_usd_total`` of
that month (a day's credits are netted into its rows).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from exporter.config.schema import Config
from exporter.core.ledger import next_month_start
from exporter.core.records import DAY, Family
from exporter.history.collect import AccountMonth, HistoryError, read_history
from exporter.sources.subscriptions import SUBSCRIPTION_LINE_ITEM

FORMATS = ("focus", "focus-1.0", "csv", "json")
PROVIDER_NAMES = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "chatgpt": "OpenAI",
    "cursor": "Cursor",
    "deepseek": "DeepSeek",
    "fireworks": "Fireworks AI",
    "github_copilot": "GitHub",
    "groq": "Groq",
    "mistral": "Mistral AI",
    "openrouter": "OpenRouter",
    "xai": "xAI",
    "aws": "AWS",
    "azure": "Microsoft",
    "gcp": "Google Cloud",
    "vercel": "Vercel",
}
"""FOCUS ``ProviderName`` of each ``provider`` label (another label is written as it is)."""
FOCUS_COLUMNS = (
    # FOCUS 1.2 Cost and Usage columns (mandatory and those that apply), then the 1.3 names
    "AvailabilityZone", "BilledCost", "BillingAccountId", "BillingAccountName",
    "BillingAccountType", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart",
    "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd",
    "ChargePeriodStart", "CommitmentDiscountCategory", "CommitmentDiscountId",
    "CommitmentDiscountName", "CommitmentDiscountStatus", "CommitmentDiscountType",
    "ConsumedQuantity", "ConsumedUnit", "ContractedCost", "ContractedUnitPrice", "EffectiveCost",
    "InvoiceIssuerName", "ListCost", "ListUnitPrice", "PricingCategory", "PricingQuantity",
    "PricingUnit", "ProviderName", "PublisherName", "RegionId", "RegionName", "ResourceId",
    "ResourceName", "ResourceType", "ServiceCategory", "ServiceName", "ServiceSubcategory",
    "SkuId", "SkuPriceId", "SubAccountId", "SubAccountName", "SubAccountType", "Tags",
    "ServiceProviderName", "HostProviderName", "x_CostSource", "x_EstimatedCost",
)  # fmt: skip
FOCUS_1_0_NAMES = {
    "InvoiceIssuer": "InvoiceIssuerName",
    "Provider": "ProviderName",
    "Publisher": "PublisherName",
    "ResourceID": "ResourceId",
    "ChargeType": "ChargeCategory",
}
"""``focus-1.0``: the names focus-validator 1.0.0 checks as FOCUS 1.0 (those of its drafts),
written besides the 1.2 ones."""
CSV_COLUMNS = (
    "date", "provider", "account", "project_id", "project", "model", "cost_source",
    "billed_cost_usd", "estimated_cost_usd", "effective_cost_usd", "tokens",
)  # fmt: skip


class ReportError(Exception):
    """The report cannot be written (a bad month, a provider that failed)."""


@dataclass
class ReportRow:
    """One day of one account's spend on one project and model."""

    day: int
    provider: str
    account: str
    project_id: str
    project: str
    model: str
    billed: float = 0.0
    estimated: float = 0.0
    tokens: float = 0.0
    source: str = "estimated"
    line_items: set[str] = field(default_factory=set)

    @property
    def effective(self) -> float:
        """The day's spend on the basis it is reported on (billed, else the estimate)."""
        return self.billed if self.source == "billed" else self.estimated


def parse_month(text: str, now: float) -> tuple[int, int]:
    """``[start, end)`` of month ``YYYY-MM``, the end cut at ``now`` for the current month."""
    try:
        start = datetime.strptime(text, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise ReportError(f"--month {text!r}: expected YYYY-MM, e.g. 2026-11") from None
    first = int(start.timestamp())
    if first > now:
        raise ReportError(f"--month {text}: the month has not started")
    return first, min(next_month_start(first), int(now))


REPORTED = frozenset(
    (Family.BILLED_COST, Family.BILLED_CREDIT, Family.ESTIMATED_COST, Family.TOKENS)
)


def report_rows(months: Iterable[AccountMonth]) -> list[ReportRow]:
    """The rows of every account-month, by day, provider, account, project and model."""
    rows: list[ReportRow] = []
    for month in months:
        for day in sorted(month.days):
            by_key: dict[tuple[str, str, str], ReportRow] = {}
            for (family, dims, labels), value in month.days[day].items():
                if family not in REPORTED:
                    continue
                provider = dims.provider or month.provider
                key = (provider, dims.project_id, dims.model)
                row = by_key.get(key)
                if row is None:
                    name = month.project_names.get(dims.project_id, dims.project_id)
                    row = by_key[key] = ReportRow(
                        day, provider, month.account, dims.project_id, name, dims.model
                    )
                if family in (Family.BILLED_COST, Family.BILLED_CREDIT):  # a credit: net
                    row.billed += value if family is Family.BILLED_COST else -value
                    row.line_items.add(labels[0] if labels else "")
                elif family is Family.ESTIMATED_COST:
                    row.estimated += value
                else:
                    row.tokens += value
            billed_day = any(row.billed for row in by_key.values())
            for key in sorted(by_key):
                row = by_key[key]
                row.source = "billed" if billed_day else "estimated"
                if row.billed or row.estimated or row.tokens:
                    rows.append(row)
    return rows


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _decimal(value: float) -> str:
    """A decimal with a point (a reader infers a column of whole numbers as integers)."""
    text = f"{value:.10f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def focus_record(row: ReportRow, period: tuple[int, int]) -> dict[str, str]:
    """``row`` as a FOCUS 1.2 row (with the 1.3 provider names)."""
    name = PROVIDER_NAMES.get(row.provider, row.provider)
    purchase = row.line_items == {SUBSCRIPTION_LINE_ITEM}
    sku = f"{row.provider}:{row.model}" if row.model else row.provider
    cost = row.effective
    tokens = _decimal(row.tokens) if row.tokens else ""
    tags = {"account": row.account, "project": row.project, "model": row.model}
    return {
        "BilledCost": _decimal(row.billed),  # 0 on a day without billed cost
        "BillingAccountId": row.account,
        "BillingAccountName": row.account,
        "BillingCurrency": "USD",
        "BillingPeriodStart": _iso(period[0]),
        "BillingPeriodEnd": _iso(period[1]),
        "ChargeCategory": "Purchase" if purchase else "Usage",
        "ChargeDescription": f"{row.model or 'spend'} on {name}"
        + (f", project {row.project}" if row.project else ""),
        "ChargeFrequency": "Recurring" if purchase else "Usage-Based",
        "ChargePeriodStart": _iso(row.day),
        "ChargePeriodEnd": _iso(row.day + DAY),
        "ConsumedQuantity": tokens,
        "ConsumedUnit": "Tokens" if tokens else "",
        "ContractedCost": _decimal(cost),
        "EffectiveCost": _decimal(cost),
        "InvoiceIssuerName": name,
        "ListCost": _decimal(cost),
        "PricingCategory": "Standard",
        "PricingQuantity": tokens,
        "PricingUnit": "Tokens" if tokens else "",
        "ProviderName": name,
        "PublisherName": name,
        "ServiceCategory": "AI and Machine Learning",
        "ServiceName": name,
        "ServiceSubcategory": "Generative AI",
        "SkuId": sku,
        "SkuPriceId": sku,
        "SubAccountId": row.project_id,
        "SubAccountName": row.project,
        "Tags": json.dumps({k: v for k, v in tags.items() if v}, sort_keys=True),
        "ServiceProviderName": name,
        "HostProviderName": name,
        "x_CostSource": row.source,
        "x_EstimatedCost": _decimal(row.estimated),
    }


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def spreadsheet_safe(record: Mapping[str, object]) -> dict[str, object]:
    """``record`` with every text a spreadsheet would run as a formula (it starts with
    ``= + - @``, a tab or a carriage return) behind a ``'``, which shows it as text, and a
    carriage return written as a line feed (the writer quotes a field holding its line end,
    ``\\n``, but not a lone ``\\r``, which readers then take for the end of the row).

    Project, model and account names come from whoever may name them in the provider's
    organisation, and a chargeback CSV is opened in a spreadsheet; numbers (a credit's
    ``-3.0``) are left as they are."""
    return {key: _safe_cell(value) for key, value in record.items()}


def _safe_cell(value: object) -> object:
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_START) and not PLAIN_NUMBER.fullmatch(value):
        value = "'" + value
    return value.replace("\r", "\n")


def write_report(rows: Sequence[ReportRow], period: tuple[int, int], fmt: str, out: TextIO) -> None:
    """``rows`` in ``fmt`` (see :data:`FORMATS`)."""
    if fmt in ("focus", "focus-1.0"):
        columns = list(FOCUS_COLUMNS)
        if fmt == "focus-1.0":
            columns += list(FOCUS_1_0_NAMES)
        writer = csv.DictWriter(out, columns, restval="", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            record = focus_record(row, period)
            if fmt == "focus-1.0":
                record.update({old: record.get(new, "") for old, new in FOCUS_1_0_NAMES.items()})
            writer.writerow(spreadsheet_safe(record))
        return
    records = [
        {
            "date": datetime.fromtimestamp(row.day, UTC).strftime("%Y-%m-%d"),
            "provider": row.provider,
            "account": row.account,
            "project_id": row.project_id,
            "project": row.project,
            "model": row.model,
            "cost_source": row.source,
            "billed_cost_usd": round(row.billed, 10),
            "estimated_cost_usd": round(row.estimated, 10),
            "effective_cost_usd": round(row.effective, 10),
            "tokens": round(row.tokens),
        }
        for row in rows
    ]
    if fmt == "json":
        month = datetime.fromtimestamp(period[0], UTC).strftime("%Y-%m")
        json.dump({"month": month, "currency": "USD", "rows": records}, out, indent=1)
        out.write("\n")
    else:
        writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(spreadsheet_safe(record) for record in records)


def run_report(config: Config, month: str, fmt: str, out: Path | None) -> int:
    """The ``report`` command: 0 once written, 1 (and nothing written) on an error."""
    try:
        period = parse_month(month, time.time())
        warnings: list[str] = []
        rows = report_rows(asyncio.run(read_history(config, *period, warnings=warnings)))
    except (ReportError, HistoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    buffer = io.StringIO()
    write_report(rows, (period[0], next_month_start(period[0])), fmt, buffer)
    if out is None:
        sys.stdout.write(buffer.getvalue())
    else:
        try:
            out.write_text(buffer.getvalue(), encoding="utf-8")
        except OSError as exc:
            print(f"error: --out {out}: {exc.strerror or type(exc).__name__}", file=sys.stderr)
            return 1
    total = sum(row.billed for row in rows if row.source == "billed")
    print(
        f"{len(rows)} row(s) for {month}: billed ${total:.2f}, "
        f"best ${sum(row.effective for row in rows):.2f}",
        file=sys.stderr,
    )
    return 0
