"""Run a process with only the packages a production install has.

The bench runs from the development venv, which also holds the test extra: selenium brings
trio, and httpcore imports trio whenever it is importable (several MB of RSS that no
Dockerfile or ``pip install ai-cost-exporter`` process has). A process started with
:func:`command` sees every distribution outside the runtime dependencies of
ai-cost-exporter as not installed: importing one raises ImportError, as it would there.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys

_LAUNCHER = (
    "import runpy, sys\n"
    "absent, kind, target, *args = sys.argv[1:]\n"
    "for name in absent.split(','):\n"
    "    sys.modules[name] = None  # import raises ImportError, as when not installed\n"
    "sys.argv = [target, *args]\n"
    "if kind == 'module':\n"
    "    runpy.run_module(target, run_name='__main__', alter_sys=True)\n"
    "else:\n"
    "    exec(compile(target, '<script>', 'exec'), {'__name__': '__main__'})\n"
)


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_distributions(root: str = "ai-cost-exporter") -> set[str]:
    """``root`` and every distribution it requires, recursively, without extras."""
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop()
        if _key(name) in seen:
            continue
        seen.add(_key(name))
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for requirement in requires:
            if "extra ==" in requirement:  # markers otherwise kept: more installed, not less
                continue
            match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
            if match:
                todo.append(match.group(0))
    return seen


def absent_modules() -> list[str]:
    """Top-level modules of the installed distributions a production install lacks."""
    runtime = runtime_distributions()
    return sorted(
        module
        for module, dists in importlib.metadata.packages_distributions().items()
        if not any(_key(d) in runtime for d in dists)
    )


def command(module: str, *args: str) -> list[str]:
    """``python -m module args`` as a production install runs it."""
    return [sys.executable, "-c", _LAUNCHER, ",".join(absent_modules()), "module", module, *args]


def script(source: str, *args: str) -> list[str]:
    """``python -c source args`` as a production install runs it."""
    return [sys.executable, "-c", _LAUNCHER, ",".join(absent_modules()), "source", source, *args]
