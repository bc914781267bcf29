"""Every mistake in a value decoded against a type, not just the first, in words to act on.

msgspec stops at the first error, so a config with ten mistakes would take ten runs to fix.
:func:`mistakes` decodes the value whole and, when that fails, walks down the type (a
Struct's fields, a list's items, a dict's keys and values, the one arm of an optional) so
that every mistake is found where it is, each with its JSON path. :func:`salvage` decodes
what is right and stands a default in for what is wrong, so that the meaning (references,
conditions, templates) can be checked in the same run. :func:`explain` words msgspec's
``Invalid enum value 'x'`` as the values that were expected, wherever an enum is decoded.

    mistakes({"on": "hover", "percent": "5"}, Trigger, "$.triggers.t") ==
    [("$.triggers.t.on", "Expected one of pageview, click, …, custom, got 'hover'"),
     ("$.triggers.t.percent", "Expected `int`, got `str`")]
"""

from __future__ import annotations

import json
import re
import types
import typing
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

__all__ = ["explain", "member", "mistakes", "salvage"]

_BAD = object()  # what salvage makes of a value it cannot use: the caller stands one in


def member(path: str, name: str) -> str:
    """The JSON path of ``name`` in the object at ``path``: ``$.a.b``, or ``$.a["b.c"]``."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return f"{path}.{name}"
    return f"{path}[{json.dumps(name)}]"


def _unwrap(kind: Any) -> Any:
    """``kind`` without its Annotated constraints."""
    while typing.get_origin(kind) is Annotated:
        kind = typing.get_args(kind)[0]
    return kind


def _arms(kind: Any) -> tuple[Any, ...]:
    """The members of a union (``X | None``), or ``kind`` alone."""
    base = _unwrap(kind)
    if typing.get_origin(base) in (typing.Union, types.UnionType):
        return typing.get_args(base)
    return (kind,)


def _enum_values(kind: Any) -> tuple[Any, ...] | None:
    """The values a Literal (or an optional Literal) allows, or None for any other type."""
    values: list[Any] = []
    for arm in _arms(kind):
        base = _unwrap(arm)
        if base is type(None):
            continue
        if typing.get_origin(base) is not Literal:
            return None
        values += typing.get_args(base)
    return tuple(values) or None


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else json.dumps(value, default=str)


def _enum_message(values: tuple[Any, ...], got: Any) -> str:
    return f"Expected one of {_enum_list(values)}, got {_shown(got)}"


def _is_struct(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, msgspec.Struct)


def _leaf(value: Any, kind: Any, err: msgspec.ValidationError) -> str:
    """msgspec's message for a value that is wrong as a whole, enums with their values."""
    values = _enum_values(kind)
    if values is not None and value is not None and value not in values:
        return _enum_message(values, value)
    return str(err)


def mistakes(value: Any, kind: Any, path: str = "$") -> list[tuple[str, str]]:
    """Every mistake in ``value`` (parsed JSON) as ``kind``: (JSON path, msgspec-worded
    message) in the order they appear in the value; empty when it decodes."""
    found: list[tuple[str, str]] = []
    _collect(value, kind, path, found)
    return found


def _collect(value: Any, kind: Any, path: str, found: list[tuple[str, str]]) -> None:
    try:
        msgspec.convert(value, kind)
    except msgspec.ValidationError as err:
        before = len(found)
        _descend(value, kind, path, found)
        if len(found) == before:  # wrong as a whole (a type, a pattern, a length, a bound)
            found.append(_split(_leaf(value, kind, err), path))


def _split(message: str, path: str) -> tuple[str, str]:
    """msgspec's ``message - at `$.x``` as (the path below ``path``, the message)."""
    text, _, at = message.partition(" - at `$")
    return (path + at.rstrip("`") if at else path), text


def _descend(value: Any, kind: Any, path: str, found: list[tuple[str, str]]) -> None:
    """Look for the mistakes inside ``value``; add nothing when it is wrong as a whole."""
    shaped = [a for a in _arms(kind) if _unwrap(a) is not type(None)]
    if len(shaped) > 1:
        shaped = [a for a in shaped if _same_shape(value, _unwrap(a))]
    if len(shaped) != 1:
        return
    arm = shaped[0]
    if arm is not kind:  # an optional: the one arm the value could be
        _collect(value, arm, path, found)
        return
    base = _unwrap(kind)
    origin = typing.get_origin(base)
    args = typing.get_args(base)
    if _is_struct(base) and isinstance(value, dict):
        fields = {f.encode_name: f for f in msgspec.structs.fields(base)}
        forbid = base.__struct_config__.forbid_unknown_fields
        for key, item in value.items():
            field = fields.get(key)
            if field is not None:
                _collect(item, field.type, member(path, key), found)
            elif forbid:
                known = ", ".join(fields)
                found.append((member(path, str(key)), f"Unknown field; expected one of {known}"))
        for key, field in fields.items():
            if field.required and key not in value:
                found.append((member(path, key), "Expected this field, which is required"))
    elif origin in (list, tuple, set, frozenset) and isinstance(value, list):
        if origin is tuple and (len(args) != 2 or args[1] is not Ellipsis):
            if len(args) == len(value):
                for i, (item, item_kind) in enumerate(zip(value, args, strict=True)):
                    _collect(item, item_kind, f"{path}[{i}]", found)
            return
        item_kind = args[0] if args else Any
        _length(value, kind, list[Any], path, found)
        for i, item in enumerate(value):
            _collect(item, item_kind, f"{path}[{i}]", found)
    elif origin is dict and isinstance(value, dict):
        key_kind, value_kind = args or (Any, Any)
        _length(value, kind, dict[Any, Any], path, found)
        for key, item in value.items():
            at = member(path, str(key))
            try:
                msgspec.convert(key, key_kind)
            except msgspec.ValidationError as err:
                found.append((at, _leaf(key, key_kind, err)))
                continue
            _collect(item, value_kind, at, found)


def _length(value: Any, kind: Any, shallow: Any, path: str, found: list[tuple[str, str]]) -> None:
    """A list's or dict's own constraints (its length), checked apart from its items."""
    metas = _metas(kind)
    if metas:
        try:
            msgspec.convert(value, Annotated[shallow, *metas])
        except msgspec.ValidationError as err:
            found.append(_split(str(err), path))


def _same_shape(value: Any, base: Any) -> bool:
    origin = typing.get_origin(base)
    if _is_struct(base) or origin is dict:
        return isinstance(value, dict)
    if origin in (list, tuple, set, frozenset):
        return isinstance(value, list)
    return not isinstance(value, dict | list)


def salvage(value: Any, kind: Any) -> Any:
    """``value`` decoded as ``kind`` as far as it goes: what is wrong stands in as its
    default (or a blank of its type), unknown fields and wrongly named entries are left out.
    The result is never served: it lets a config's meaning be checked despite its typos."""
    got = _salvage(value, kind)
    return _blank(kind) if got is _BAD else got


def _salvage(value: Any, kind: Any) -> Any:
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError:
        pass
    shaped = [a for a in _arms(kind) if _unwrap(a) is not type(None)]
    if len(shaped) > 1:
        shaped = [a for a in shaped if _same_shape(value, _unwrap(a))]
    if len(shaped) != 1:
        return _BAD
    if shaped[0] is not kind:
        return _salvage(value, shaped[0])
    base = _unwrap(kind)
    origin = typing.get_origin(base)
    args = typing.get_args(base)
    if _is_struct(base) and isinstance(value, dict):
        given: dict[str, Any] = {}
        for field in msgspec.structs.fields(base):
            key = field.encode_name
            got = _salvage(value[key], field.type) if key in value else _BAD
            if got is not _BAD:
                given[field.name] = got
            elif field.required:
                given[field.name] = _blank(field.type)
        return base(**given)
    if origin is list and isinstance(value, list):
        items = [salvage(item, args[0]) for item in value]
        return items + [_blank(args[0]) for _ in range(_shortest(kind) - len(items))]
    if origin is tuple and isinstance(value, list) and len(args) == len(value):
        return tuple(salvage(item, a) for item, a in zip(value, args, strict=True))
    if origin is dict and isinstance(value, dict):
        entries = {}
        for key, item in value.items():
            try:
                entries[msgspec.convert(key, args[0])] = salvage(item, args[1])
            except msgspec.ValidationError:
                continue  # a wrongly named entry: nothing can refer to it
        return entries
    return _BAD


def _metas(kind: Any) -> tuple[Any, ...]:
    """The constraints (``msgspec.Meta``) annotating ``kind``."""
    return typing.get_args(kind)[1:] if typing.get_origin(kind) is Annotated else ()


def _blank(kind: Any) -> Any:
    """A stand-in of type ``kind`` for a value that is missing or wrong."""
    arms = _arms(kind)
    if type(None) in (_unwrap(a) for a in arms):
        return None
    base = _unwrap(arms[0])
    origin = typing.get_origin(base)
    if _is_struct(base):
        return base(**{f.name: _blank(f.type) for f in msgspec.structs.fields(base) if f.required})
    if origin is Literal:
        return typing.get_args(base)[0]
    if origin is tuple:
        return tuple(_blank(a) for a in typing.get_args(base))
    if origin is list:
        return [_blank(typing.get_args(base)[0]) for _ in range(_shortest(kind))]
    if origin is dict:
        return {}
    if base is datetime:
        return datetime.fromtimestamp(0).astimezone()
    return {str: "", int: 0, float: 0.0, bool: False}.get(base)


def _shortest(kind: Any) -> int:
    return min((getattr(m, "min_length", None) or 0 for m in _metas(kind)), default=0)


def explain(err: msgspec.ValidationError, kind: Any) -> str:
    """msgspec's message for decoding as ``kind``, an enum's naming the values it takes
    (``Expected one of mobile, tablet, desktop, got 'phone' - at `$.page.viewport```)."""
    text = str(err)
    found = re.fullmatch(r"Invalid enum value (?P<got>.*?)(?: - at `(?P<path>\$[^`]*)`)?", text)
    if found is None:
        return text
    values = _enum_values(_type_at(kind, found["path"] or "$"))
    if values is None:
        return text
    at = f" - at `{found['path']}`" if found["path"] else ""
    return f"Expected one of {_enum_list(values)}, got {found['got']}{at}"


def _enum_list(values: tuple[Any, ...]) -> str:
    return ", ".join(str(v) if isinstance(v, str) else json.dumps(v) for v in values)


def _type_at(kind: Any, path: str) -> Any:
    """The type msgspec decodes at ``path`` (``$.events[0].type``) inside ``kind``."""
    for name, index in re.findall(r"\.([^.\[]+)|\[([^\]]*)\]", path[1:]):
        arms = [a for a in _arms(kind) if _unwrap(a) is not type(None)]
        base = _unwrap(arms[0]) if len(arms) == 1 else None
        if name and base is not None and _is_struct(base):
            fields = {f.encode_name: f.type for f in msgspec.structs.fields(base)}
            kind = fields.get(name)
        elif index and typing.get_origin(base) in (list, set, frozenset, dict):
            kind = typing.get_args(base)[-1]
        elif index.isdigit() and typing.get_origin(base) is tuple:
            args = typing.get_args(base)
            kind = args[0] if args[-1] is Ellipsis else args[int(index)]
        else:
            return None
    return kind
