"""Importing a site's history: items that were online before gongkai watched it.

A county adopting gongkai has years of items on its site; without them every column would start
blank and its due dates would be wrong. ``import_publication`` decides one item of a CMS export
(``gongkai import``) into a ``PublicationImported``: checked like a publication report (a known
unit, a column of the catalog, an absolute URL, a time not in the future), but recorded as
history. The publication id is derived from the item itself, so the same export imported twice
records each item once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from gongkai.decider import Decider
from gongkai.events import EventPayload
from gongkai.events.contracts.intake import PublicationImported
from gongkai.logtypes import RecordedEvent
from gongkai.refusal import Refusal
from gongkai_intake.domain import limits
from gongkai_intake.domain.columns import ColumnCatalog, known_unit, require_column
from gongkai_intake.domain.content import require_text
from gongkai_intake.domain.publications import check_time, check_url


@dataclass(frozen=True)
class ImportPublication:
    unit: str
    column: str
    title: str
    url: str
    online_at: datetime
    content_digest: str | None = None


def item_key(unit: str, column: str, url: str, online_at: datetime) -> str:
    """What makes an item the same item in two exports: where and when it was online.

    The title is left out on purpose: a CMS that fixes a typo in an old title exports the same
    item, and importing it again must not record it twice.
    """
    at = online_at.astimezone(UTC).isoformat()
    return hashlib.sha256("\n".join((unit, column, url, at)).encode()).hexdigest()


def publication_id(cmd: ImportPublication) -> str:
    """The item's publication id (subject-safe), derived from ``item_key``."""
    return "imp-" + item_key(cmd.unit, cmd.column, cmd.url, cmd.online_at)[:32]


def command_id(cmd: ImportPublication) -> str:
    return "import-" + item_key(cmd.unit, cmd.column, cmd.url, cmd.online_at)[:40]


@dataclass(frozen=True)
class Context:
    now: datetime
    #: The unit's kind in the directory; None: no such unit.
    unit_kind: str | None
    catalog: ColumnCatalog


@dataclass(frozen=True)
class ImportedState:
    exists: bool = False


def evolve(state: ImportedState, event: EventPayload) -> ImportedState:
    return ImportedState(exists=True) if isinstance(event, PublicationImported) else state


def import_publication(
    cmd: ImportPublication, state: ImportedState, ctx: Context
) -> list[PublicationImported]:
    """The item as history, or a ``Refusal`` naming the field at fault; nothing if it was
    imported already."""
    require_column(ctx.catalog, cmd.column, cmd.unit, known_unit(ctx.unit_kind, cmd.unit))
    require_text("title", cmd.title, "Title")
    if len(cmd.title) > limits.TITLE_MAX:
        raise Refusal(
            "invalid", "Title too long", f"at most {limits.TITLE_MAX} characters", field="title"
        )
    check_url(cmd.url)
    if cmd.online_at.tzinfo is None:
        raise Refusal("invalid", "Time without zone", "online_at needs a zone", field="online_at")
    check_time("online_at", cmd.online_at, ctx.now)
    if state.exists:
        return []
    return [
        PublicationImported(
            publication_id=publication_id(cmd),
            unit=cmd.unit,
            column=cmd.column,
            title=cmd.title,
            url=cmd.url,
            online_at=cmd.online_at,
            content_digest=cmd.content_digest,
        )
    ]


@dataclass(frozen=True)
class Import:
    """The command as the runner takes it: the item and what it is judged against."""

    cmd: ImportPublication
    ctx: Context


def _evolve(state: ImportedState, rec: RecordedEvent) -> ImportedState:
    return evolve(state, rec.envelope.payload)


HISTORY: Decider[ImportedState, Import] = Decider(
    "publication",
    lambda _id: ImportedState(),
    _evolve,
    lambda state, c: import_publication(c.cmd, state, c.ctx),
)

