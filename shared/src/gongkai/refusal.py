"""The one refusal type: a command the rules do not allow, and the HTTP status of each kind.

Pure (no imports beyond typing): domain modules raise it; ``gongkai.runtime.http`` turns it
into an RFC 9457 problem in one place (``refusal_problem``).
"""

from __future__ import annotations

from typing import Any, Literal

RefusalKind = Literal["invalid", "forbidden", "not_found", "conflict", "refused", "too_large"]

#: The HTTP status of each kind of refusal (RFC 9457 problem ``status``).
STATUS: dict[str, int] = {
    "invalid": 422,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "refused": 422,
    "too_large": 413,
}

class Refusal(Exception):
    """A command the rules do not allow; nothing was recorded.

    ``title`` is short and stable (the problem's title), ``detail`` says what in particular;
    ``field`` names the request field at fault (dotted, e.g. ``attachments.0.name``);
    ``extra`` carries machine-readable details, never the submitted content itself.
    """

    def __init__(
        self,
        kind: RefusalKind,
        title: str,
        detail: str = "",
        *,
        field: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.kind: RefusalKind = kind
        self.title = title
        self.detail = detail
        self.field = field
        self.extra = extra or {}

    @property
    def status(self) -> int:
        return STATUS[self.kind]
