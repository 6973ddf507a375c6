"""What a saver option is, and the one check of each kind of option value.

Every option of every saver is checked by these functions, so that the same value is
accepted or refused the same way everywhere, with an ``InvalidConfigError`` that names
the option: a timeout is a positive finite number of seconds on every backend (``True``
is not one, nor NaN or infinity), a flag is ``True`` or ``False``. The table of which
backend takes which option is ``langgraph_unified_store.registry``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidConfigError
from .validate import show

Check = Callable[[str, Any], Any]
"""Takes an option's name and value; returns the value to use, or raises
InvalidConfigError naming the option."""


@dataclass(frozen=True)
class Option:
    """One keyword option of a saver."""

    name: str
    type: str
    """What it takes, as a reader would say it ("seconds or None")."""
    default: Any
    check: Check
    doc: str = ""

    def checked(self, value: Any) -> Any:
        return self.check(self.name, value)


def check_options(options: Collection[Option], given: Mapping[str, Any]) -> dict[str, Any]:
    """Each option's value to use: the given one checked, or its default (not checked:
    defaults are right by construction). Refuses names that are not options."""
    by_name = {option.name: option for option in options}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        raise InvalidConfigError(
            f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(by_name))}"
        )
    return {
        name: option.checked(given[name]) if name in given else option.default
        for name, option in by_name.items()
    }


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def seconds(name: str, value: Any) -> float:
    """A positive, finite number of seconds."""
    if not (_is_number(value) and 0 < value < math.inf):
        raise InvalidConfigError(
            f"{name} must be a positive, finite number of seconds, not {show(value)}"
        )
    return float(value)


def seconds_or_none(name: str, value: Any) -> float | None:
    """``seconds``, or None for no limit."""
    if value is None:
        return None
    if not (_is_number(value) and 0 < value < math.inf):
        raise InvalidConfigError(
            f"{name} must be a positive, finite number of seconds or None (no limit), "
            f"not {show(value)}"
        )
    return float(value)


def seconds_or_zero(name: str, value: Any) -> float:
    """A finite number of seconds >= 0 (0: do not wait at all)."""
    if not (_is_number(value) and 0 <= value < math.inf):
        raise InvalidConfigError(
            f"{name} must be a finite number of seconds >= 0, not {show(value)}"
        )
    return float(value)




def count_from(minimum: int) -> Check:
    """An int (not a bool) >= ``minimum``."""

    def check(name: str, value: Any) -> int:
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= minimum):
            raise InvalidConfigError(f"{name} must be an integer >= {minimum}, not {show(value)}")
        return value

    return check


def count_or_none(minimum: int) -> Check:
    """``count_from``, or None for no bound."""
    counted = count_from(minimum)

    def check(name: str, value: Any) -> int | None:
        return None if value is None else counted(name, value)

    return check


def flag(name: str, value: Any) -> bool:
    """True or False (not 1, not "yes": a typo must not switch a mode silently)."""
    if not isinstance(value, bool):
        raise InvalidConfigError(f"{name} must be True or False, not {show(value)}")
    return value


def one_of(*choices: str) -> Check:
    """One of ``choices``, in any case; returned as written in ``choices``."""

    def check(name: str, value: Any) -> str:
        if isinstance(value, str) and value.upper() in choices:
            return value.upper()
        raise InvalidConfigError(f"{name} must be one of {', '.join(choices)}, not {show(value)}")

    return check


def anything(name: str, value: Any) -> Any:
    """Passed on as given: the driver or the saver checks it (``ssl``, ``serde``)."""
    return value
