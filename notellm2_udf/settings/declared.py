"""Job settings declared once: a frozen dataclass whose fields carry their flags.

A field made by `option(...)` (or `required(...)`) is a flag `--field-name`; its default is
the dataclass default, its help the declaration's. A field whose value is itself a settings
dataclass (`encode: EncodeOptions = EncodeOptions()`, or `nested(TrainSettings)` for a class
with required settings) contributes that class's flags. The
parser is derived from the class (`parser_for`) and builds it (`parse_settings`): a flag not
given leaves the dataclass default, so a job run from the command line and one built in a
test from the same values are the same settings. A ValueError from the class's
`__post_init__` (a check across fields) is reported as a usage error, exit 2.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass
from typing import Any, TypeVar

S = TypeVar("S")
_FLAG = "notellm2.flag"
_NESTED = "notellm2.nested"


@dataclass(frozen=True)
class Flag:
    """How a setting appears on the command line.

    parse: argparse type of the value (None: a string; a bool setting takes no value).
    name: the flag (default `--field-name`); aliases: older spellings that still work.
    exclusive: name of a group of settings (each defaulting to None) of which at most one may
    be given; a group named in the class's `REQUIRED_GROUPS` needs exactly one.
    negate: a bool setting that defaults to True and whose flag turns it off.
    """

    help: str
    parse: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    name: str | None = None
    aliases: tuple[str, ...] = ()
    exclusive: str | None = None
    negate: bool = False
    metavar: str | None = None


def option(default: Any = MISSING, *, help: str, default_factory: Any = MISSING,
           **flag: Any) -> Any:
    """A setting with a default, given on the command line as its flag (see `Flag`)."""
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={_FLAG: Flag(help=help, **flag)})


def required(*, help: str, **flag: Any) -> Any:
    """A setting without a default: its flag must be given (or its exclusive group's)."""
    return dataclasses.field(metadata={_FLAG: Flag(help=help, **flag)})


def nested(cls: type) -> Any:
    """A field holding settings class `cls` that has required settings of its own (so no
    default instance): its flags are the job's, and it must be given when built directly."""
    return dataclasses.field(metadata={_NESTED: cls})


def flag_name(field: dataclasses.Field) -> str:
    spec = field.metadata[_FLAG]
    return spec.name or "--" + field.name.replace("_", "-")


def _nested_class(field: dataclasses.Field) -> type | None:
    """The settings class a field holds, or None for a plain value."""
    if _NESTED in field.metadata:
        return field.metadata[_NESTED]
    default = field.default
    if default is MISSING and field.default_factory is not MISSING:
        default = field.default_factory()
    if dataclasses.is_dataclass(default) and not isinstance(default, type):
        return type(default)
    return None


def _fields(cls: type, prefix: str = "") -> list[tuple[str, dataclasses.Field, bool]]:
    """(dest, field, is_nested) for every flag field of `cls`, nested classes included."""
    found = []
    for field in dataclasses.fields(cls):
        if _FLAG in field.metadata:
            found.append((prefix + field.name, field, False))
        elif _nested_class(field):
            found.append((prefix + field.name, field, True))
            found += _fields(_nested_class(field), f"{prefix}{field.name}.")
    return found


def _required_groups(cls: type) -> set[str]:
    groups = set(getattr(cls, "REQUIRED_GROUPS", ()))
    for _, field, nested in _fields(cls):
        if nested:
            groups |= set(getattr(_nested_class(field), "REQUIRED_GROUPS", ()))
    return groups


def _default_text(field: dataclasses.Field) -> str:
    if field.default_factory is not MISSING:
        return ""
    default = field.default
    if default is MISSING or default is None or isinstance(default, bool):
        return ""
    if isinstance(default, tuple):
        default = ",".join(str(item) for item in default)
    return f" (default {default})"


def parser_for(cls: type, description: str | None = None) -> argparse.ArgumentParser:
    """The argparse parser of settings class `cls`: one flag per setting."""
    parser = argparse.ArgumentParser(description=description,
                                     argument_default=argparse.SUPPRESS)
    groups: dict[str, Any] = {}
    required_groups = _required_groups(cls)
    for dest, field, nested in _fields(cls):
        if nested:
            continue
        spec: Flag = field.metadata[_FLAG]
        target = parser
        if spec.exclusive:
            if spec.exclusive not in groups:
                groups[spec.exclusive] = parser.add_mutually_exclusive_group(
                    required=spec.exclusive in required_groups)
            target = groups[spec.exclusive]
        kwargs: dict[str, Any] = {"dest": dest, "help": spec.help + _default_text(field)}
        if spec.negate:
            kwargs["action"] = "store_false"
        elif field.default is False:
            kwargs["action"] = "store_true"
        else:
            kwargs.update(type=spec.parse, choices=spec.choices,
                          metavar=spec.metavar or (None if spec.choices else field.name.upper()))
            if field.default is MISSING and field.default_factory is MISSING:
                kwargs["required"] = True
        target.add_argument(flag_name(field), *spec.aliases, **kwargs)
    return parser


def build_settings(cls: type[S], values: dict[str, Any], prefix: str = "") -> S:
    """`cls` from parsed flag values keyed by dest (`encode.batch_size`); absent keys keep
    the dataclass defaults."""
    kwargs = {}
    for field in dataclasses.fields(cls):
        dest = prefix + field.name
        if _FLAG in field.metadata:
            if dest in values:
                value = values[dest]
                kwargs[field.name] = tuple(value) if isinstance(value, list) else value
        elif _nested_class(field):
            kwargs[field.name] = build_settings(_nested_class(field), values, dest + ".")
    return cls(**kwargs)


def parse_settings(cls: type[S], argv: Sequence[str] | None,
                   description: str | None = None) -> S:
    """Settings of class `cls` from command-line arguments; a usage error exits 2."""
    parser = parser_for(cls, description)
    values = vars(parser.parse_args(argv))
    try:
        return build_settings(cls, values)
    except ValueError as err:
        parser.error(str(err))  # exits 2


def flag_defaults(cls: type) -> dict[str, Any]:
    """{flag: default} of every setting of `cls` that has one (for the DAG catalogue's
    check, tests/airflow)."""
    defaults = {}
    for _, field, nested in _fields(cls):
        if nested:
            continue
        if field.default is not MISSING:
            defaults[flag_name(field)] = field.default
        elif field.default_factory is not MISSING:
            defaults[flag_name(field)] = field.default_factory
    return defaults


def flag_names(cls: type) -> set[str]:
    """Every flag of `cls`, aliases included."""
    names = set()
    for _, field, nested in _fields(cls):
        if not nested:
            names |= {flag_name(field), *field.metadata[_FLAG].aliases}
    return names


def required_flags(cls: type) -> set[str]:
    """The flags of `cls` that must be given (settings without a default)."""
    return {flag_name(field) for _, field, nested in _fields(cls) if not nested
            and field.default is MISSING and field.default_factory is MISSING}
