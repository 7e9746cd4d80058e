"""Validation rules every section of the configuration shares: names, labels, their errors."""

from __future__ import annotations

import re
from typing import Annotated, NoReturn

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

ERROR_TYPE = "aicost_config"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
"""Account and subscription names: they become the ``account`` label."""
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""A free-form ``provider`` label of a pushed or subscription account."""


def fail(reason: str) -> NoReturn:
    """A validation error whose message is ``reason`` as is (no "Value error, " prefix)."""
    # The reason goes through the context so "{" in it (e.g. ${ENV_VAR}) is not a template field.
    raise PydanticCustomError(ERROR_TYPE, "{reason}", {"reason": reason})


def check_name(value: str) -> str:
    """``value`` if it is a valid account or subscription name."""
    if NAME.fullmatch(value) is None:
        fail("must start with a letter or digit and contain only letters, digits, '_', '.' and '-'")
    return value


def check_label(value: str) -> str:
    """``value`` if it is a valid ``provider`` label."""
    if LABEL.fullmatch(value) is None:
        fail(
            "must be 1-64 characters, start with a letter or digit and contain only letters, "
            "digits, '_', '.' and '-'"
        )
    return value


Name = Annotated[str, AfterValidator(check_name)]
"""An account or subscription name."""
ProviderLabel = Annotated[str, AfterValidator(check_label)]
"""The ``provider`` of an account the exporter does not poll (pushed events, subscriptions)."""
