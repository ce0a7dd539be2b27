"""The notice's two forms, filled in from the log as of a day: what the console's post and unit
pages show and what ``pdf`` prints.

Attachment 1 (机关、单位信息公开平台信息发布保密审查表) is one post's review form: the maker's
boxes (origin, channel) from its PostSubmitted, and the signatures of its latest review chain
(staff opinion, secrecy review, principal leader) from the chain of custody. Attachment 2
(专版体裁栏目信息更新时限表) is one unit's table of columns: each column's deadline as the
notice words it, the unit's ✓/× with who ticked it, when and why, and, beside the official
form's columns, what the log says of it that day (last publication, due date, state).

Nothing here is a new rule: a column is stale or blank exactly when ``as_of_view`` says so (its
open ColumnStale episodes), and a fresh column's next due date is the notice's periodic rule
counted from its last publication.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from gongkai.calendar import local_date
from gongkai.rules import CATALOG_RULE_SET, Catalog, RuleSet, Text, load_rule_sets
from gongkai_accountability.domain.report import latest_publications
from gongkai_accountability.domain.rows import Rows
from gongkai_accountability.domain.tables import COLUMN, UNIT, Post, Step

#: The stages of Attachment 1, in the order the form lists them.
STAGES = ("staff", "secrecy", "leader")


@functools.cache
def notice_rules() -> RuleSet:
    """The notice's own rule set: Attachment 2's catalog and its deadlines."""
    return load_rule_sets([CATALOG_RULE_SET])[0]


@dataclass(frozen=True)
class Signature:
    stage: str
    person: str
    decision: str
    opinion: str
    at: str
    digest: str


@dataclass(frozen=True)
class Attachment1:
    post_id: str
    unit: str
    column: str
    title: str
    maker: str
    submitted_at: str
    origin: str | None
    source: str | None
    channel: str | None
    important_kind: str | None
    information_date: str | None
    #: Screening or the maker asked for the secrecy body's review (note 3 of the form).
    secrecy_needed: bool
    digest: str
    version: int
    chain: int | None
    signatures: dict[str, Signature]
    #: The chain's conclusion: approved, rejected, voided, or None while it runs.
    outcome: str | None
    concluded_at: str | None
    published_at: str | None
    withdrawn: bool


def _latest_chain(trail: Sequence[Step]) -> int | None:
    chains = [s.chain for s in trail if s.chain is not None]
    return chains[-1] if chains else None


def attachment1(post: Post) -> Attachment1:
    """The review form of ``post`` (a row of the fold) as its latest review chain fills it."""
    trail = post.trail
    chain = _latest_chain(trail)
    signatures: dict[str, Signature] = {}
    outcome = concluded = None
    for s in trail:
        if s.chain != chain or chain is None:
            continue
        what = s.what
        if what.startswith("signed:"):
            stage = what.split(":", 1)[1]
            # A stage signed twice in one chain: the later signature is the one that stands.
            signatures[stage] = Signature(
                stage=stage,
                person=s.signer or s.person,
                decision=s.decision or "",
                opinion=s.opinion or "",
                at=s.at,
                digest=s.digest or "",
            )
        elif what.startswith("review:"):
            outcome, concluded = what.split(":", 1)[1], s.at
    submitted = trail[0]
    form = post.form
    published = next((s.online_at or s.at for s in trail if s.what == "published"), None)
    return Attachment1(
        post_id=post.post_id,
        unit=post.unit,
        column=post.column,
        title=post.title,
        maker=post.maker.person,
        submitted_at=submitted.at,
        origin=form.origin,
        source=form.source,
        channel=form.channel,
        important_kind=post.important_kind,
        information_date=form.information_date,
        secrecy_needed=bool(submitted.needs_secrecy_review or form.maker_unsure)
        or "secrecy" in signatures,
        digest=post.digest,
        version=post.version,
        chain=chain,
        signatures=signatures,
        outcome=outcome,
        concluded_at=concluded,
        published_at=published,
        withdrawn=post.withdrawn,
    )


@dataclass(frozen=True)
class Attachment2Row:
    group: str
    group_name: Text
    column: str
    name: Text
    deadline: Text
    #: The unit's tick: True ✓ keep, False × hide.
    keep: bool
    #: "unit": the unit ticked it (``decided_*`` say who, when, why); "default": the catalog's.
    source: str
    #: The column does not exist for the unit's kind: nothing to tick.
    not_applicable: bool
    decided_by: str | None
    decided_at: str | None
    reason: str | None
    last_publication: str | None
    due_date: str | None
    #: hidden, blank (空白栏目), stale (未按时更新), fresh, or unpublished (kept, never
    #: published, not yet due).
    state: str


@dataclass(frozen=True)
class Attachment2:
    unit: str
    day: date
    contact_name: str
    contact_mobile: str
    #: The latest tick the unit made: the form's 报送时间.
    submitted_at: str | None
    rows: tuple[Attachment2Row, ...]

    def groups(self) -> Iterator[tuple[str, Text, list[Attachment2Row]]]:
        """The rows by column group, in the form's order (for merged group cells)."""
        start = 0
        while start < len(self.rows):
            g = self.rows[start].group
            end = start
            while end < len(self.rows) and self.rows[end].group == g:
                end += 1
            yield g, self.rows[start].group_name, list(self.rows[start:end])
            start = end


def _last_publications(rows: Rows, unit: str, day: date) -> dict[str, datetime]:
    return {c: on for (u, c), on in latest_publications(rows, day).items() if u == unit}


def _periodic_due(rs: RuleSet, column: str, last: datetime) -> date | None:
    dues = [
        r.every.after(local_date(last))
        for r in rs.rules_for(column)
        if r.kind == "periodic" and r.every is not None
    ]
    return min(dues) if dues else None


def attachment2(rows: Rows, unit: str, day: date, catalog: Catalog | None = None) -> Attachment2:
    """``unit``'s Attachment 2 as the log stands at the end of ``day`` (rows folded to it)."""
    rs = notice_rules()
    catalog = catalog or rs.catalog
    u = rows.get(UNIT, unit)
    kind = (u.kind if u is not None else None) or ""
    published = _last_publications(rows, unit, day)
    out: list[Attachment2Row] = []
    latest_tick: str | None = None
    for group in catalog.groups:
        for code in group.columns:
            meta = catalog.columns[code]
            col = rows.get(COLUMN, f"{unit}--{code}")
            dec = col.decision if col is not None else None
            applicable = meta.exists_for(kind) if kind else True
            keep = (
                (dec.keep and applicable)
                if dec is not None
                else catalog.kept_by_default(code, kind)
                if kind
                else True
            )
            if dec is not None and (latest_tick is None or dec.at > latest_tick):
                latest_tick = dec.at
            last = published.get(code)
            open_eps = list(col.open.values()) if col is not None else []
            due: str | None = None
            if (col is not None and col.hidden) or not keep:
                state = "hidden"
            elif open_eps:
                state = "blank" if all(e.rule_kind == "blank" for e in open_eps) else "stale"
                due = min(e.due_date for e in open_eps)
            elif last is not None:
                state = "fresh"
                nxt = _periodic_due(rs, code, last)
                due = nxt.isoformat() if nxt else None
            else:
                state = "unpublished"
            out.append(
                Attachment2Row(
                    group=group.code,
                    group_name=Text(group.zh, group.en),
                    column=code,
                    name=Text(meta.zh, meta.en),
                    deadline=meta.deadline,
                    keep=keep,
                    source="unit" if dec is not None else "default",
                    not_applicable=not applicable,
                    decided_by=dec.by.person if dec else None,
                    decided_at=dec.at if dec else None,
                    reason=dec.reason if dec else None,
                    last_publication=last.isoformat() if last else None,
                    due_date=due,
                    state=state,
                )
            )
    contact = (u.contact if u is not None else None) or {}
    return Attachment2(
        unit=unit,
        day=day,
        contact_name=contact.get("name", ""),
        contact_mobile=contact.get("mobile", ""),
        submitted_at=latest_tick,
        rows=tuple(out),
    )


__all__ = [
    "STAGES",
    "Attachment1",
    "Attachment2",
    "Attachment2Row",
    "Signature",
    "attachment1",
    "attachment2",
    "notice_rules",
]
