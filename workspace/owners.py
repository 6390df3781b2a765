"""Who made a record, and who may delete or edit it.

With sign-in on, each record keeps its author's stable user id (the OIDC ``sub``) and e-mail next
to the display name. Deleting or editing a record is allowed to its author (the same ``sub``) and to
admins; anyone else sees it read-only. A record without an author's id (made in personal mode, or
before authors were recorded) is an admin's to delete. Without sign-in (``person`` is None) every
record may be changed, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from salience.core.errors import InputError


class Person(Protocol):
    """The signed-in person (``components.signin.Identity`` is one)."""

    sub: str
    email: str
    name: str
    admin: bool


@dataclass(frozen=True)
class Author:
    """A record's author as stored: display name, stable user id and e-mail (None when unknown)."""

    name: str | None = None
    sub: str | None = None
    email: str | None = None

    @classmethod
    def of(cls, person: Person | None, name: str | None = None) -> Author:
        """The author columns for a record ``person`` makes now (personal mode: ``name`` only)."""
        if person is None:
            return cls(name)
        return cls(person.name or name, person.sub or None, person.email or None)

    def columns(self, name_column: str | None = "author") -> dict[str, str | None]:
        """Keyword arguments for a row: ``author_sub``, ``author_email`` (and the name's column)."""
        values = {"author_sub": self.sub, "author_email": self.email}
        if name_column:
            values[name_column] = self.name
        return values


def may_change(person: Person | None, author_sub: str | None) -> bool:
    """Whether ``person`` may delete or edit a record whose author's id is ``author_sub``."""
    if person is None:
        return True
    if person.admin:
        return True
    return bool(author_sub) and bool(person.sub) and author_sub == person.sub


def read_only_reason(what: str, author: str | None, author_email: str | None) -> str:
    """The plain line shown on a record one may not change."""
    made_by = author or author_email
    if made_by:
        return f"Only the person who made this {what} ({made_by}) or an admin can delete it."
    return f"This {what} was made before sign-in recorded authors; only an admin can delete it."


def check_may_change(
    person: Person | None, what: str, author_sub: str | None, author: str | None, author_email: str | None
) -> None:
    """InputError with the plain reason when ``person`` may not change the record."""
    if not may_change(person, author_sub):
        raise InputError(read_only_reason(what, author, author_email))
