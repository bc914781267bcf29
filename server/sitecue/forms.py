"""Forms in widgets: a form's definition checked at load, and a submission checked again on
the server by that definition, whatever the browser said.

A widget's ``form`` declares its fields (see :class:`sitecue.config.FormField`). At load,
:func:`form_problems` refuses a definition that cannot be filled in sensibly, and above all a
field named like one of the site's offsite attributes: what a visitor types is *declared*,
never *verified*, and must never pass for what the site's own systems said (nobody may type
``loyalty_tier: gold``). On submission, :func:`check_submission` checks every field (type,
length, options, required, email and E.164 phone syntax) and reports every field's problem at
once, so the tag can show each beside its field.

    fields = check_submission(form, {"email": " A@B.se ", "consent": True})
    assert fields.values["email"] == "a@b.se" and fields.contact == "a@b.se"
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import Form, FormField, SiteConfig
from .errors import FormInvalid, Problem
from .tokens import MAX_CONTACT_ID

__all__ = [
    "CONTACT_TYPES",
    "DEFAULT_TEXT_LENGTH",
    "HONEYPOT",
    "MAX_EMAIL",
    "PHONE_PATTERN",
    "Checked",
    "check_submission",
    "contact_field",
    "form_problems",
    "largest_answer",
]

HONEYPOT = "sc_hp"
"""The field a person never sees nor fills (it is off-screen); a bot filling every input does."""
DEFAULT_TEXT_LENGTH = 200
MAX_EMAIL = 254  # RFC 5321's longest path
PHONE_PATTERN = r"^\+[1-9][0-9]{6,14}$"
"""E.164: a plus, a country code and at most 15 digits in all (the tag uses the same)."""
CONTACT_TYPES = ("email", "phone", "text")
_PHONE = re.compile(PHONE_PATTERN)
# Deliberately plain: one @, no spaces, a dot in the domain. Whether the address exists is
# for a confirmation mail to find out, not a regex.
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(?:\.[^@\s.]+)+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# The parameters only some types take: (parameter, the types that take it).
_ONLY_FOR = (
    ("options", ("choice",)),
    ("multiple", ("choice",)),
    ("text", ("consent",)),
    ("value", ("hidden",)),
    ("max_length", ("text",)),
    ("min", ("number",)),
    ("max", ("number",)),
)
_UNSET: dict[str, Any] = {"options": None, "multiple": False, "text": None, "value": None,
                          "max_length": None, "min": None, "max": None}  # fmt: skip


def contact_field(form: Form) -> FormField | None:
    """The field whose normalised value names the contact: ``contact`` if the form names
    one, else a field called ``email``; None for a form that identifies nobody (a poll)."""
    name = form.contact or "email"
    return next((f for f in form.fields if f.name == name), None)


def form_problems(config: SiteConfig, widget: str, form: Form) -> list[Problem]:
    """Every mistake in one widget's form definition, with its JSON path."""
    at = f"$.widgets.{widget}.form"
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, field in enumerate(form.fields):
        where = f"{at}.fields[{i}]"
        if field.name in seen:
            problems.append(
                Problem(f"{where}.name", f"expected a unique field name, '{field.name}' is twice")
            )
        seen.add(field.name)
        if field.name == HONEYPOT:
            problems.append(Problem(f"{where}.name", f"expected a name other than {HONEYPOT}"))
        if field.name in config.attributes:
            # The trust line: a typed answer must never stand in for a verified attribute.
            problems.append(
                Problem(
                    f"{where}.name",
                    f"expected a name that is not a declared offsite attribute ('{field.name}'"
                    " is one): what a visitor types must never pass for what the site's"
                    " systems said",
                )
            )
        for param, types in _ONLY_FOR:
            if field.type not in types and getattr(field, param) != _UNSET[param]:
                problems.append(
                    Problem(f"{where}.{param}", f"expected no {param} for a {field.type} field")
                )
        if field.type == "choice" and not field.options:
            problems.append(Problem(f"{where}.options", "expected the options of a choice"))
        if field.options and len(set(field.options)) != len(field.options):
            problems.append(Problem(f"{where}.options", "expected options listed once each"))
        if field.type == "consent" and field.text is None:
            problems.append(
                Problem(f"{where}.text", "expected the exact consent text the visitor is shown")
            )
        if field.type == "hidden" and field.value is None:
            problems.append(Problem(f"{where}.value", "expected the value a hidden field sends"))
        for bound in ("min", "max"):
            value = getattr(field, bound)
            if value is not None and not math.isfinite(value):
                problems.append(Problem(f"{where}.{bound}", "expected a finite number"))
        if field.min is not None and field.max is not None and field.min > field.max:
            problems.append(Problem(f"{where}.max", "expected a max at least min"))
    steps = sorted({f.step for f in form.fields})
    if steps != list(range(1, len(steps) + 1)):
        problems.append(
            Problem(f"{at}.fields", f"expected steps numbered 1, 2, … without gaps, got {steps}")
        )
    if form.contact is not None:
        named = contact_field(form)
        if named is None:
            problems.append(
                Problem(f"{at}.contact", f"expected the name of a field, got '{form.contact}'")
            )
        elif named.type not in CONTACT_TYPES:
            problems.append(
                Problem(
                    f"{at}.contact",
                    f"expected a field of type {', '.join(CONTACT_TYPES)}, '{named.name}' is"
                    f" a {named.type}",
                )
            )
    return problems


def largest_answer(field: FormField) -> Any:
    """The largest value a field's answer can take in the state cookie (for its worst case)."""
    if field.type == "email":
        return "e" * MAX_EMAIL
    if field.type == "phone":
        return "+" + "9" * 15
    if field.type == "text":
        return "\uffff" * (field.max_length or DEFAULT_TEXT_LENGTH)  # 3 bytes a character
    if field.type == "number":
        return 1.5  # a float: 9 bytes, as many as any number takes
    if field.type == "choice":
        longest = max(field.options or [""], key=lambda o: len(o.encode()))
        return list(field.options or []) if field.multiple else longest
    if field.type == "hidden":
        return field.value or ""
    return True  # checkbox, consent


@dataclass(frozen=True)
class Checked:
    """A submission that passed: each field's normalised value (absent ones left out), the
    contact id (None when the form identifies nobody or it was left empty), and the exact
    consent text of each consent the visitor gave."""

    values: dict[str, Any]
    contact: str | None
    consents: dict[str, str]


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value is False


def _check_field(field: FormField, value: Any) -> tuple[Any, str | None]:
    """The normalised value, or the problem with it."""
    kind = field.type
    if kind in ("checkbox", "consent"):
        if not isinstance(value, bool):
            return None, "expected true or false"
        return value, None
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None, "expected a number"
        if not math.isfinite(value):
            return None, "expected a finite number"
        if field.min is not None and value < field.min:
            return None, f"expected at least {field.min:g}"
        if field.max is not None and value > field.max:
            return None, f"expected at most {field.max:g}"
        return value, None
    if kind == "choice" and field.multiple:
        options = field.options or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return None, "expected a list of options"
        if len(set(value)) != len(value):
            return None, "expected each option at most once"
        wrong = [v for v in value if v not in options]
        if wrong:
            return None, f"expected options among {', '.join(options)}, got '{wrong[0]}'"
        return [o for o in options if o in value], None  # the config's order
    if not isinstance(value, str):
        return None, "expected text"
    text = value.strip()
    if _CONTROL.search(text):
        return None, "expected text without control characters"
    if kind == "email":
        if len(text) > MAX_EMAIL or not _EMAIL.fullmatch(text):
            return None, "expected an email address"
        return text.lower(), None
    if kind == "phone":
        if not _PHONE.fullmatch(text):
            return None, "expected a phone number in international form, such as +46701234567"
        return text, None
    if kind == "choice":
        options = field.options or []
        if text not in options:
            return None, f"expected one of {', '.join(options)}"
        return text, None
    if kind == "hidden":
        if text != field.value:
            return None, "expected the form's own value"
        return text, None
    limit = field.max_length or DEFAULT_TEXT_LENGTH
    if len(text) > limit:
        return None, f"expected at most {limit} characters"
    return text, None


def check_submission(form: Form, fields: Mapping[str, Any]) -> Checked:
    """The submission's fields checked against ``form``; raises FormInvalid with every
    field's problem (a field the form does not have is one, named by its name)."""
    problems: dict[str, str] = {}
    known = {f.name for f in form.fields}
    for name in fields:
        if name not in known and name != HONEYPOT:
            problems[name] = "not a field of this form"
    values: dict[str, Any] = {}
    for field in form.fields:
        value = fields.get(field.name)
        if field.type == "hidden" and value is None:
            value = field.value  # fixed by the config: the browser need not echo it
        if isinstance(value, str) and not value.strip():
            value = None
        if _blank(value) and not (value is False and field.type in ("checkbox", "consent")):
            if field.required:
                problems[field.name] = "required"
            continue
        normal, problem = _check_field(field, value)
        if problem is not None:
            problems[field.name] = problem
        elif field.required and normal is False:
            problems[field.name] = "required"
        else:
            values[field.name] = normal
    named = contact_field(form)
    contact = values.get(named.name) if named is not None else None
    if isinstance(contact, str) and len(contact) > MAX_CONTACT_ID and named is not None:
        problems[named.name] = f"expected at most {MAX_CONTACT_ID} characters"
    if problems:
        raise FormInvalid(problems)
    consents = {
        f.name: f.text or "" for f in form.fields if f.type == "consent" and values.get(f.name)
    }
    return Checked(values, contact if isinstance(contact, str) else None, consents)
