"""Audiences: a site's named, reusable conditions and id lists, compiled once at load.

In the site config::

    "audiences": {
      "vip":     {"attributes.loyalty_tier": {"$in": ["gold", "platinum"]}},
      "staff":   {"ids": ["customer-7", "customer-9"]},
      "testers": {"ids_file": "audiences/shop/testers.ids"}
    }

and in any ``when`` (at any depth, and inside another audience): ``{"audience": "vip"}``.
An id audience is also a GrowthBook saved group: ``{"visitor.contact": {"$inGroup":
"staff"}}``. An unknown audience, or audiences naming each other in a circle, is a
``check`` error at the path that names it.

Which id an id list holds: the **contact id**, and it matches only a contact this browser
was *verified* as (a signed email token), exposed to conditions as ``visitor.contact``.
Never the visitor id, and never a contact claimed with ``sitecue('identify')`` or typed
into a form: the ``sc_vid`` cookie is whatever the browser sends and an unverified contact
is whatever the page says, so either would let anyone who learns (or guesses) a listed id
unlock what the list guards.

Large lists are imported (``sitecue audiences import``) into a file beside the config: a
header, then the sorted 8-byte keyed hashes (BLAKE2b keyed by the site's "audience" key from
the keyring) of the distinct ids. The file reveals no id to whoever reads the config (an
id cannot be tested against it without the server's secrets), is loaded whole into memory
at load and reload (8 bytes an id), and a lookup is one keyed hash and a binary search, so
deciding never reads a database. Two ids share a hash with odds of about n / 2**64 per
lookup (5e-14 for a million ids).
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import os
import sys
from array import array
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .conditions import Predicate, attribute_paths, compile_condition
from .errors import ConditionError, Problem
from .keyring import Keyring

__all__ = [
    "MAX_INLINE_IDS",
    "PURPOSE",
    "Audiences",
    "HashedIds",
    "compile_audiences",
    "id_file_path",
    "page_groups",
    "read_id_file",
    "references",
    "write_id_file",
]

PURPOSE = "audience"  # the keyring purpose of the keys that hash id lists
MAGIC = b"SCIDS\x01\x00\x00"  # format 1: then an 8-byte key fingerprint, then the hashes
HEADER = len(MAGIC) + 8
MAX_INLINE_IDS = 1000  # longer lists belong in a file (sitecue audiences import)
MAX_ID = 128
CONTACT_PATH = "visitor.contact"  # what an id list is matched against (verified only)


def _fingerprint(key: bytes) -> bytes:
    """Names the key a file was hashed with, so a rotated secret is noticed, not mismatched."""
    return hmac.new(key, b"sitecue audience id file", hashlib.sha256).digest()[:8]


def _keyed_hash(keyed: Any, text: str) -> int:
    """``text``'s 64-bit BLAKE2b under the key ``keyed`` was made with (copied, not re-keyed)."""
    h = keyed.copy()
    h.update(text.encode())
    return int.from_bytes(h.digest(), "little")


_BUCKET_BITS = 12  # an index of 4,097 offsets narrows each search to n / 4096 hashes


class HashedIds(Collection[str]):
    """An id list loaded from its file: ``"customer-7" in ids``: one keyed hash, then a
    binary search in the bucket of its top 12 bits; 8 bytes an id (and 16 KiB of index).

    A file altered by hand (unsorted) can only fail to match a listed id: a match is
    always an equal hash, never a position."""

    def __init__(self, key: bytes, hashes: array[int]) -> None:
        self._keyed = hashlib.blake2b(key=key, digest_size=8)  # copied per lookup: no re-keying
        self._hashes = hashes
        shift = 64 - _BUCKET_BITS
        self._index = array(
            "I", (bisect.bisect_left(hashes, b << shift) for b in range(2**_BUCKET_BITS + 1))
        )

    def __contains__(self, item: object) -> bool:
        if type(item) is not str:
            return False
        h = _keyed_hash(self._keyed, item)
        bucket = h >> (64 - _BUCKET_BITS)
        end = self._index[bucket + 1]
        i = bisect.bisect_left(self._hashes, h, self._index[bucket], end)
        return i < end and self._hashes[i] == h

    def __len__(self) -> int:
        return len(self._hashes)

    def __iter__(self) -> Iterator[str]:
        raise TypeError("an imported id list keeps hashes, not the ids")

    @property
    def nbytes(self) -> int:
        """What the list holds in memory: its hashes and their index."""
        return self._hashes.itemsize * len(self._hashes) + self._index.itemsize * len(self._index)


def write_id_file(path: Path, ids: Iterable[str], key: bytes) -> tuple[int, int]:
    """Write the id list file atomically (a reload never reads half of one); return the
    number of distinct ids and the file's size in bytes."""
    keyed = hashlib.blake2b(key=key, digest_size=8)
    hashes = array("Q", sorted({_keyed_hash(keyed, i) for i in ids}))
    if sys.byteorder != "little":
        hashes.byteswap()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("wb") as out:
        out.write(MAGIC + _fingerprint(key))
        hashes.tofile(out)
    os.replace(temporary, path)
    return len(hashes), HEADER + 8 * len(hashes)


def read_id_file(path: Path, keys: Sequence[bytes] | None) -> HashedIds:
    """Load an id list file; ``keys`` are the site's audience keys, newest first (None: only
    check the file, as ``sitecue check`` does without the server's secrets). Raises
    ValueError saying what is wrong."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ValueError(f"a readable id list file ({err.strerror}: {path})") from None
    if data[: len(MAGIC)] != MAGIC or (len(data) - HEADER) % 8:
        raise ValueError(f"an id list written by sitecue audiences import ({path})")
    hashes = array("Q")
    hashes.frombytes(data[HEADER:])
    if sys.byteorder != "little":
        hashes.byteswap()
    if keys is None:
        return HashedIds(b"", array("Q"))  # checked, never looked up
    printed = data[len(MAGIC) : HEADER]
    for key in keys:
        if hmac.compare_digest(printed, _fingerprint(key)):
            return HashedIds(key, hashes)
    raise ValueError(
        "an id list imported with this server's SITECUE_SECRETS (import it again with "
        f"sitecue audiences import: {path})"
    )


def references(condition: Any, path: str) -> list[tuple[str, Any]]:
    """Every ``{"audience": name}`` in a condition: (the JSON path of the key, the name)."""
    found: list[tuple[str, Any]] = []
    if type(condition) is not dict:
        return found
    for key, value in condition.items():
        at = f"{path}.{key}"
        if key in ("$and", "$or", "$nor") and type(value) is list:
            for i, sub in enumerate(value):
                found += references(sub, f"{at}[{i}]")
        elif key == "$not":
            found += references(value, at)
        elif key == "audience":
            found.append((at, value))
    return found


_PAGE_ROOTS = ("page", "utm", "device")  # what the visitor's own browser says


def page_groups(condition: Any, path: str, declared: Collection[str] = ()) -> list[Problem]:
    """Warnings for ``$inGroup``/``$notInGroup`` over what the visitor's browser says
    (``page.*``, ``utm.*``, ``device.*``, and ``attributes.*`` other than the ``declared``
    offsite attributes: a form answer is whatever the visitor typed): anyone can put a listed
    id there, so such a test guards nothing; ``visitor.contact`` (verified) or a declared
    attribute can."""
    found: list[Problem] = []
    if type(condition) is not dict:
        return found
    for key, value in condition.items():
        at = f"{path}.{key}" if key.startswith("$") else f'{path}["{key}"]'
        root, _, rest = key.partition(".")
        typed = root == "attributes" and rest.split(".")[0] not in declared
        if key in ("$and", "$or", "$nor") and type(value) is list:
            for i, sub in enumerate(value):
                found += page_groups(sub, f"{at}[{i}]", declared)
        elif key == "$not":
            found += page_groups(value, at, declared)
        elif (root in _PAGE_ROOTS or typed) and type(value) is dict:
            for op in ("$inGroup", "$notInGroup"):
                if op in value:
                    found.append(
                        Problem(
                            f"{at}.{op}",
                            f"warning: {key} is whatever the visitor's browser sends, so anyone"
                            f" can claim a listed id; test visitor.contact (verified) instead",
                        )
                    )
    return found


def _contact_in(ids: Collection[str]) -> Predicate:
    def member(context: Any) -> bool:
        contact = context["visitor"].get("contact")
        return contact is not None and contact in ids

    return member


def _never(_: Any) -> bool:
    return False


@dataclass
class Audiences:
    """A site's audiences, compiled on first use (so a circle is found where it closes)."""

    specs: dict[str, dict[str, Any]]
    groups: dict[str, Collection[str]]  # id audiences: $inGroup's saved groups
    problems: list[Problem]
    warnings: list[Problem]
    label: str
    declared: Collection[str] = ()  # the site's offsite attributes (see page_groups)
    compiled: dict[str, Predicate] = field(default_factory=dict)
    _stack: list[str] = field(default_factory=list)

    def resolve(self, name: Any, path: str) -> Predicate:
        """The test of the audience ``name``, named at ``path``; a mistake there is a problem."""
        if type(name) is not str or name not in self.specs:
            known = ", ".join(self.specs) or "none are defined"
            self.problems.append(
                Problem(path, f"expected the name of an audience ({known}), got {name!r}")
            )
            return _never
        if name in self.compiled:
            return self.compiled[name]
        if name in self._stack:
            circle = " -> ".join([*self._stack[self._stack.index(name) :], name])
            self.problems.append(
                Problem(
                    path,
                    f"expected audiences that do not refer to each other in a circle ({circle})",
                )
            )
            return _never
        group = self.groups.get(name)
        if group is not None:
            test = _contact_in(group)
        else:
            self._stack.append(name)
            self.warnings.extend(page_groups(self.specs[name], _member(name), self.declared))
            try:
                test = compile_condition(
                    self.specs[name],
                    self.groups,
                    path=_member(name),
                    label=self.label,
                    warnings=self.warnings,
                    audiences=self.resolve,
                )
            except ConditionError as err:
                self.problems.extend(err.problems)
                test = _never
            finally:
                self._stack.pop()
        self.compiled[name] = test
        return test

    def paths(self, condition: Any, path: str) -> list[tuple[str, str]]:
        """The context paths the audiences ``condition`` names read, transitively, each
        with its JSON path in ``$.audiences`` (an id list reads ``visitor.contact``)."""
        found: list[tuple[str, str]] = []
        seen: set[str] = set()
        todo = [name for _, name in references(condition, path)]
        while todo:
            name = todo.pop()
            if type(name) is not str or name in seen or name not in self.specs:
                continue
            seen.add(name)
            if name in self.groups:
                found.append((_member(name), CONTACT_PATH))
                continue
            spec = self.specs[name]
            found += [p for p in attribute_paths(spec, _member(name)) if p[1] != "audience"]
            todo += [n for _, n in references(spec, _member(name))]
        return found


def _member(name: str) -> str:
    return f"$.audiences.{name}"


def _inline_ids(spec: dict[str, Any], at: str, problems: list[Problem]) -> frozenset[str]:
    ids = spec["ids"]
    if (
        type(ids) is not list
        or len(ids) > MAX_INLINE_IDS
        or not all(type(i) is str and 0 < len(i) <= MAX_ID for i in ids)
    ):
        problems.append(
            Problem(
                f"{at}.ids",
                f"expected an array of at most {MAX_INLINE_IDS} contact ids (strings of 1 to"
                f" {MAX_ID} characters); import a longer list into an ids_file",
            )
        )
        return frozenset()
    return frozenset(ids)


def id_file_path(name: Any) -> PurePosixPath | None:
    """An ``ids_file`` as a path inside the config directory; None for anything else (an
    absolute path, or one climbing out with ``..``): the server reads it, and ``sitecue
    audiences import`` writes it."""
    relative = PurePosixPath(name) if type(name) is str else None
    if relative is None or relative.is_absolute() or ".." in relative.parts or not relative.parts:
        return None
    return relative


def _file_ids(
    spec: dict[str, Any], at: str, root: Path, keys: Sequence[bytes] | None, problems: list[Problem]
) -> Collection[str]:
    relative = id_file_path(spec["ids_file"])
    if relative is None:
        problems.append(Problem(f"{at}.ids_file", "expected a path inside the config directory"))
        return frozenset()
    try:
        return read_id_file(root / relative, keys)
    except ValueError as err:
        problems.append(Problem(f"{at}.ids_file", f"expected {err}"))
        return frozenset()


def compile_audiences(
    specs: dict[str, dict[str, Any]],
    site: str,
    root: Path,
    keyring: Keyring | None,
    problems: list[Problem],
    warnings: list[Problem],
    declared: Collection[str] = (),
) -> Audiences:
    """Load a site's id lists (files under ``root``) and prepare its conditions; every
    audience is compiled here, so a mistake in one no rule uses is still reported, and so is
    one that would cost more than MAX_CLAUSES clause tests a page view (audiences naming
    audiences twice over, level after level, double at each level)."""
    keys = keyring.mac_keys(PURPOSE, site) if keyring is not None else None
    groups: dict[str, Collection[str]] = {}
    for name, spec in specs.items():
        at = _member(name)
        id_keys = {"ids", "ids_file"} & spec.keys()
        if not id_keys:
            continue
        if len(spec) != 1:
            problems.append(
                Problem(at, 'expected either {"ids": [...]} or {"ids_file": path}, alone')
            )
            groups[name] = frozenset()
        elif "ids" in spec:
            groups[name] = _inline_ids(spec, at, problems)
        else:
            groups[name] = _file_ids(spec, at, root, keys, problems)
    audiences = Audiences(specs, groups, problems, warnings, site, declared)
    for name in specs:
        audiences.resolve(name, _member(name))
    sizes: dict[str, int] = {}
    for name in specs:
        if _clauses(name, specs, sizes) > MAX_CLAUSES:
            problems.append(
                Problem(
                    _member(name),
                    f"expected at most {MAX_CLAUSES} clauses once the audiences it names are"
                    f" spelled out, got {sizes[name]}: name each audience once",
                )
            )
    return audiences


MAX_CLAUSES = 10_000
"""The clauses an audience may stand for once the audiences it names are spelled out: each
is tested on every page view whose rules reach it."""


def _clauses(name: str, specs: dict[str, dict[str, Any]], sizes: dict[str, int]) -> int:
    """How many clauses ``name`` stands for, the audiences it names counted as often as
    they are named; memoised in ``sizes`` (a circle, reported elsewhere, counts as one)."""
    if name not in sizes:
        sizes[name] = 1  # while counting: a circle stops here
        spec = specs[name]
        own = sum(1 for _, dotted in attribute_paths(spec, "$") if dotted != "audience")
        named = [n for _, n in references(spec, "$") if type(n) is str and n in specs]
        sizes[name] = max(own, 1) + sum(_clauses(n, specs, sizes) for n in named)
    return sizes[name]
