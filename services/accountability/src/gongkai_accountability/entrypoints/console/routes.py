"""The inspectors' console under ``/console``: server-rendered pages over the log as of a day.

Every page answers from the log folded up to the end of the chosen day (Asia/Shanghai), as
``gongkai audit as-of`` does (``adapters.log.fold_log``), and counts with the same functions
(``domain.report``), so the page and the command line agree by construction. Reads are scoped
as the API's are (``gongkai.access``): the county office sees every unit, a unit's people their
unit; another unit's page or post is refused (403) before anything of it is shown.

The routes are left out of the OpenAPI document: they answer HTML to people, not JSON to
programs (the API beside them does that).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import functools
import io
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.datastructures import FormData
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemBytecodeCache, FileSystemLoader, select_autoescape
from jinja2.bccache import Bucket
from sqlalchemy import select

from gongkai import access
from gongkai.calendar import local_date
from gongkai.directory import Directory, Principal
from gongkai.identifiers import is_token
from gongkai.rules import default_catalog
from gongkai.vocabulary import COLUMN_STATES
from gongkai_accountability.domain.responsibility import Person
from gongkai_accountability.domain.rows import Rows
from gongkai_accountability.domain.tables import Case, Confirmation, Resolution, Violation
from gongkai_accountability.entrypoints.console import forms, labels, views
from gongkai_accountability.entrypoints.console.i18n import (
    HERE,
    LANGUAGES,
    beijing,
    negotiate,
    translations,
)
from gongkai_accountability.entrypoints.console.labels import N_
from gongkai_accountability.entrypoints.console.session import (
    Session,
    Sessions,
    csrf_ok,
    load_key,
)

if TYPE_CHECKING:
    from gongkai_accountability.entrypoints.console import pdf
    from gongkai_accountability.service import AccountabilityService

PREFIX = "/console"
#: Longest id a console path accepts (unit codes and post ids are far shorter).
MAX_ID = 200


@dataclass(frozen=True)
class Names:
    """Units and people by their names, from the directory accountability keeps."""

    units: dict[str, str]
    people: dict[str, str]

    @classmethod
    def read(cls, directory: Directory) -> Names:
        p = directory.p
        with directory.engine.connect() as conn:
            units = {r.code: r.name for r in conn.execute(select(p.units.c.code, p.units.c.name))}
            people = {
                r.person_id: r.name
                for r in conn.execute(select(p.people.c.person_id, p.people.c.name))
            }
        return cls(units, people)

    def unit(self, code: str | None) -> str:
        return self.units.get(code or "", code or "")

    def person(self, pid: str | None) -> str:
        return self.people.get(pid or "", pid or "")


class Page:
    """One request's language, reader and as-of day, and what its template needs of them."""

    def __init__(
        self,
        request: Request,
        principal: Principal | None,
        session: Session | None,
        today: date,
        names: Names | None = None,
    ) -> None:
        self.request = request
        self.principal = principal
        self.session = session
        self.today = today
        self.lang_param = request.query_params.get("lang")
        self.lang = negotiate(self.lang_param, request.headers.get("accept-language"))
        self.gettext: Callable[[str], str] = translations(self.lang).gettext
        self.names = names or Names({}, {})
        self.catalog = default_catalog()

    def url(self, path: str, **params: Any) -> str:
        """A console link that keeps the language the reader chose with ``?lang=``."""
        q = {k: v for k, v in params.items() if v not in (None, "")}
        if self.lang_param in LANGUAGES:
            q.setdefault("lang", self.lang_param)
        return path + ("?" + urlencode(q) if q else "")

    def switch(self, lang: str) -> str:
        q = dict(self.request.query_params)
        q["lang"] = lang
        return self.request.url.path + "?" + urlencode(q)

    def column(self, code: str | None) -> str:
        col = self.catalog.column(code or "")
        if col is None:
            return code or ""
        return col.zh if self.lang == "zh" else col.en

    def context(self, **extra: Any) -> dict[str, Any]:
        _ = self.gettext
        zone = _("北京时间")
        return {
            "_": _,
            "lang": self.lang,
            "lang_param": self.lang_param if self.lang_param in LANGUAGES else "",
            "url": self.url,
            "switch": self.switch,
            "me": self.principal,
            "me_name": self.names.person(self.principal.person_id) if self.principal else "",
            "office": self.principal is not None and access.is_office(self.principal),
            "csrf": self.session.csrf if self.session else "",
            "today": self.today.isoformat(),
            "bj": lambda at, seconds=False: beijing(at, zone, seconds),
            "unit_name": self.names.unit,
            "person_name": self.names.person,
            "column_name": self.column,
            **{
                name: functools.partial(labels.label, table, gettext=_)
                for name, table in labels.NAMES.items()
            },
            "day": "",
            **extra,
        }


class BadInput(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _date(text: str | None, what: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadInput(what) from None


class Forbidden(Exception):
    """What the reader may not see: another unit's page, post or list."""


def people(page: Page, found: Iterable[Person]) -> list[dict[str, str]]:
    """Who answers, by code, name and role (in the page's language)."""
    return [
        {
            "person": r.person,
            "name": page.names.person(r.person),
            "role": labels.label(labels.ROLES, r.role, page.gettext),
        }
        for r in found
    ]


def violation_rows(page: Page, found: list[Violation]) -> list[dict[str, Any]]:
    """Violations as exported: codes and names side by side, times in Beijing time."""
    _ = page.gettext
    return [
        {
            "violation_id": v.violation_id,
            "occurred_at": beijing(v.occurred_at, _("北京时间")),
            "unit": v.unit,
            "unit_name": page.names.unit(v.unit),
            "kind": v.kind,
            "kind_name": labels.label(labels.KINDS, v.kind, _),
            "severity": labels.label(labels.SEVERITIES, v.severity, _),
            "column": page.column(v.column),
            "post_id": v.post_id or "",
            "responsible": people(page, v.responsible),
            "rectified": v.rectified is not None,
        }
        for v in found
    ]


def finding_rows(page: Page, found: list[views.FindingLine]) -> list[dict[str, Any]]:
    """Findings as exported: codes and names side by side."""
    _ = page.gettext
    out = []
    for line in found:
        x, answer = line.finding, line.finding.answer
        out.append({
            "finding_id": x.finding_id,
            "reported_on": x.reported_on,
            "unit": x.unit,
            "unit_name": page.names.unit(x.unit),
            "kind": x.kind,
            "kind_name": labels.label(labels.FINDING_KINDS, x.kind, _),
            "column": page.column(x.column),
            "post_id": x.post_id or "",
            "description": x.description,
            "reported_by": page.names.person(x.reported_by.person),
            "status": x.status,
            "status_name": labels.label(labels.FINDING_STATUS, x.status, _),
            "answer": (answer.note if isinstance(answer, Confirmation) else None)
            or labels.label(
                labels.FINDING_HOW, answer.how if isinstance(answer, Resolution) else None, _
            ),
            "responsible": people(page, line.responsible),
        })
    return out


def case_rows(page: Page, found: list[Case]) -> list[dict[str, Any]]:
    """Cases as exported: the notice with its deadline, and how the case ended."""
    _ = page.gettext
    out = []
    for c in found:
        notice, closed = c.notice, c.closed
        by = notice.by.person if notice is not None and notice.by is not None else None
        out.append({
            "case_id": c.case_id,
            "unit": c.unit,
            "unit_name": page.names.unit(c.unit),
            "column": page.column(c.column),
            "opened_on": c.opened_on,
            "status": c.status,
            "status_name": labels.label(labels.CASE_STATUS, c.status, _),
            "notice_issued_on": notice.issued_on if notice else "",
            "notice_by": (
                _("到期自动发出") if notice.automatic else page.names.person(by)
            )
            if notice
            else "",
            "deadline": notice.deadline if notice else "",
            "closed_on": closed.closed_on if closed else "",
            "outcome": closed.outcome if closed else "",
            "outcome_name": labels.label(labels.OUTCOMES, closed.outcome if closed else None, _),
            "breach": c.breach or "",
        })
    return out


#: A list's rows as its filter found them (typed rows, or a view of them).
Found = list[Any]
#: A list's rows as exported.
Exported = list[dict[str, Any]]


@dataclass(frozen=True)
class Export:
    """A list the console shows as a page (``/<name>``, template ``<name>.html``) and exports
    as ``/<name>.csv`` and ``/<name>.json``, all three kept by one filter: a unit, one of
    ``codes`` (the query parameter ``param``; another is ``unknown``) and, where the list has a
    period, ``from``/``to``. ``rows`` gives its rows as exported (JSON); the CSV has
    ``columns``, each a heading and the field of an exported row under it. The page shows the
    folded rows, or the exported ones where ``page_shows_export``."""

    name: str
    key: str
    find: Callable[[Rows, views.Filter, frozenset[str] | None], Found]
    param: str
    codes: Mapping[str, str]
    unknown: str
    period: bool
    columns: tuple[tuple[str, str], ...]
    rows: Callable[[Page, Found], Exported]
    page_shows_export: bool = False
    #: The list's rows have a severity to filter on (``?severity=``: violations).
    severities: bool = False

    def params(self, day: date, f: views.Filter) -> dict[str, Any]:
        """The filter as the page's links carry it (and the JSON names it, ``date`` aside)."""
        out: dict[str, Any] = {"date": day.isoformat(), "unit": f.unit, self.param: f.code}
        if self.severities:
            out["severity"] = f.severity
        if self.period:
            out["from"] = f.since.isoformat() if f.since else None
            out["to"] = f.until.isoformat() if f.until else None
        return out

    def csv_lines(self, page: Page, rows: Exported) -> list[list[str]]:
        return [[cell(page, row[field]) for _head, field in self.columns] for row in rows]


def cell(page: Page, value: Any) -> str:
    """An exported field as a CSV cell, as ``csv.writer`` writes it, but people as 姓名（角色）
    and a yes/no in words."""
    if isinstance(value, bool):
        return page.gettext("是") if value else page.gettext("否")
    if isinstance(value, list):
        return "；".join(f"{r['name']}（{r['role']}）" for r in value)
    return "" if value is None else str(value)


EXPORTS = (
    Export(
        name="violations",
        key="violations",
        find=views.VIOLATIONS.find,
        param="kind",
        codes=labels.KINDS,
        unknown=N_("没有这种违规类型。"),
        period=True,
        columns=(
            (N_("违规编号"), "violation_id"), (N_("发生时间"), "occurred_at"),
            (N_("单位"), "unit_name"), (N_("类型"), "kind_name"), (N_("程度"), "severity"),
            (N_("栏目"), "column"), (N_("稿件"), "post_id"), (N_("责任人"), "responsible"),
            (N_("已整改"), "rectified"),
        ),
        rows=violation_rows,
        severities=True,
    ),
    Export(
        name="findings",
        key="findings",
        find=views.findings,
        param="status",
        codes=labels.FINDING_STATUS,
        unknown=N_("没有这种纠错状态。"),
        period=True,
        columns=(
            (N_("纠错编号"), "finding_id"), (N_("报告日期"), "reported_on"),
            (N_("单位"), "unit_name"), (N_("错误类型"), "kind_name"), (N_("栏目"), "column"),
            (N_("稿件"), "post_id"), (N_("问题描述"), "description"),
            (N_("报告人"), "reported_by"), (N_("状态"), "status_name"),
            (N_("处理结果"), "answer"), (N_("责任人"), "responsible"),
        ),
        rows=finding_rows,
    ),
    Export(
        name="supervisions",
        key="cases",
        find=views.CASES.find,
        param="state",
        codes=labels.CASE_STATUS,
        unknown=N_("没有这种督办状态。"),
        period=False,
        columns=(
            (N_("案件编号"), "case_id"), (N_("单位"), "unit_name"), (N_("栏目"), "column"),
            (N_("立案日期"), "opened_on"), (N_("状态"), "status_name"),
            (N_("督办通知"), "notice_issued_on"), (N_("发出人"), "notice_by"),
            (N_("整改期限"), "deadline"), (N_("办结日期"), "closed_on"),
            (N_("办结情况"), "outcome_name"),
        ),
        rows=case_rows,
        page_shows_export=True,
    ),
)


def attachment(body: bytes, media: str, filename: str) -> Response:
    return Response(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


def csv_file(name: str, day: date, heads: list[str], lines: list[list[str]]) -> Response:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(heads)
    w.writerows(lines)
    # The BOM tells Excel the file is UTF-8: without it the Chinese shows as mojibake.
    return attachment(
        ("\ufeff" + buf.getvalue()).encode("utf-8"),
        "text/csv; charset=utf-8",
        f"{name}-{day}.csv",
    )


def json_file(name: str, day: date, body: dict[str, Any]) -> Response:
    return attachment(
        json.dumps(body, ensure_ascii=False, indent=2).encode(),
        "application/json",
        f"{name}-{day}.json",
    )


#: Rows a list page shows at once; its CSV and JSON have them all.
PAGE_ROWS = 200


class _BytecodeCache(FileSystemBytecodeCache):
    """Jinja's cache of compiled templates in the user's private temporary directory (0700,
    checked by Jinja), keyed by each template's source: every process of the console compiled
    the same fifteen templates again (0.2-0.4 s of CPU at each start of accountability). A
    cache that cannot be written is no reason to refuse a page."""

    def dump_bytecode(self, bucket: Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def _bytecode_cache() -> _BytecodeCache | None:
    try:
        return _BytecodeCache()
    except (OSError, RuntimeError):  # no private temporary directory: compile every time
        return None


@functools.cache
def templates() -> Environment:
    """The console's templates, compiled once a process (nothing of a service is bound to
    them: each page gets its context when it is rendered), with what every page reads:
    compiling them and loading the rule sets on first use cost the first request of each page
    up to 170 ms."""
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=_bytecode_cache(),
    )
    for name in env.list_templates(filter_func=lambda n: n.endswith(".html")):
        env.get_template(name)
    views.veto_lines()
    forms.notice_rules()
    return env


def build_console_router(svc: AccountabilityService) -> APIRouter:
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    env = templates()
    sessions = Sessions(lambda: load_key(svc.ctx.settings.data_dir))
    css = (HERE / "static" / "console.css").read_bytes()

    def today() -> date:
        return local_date(svc.ctx.clock.now())

    async def folded(day: date) -> Rows:
        """The log folded up to the end of ``day`` (Shanghai), as ``audit as-of`` folds it."""
        return await svc.as_of(day)

    def render(page: Page, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        html = env.get_template(template).render(page.context(**ctx))
        resp = HTMLResponse(html, status_code=status)
        # Pages name people and their lapses: no shared cache keeps them.
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["Content-Language"] = "zh-CN" if page.lang == "zh" else page.lang
        return resp

    def problem(page: Page, status: int, message: str) -> HTMLResponse:
        return render(page, "error.html", status=status, status_code=status, message=message)

    def forbidden(page: Page) -> Response:
        return problem(page, 403, page.gettext("只有本单位人员和县政府办可以查看。"))

    async def signed_in(request: Request) -> Page | Response:
        """The reader's page context, or where to go instead (sign-in, an error page)."""
        session = sessions.read(request)
        anon = Page(request, None, session, today())
        if session is None or session.token is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(anon.url(f"{PREFIX}/login", next=target), status_code=303)
        try:
            principal = await svc.directory.authenticate(session.token)
        except TimeoutError:
            return problem(anon, 503, anon.gettext("目录尚在同步，请稍后再试。"))
        if principal is None:
            # Revoked or expired since sign-in: the session ends with its token.
            resp = RedirectResponse(anon.url(f"{PREFIX}/login"), status_code=303)
            sessions.clear(request, resp)
            return resp
        return Page(request, principal, session, today(), Names.read(svc.directory))

    async def printed(page: Page, name: str, make: Callable[[pdf.Words], bytes]) -> Response:
        """A form as PDF, drawn in a worker thread: fontTools' subsetting takes a second or
        so, and the pages must go on answering meanwhile."""
        from gongkai_accountability.entrypoints.console import pdf

        words = pdf.Words(page.lang, page.gettext, page.names.unit, page.names.person,
                          page.column)
        try:
            body = await asyncio.to_thread(make, words)
        except pdf.FontMissing as exc:
            message = page.gettext("服务器缺少中文字体，无法生成 PDF。")
            return problem(page, 503, f"{message} {exc}")
        return attachment(body, "application/pdf", name)

    def as_of(page: Page) -> tuple[date, date]:
        """The day asked for (default: today; never after today: the log has no future) and
        the score period's start (default: the first of that day's year)."""
        q = page.request.query_params
        day = _date(q.get("date"), page.gettext("日期格式应为 YYYY-MM-DD")) or page.today
        day = min(day, page.today)
        start = _date(q.get("from"), page.gettext("日期格式应为 YYYY-MM-DD")) or date(
            day.year, 1, 1
        )
        return day, min(start, day)

    def guarded(
        handler: Callable[[Page], Any],
    ) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            page = await signed_in(request)
            if isinstance(page, Response):
                return page
            try:
                result: Response = await handler(page)
            except BadInput as exc:
                return problem(page, 400, exc.message)
            except Forbidden:
                return forbidden(page)
            return result

        return endpoint

    # ---- pages ----------------------------------------------------------------------------

    async def overview_page(page: Page) -> Response:
        assert page.principal is not None
        day, start = as_of(page)
        rows = await folded(day)
        units = access.readable_units(page.principal)
        table = views.overview(rows, start, day, units)
        points, trend = await svc.score_trend(start, day)
        lines = views.veto_lines()
        return render(
            page,
            "overview.html",
            day=day.isoformat(),
            start=start.isoformat(),
            units=table,
            trend={u: views.sparkline(series) for u, series in trend.items()},
            trend_from=points[0].isoformat(),
            spark=(views.SPARK_W, views.SPARK_H),
            lines=lines,
            line_text=lambda lid: getattr(lines[lid].text, page.lang),
            totals={
                "stale": sum(u.stale for u in table),
                "blank": sum(u.blank for u in table),
                "vetoed": sum(u.vetoed > 0 for u in table),
            },
        )

    async def unit_page(page: Page, as_pdf: bool = False) -> Response:
        assert page.principal is not None
        code = page.request.path_params["code"]
        if len(code) > MAX_ID or (code not in page.names.units):
            return problem(page, 404, page.gettext("没有这个单位。"))
        if not access.may_read(page.principal, code):
            raise Forbidden
        day, start = as_of(page)
        rows = await folded(day)
        table = forms.attachment2(rows, code, day)
        if as_pdf:
            from gongkai_accountability.entrypoints.console import pdf

            return await printed(
                page, f"attachment2-{code}-{day}.pdf", lambda w: pdf.attachment2_pdf(table, w)
            )
        view = views.unit_view(rows, start, day, code)
        return render(
            page,
            "unit.html",
            day=day.isoformat(),
            start=start.isoformat(),
            code=code,
            view=view,
            table=table,
            form_state=lambda st: labels.label(COLUMN_STATES, st, page.gettext),
        )

    async def post_page(page: Page, as_pdf: bool = False) -> Response:
        assert page.principal is not None
        post_id = page.request.path_params["post_id"]
        day, _start = as_of(page)
        rows = await folded(day)
        # The post itself read by its subjects (a day's kept rows hold no posts).
        post = await svc.post(post_id, day) if is_token(post_id) else None
        if post is None:
            # Unknown, or not yet made on that day: the same answer, as the API's 404.
            return problem(page, 404, page.gettext("该日没有这篇稿件。"))
        if not access.may_read(page.principal, post.unit):
            raise Forbidden
        form = forms.attachment1(post)
        if as_pdf:
            from gongkai_accountability.entrypoints.console import pdf

            return await printed(
                page, f"attachment1-{post_id}.pdf",
                lambda w: pdf.attachment1_pdf(form, w, day.isoformat()),
            )
        return render(
            page,
            "post.html",
            form=form,
            day=day.isoformat(),
            post=post,
            violations=views.post_violations(rows, post_id),
        )

    def scoped(page: Page, unit: str | None) -> frozenset[str] | None:
        """The units the reader may list (None: all); a filter on another unit is refused."""
        assert page.principal is not None
        units = access.readable_units(page.principal)
        if unit is not None and units is not None and unit not in units:
            raise Forbidden
        return units

    def unit_choices(page: Page) -> list[str]:
        assert page.principal is not None
        units = access.readable_units(page.principal)
        return sorted(
            (c for c in page.names.units if units is None or c in units),
            key=lambda c: page.names.unit(c),
        )

    async def listed(page: Page, spec: Export) -> tuple[date, views.Filter, Found]:
        """What ``spec``'s filter keeps as of the day asked for, of the units the reader may
        see: its page, CSV and JSON answer the same rows."""
        q = page.request.query_params
        bad = page.gettext("日期格式应为 YYYY-MM-DD")
        code = q.get(spec.param) or None
        if code is not None and code not in spec.codes:
            raise BadInput(page.gettext(spec.unknown))
        severity = (q.get("severity") or None) if spec.severities else None
        if severity is not None and severity not in labels.SEVERITIES:
            raise BadInput(page.gettext("没有这种违规程度。"))
        day, _start = as_of(page)
        f = views.Filter(
            unit=q.get("unit") or None,
            code=code,
            since=_date(q.get("from"), bad) if spec.period else None,
            until=_date(q.get("to"), bad) if spec.period else None,
            severity=severity,
        )
        units = scoped(page, f.unit)
        return day, f, spec.find(await folded(day), f, units)

    def list_page(spec: Export) -> Callable[[Page], Awaitable[Response]]:
        async def answer(page: Page) -> Response:
            day, f, found = await listed(page, spec)
            params = spec.params(day, f)
            # A page shows PAGE_ROWS rows (a county's year can hold thousands of violations:
            # drawn all at once the page took 0.6 s at 1,000,000 events); the CSV and JSON
            # exports answer every row the filter keeps.
            total = len(found)
            pages = max(1, -(-total // PAGE_ROWS))
            raw = page.request.query_params.get("page") or "1"
            if not raw.isdigit() or not 1 <= int(raw) <= pages:
                raise BadInput(page.gettext("没有这一页。"))
            number = int(raw)
            shown = found[(number - 1) * PAGE_ROWS : number * PAGE_ROWS]
            link = functools.partial(page.url, f"{PREFIX}/{spec.name}", **params)
            return render(
                page,
                f"{spec.name}.html",
                day=day.isoformat(),
                f=f,
                total=total,
                paging={
                    "number": number,
                    "pages": pages,
                    "prev": link(page=number - 1) if number > 1 else None,
                    "next": link(page=number + 1) if number < pages else None,
                },
                found=spec.rows(page, shown) if spec.page_shows_export else shown,
                unit_choices=unit_choices(page),
                param=spec.param,
                codes=spec.codes,
                severities=list(labels.SEVERITIES) if spec.severities else None,
                csv_url=page.url(f"{PREFIX}/{spec.name}.csv", **params),
                json_url=page.url(f"{PREFIX}/{spec.name}.json", **params),
            )

        return answer

    def list_csv(spec: Export) -> Callable[[Page], Awaitable[Response]]:
        async def answer(page: Page) -> Response:
            day, _f, found = await listed(page, spec)
            heads = [page.gettext(head) for head, _field in spec.columns]
            return csv_file(spec.name, day, heads, spec.csv_lines(page, spec.rows(page, found)))

        return answer

    def list_json(spec: Export) -> Callable[[Page], Awaitable[Response]]:
        async def answer(page: Page) -> Response:
            day, f, found = await listed(page, spec)
            params = spec.params(day, f)
            params.pop("date")
            body = {"as_of": day.isoformat(), "filter": params, spec.key: spec.rows(page, found)}
            return json_file(spec.name, day, body)

        return answer

    async def integrity_page(page: Page) -> Response:
        assert page.principal is not None
        # The whole log's integrity is the office's to watch (as GET /integrity-alerts): an
        # alert names no unit, and a checkpoint vouches for every unit's events at once.
        if not access.is_office(page.principal):
            return problem(page, 403, page.gettext("只有县政府办可以查看日志完整性。"))
        day, _start = as_of(page)
        found = views.alerts(await folded(day))
        # Read and checked as `audit verify` reads them: one signature per checkpoint, only
        # the notes recorded since the last read (the service read the rest as it started);
        # those signed after the chosen day are not yet in the log as of it.
        chain = await svc.checkpoints()
        anchored = chain is not None
        checkpoints = (
            sorted(
                (c for c in chain.checkpoints if local_date(c.at) <= day),
                key=lambda c: c.size,
                reverse=True,
            )
            if chain is not None
            else []
        )
        return render(
            page,
            "integrity.html",
            day=day.isoformat(),
            anchored=anchored,
            checkpoints=checkpoints,
            problems=chain.problems if chain is not None else [],
            alerts=found,
            check_name=lambda c: labels.label(labels.CHECKS, c, page.gettext),
            root_of=lambda c: base64.b64encode(c.root).decode(),
        )

    router.add_api_route("", guarded(overview_page), methods=["GET"])
    router.add_api_route("/units/{code}", guarded(unit_page), methods=["GET"])
    router.add_api_route("/posts/{post_id}", guarded(post_page), methods=["GET"])
    # The notice's forms for filing, scoped as the pages they print.
    router.add_api_route(
        "/units/{code}/attachment2.pdf", guarded(functools.partial(unit_page, as_pdf=True)),
        methods=["GET"],
    )
    router.add_api_route(
        "/posts/{post_id}/form.pdf", guarded(functools.partial(post_page, as_pdf=True)),
        methods=["GET"],
    )
    router.add_api_route("/integrity", guarded(integrity_page), methods=["GET"])
    for spec in EXPORTS:
        router.add_api_route(f"/{spec.name}", guarded(list_page(spec)), methods=["GET"])
        router.add_api_route(f"/{spec.name}.csv", guarded(list_csv(spec)), methods=["GET"])
        router.add_api_route(f"/{spec.name}.json", guarded(list_json(spec)), methods=["GET"])

    # ---- signing in and out -----------------------------------------------------------------

    def safe_next(target: str | None) -> str:
        # Only back into the console: a sign-in link must not send anyone elsewhere.
        if target and target.startswith(PREFIX) and not target.startswith("//"):
            return target
        return PREFIX

    @router.get("/login")
    async def login_form(request: Request) -> Response:
        session = sessions.read(request)
        fresh = session is None
        if session is None:
            session = sessions.new()
        page = Page(request, None, session, today())
        resp = render(page, "login.html", next=safe_next(request.query_params.get("next")))
        if fresh:
            sessions.write(request, resp, session)
        return resp

    async def posted(request: Request) -> tuple[FormData, Page, Response | None]:
        """A form posted to the console and the page to answer on, with the answer already
        given (403) when the form's CSRF token is not its session's: a form from an older
        session, or from another site."""
        form = await request.form()
        session = sessions.read(request)
        page = Page(request, None, session, today())
        if csrf_ok(session, _field(form.get("csrf"))):
            return form, page, None
        stale = page.gettext("表单已失效或来源不明，请重新打开登录页。")
        return form, page, problem(page, 403, stale)

    @router.post("/login")
    async def login(request: Request) -> Response:
        form, page, refused = await posted(request)
        if refused is not None:
            return refused
        token = (_field(form.get("token")) or "").strip()
        nxt = safe_next(_field(form.get("next")))
        try:
            principal = await svc.directory.authenticate(token) if token else None
        except TimeoutError:
            return problem(page, 503, page.gettext("目录尚在同步，请稍后再试。"))
        if principal is None:
            return render(
                page, "login.html", status=401, next=nxt,
                error=page.gettext("令牌无效、已吊销或已过期。"),
            )
        lang = _field(form.get("lang"))
        if lang in LANGUAGES and "lang=" not in nxt:
            nxt += ("&" if "?" in nxt else "?") + f"lang={quote(lang)}"
        resp = RedirectResponse(nxt, status_code=303)
        # A new session (a new CSRF token) at sign-in: nothing from before it carries over.
        sessions.write(request, resp, sessions.new(token))
        return resp

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        _form, page, refused = await posted(request)
        if refused is not None:
            return refused
        resp = RedirectResponse(page.url(f"{PREFIX}/login"), status_code=303)
        sessions.clear(request, resp)
        return resp

    @router.get("/static/console.css")
    async def stylesheet() -> Response:
        return Response(
            css, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"}
        )

    return router


def _field(value: Any) -> str | None:
    return value if isinstance(value, str) else None
