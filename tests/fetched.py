"""Assertions on one provider poll's FetchResult, shared by the provider tests."""

from __future__ import annotations

from exporter.core.records import Batch, Dataset, FetchResult
from exporter.sources.providers.base import ProviderError


def only_failure(result: FetchResult, key: str) -> ProviderError:
    """The one error of the poll's failed dataset(s): one error object, never quoting ``key``."""
    errors = {id(err): err for err in result.failures.values()}
    assert len(errors) == 1, result.failures
    (err,) = errors.values()
    assert isinstance(err, ProviderError)
    assert key not in str(err)
    return err


def batch_of(result: FetchResult, dataset: Dataset) -> Batch:
    """The poll's batch of ``dataset`` (there must be exactly one)."""
    (found,) = [b for b in result.batches if b.dataset is dataset]
    return found
