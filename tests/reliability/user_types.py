"""The user's own state types, as an application would define them in its own module."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, NamedTuple

from pydantic import BaseModel


class UserProfile(BaseModel):
    name: str
    tags: list[str] = []


@dataclass
class Point:
    x: float
    y: float


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Pair(NamedTuple):
    left: int
    right: int


class Quacks:
    """Not a pydantic model, dataclass, enum or NamedTuple, yet it serializes like a
    model (it has ``model_dump``): reading it back needs the user's explicit approval."""

    def __init__(self, name: str) -> None:
        self.name = name

    def model_dump(self) -> dict[str, Any]:
        return {"name": self.name}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Quacks) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


# A module-level callable whose every call is observable: a planted value naming it (or a
# class that records its construction) must never make the reader call it.
CALLS: list[tuple[Any, ...]] = []


def record_call(*args: Any, **kwargs: Any) -> None:
    CALLS.append((args, kwargs))


class Recorder:
    """Not a data type; constructing it is an observable effect."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        CALLS.append((args, kwargs))
