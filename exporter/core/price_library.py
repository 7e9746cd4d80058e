"""genai-prices' price modules, without the package ``__init__`` until something needs it.

The package's ``__init__`` imports its auto-updater, and with it a second HTTP client (httpx2,
about 1 MB of RSS in a daemon of about 50), even when ``pricing.auto_update`` is
off. The modules the estimates use (``types``, ``data_snapshot``, ``data``) do not need it.
So the package is registered without running its ``__init__``; the first lookup of a name the
``__init__`` defines (``UpdatePrices``, ``calc_price``, ...) runs it, in the same module object,
for the auto-updater or anyone else importing the library in this process.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import threading
from types import ModuleType

PACKAGE = "genai_prices"


def _register_package() -> None:
    if PACKAGE in sys.modules:
        return
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        raise ImportError(f"{PACKAGE} is not installed")
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader
    locations = list(spec.submodule_search_locations)

    lock = threading.RLock()
    started = False

    def complete(name: str) -> object:
        nonlocal started
        # A submodule is left to the import system, which imports it on its own.
        if importlib.machinery.PathFinder.find_spec(f"{PACKAGE}.{name}", locations) is not None:
            raise AttributeError(name)
        with lock:  # threads asking at once wait for the one running the __init__
            if not started:
                started = True
                loader.exec_module(module)
                del module.__dict__["__getattr__"]
        try:
            return module.__dict__[name]
        except KeyError:
            raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}") from None

    module.__dict__["__getattr__"] = complete
    sys.modules[PACKAGE] = module


def package() -> ModuleType:
    """The whole ``genai_prices`` package, its ``__init__`` run."""
    _register_package()
    module = sys.modules[PACKAGE]
    module.UpdatePrices  # noqa: B018  (a name of the __init__: runs it if it has not run)
    return module


_register_package()

from genai_prices import data_snapshot  # noqa: E402  (after the registration above)
from genai_prices.types import ModelPrice, TieredPrices  # noqa: E402

__all__ = ["ModelPrice", "TieredPrices", "data_snapshot", "package"]
