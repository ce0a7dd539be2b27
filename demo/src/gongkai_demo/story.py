"""``gongkai demo``: a scripted stretch of the demo county's life, played into a running platform.

Everything goes through the platform's public HTTP API, as the county's people, the CMS and the
county office would call it, with the demo county's public tokens (``county.py``). Five acts:

1. the finance bureau publishes a post by the book (submitted, signed by staff and leader, put
   online in the approved version): nothing to record;
2. the finance bureau's normative document goes online with only the staff opinion: the leader
   never approved it (published without review);
3. the statistics bureau's figures are reported wrong by the office's site reader and the
   office confirms the finding (wrong information);
4. the office supervises (督办) Beipo township's stale work-arrangements column (the one unit
   still behind when the county joins, ``history.STILL_BEHIND``): a notice with a deadline in
   working days;
5. the market supervision bureau discloses a penalty decision after its 10 working days (late
   publication) — only if the county joined gongkai before that deadline fell.

The platform runs on the real clock and nothing here can age it. A deadline that fell before a
unit joined the platform is not that unit's lapse, so on the day the demo county is loaded act
5 is skipped and act 4's notice cannot be breached yet; both are said plainly. Running the
demo again on a later working day (same data directory) plays the acts of that day, discloses
the penalty decision late, and shows the supervision breached once its deadline has passed.

Then the freshness table of the story's units and the violations, read back from the
freshness and accountability services. Idempotency keys are derived from the date and the
step, so running the demo twice on one day records nothing new.
"""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TextIO, TypeVar

import httpx

from gongkai.calendar import WorkingCalendar, local_date
from gongkai_demo.county import DEMO

T = TypeVar("T")

#: The units of the story and the column each act touches.
FINANCE, STATISTICS, MARKET, TOWN = "finance", "statistics", "market", "beipo-township"
STORY_COLUMNS: Mapping[str, tuple[str, ...]] = {
    FINANCE: ("work_arrangements", "normative_documents"),
    STATISTICS: ("statistics",),
    MARKET: ("administrative_penalties",),
    TOWN: ("work_arrangements",),
}
PENALTY_WORKING_DAYS = 10  # Attachment 2: enforcement information within 10 working days


class DemoError(Exception):
    """The platform did not answer as the story needs: one line for the terminal."""


@dataclass
class Promise:
    """A violation the story caused and waits to see recorded."""

    kind: str
    unit: str
    post_id: str | None = None
    finding_id: str | None = None
    violation_id: str | None = None


@dataclass
class StoryReport:
    """What the story did, for the summary and for tests."""

    today: date
    posts: dict[str, str] = field(default_factory=dict)
    promised: list[Promise] = field(default_factory=list)
    #: Act 5: "recorded", or why it was not played today.
    late_disclosure: str = ""
    supervision: dict[str, Any] = field(default_factory=dict)
    violations: list[dict[str, Any]] = field(default_factory=list)


class DemoStory:
    """Plays the acts against ``client`` (its base URL is the platform's HTTP API).

    ``now`` is the platform's clock (the wall clock for ``gongkai demo``; a test's fixed clock
    in-process): dates in requests must be the platform's, not the demo process's.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        now: Callable[[], datetime],
        out: TextIO,
        calendar: WorkingCalendar | None = None,
        timeout: float = 20.0,
    ) -> None:
        self.client = client
        self.now = now
        self.out = out
        self.calendar = calendar or WorkingCalendar.default()
        self.timeout = timeout
        self.today = local_date(now())

    # ---- plumbing ------------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        # Wrapped for a terminal, continuation lines under the text's own indentation.
        blank = len(text) - len(text.lstrip("\n"))
        text = text[blank:]
        indent = " " * (len(text) - len(text.lstrip(" ")))
        hang = indent + ("  " if text.lstrip().startswith(("→", "(")) else "")
        lines = textwrap.wrap(text, width=100, subsequent_indent=hang, break_on_hyphens=False)
        print("\n" * blank + "\n".join(lines or [""]), file=self.out, flush=True)

    def key(self, step: str) -> str:
        # Per day and step: a second run on the same day replays the first one's answers.
        return f"demo-{self.today.isoformat()}-{step}"

    async def call(
        self,
        method: str,
        path: str,
        person: str,
        *,
        step: str | None = None,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201),
    ) -> httpx.Response:
        headers = DEMO.headers(person, self.key(step) if step else None)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                r = await self.client.request(
                    method, path, headers=headers, json=json, params=params
                )
            except httpx.TransportError as exc:
                raise DemoError(
                    f"cannot reach the platform at {self.client.base_url} "
                    f"({exc or type(exc).__name__}): start it in another terminal with "
                    "`make up-demo` (gongkai up --demo)"
                ) from None
            # 503 + Retry-After: a service still catching up (the directory just loaded, a
            # read model behind). The API asks to come back; an idempotency key makes it safe.
            if r.status_code != 503 or 503 in ok or time.monotonic() > deadline:
                break
            after = r.headers.get("Retry-After", "")
            await asyncio.sleep(min(float(after), 1.0) if after.isdigit() else 1.0)
        if r.status_code not in ok:
            detail = r.text[:300]
            raise DemoError(f"{method} {path} as {person}: {r.status_code} {detail}")
        return r

    async def until(self, what: str, probe: Callable[[], Awaitable[T | None]]) -> T:
        """Poll ``probe`` until it returns something: the services react to the log
        asynchronously, each at its own pace."""
        deadline = time.monotonic() + self.timeout
        while True:
            got = await probe()
            if got is not None:
                return got
            if time.monotonic() > deadline:
                raise DemoError(f"waited {self.timeout:.0f} s for {what}: is every service up?")
            await asyncio.sleep(0.1)

    async def trail(self, post_id: str, step: str) -> list[dict[str, Any]]:
        async def probe() -> list[dict[str, Any]] | None:
            r = await self.call("GET", f"/posts/{post_id}/trail", "office-reader", ok=(200, 404))
            steps: list[dict[str, Any]] = r.json().get("trail", []) if r.status_code == 200 else []
            return steps if any(s["what"] == step for s in steps) else None

        return await self.until(f"accountability to see {step} of {post_id}", probe)

    async def violation(self, p: Promise) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            r = await self.call(
                "GET", "/violations", "office-reader", params={"unit": p.unit, "kind": p.kind}
            )
            for v in r.json():
                if (p.post_id and v.get("post_id") == p.post_id) or (
                    p.finding_id and v.get("finding_id") == p.finding_id
                ):
                    return dict(v)
            return None

        v = await self.until(f"the {p.kind} violation of {p.unit}", probe)
        p.violation_id = v["violation_id"]
        return v

    # ---- what people do --------------------------------------------------------------------

    async def submit(
        self, step: str, unit: str, column: str, title: str, info: date, **form: Any
    ) -> dict[str, Any]:
        body = {
            "unit": unit,
            "column": column,
            "title": title,
            "body": f"{title}。（演示内容 demo content）",
            "information_date": info.isoformat(),
            **form,
        }
        r = await self.call("POST", "/posts", f"{unit}-maker", step=step, json=body)
        return dict(r.json())

    async def sign(self, step: str, post: dict[str, Any], stage: str, opinion: str) -> None:
        await self.call(
            "POST",
            f"/posts/{post['post_id']}/signatures",
            f"{post['unit']}-{stage}",
            step=step,
            json={
                "stage": stage,
                "decision": "agree",
                "opinion": opinion,
                "content_digest": post["content_digest"],
            },
        )

    async def publish(self, step: str, post: dict[str, Any]) -> str:
        """The CMS reports the item online, at the moment of the post's last step so far (a
        rerun sends the very same request)."""
        trail = await self.trail(post["post_id"], "submitted")
        before: list[datetime] = []
        for s in trail:
            if s["what"] == "published":
                break  # a rerun: only the steps before the first publication
            before.append(datetime.fromisoformat(s["at"]))
        online_at = max(before)
        r = await self.call(
            "POST",
            "/publications",
            "cms",
            step=step,
            json={
                "post_id": post["post_id"],
                "unit": post["unit"],
                "column": post["column"],
                "url": f"https://www.wenhe.example.gov.cn/{post['unit']}/{post['post_id']}.html",
                "online_at": online_at.isoformat(),
                "content_digest": post["content_digest"],
            },
        )
        return str(r.json()["publication_id"])

    async def signed(self, post: dict[str, Any], stage: str) -> None:
        # Wait until accountability saw the signature, so the publication's time follows it.
        await self.trail(post["post_id"], f"signed:{stage}")

    # ---- the acts ---------------------------------------------------------------------------

    async def check_directory(self, wait: bool = False) -> None:
        """The demo county's people must be known: their tokens are how the story acts.

        ``wait``: the directory was just loaded; every service's copy follows the log shortly.
        """

        async def known() -> bool | None:
            # Each service keeps its own copy of the directory: ask each one that the story
            # calls with a token (intake, review, accountability).
            for path, params in (
                ("/me", None),
                ("/people/office-reader/queue", None),
                ("/findings", {"unit": "county-office"}),
            ):
                r = await self.call("GET", path, "office-reader", params=params, ok=(200, 401))
                if r.status_code == 401:
                    return None
            return True

        # Even when the county was loaded before, a platform that just became ready may take
        # a moment to have every copy: a short wait before sending the user elsewhere.
        deadline = time.monotonic() + (self.timeout if wait else 3.0)
        while not await known():
            if time.monotonic() > deadline:
                raise DemoError(
                    f"waited {self.timeout:.0f} s for every service to know the demo county"
                    if wait
                    else "the platform does not know the demo county's people: start it with "
                    "`gongkai up --demo` (make up-demo), or add --load-county to record the demo "
                    "directory into it (fictional people with public tokens: never on a real "
                    "deployment)"
                )
            await asyncio.sleep(0.1)

    async def run(self, directory_loaded: bool = False) -> StoryReport:
        report = StoryReport(self.today)
        await self.check_directory(wait=directory_loaded)
        self.say(f"gongkai demo: a day in the demo county 文河县, {self.today}")
        await self.by_the_book(report)
        await self.unreviewed_document(report)
        await self.wrong_statistics(report)
        await self.supervise_stale_column(report)
        await self.late_disclosure(report)
        await self.summary(report)
        return report

    async def by_the_book(self, report: StoryReport) -> None:
        self.say("\n1. 财政局 publishes a post by the book")
        post = await self.submit(
            "1-submit",
            FINANCE,
            "work_arrangements",
            f"财政局{self.today:%m月%d日}工作部署",
            self.today,
        )
        report.posts["by_the_book"] = post["post_id"]
        self.say(f"   finance-maker submits {post['post_id']} to work_arrangements")
        await self.sign("1-staff", post, "staff", "同意发布")
        await self.sign("1-leader", post, "leader", "同意发布")
        await self.signed(post, "leader")
        self.say("   finance-staff gives the staff opinion, finance-leader approves")
        pub = await self.publish("1-publish", post)
        await self.trail(post["post_id"], "published")
        self.say(
            f"   the CMS reports it online ({pub}), in the approved version: nothing to record"
        )

    async def unreviewed_document(self, report: StoryReport) -> None:
        self.say("\n2. 财政局 puts a normative document online without the leader's approval")
        post = await self.submit(
            "2-submit",
            FINANCE,
            "normative_documents",
            f"关于加强财政专项资金管理的通知（{self.today:%Y%m%d}）",
            self.today,
            important_kind="normative_document",
            origin="produced",
            channel="website",
        )
        report.posts["unreviewed"] = post["post_id"]
        self.say(f"   finance-maker submits {post['post_id']}, a normative document")
        await self.sign("2-staff", post, "staff", "同意，请领导审定")
        await self.signed(post, "staff")
        self.say("   finance-staff agrees; the leader has not signed yet")
        await self.publish("2-publish", post)
        self.say("   the CMS puts it online anyway")
        promise = Promise("published_without_review", FINANCE, post_id=post["post_id"])
        v = await self.violation(promise)
        report.promised.append(promise)
        self.say(f"   → {_violation_line(v)}")

    async def wrong_statistics(self, report: StoryReport) -> None:
        self.say("\n3. 统计局's figures are wrong; the county office confirms its finding")
        post = await self.submit(
            "3-submit",
            STATISTICS,
            "statistics",
            f"全县经济运行主要指标（截至{self.today:%m月%d日}）",
            self.today,
        )
        report.posts["statistics"] = post["post_id"]
        await self.sign("3-leader", post, "leader", "同意发布")
        await self.signed(post, "leader")
        pub = await self.publish("3-publish", post)
        await self.trail(post["post_id"], "published")
        self.say(f"   statistics-maker's {post['post_id']} is approved and online ({pub})")
        r = await self.call(
            "POST",
            "/findings",
            "office-reader",
            step="3-finding",
            json={
                "publication_id": pub,
                "kind": "wrong_statistics",
                "description": "规模以上工业增加值增速与市统计局公布数据不一致",
                "evidence": [f"读网记录 {self.today}: 表1第3行"],
            },
        )
        fid = r.json()["finding_id"]
        self.say(f"   office-reader reports finding {fid} (wrong_statistics)")
        await self.until(f"accountability to see finding {fid}", lambda: self._finding(fid))
        await self.call(
            "POST",
            f"/findings/{fid}/confirmation",
            "office-supervisor",
            step="3-confirm",
            json={"note": "经核实，数据确有错误"},
            ok=(200, 409),  # 409: confirmed by an earlier run today
        )
        self.say("   office-supervisor confirms it")
        promise = Promise("wrong_information", STATISTICS, finding_id=fid)
        v = await self.violation(promise)
        report.promised.append(promise)
        self.say(f"   → {_violation_line(v)}")

    async def _finding(self, fid: str) -> dict[str, Any] | None:
        r = await self.call("GET", f"/findings/{fid}", "office-reader", ok=(200, 404))
        return dict(r.json()) if r.status_code == 200 else None

    async def supervise_stale_column(self, report: StoryReport) -> None:
        # Stale with the demo's year of history (its last item lies 40 days back) and without
        # it (never published): the act plays the same after `up --demo` and `--load-county`.
        column = STORY_COLUMNS[TOWN][0]
        self.say(f"\n4. 北坡乡's {column} column is stale; the county office supervises (督办)")

        async def open_case() -> dict[str, Any] | None:
            r = await self.call("GET", "/supervisions", "office-reader", params={"unit": TOWN})
            cases = [c for c in r.json() if c["column"] == column]
            # The latest case: an earlier one may have closed when the column was refreshed.
            return max(cases, key=lambda c: c["opened_on"] + c["case_id"]) if cases else None

        case = await self.until(f"the supervision case of {TOWN}'s {column}", open_case)
        if case["status"] == "closed":
            self.say(f"   case {case['case_id']} is closed: the column was refreshed")
            report.supervision = case
            return
        self.say(f"   case {case['case_id']} open since {case['opened_on']} (the column is stale)")
        if case["notice"] is None:
            r = await self.call(
                "POST",
                "/supervisions",
                "office-supervisor",
                step="4-notice",
                json={"unit": TOWN, "column": column, "note": "请于期限内更新工作安排栏目"},
                ok=(201, 409),  # 409: issued meanwhile (automatically, or by an earlier run)
            )
            if r.status_code == 201:
                self.say("   office-supervisor issues a supervision notice")

            async def noticed() -> dict[str, Any] | None:
                c = await open_case()
                return c if c and c["notice"] else None

            case = await self.until("the supervision notice", noticed)
        n = case["notice"]
        how = "automatic" if n["automatic"] else f"by {n['by']['person']}"
        self.say(
            f"   notice of {n['issued_on']} ({how}): refresh the column by {n['deadline']} "
            f"({n['working_days']} working days)"
        )
        if case.get("breach"):
            self.say("   the deadline passed with the column still stale")
            v = await self.call("GET", f"/violations/{case['breach']}", "office-reader")
            self.say(f"   → {_violation_line(v.json())}")
        else:
            self.say(
                "   (the platform runs on the real clock: if the column is still stale after "
                f"{n['deadline']}, accountability records stale_after_supervision against the "
                "township's leader and maker; run `gongkai demo` again then to see it)"
            )
        report.supervision = case

    def _late_information_date(self) -> tuple[date, date]:
        """The latest information date whose 10-working-day deadline is already past:
        (information date, due date)."""
        for back in range(1, 60):
            info = self.today - timedelta(days=back)
            due = self.calendar.add_working_days(info, PENALTY_WORKING_DAYS).value
            if due < self.today:
                return info, due
        raise DemoError("no working-day calendar data around today")

    async def _joined_on(self, unit: str) -> date | None:
        """When the unit joined the platform, as freshness shows it (its imported history is
        older, but a deadline that fell before it joined is still not its lapse)."""
        r = await self.call("GET", f"/units/{unit}/columns", "office-reader")
        joined = r.json().get("joined_on")
        return date.fromisoformat(joined) if joined else None

    async def late_disclosure(self, report: StoryReport) -> None:
        self.say("\n5. 市场监管局 discloses a penalty decision after its 10 working days")
        info, due = self._late_information_date()
        joined = await self._joined_on(MARKET)
        if joined is not None and due < joined:
            report.late_disclosure = (
                f"skipped: a decision of {info} was due online by {due}, before the demo county "
                f"joined gongkai ({joined}); deadlines that fell before a unit joined are not its "
                "lapses, and the demo cannot age the platform's real clock. Run `gongkai demo` "
                "again on a later working day (same data directory) to see this act"
            )
            self.say(f"   ({report.late_disclosure})")
            return
        post = await self.submit(
            "5-submit",
            MARKET,
            "administrative_penalties",
            f"行政处罚决定书（文市监罚〔{info.year}〕{info:%m%d}号）",
            info,
        )
        report.posts["late"] = post["post_id"]
        self.say(f"   a decision made on {info}, due online by {due} ({post['post_id']})")
        await self.sign("5-leader", post, "leader", "同意公开")
        await self.signed(post, "leader")
        await self.publish("5-publish", post)
        self.say(f"   approved and online on {self.today}")
        promise = Promise("late_publication", MARKET, post_id=post["post_id"])
        v = await self.violation(promise)
        report.promised.append(promise)
        report.late_disclosure = "recorded"
        self.say(f"   → {_violation_line(v)}")

    # ---- what the platform says now ---------------------------------------------------------

    async def summary(self, report: StoryReport) -> None:
        self.say("\nFreshness (rule set wenan-2018) of the story's columns:")
        self.say(
            f"  {'unit':<12} {'column':<26} {'state':<9} {'due':<11} {'overdue':>7}  last item"
        )
        counts: list[str] = []
        for unit, columns in STORY_COLUMNS.items():
            r = await self.call(
                "GET", f"/units/{unit}/columns", "office-reader", params={"rule_set": "wenan-2018"}
            )
            rows = r.json()["columns"]
            for c in rows:
                if c["column"] in columns:
                    last = _day(c["last_publication"]) if c["last_publication"] else "-"
                    self.say(
                        f"  {unit:<12} {c['column']:<26} {c['state']:<9} "
                        f"{c['due_date'] or '-':<11} {c['overdue_days']:>7}  {last}"
                    )
            states: dict[str, int] = {}
            for c in rows:
                states[c["state"]] = states.get(c["state"], 0) + 1
            counts.append(f"{unit}: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())))
        self.say("  every column of these units — " + "; ".join(counts))
        self.say(
            "  (a column never published is blank, and stale from the day the unit joined: "
            "`gongkai freshness status --unit U` shows every column)"
        )

        r = await self.call("GET", "/violations", "office-reader")
        every = list(r.json())
        mine = [v for v in every if v["unit"] in STORY_COLUMNS]
        report.violations = mine
        self.say(f"\nViolations of the story's units ({len(mine)}; {len(every)} in the county):")
        for v in mine:
            self.say(_violation_row(v))
            self.say(f"              {_who(v)}")
        self.say(
            "\n`gongkai audit report --from … --to … --format html` draws the scores over time."
        )


def _day(ts: str) -> str:
    """The Asia/Shanghai date of a timestamp, as the platform counts days."""
    return local_date(datetime.fromisoformat(ts)).isoformat()


def _who(v: Mapping[str, Any]) -> str:
    return ", ".join(f"{p['person']} ({p['role']})" for p in v["responsible"])


def _violation_line(v: Mapping[str, Any]) -> str:
    """As an act's outcome: what was recorded, and against whom."""
    return f"violation {v['kind']} ({v['severity']}) recorded against {_who(v)}"


def _violation_row(v: Mapping[str, Any]) -> str:
    state = f"rectified ({v['rectified']['how']})" if v.get("rectified") else "standing"
    return f"  {_day(v['occurred_at'])}  {v['kind']:<25} {v['severity']:<8} {v['unit']:<12} {state}"
