"""Why the domain turns a command down. Adapters map the kind to a status code."""

from __future__ import annotations

from typing import Any, Literal

RejectionKind = Literal["invalid", "forbidden", "not_found", "conflict", "refused", "too_large"]


class Rejected(Exception):
    """A command the rules do not allow; nothing was recorded.

    ``field`` names the request field at fault (dotted, e.g. ``attachments.0.name``) so the
    caller can point at it; ``extra`` carries machine-readable details that never include the
    submitted content itself.
    """

    def __init__(
        self,
        kind: RejectionKind,
        title: str,
        detail: str = "",
        *,
        field: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.kind: RejectionKind = kind
        self.title = title
        self.detail = detail
        self.field = field
        self.extra = extra or {}
