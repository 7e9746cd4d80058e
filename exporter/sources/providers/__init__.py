"""Provider clients, keyed by the value of the ``provider`` label.

Adding a provider = one module + one line in :data:`PROVIDERS`. A provider's module is
imported the first time its class is looked up, so a daemon holds only the clients its
accounts use (each module is 0.1-0.5 MB of RSS; the FOCUS reader brings csv and gzip).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from exporter.sources.providers.base import (
    Provider,
    ProviderError,
    ProviderFactory,
    ProviderSettings,
)


class LazyRegistry(Mapping[str, ProviderFactory]):
    """``name -> provider class``, importing ``module:Class`` at the first lookup of a name."""

    def __init__(self, locations: Mapping[str, str]) -> None:
        self._locations = dict(locations)
        self._loaded: dict[str, ProviderFactory] = {}

    def __getitem__(self, name: str) -> ProviderFactory:
        loaded = self._loaded.get(name)
        if loaded is None:
            module, _, attribute = self._locations[name].partition(":")
            loaded = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
            self._loaded[name] = loaded
        return loaded

    def __iter__(self) -> Iterator[str]:
        return iter(self._locations)

    def __len__(self) -> int:
        return len(self._locations)


PROVIDERS: Mapping[str, ProviderFactory] = LazyRegistry(
    {
        "openai": "openai:OpenAIProvider",
        "anthropic": "anthropic:AnthropicProvider",
        "github_copilot": "github_copilot:GitHubCopilotProvider",
        "openrouter": "openrouter:OpenRouterProvider",
        "deepseek": "deepseek:DeepSeekProvider",
        "groq": "groq:GroqProvider",
        "cursor": "cursor:CursorProvider",
        "fireworks": "fireworks:FireworksProvider",
        "xai": "xai:XAIProvider",
        "mistral": "mistral:MistralProvider",
        "chatgpt": "chatgpt:ChatGPTProvider",
        "focus": "focus:FocusProvider",
    }
)

__all__ = [
    "PROVIDERS",
    "LazyRegistry",
    "Provider",
    "ProviderError",
    "ProviderFactory",
    "ProviderSettings",
]
