"""Provider clients, keyed by the value of the ``provider`` label.

Adding a provider = one module + one line in :data:`PROVIDERS`.
"""

from __future__ import annotations

from exporter.sources.providers.anthropic import AnthropicProvider
from exporter.sources.providers.base import (
    Provider,
    ProviderError,
    ProviderFactory,
    ProviderSettings,
)
from exporter.sources.providers.chatgpt import ChatGPTProvider
from exporter.sources.providers.cursor import CursorProvider
from exporter.sources.providers.deepseek import DeepSeekProvider
from exporter.sources.providers.fireworks import FireworksProvider
from exporter.sources.providers.focus import FocusProvider
from exporter.sources.providers.github_copilot import GitHubCopilotProvider
from exporter.sources.providers.groq import GroqProvider
from exporter.sources.providers.mistral import MistralProvider
from exporter.sources.providers.openai import OpenAIProvider
from exporter.sources.providers.openrouter import OpenRouterProvider
from exporter.sources.providers.xai import XAIProvider

PROVIDERS: dict[str, ProviderFactory] = {
    OpenAIProvider.name: OpenAIProvider,
    AnthropicProvider.name: AnthropicProvider,
    GitHubCopilotProvider.name: GitHubCopilotProvider,
    OpenRouterProvider.name: OpenRouterProvider,
    DeepSeekProvider.name: DeepSeekProvider,
    GroqProvider.name: GroqProvider,
    CursorProvider.name: CursorProvider,
    FireworksProvider.name: FireworksProvider,
    XAIProvider.name: XAIProvider,
    MistralProvider.name: MistralProvider,
    ChatGPTProvider.name: ChatGPTProvider,
    FocusProvider.name: FocusProvider,
}

__all__ = ["PROVIDERS", "Provider", "ProviderError", "ProviderFactory", "ProviderSettings"]
