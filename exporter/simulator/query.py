"""Query-string parsing shared by both fake providers, and the error they raise."""

from __future__ import annotations

from urllib.parse import parse_qsl


class ApiError(Exception):
    """An error answer; each provider module renders it in its own envelope."""

    def __init__(
        self, status: int, message: str, param: str | None = None, kind: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.kind = kind


class Query:
    """A parsed query string accepting both ``x[]=a&x[]=b`` and ``x=a&x=b`` arrays."""

    def __init__(self, raw: str) -> None:
        self.values: dict[str, list[str]] = {}
        for key, value in parse_qsl(raw, keep_blank_values=True):
            name = key[:-2] if key.endswith("[]") else key
            self.values.setdefault(name, []).append(value)

    def one(self, name: str) -> str | None:
        """The last value of a scalar parameter, or None if absent."""
        found = self.values.get(name)
        return found[-1] if found else None

    def many(self, name: str) -> list[str]:
        """All values of an array parameter (either encoding)."""
        return self.values.get(name, [])

    def required(self, name: str) -> str:
        """A scalar parameter that must be present and non-empty."""
        value = self.one(name)
        if not value:
            raise ApiError(400, f"{name}: required parameter is missing", name)
        return value

    def integer(self, name: str, default: int | None = None) -> int | None:
        """An integer parameter (``default`` if absent)."""
        value = self.one(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise ApiError(400, f"{name}: expected an integer, got {value!r}", name) from None

    def limit(self, default: int, maximum: int) -> int:
        """The ``limit`` parameter checked against ``1..maximum``."""
        limit = self.integer("limit", default)
        assert limit is not None
        if not 1 <= limit <= maximum:
            raise ApiError(400, f"limit: must be between 1 and {maximum}, got {limit}", "limit")
        return limit

    def boolean(self, name: str) -> bool | None:
        """A ``true``/``false`` parameter, None if absent."""
        value = self.one(name)
        if value is None:
            return None
        lowered = value.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise ApiError(400, f"{name}: expected true or false, got {value!r}", name)

    def choices(self, name: str, allowed: tuple[str, ...]) -> list[str]:
        """An array parameter whose every value must be one of ``allowed``."""
        values = self.many(name)
        for value in values:
            if value not in allowed:
                raise ApiError(
                    400, f"{name}: invalid value {value!r}; allowed: {', '.join(allowed)}", name
                )
        return values
