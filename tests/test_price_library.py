"""genai-prices is loaded without its auto-updater until something asks for it (#19)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(source: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", source], cwd=ROOT, capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_estimates_load_the_prices_but_not_the_auto_updater() -> None:
    result = run(
        "import json, sys\n"
        "from exporter.core.pricing import Pricer\n"
        "prices = Pricer().prices('openai', 'a', 'gpt-4o-mini', '', 1_749_945_600)\n"
        "print(json.dumps({'priced': prices is not None and bool(prices.base),\n"
        "                  'loaded': sorted(m for m in ('httpx2', 'genai_prices.update_prices')\n"
        "                                   if m in sys.modules)}))\n"
    )
    assert result == {"priced": True, "loaded": []}


def test_the_auto_updater_and_the_library_api_still_work_after_it() -> None:
    result = run(
        "import json, sys, importlib.metadata\n"
        "from exporter.core import pricing, price_library\n"
        "updater_class = price_library.package().UpdatePrices\n"
        "import genai_prices\n"
        "from genai_prices import Usage, calc_price\n"
        "price = calc_price(Usage(input_tokens=1_000_000), 'gpt-4o-mini', provider_id='openai')\n"
        "print(json.dumps({'updater': updater_class.__module__,\n"
        "                  'version': genai_prices.__version__\n"
        "                  == importlib.metadata.version('genai-prices'),\n"
        "                  'same_snapshot_module': pricing.data_snapshot\n"
        "                  is sys.modules['genai_prices.data_snapshot'],\n"
        "                  'usd': str(price.total_price)}))\n"
    )
    assert result["updater"] == "genai_prices.update_prices"
    assert result["version"] is True and result["same_snapshot_module"] is True
    assert float(str(result["usd"])) > 0


def test_a_library_imported_before_the_exporter_is_used_as_it_is() -> None:
    result = run(
        "import json, sys\n"
        "import genai_prices\n"
        "from exporter.core import price_library\n"
        "print(json.dumps({'same': price_library.package() is genai_prices,\n"
        "                  'hook': '__getattr__' in vars(genai_prices)}))\n"
    )
    assert result == {"same": True, "hook": False}


def test_threads_asking_at_once_run_the_init_once() -> None:
    result = run(
        "import json, sys, threading\n"
        "from exporter.core import pricing\n"
        "module = sys.modules['genai_prices']\n"
        "runs = []\n"
        "loader = module.__spec__.loader\n"
        "original = loader.exec_module\n"
        "loader.exec_module = lambda m: (runs.append(1), original(m))\n"
        "found = []\n"
        "threads = [threading.Thread(target=lambda: found.append(module.calc_price.__name__))\n"
        "           for _ in range(8)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "print(json.dumps({'runs': len(runs), 'found': sorted(set(found)), 'n': len(found)}))\n"
    )
    assert result == {"runs": 1, "found": ["calc_price"], "n": 8}
