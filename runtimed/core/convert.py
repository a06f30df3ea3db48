"""A strict cattrs converter shared by the protocol and the configuration.

cattrs' default hooks coerce (``str(5) == "5"``, ``int("3") == 3``); for input that
comes from clients and config files we want a wrong type to be an error that names
the field instead.
"""

from __future__ import annotations

import enum
from typing import Any, get_args, get_origin

import cattrs
from cattrs.errors import ClassValidationError
from cattrs.v import format_exception

__all__ = ["StrEnum", "describe_error", "make_converter"]


class StrEnum(str, enum.Enum):
    """An enum whose members are their string values (``enum.StrEnum`` before 3.11)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


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


def _str_enum(value: Any, type_: Any) -> Any:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__} {value!r}")
    try:
        return type_(value)
    except ValueError:
        known = ", ".join(m.value for m in type_)
        raise ValueError(f"{value!r} is not one of {known}") from None


def make_converter(*, forbid_extra_keys: bool) -> cattrs.Converter:
    """A converter whose primitive hooks check types instead of coercing."""
    converter = cattrs.Converter(forbid_extra_keys=forbid_extra_keys)
    converter.register_structure_hook(str, _strict(str))
    converter.register_structure_hook(bool, _strict(bool))
    converter.register_structure_hook(int, _strict(int, exclude=(bool,)))
    converter.register_structure_hook(float, _float)
    # String enums: one of the values, as the enum member (checked before the str hook).
    converter.register_structure_hook(StrEnum, _str_enum)
    # A string is iterable: without this, "numpy" would become ["n", "u", ...].
    converter.register_structure_hook_factory(_is_list, _strict_list(converter))
    # Durations: seconds or a string such as "2d" (validated by the attrs class).
    converter.register_structure_hook(float | str, lambda v, _t: v if isinstance(v, str) else _float(v, float))
    return converter


def _format(exc: BaseException, type_: Any) -> str:
    # Our hooks and attrs validators write messages that name the problem; keep them.
    if isinstance(exc, (TypeError, ValueError)) and str(exc):
        return str(exc)
    return format_exception(exc, type_)


def describe_error(exc: Exception, path: str = "$") -> str:
    """A one-line description of a structuring error, naming the offending keys."""
    if isinstance(exc, (ClassValidationError, cattrs.BaseValidationError)):
        return "; ".join(cattrs.transform_error(exc, path=path, format_exception=_format))
    return f"{exc} @ {path}"


def _is_list(type_: Any) -> bool:
    return get_origin(type_) is list


def _strict_list(converter: cattrs.Converter) -> Any:
    def factory(type_: Any) -> Any:
        (item,) = get_args(type_) or (Any,)

        def hook(value: Any, _type: Any) -> list[Any]:
            if not isinstance(value, list):
                raise TypeError(f"expected a list, got {type(value).__name__} {value!r}")
            return [converter.structure(v, item) for v in value]

        return hook

    return factory
