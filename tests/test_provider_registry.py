"""The provider registry: a name per provider module, each loaded at its first lookup (#19)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.sources.providers import PROVIDERS, LazyRegistry

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_each_name_loads_the_provider_of_that_name(name: str) -> None:
    assert PROVIDERS[name].name == name  # type: ignore[attr-defined]


def test_an_unknown_name_is_a_key_error_and_not_an_import() -> None:
    registry = LazyRegistry({"openai": "openai:OpenAIProvider"})
    with pytest.raises(KeyError):
        registry["nonexistent"]
    assert registry.get("nonexistent") is None and list(registry) == ["openai"]


def test_looking_up_one_provider_imports_no_other() -> None:
    done = subprocess.run(
        [sys.executable, "-c",
         "import json, sys\n"
         "from exporter.sources.providers import PROVIDERS\n"
         "PROVIDERS['anthropic']\n"
         "print(json.dumps(sorted(m.rsplit('.', 1)[1] for m in sys.modules\n"
         "                        if m.startswith('exporter.sources.providers.'))))\n"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    loaded = set(json.loads(done.stdout))
    others = {location.partition(":")[0] for location in _locations()} - {"anthropic"}
    assert "anthropic" in loaded and loaded & others == set()


def _locations() -> list[str]:
    registry = PROVIDERS
    assert isinstance(registry, LazyRegistry)
    return list(registry._locations.values())
