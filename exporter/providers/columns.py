"""Column-wise parsing of well-formed usage buckets.

A busy organization's usage report has thousands of rows per day. When every
row of a bucket is well-formed, its counts are read column by column with
C-level ``map``/``zip`` and each row becomes one vector of a
:class:`~exporter.records.SeriesGroup`. A parser falls back to its row-by-row
path for anything else, which also gives the precise error for a bad row.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Hashable, Sequence
from typing import Any, cast

from exporter.providers.base import ProviderError
from exporter.records import Batch, SeriesGroup

_INT = {int}

GroupBuilder = Callable[[tuple[Any, ...], Hashable, str], SeriesGroup]
"""Builds the group of raw label values for a variant (raising ProviderError if invalid)."""


def int_columns(
    rows: Sequence[Any], getters: Sequence[Callable[[Any], Any]]
) -> list[list[int]] | None:
    """Each getter's column if every value is present and a non-negative int (not a bool)."""
    try:
        columns = [list(map(get, rows)) for get in getters]
    except (KeyError, TypeError):
        return None
    if set(map(type, itertools.chain.from_iterable(columns))) != _INT:
        return None
    if columns and rows and min(map(min, columns)) < 0:
        return None
    return columns


class GroupMemo:
    """Each row's group from its raw label values, built once per distinct labels."""

    def __init__(self, build: GroupBuilder) -> None:
        self._build = build
        self._known: dict[Hashable, dict[tuple[Any, ...], SeriesGroup]] = {}

    def groups(
        self, labels: list[tuple[Any, ...]], variant: Hashable, where: str
    ) -> list[SeriesGroup] | None:
        """The group of every row, or None if some labels are not valid (go row by row)."""
        known = self._known.setdefault(variant, {})
        try:
            groups = list(map(known.get, labels))
        except TypeError:  # a list or object where a label belongs
            return None
        if None not in groups:
            return cast(list[SeriesGroup], groups)
        for raw in set(itertools.compress(labels, map(operator.not_, groups))):
            try:
                known[raw] = self._build(raw, variant, where)
            except ProviderError:  # the row-wise path reports the first bad row
                return None
        return list(map(known.__getitem__, labels))


def add_rows(
    batch: Batch, day: int, groups: list[SeriesGroup], columns: Sequence[Sequence[float]]
) -> None:
    """Add row ``i`` of ``columns`` as a vector of ``groups[i]`` on UTC ``day``."""
    if day not in batch.rows:
        rows = dict(zip(groups, zip(*columns, strict=True), strict=True))
        if len(rows) == len(groups):  # one row per group: the usual case
            batch.rows[day] = rows
            return
    for group, values in zip(groups, zip(*columns, strict=True), strict=True):
        batch.add_row(day, group, values)
