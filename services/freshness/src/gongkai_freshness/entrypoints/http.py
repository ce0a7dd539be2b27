"""HTTP routes of freshness: parse, authorise, call the service's queries and commands, render."""

from __future__ import annotations

import html
from dataclasses import asdict, fields
from datetime import date
from typing import Any, Literal, Protocol

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from gongkai.calendar import local_date
from gongkai.directory import Directory, Principal, bearer_auth
from gongkai.events import Actor
from gongkai.rules import Catalog, RuleSet
from gongkai.runtime.clock import Clock
from gongkai.runtime.http import PathId, Problem, QueryId
from gongkai.runtime.idempotency import IdempotencyStore
from gongkai_freshness.domain.report import Attachment2, ColumnStatus, Obligation, SiteRisk
from gongkai_freshness.domain.visibility import OFFICE_ROLE, SetVisibility, acting_role
from gongkai_freshness.service import VisibilityResult

StateName = Literal["fresh", "due_soon", "stale", "hidden", "blank"]


class Ports(Protocol):
    """What the routes need from the composition root."""

    @property
    def directory(self) -> Directory: ...

    @property
    def idempotency(self) -> IdempotencyStore: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def rule_sets(self) -> tuple[RuleSet, ...]: ...

    @property
    def catalog(self) -> Catalog: ...

    def today(self) -> date: ...

    def has_unit(self, code: str) -> bool: ...

    def joined_on(self, code: str) -> date | None: ...

    def status_table(
        self, as_of: date, *, unit: str | None = None, rule_set: str | None = None
    ) -> list[ColumnStatus]: ...

    def site_risk(self, rs: RuleSet, as_of: date, *, unit: str | None = None) -> SiteRisk: ...

    def attachment2(self, unit: str) -> Attachment2: ...

    async def set_visibility(self, cmd: SetVisibility, actor: Actor) -> VisibilityResult: ...


class VisibilityBody(BaseModel):
    """Attachment 2's tick for one column: keep (✓) or hide (×), and why."""

    model_config = ConfigDict(extra="forbid")

    visibility: Literal["kept", "hidden"]
    reason: str = Field(min_length=1, max_length=500)


_STATUS_FIELDS = tuple(f.name for f in fields(ColumnStatus))
_OBLIGATION_FIELDS = tuple(f.name for f in fields(Obligation))


def status_json(row: ColumnStatus) -> dict[str, Any]:
    """``dataclasses.asdict(row)``, field by field: asdict deep-copies every value it meets,
    and a triggered column's obligations grow with its posts (a fifth of freshness's CPU under
    bench.load was this, for the office's reading of a unit's columns). The values are
    immutable (str, int, bool, date, datetime, None), so the same dict without the copies."""
    out = {name: getattr(row, name) for name in _STATUS_FIELDS}
    out["obligations"] = tuple(
        {name: getattr(o, name) for name in _OBLIGATION_FIELDS} for o in row.obligations
    )
    return out


def risk_json(risk: SiteRisk) -> dict[str, Any]:
    out = asdict(risk)
    for line in out["lines"]:
        line["counted"] = [{"unit": u, "column": c} for u, c in line["counted"]]
    return out


def attachment2_html(a: Attachment2) -> str:
    e = html.escape
    rows = []
    last_group = ""
    for r in a.rows:
        group = e(r.group_zh) if r.group != last_group else ""
        last_group = r.group
        tick = "—" if r.not_applicable else ("✓" if r.keep else "×")
        who = e(f"{r.decided_by} ({r.decided_role})") if r.decided_by else "默认 default"
        # The form's dates are China's calendar days, not the UTC day of the instant.
        when = local_date(r.decided_at).isoformat() if r.decided_at else ""
        note = e(r.reason or "")
        if r.hidden_by == "emptied":
            note += " (栏目已无信息，前台自动隐藏 / emptied: hidden on the site)"
        rows.append(
            f"<tr><td>{group}</td><td>{e(r.zh)}<br><small>{e(r.en)}</small></td>"
            f"<td>{e(r.deadline.zh)}</td><td class=tick>{tick}</td>"
            f"<td>{who}</td><td>{when}</td><td>{note}</td></tr>"
        )
    submitted = local_date(a.submitted_at).isoformat() if a.submitted_at else ""
    return (
        "<!doctype html><html lang=zh><meta charset=utf-8>"
        f"<title>附件2 {e(a.unit_name)}</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:4px 8px;vertical-align:top}"
        ".tick{text-align:center;font-size:1.2em}</style>"
        "<h1>政府信息公开平台专版体裁栏目信息更新时限表</h1>"
        f"<p>单位：{e(a.unit_name)}（{e(a.unit)}） 报送时间：{submitted}</p>"
        f"<p>信息公开联系人：{e(a.contact_name)} 手机号：{e(a.contact_mobile)}</p>"
        "<table><tr><th colspan=2>体裁栏目</th><th>更新时限</th><th>是否保留</th>"
        "<th>决定人</th><th>日期</th><th>理由</th></tr>" + "".join(rows) + "</table></html>"
    )


def build_router(svc: Ports) -> APIRouter:
    router = APIRouter(tags=["freshness"])
    authenticated = bearer_auth(lambda: svc.directory)
    rule_set_ids = [rs.id for rs in svc.rule_sets]

    def known_unit(code: str, field: str = "code") -> None:
        if not svc.has_unit(code):
            raise Problem(404, "Unknown unit", f"no unit {code!r} is registered", field=field)

    def known_rule_set(rule_set: str | None) -> None:
        if rule_set is not None and rule_set not in rule_set_ids:
            raise Problem(
                422,
                "Unknown rule set",
                f"rule set {rule_set!r} is not active (active: {', '.join(rule_set_ids)})",
                field="rule_set",
            )

    @router.get("/units/{code}/columns", summary="A unit's columns: state, due date, last item")
    async def unit_columns(
        code: PathId,
        rule_set: QueryId = None,
        state: StateName | None = None,
    ) -> dict[str, Any]:
        known_unit(code)
        known_rule_set(rule_set)
        as_of = svc.today()
        rows = svc.status_table(as_of, unit=code, rule_set=rule_set)
        if state is not None:
            rows = [r for r in rows if r.state == state]
        return {
            "unit": code,
            # The day the unit was registered: deadlines that fell before it are not its lapses
            # (its imported history counts for due dates, not for verdicts).
            "joined_on": svc.joined_on(code),
            "as_of": as_of,
            "rule_sets": [rule_set] if rule_set else rule_set_ids,
            "columns": [status_json(r) for r in rows],
        }

    @router.get("/columns", summary="Every unit's columns, filtered and paged")
    async def all_columns(
        rule_set: QueryId = None,
        state: StateName | None = None,
        column: QueryId = None,
        limit: int = Query(default=500, ge=1, le=5000),
        offset: int = Query(default=0, ge=0),
    ) -> dict[str, Any]:
        known_rule_set(rule_set)
        as_of = svc.today()
        rows = svc.status_table(as_of, rule_set=rule_set)
        if state is not None:
            rows = [r for r in rows if r.state == state]
        if column is not None:
            rows = [r for r in rows if r.column == column]
        return {
            "as_of": as_of,
            "total": len(rows),
            "offset": offset,
            "columns": [status_json(r) for r in rows[offset : offset + limit]],
        }

    @router.put(
        "/units/{code}/columns/{column}/visibility",
        summary="Keep (✓) or hide (×) a column for a unit (Attachment 2)",
    )
    async def put_visibility(
        code: PathId,
        column: PathId,
        body: VisibilityBody,
        response: Response,
        principal: Principal = Depends(authenticated),  # noqa: B008 - FastAPI's idiom
        idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
    ) -> dict[str, Any]:
        offices = sorted(u for u, r in principal.roles if r == OFFICE_ROLE)
        role = acting_role(principal.roles_in(code), bool(offices))
        if role is None:
            raise Problem(
                403,
                "Not allowed",
                f"only {code}'s leader or staff, or the county office, may tick its columns",
                field="Authorization",
            )
        unit = offices[0] if role == OFFICE_ROLE and code not in offices else code
        actor = Actor(person=principal.person_id, role=role, unit=unit)
        cmd = SetVisibility(code, column, body.visibility == "kept", body.reason)

        async def record() -> dict[str, Any]:
            result = await svc.set_visibility(cmd, actor)  # a Refusal: runtime.http maps it
            col = result.column
            return {
                "unit": code,
                "column": column,
                "visibility": "kept" if col.visible else "hidden",
                "hidden_by": col.hidden_by,
                "decision": body.visibility,
                "changed": result.changed,
                "event_id": result.event_id,
            }

        # As on POST: a retry with the same Idempotency-Key gets the first answer and records
        # nothing, even if the column changed since; the same key with another body is refused.
        return await svc.idempotency.answer_once(
            response,
            principal.person_id,
            idempotency_key,
            ("PUT", f"/units/{code}/columns/{column}/visibility", body.model_dump(mode="json")),
            record,
            svc.clock.now,
        )

    @router.get("/units/{code}/attachment-2", summary="The unit's filled-in Attachment 2")
    async def get_attachment2(code: PathId, format: Literal["json", "html"] = "json") -> Any:
        known_unit(code)
        a = svc.attachment2(code)
        if format == "html":
            return HTMLResponse(attachment2_html(a))
        return asdict(a)

    @router.get("/site/risk", summary="The national single-veto lines, with early warnings")
    async def get_site_risk(unit: QueryId = None, rule_set: QueryId = None) -> dict[str, Any]:
        if unit is not None:
            known_unit(unit, "unit")
        known_rule_set(rule_set)
        as_of = svc.today()
        sets = [
            rs for rs in svc.rule_sets if rs.site and (rule_set is None or rs.id == rule_set)
        ]
        risks = [svc.site_risk(rs, as_of, unit=unit) for rs in sets]
        levels = {"ok": 0, "warning": 1, "veto": 2}
        level = max((r.level for r in risks), key=levels.__getitem__, default="ok")
        return {
            "as_of": as_of,
            "unit": unit,
            "level": level,
            "rule_sets": [risk_json(r) for r in risks],
        }

    @router.get("/rule-sets", summary="The active rule sets: catalog and rules")
    async def get_rule_sets() -> dict[str, Any]:
        catalog = svc.catalog
        return {
            "catalog": {
                "id": catalog.id,
                "groups": [
                    {
                        "code": g.code,
                        "zh": g.zh,
                        "en": g.en,
                        "columns": [_column_json(catalog.columns[c]) for c in g.columns],
                    }
                    for g in catalog.groups
                ],
            },
            "rule_sets": [
                {
                    "id": rs.id,
                    "title": asdict(rs.title),
                    "source": rs.source,
                    "rules": [
                        {
                            "id": r.id,
                            "kind": r.kind,
                            "describe": r.describe(),
                            "warn_working_days": r.warn_working_days,
                            "columns": [c for c, rules in rs.rules_by_column.items() if r in rules],
                        }
                        for r in rs.rules
                    ],
                    "site": [
                        {
                            "id": s.id,
                            "measure": s.measure,
                            "warn": s.warn,
                            "veto": s.veto,
                            "text": asdict(s.text),
                        }
                        for s in rs.site
                    ],
                }
                for rs in svc.rule_sets
            ],
        }

    return router


def _column_json(col: Any) -> dict[str, Any]:
    return {
        "code": col.code,
        "zh": col.zh,
        "en": col.en,
        "deadline": asdict(col.deadline),
        "unit_kinds": sorted(col.unit_kinds) if col.unit_kinds is not None else None,
        "hidden_by_default": col.hidden_by_default,
        "redatable": col.redatable,
    }
