"""Provider clients, keyed by the value of the ``provider`` label.

Adding a provider = one module + one line in :data:`PROVIDERS`.
"""

from __future__ import annotations

from exporter.providers.anthropic import AnthropicProvider
from exporter.providers.base import Provider, ProviderError, ProviderFactory, ProviderSettings
from exporter.providers.openai import OpenAIProvider

PROVIDERS: dict[str, ProviderFactory] = {
    OpenAIProvider.name: OpenAIProvider,
    AnthropicProvider.name: AnthropicProvider,
}

__all__ = ["PROVIDERS", "Provider", "ProviderError", "ProviderFactory", "ProviderSettings"]
