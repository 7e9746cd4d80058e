"""Fake provider admin usage/cost APIs (OpenAI, Anthropic) for the demo and integration tests.

>>> with Simulator(seed=1) as sim:  # doctest: +SKIP
...     sim.openai_base_url  # 'http://127.0.0.1:PORT/openai/v1'
"""

from __future__ import annotations

from .control import Simulator
from .faults import KINDS as FAULT_KINDS

__all__ = ["FAULT_KINDS", "Simulator"]
