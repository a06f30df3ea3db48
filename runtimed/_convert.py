"""A strict cattrs converter shared by the protocol and the configuration.

cattrs' default hooks coerce (``str(5) == "5"``, ``int("3") == 3``); for input that
comes from clients and config files we want a wrong type to be an error that names
the field instead.
"""

from __future__ import annotations

from typing import Any

import cattrs
from cattrs.errors import ClassValidationError

__all__ = ["make_converter", "describe_error"]


def _strict(kind: type, *, exclude: tuple[type, ...] = ()) -> Any:
    def hook(value: Any, _type: Any) -> Any:
        if not isinstance(value, kind) or isinstance(value, exclude):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
        return value

    return hook


def _float(value: Any, _type: Any) -> float:
    # JSON and TOML have one number type for clients; accept ints where floats go.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {type(value).__name__} {value!r}")
    return float(value)


def make_converter(*, forbid_extra_keys: bool) -> cattrs.Converter:
    """A converter whose primitive hooks check types instead of coercing."""
    converter = cattrs.Converter(forbid_extra_keys=forbid_extra_keys)
    converter.register_structure_hook(str, _strict(str))
    converter.register_structure_hook(bool, _strict(bool))
    converter.register_structure_hook(int, _strict(int, exclude=(bool,)))
    converter.register_structure_hook(float, _float)
    # Durations: seconds or a string such as "2d" (validated by the attrs class).
    converter.register_structure_hook(float | str, lambda v, _t: v if isinstance(v, str) else _float(v, float))
    return converter


def describe_error(exc: Exception, path: str = "$") -> str:
    """A one-line description of a structuring error, naming the offending keys."""
    if isinstance(exc, (ClassValidationError, cattrs.BaseValidationError)):
        return "; ".join(cattrs.transform_error(exc, path=path))
    return f"{exc} @ {path}"
