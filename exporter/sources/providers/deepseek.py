"""DeepSeek: the account balance (its only reporting endpoint).

DeepSeek has no usage or cost history API, so every poll returns only the balance:
``aicost_credits_remaining_usd``, and ``is_available`` as ``aicost_credits_available``.
A balance in another currency (CNY) is converted only with a configured rate: never
relabelled.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from exporter.core.records import Batch, Dataset, Dims, Family, FetchResult
from exporter.sources.providers.base import DatasetReader, ProviderError, ProviderSettings
from exporter.sources.providers.client import HttpProvider, objects
from exporter.sources.providers.fields import CurrencyRates, label, money

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.deepseek.com"
BALANCE_PATH = "/user/balance"


class DeepSeekOptions(BaseModel):
    """``options:`` of a DeepSeek account."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    currency_rates: CurrencyRates = Field(default_factory=dict)
    """US dollars per unit of each non-USD currency, e.g. ``{CNY: 0.14}``."""


def _total(info: Mapping[str, Any], where: str) -> Decimal | None:
    """``total_balance``, else granted plus topped-up; None if neither is there."""
    if info.get("total_balance") is not None:
        return money(info["total_balance"], where)
    parts = (info.get("granted_balance"), info.get("topped_up_balance"))
    if any(part is None for part in parts):
        return None
    return sum((money(part, where) for part in parts), Decimal(0))


class DeepSeekProvider(HttpProvider):
    """Client for one DeepSeek account (API key)."""

    name: ClassVar[str] = "deepseek"

    default_base_url: ClassVar[str] = DEFAULT_BASE_URL

    Options: ClassVar[type[DeepSeekOptions]] = DeepSeekOptions

    options: DeepSeekOptions

    def __init__(self, settings: ProviderSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._account = settings.account
        self._warned: set[str] = set()

    @staticmethod
    def auth_headers(key: str) -> Mapping[str, str]:
        """Bearer API key."""
        return {"Authorization": f"Bearer {key}"}

    async def fetch(self, start: int, end: int) -> FetchResult:
        """The balance as a gauge (in USD), no usage: DeepSeek keeps no history."""
        reader = DatasetReader()
        await reader.read_one(Dataset.BALANCE, self._balance)
        return reader.result()

    async def _balance(self) -> Batch:
        # Every field of the reply is optional in DeepSeek's schema: what is missing is not
        # published, and never read as 0.
        body = await self._api.get_json(BALANCE_PATH, {})
        where = f"GET {BALANCE_PATH}"
        batch = Batch(Dataset.BALANCE, 0, 0)
        available = body.get("is_available")
        if isinstance(available, bool):
            batch.gauges[Family.CREDITS_AVAILABLE, Dims(), ()] = float(available)
        elif available is not None:
            raise ProviderError("parse", f"{where}: 'is_available' is not a boolean")
        if not body.get("balance_infos"):  # absent, null or empty: the balance is unknown
            if body.get("balance_infos") not in (None, []):
                objects(body, "balance_infos", where)  # the precise parse error
            return batch
        total = Decimal(0)
        unconvertible: list[str] = []
        missing: list[str] = []
        for info in objects(body, "balance_infos", where):
            # Logged when it cannot be converted: a provider's string, so short and plain.
            currency = "".join(filter(str.isalnum, label(info, "currency", where) or ""))[:8]
            currency = currency.upper()
            amount = _total(info, where)
            if amount is None:
                missing.append(currency or "?")
            elif currency == "USD":
                total += amount
            elif currency in self.options.currency_rates:
                total += amount * Decimal(str(self.options.currency_rates[currency]))
            elif amount:
                unconvertible.append(currency or "?")
        if missing:
            # A partial sum would understate the balance: publish nothing instead.
            logger.warning(
                "account %s: a DeepSeek balance (%s) has no amount; not exporting "
                "aicost_credits_remaining_usd",
                self._account,
                ", ".join(sorted(set(missing))),
            )
        elif unconvertible:
            self._warn(unconvertible)
        else:
            batch.gauges[Family.CREDITS_REMAINING, Dims(), ()] = float(total)
        return batch

    def _warn(self, currencies: list[str]) -> None:
        new = sorted(set(currencies) - self._warned)
        level = logging.WARNING if new else logging.DEBUG
        self._warned.update(currencies)
        logger.log(
            level,
            "account %s: DeepSeek balance in %s cannot be converted to USD; not exporting "
            "aicost_credits_remaining_usd (set options.currency_rates, e.g. {CNY: 0.14})",
            self._account,
            ", ".join(sorted(set(currencies))),
        )
