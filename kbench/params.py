"""Typed, bounded parameters of sweeps and built-in scenarios, validated at one entry point."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol


class Axis(Protocol):
    """What a figure needs of a parameter it draws against: :class:`Param` and a sweep's component field
    (:class:`kbench.components.FieldParam`) alike."""

    @property
    def name(self) -> str:
        """The parameter's name, its column in a result table."""
        ...

    @property
    def help(self) -> str:
        """What the parameter means, the figure's axis label."""
        ...


@dataclass(frozen=True)
class Param:
    """A parameter of a sweep or a built-in scenario: its type, the values allowed, and what it means."""

    name: str
    kind: type
    help: str
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False
    """``None`` (YAML ``null``) is allowed: the parameter's "not set"."""

    def allowed(self) -> str:
        """What values are allowed, e.g. ``int in [1, 20000]`` or ``one of a, b``."""
        if self.choices:
            allowed = "one of " + ", ".join(map(str, self.choices))
        else:
            lo = "-inf" if self.minimum is None else _number(self.minimum)
            hi = "inf" if self.maximum is None else _number(self.maximum)
            allowed = f"{self.kind.__name__} in [{lo}, {hi}]"
        return allowed + (" or null" if self.nullable else "")

    def describe(self) -> str:
        """One line for ``--help`` and error messages."""
        return f"{self.name}: {self.help} ({self.allowed()})"

    def check(self, value: Any) -> Any:
        """Convert and validate one value; errors name the parameter and what is allowed (NaN and infinities
        never are)."""
        if value is None and self.nullable:
            return None
        raw = value
        try:
            if isinstance(value, bool) and self.kind is not bool:
                raise TypeError(value)
            if self.kind is bool and isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                value = value.lower() in ("true", "1")
            elif self.kind is int and isinstance(value, (str, float)):
                number = float(value)  # accepts "1e5"; refuses 2.5
                if not number.is_integer():
                    raise ValueError(value)
                value = int(number)
            else:
                value = self.kind(value)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(value)
        except (TypeError, ValueError, OverflowError):
            kind = f"finite {self.kind.__name__}" if self.kind in (int, float) else self.kind.__name__
            raise ValueError(f"parameter {self.name!r}: {raw!r} is not a {kind}; allowed: {self.describe()}") from None
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"parameter {self.name!r}: {value!r} is not allowed; {self.describe()}")
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise ValueError(f"parameter {self.name!r}: {value!r} is out of range; {self.describe()}")
        return value

    def parse(self, text: str) -> list:
        """Parse a comma-separated list of values given on the command line."""
        return parse_values(self, text)


class Checked(Protocol):
    """A parameter that checks one value and describes itself (:class:`Param`, a sweep's component field)."""

    @property
    def name(self) -> str:
        """The parameter's name."""
        ...

    def describe(self) -> str:
        """One line for ``--help`` and error messages."""
        ...

    def check(self, value: Any) -> Any:
        """``value`` converted and validated."""
        ...


def parse_values(param: Checked, text: str, error: type[ValueError] = ValueError) -> list:
    """The comma-separated values of ``--param`` for ``param``, each checked; an empty list or item is an
    ``error`` naming the parameter."""
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise error(f"parameter {param.name!r}: empty value list; {param.describe()}")
    return [param.check(item) for item in items]


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)
