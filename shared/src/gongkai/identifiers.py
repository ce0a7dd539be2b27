"""Identifiers: what an aggregate id, unit code or subject token may be.

Kept apart from the event envelope (pydantic) so that code that only checks or builds subject
tokens — ``gongkai.subjects``, the NATS permission matrix, the command line's parser — starts
without loading the event contracts.
"""

from __future__ import annotations

import re

# Subject tokens must not contain NATS separators or wildcards; ids are also used in URLs.
ID_CHARS = r"[A-Za-z0-9_\-]{1,128}"
ID_RULE = "1-128 characters of A-Z a-z 0-9 _ -"
#: The pattern as JSON Schema, OpenAPI and pydantic (Rust regex) read it: there ``$`` is the
#: end of the text. Python's ``re`` reads ``$`` as "end, or before a final newline", so
#: Python code checks with ``TOKEN_RE`` (a full match) or ``check_token``, never this string.
SUBJECT_SAFE_ID = rf"^{ID_CHARS}$"
TOKEN_RE = re.compile(rf"\A{ID_CHARS}\Z")


class InvalidIdentifier(ValueError):
    """An identifier that is not 1-128 characters of A-Z a-z 0-9 _ - (the whole value)."""

    def __init__(self, value: object, what: str = "id") -> None:
        super().__init__(f"{what} must be {ID_RULE}, got {value!r}")
        self.value = value
        self.what = what


def is_token(value: object) -> bool:
    """Whether ``value`` is an identifier: a full match, so ``"d\\n"`` is not one."""
    return isinstance(value, str) and TOKEN_RE.fullmatch(value) is not None


def check_token(value: str, what: str = "id") -> str:
    """``value`` if it is an identifier, else InvalidIdentifier (a ValueError) naming ``what``."""
    if not is_token(value):
        raise InvalidIdentifier(value, what)
    return value
