"""Filtering and grouping of stream totals and cost lines into served results."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from .catalog import DimValue, Stream
from .costs import CostLine

GroupKey = tuple[DimValue, ...]
Filters = Mapping[str, set[DimValue]]


def _sort_key(key: GroupKey) -> tuple[str, ...]:
    return tuple("" if v is None else str(v) for v in key)


def _selected(fields: Mapping[str, DimValue], filters: Filters) -> bool:
    return all(fields.get(dim) in allowed for dim, allowed in filters.items())


def group_streams(
    streams: Sequence[Stream],
    totals: Sequence[tuple[int, ...] | None],
    kind: str,
    filters: Filters,
    group_by: Sequence[str],
) -> list[tuple[GroupKey, list[int]]]:
    """Sum the totals of ``kind`` streams passing ``filters``, per ``group_by`` key."""
    acc: dict[GroupKey, list[int]] = {}
    for stream, values in zip(streams, totals, strict=True):
        if values is None or stream.kind != kind or not _selected(stream.dims, filters):
            continue
        key = tuple(stream.dims.get(dim) for dim in group_by)
        current = acc.get(key)
        if current is None:
            acc[key] = list(values)
        else:
            for i, x in enumerate(values):
                current[i] += x
    return sorted(acc.items(), key=lambda item: _sort_key(item[0]))


def group_costs(
    lines: Iterable[CostLine], filters: Filters, group_by: Sequence[str]
) -> list[tuple[GroupKey, Decimal, int, CostLine]]:
    """Sum cost lines per ``group_by`` key: (key, amount, quantity, a sample line)."""
    acc: dict[GroupKey, tuple[Decimal, int, CostLine]] = {}
    for line in lines:
        if not _selected(line.fields, filters):
            continue
        key = tuple(line.fields.get(dim) for dim in group_by)
        old = acc.get(key)
        if old is None:
            acc[key] = (line.amount, line.quantity, line)
        else:
            acc[key] = (old[0] + line.amount, old[1] + line.quantity, old[2])
    ordered = sorted(acc.items(), key=lambda item: _sort_key(item[0]))
    return [(key, amount, quantity, sample) for key, (amount, quantity, sample) in ordered]
