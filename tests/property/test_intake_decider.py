"""intake's post decider under arbitrary content, callers and command sequences.

Whatever the text and whoever calls: the decider answers with events or a ``Refusal`` (never
another exception, which would be a 500); classified content is never recorded; personal data
is recorded only masked in the screening result and never echoed by a refusal (refusals become
problem bodies and log lines); only makers and staff of the unit submit and revise; content
versions count up by one and nothing follows a withdrawal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from gongkai.events.contracts.intake import PostSubmitted, post_content_digest
from gongkai.refusal import Refusal
from gongkai.rules import default_catalog
from gongkai_intake.domain import posts

TODAY = date(2026, 3, 2)
CATALOG = default_catalog()
ROLES = ["maker", "staff", "leader", "secrecy", "office"]
COLUMNS = ["normative_documents", "announcements", "housing_security", "no_such_column"]
#: Mostly the maker: random role sets alone would be refused before content is looked at.
CALLERS = st.just(frozenset({"maker"})) | st.frozensets(st.sampled_from(ROLES))
#: Mostly non-blank, so that content screening, not the blank check, decides.
TITLES = st.text(min_size=1, max_size=30).map(lambda t: "标题" + t) | st.text(max_size=5)


def id_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2, from the standard's definition (not the module's table)."""
    partial = sum(int(c) * 2 ** (17 - j) for j, c in enumerate(first17))
    value = next(v for v in range(11) if (partial + v) % 11 == 1)
    return "X" if value == 10 else str(value)


RESIDENT_IDS = st.builds(
    lambda born, seq: (first := f"110105{born:%Y%m%d}{seq:03d}") + id_check_char(first),
    st.dates(min_value=date(1940, 1, 1), max_value=date(2005, 12, 31)),
    st.integers(0, 999),
)
MOBILES = st.builds(
    lambda p, n: f"1{p}{n:09d}", st.sampled_from("3456789"), st.integers(0, 10**9 - 1)
)
MARKS = st.sampled_from(["机密★10年", "绝密★长期", "秘密★6个月", "机密★"])


@dataclass(frozen=True)
class Content:
    text: str
    resident_id: str | None
    mobile: str | None
    mark: str | None


@st.composite
def contents(draw: st.DrawFn) -> Content:
    """Random text, with personal data or a classification mark set on lines of their own
    (so no neighbouring character glues to them: the screener must find them)."""
    parts = ["正文", draw(st.text(max_size=60))]
    rid = draw(st.none() | RESIDENT_IDS)
    mobile = draw(st.none() | MOBILES)
    mark = draw(st.none() | MARKS)
    for extra in (rid, mobile, mark):
        if extra is not None:
            parts.append(f"\n{extra}\n")
            parts.append(draw(st.text(max_size=20)))
    return Content("".join(parts), rid, mobile, mark)


def ctx(roles: frozenset[str], unit_kind: str | None = "department") -> posts.Context:
    return posts.Context(
        today=TODAY, caller_roles=roles, unit_kind=unit_kind, catalog=CATALOG, column_hidden=None
    )


def assert_not_echoed(rejected: Refusal, *secrets: str | None) -> None:
    said = json.dumps([rejected.title, rejected.detail, rejected.extra], ensure_ascii=False)
    for s in secrets:
        if s:
            assert s not in said, "a refusal must not repeat the personal data it saw"


def assert_masked(payload: Any, content: Content) -> None:
    for span in payload.screening.spans:
        for raw in (content.resident_id, content.mobile):
            if raw:
                assert raw not in span.masked
        assert "*" in span.masked


@settings(max_examples=300, deadline=None)
@given(
    title=TITLES,
    body=contents(),
    roles=CALLERS,
    column=st.sampled_from(COLUMNS[:2] * 4 + COLUMNS[2:]),
    days_ago=st.integers(0, 400) | st.integers(-3, -1),
    kind=st.sampled_from([None, "normative_document"]),
    origin=st.sampled_from([None, "produced", "produced", "reprinted"]),
    source=st.sampled_from(["fits", "fits", "fits", None, "", "新华社"]),
    unit_kind=st.sampled_from(["department"] * 6 + ["township", None]),
    well_formed=st.booleans(),
)
def test_a_submission_is_events_or_a_clean_refusal(
    title: str,
    body: Content,
    roles: frozenset[str],
    column: str,
    days_ago: int,
    kind: Any,
    origin: Any,
    source: str | None,
    unit_kind: str | None,
    well_formed: bool,
) -> None:
    if well_formed:
        # Half the cases get the form right, so content screening has its say; the other half
        # mix every way of getting it wrong.
        roles, column, unit_kind = frozenset({"maker"}), COLUMNS[days_ago % 2], "department"
        source, days_ago, title = "fits", abs(days_ago), title.strip() or "标题"
        origin = origin or "produced"
    if source == "fits":  # the source the origin calls for; the others may contradict it
        source = "新华社" if origin == "reprinted" else None
    cmd = posts.SubmitPost(
        post_id="P1",
        unit="finance",
        column=column,
        title=title,
        body=body.text,
        information_date=TODAY - timedelta(days=days_ago),
        origin=origin,
        source=source,
        channel="website" if kind or days_ago % 2 else None,
        important_kind=kind,
    )
    try:
        [submitted] = posts.submit(cmd, posts.INITIAL, ctx(roles, unit_kind))
    except Refusal as rejected:
        event(f"refused: {rejected.kind} {rejected.title}")
        assert_not_echoed(rejected, body.resident_id, body.mobile)
        if well_formed and body.mark:
            assert rejected.kind == "refused", "the screener must find a mark on its own line"
        return
    event("accepted")
    assert isinstance(submitted, PostSubmitted)
    assert roles & posts.SUBMIT_ROLES, "only makers and staff submit"
    assert body.mark is None, "classified content is never recorded"
    assert submitted.content_digest == post_content_digest(title, body.text, ())
    if body.resident_id or body.mobile:
        assert submitted.screening.needs_secrecy_review
        kinds = {s.kind for s in submitted.screening.spans}
        assert ("resident_id" in kinds) == bool(body.resident_id)
    assert_masked(submitted, body)


ACTIONS = st.one_of(
    st.tuples(st.just("revise"), CALLERS, contents()),
    st.tuples(st.just("withdraw"), CALLERS, st.text(max_size=20)),
)


@settings(max_examples=200, deadline=None)
@given(actions=st.lists(ACTIONS, max_size=12))
def test_versions_count_up_and_nothing_follows_a_withdrawal(
    actions: list[tuple[Any, ...]],
) -> None:
    first = posts.SubmitPost(
        post_id="P1",
        unit="finance",
        column="announcements",
        title="标题",
        body="正文",
        information_date=TODAY,
    )
    state = posts.INITIAL
    for e in posts.submit(first, state, ctx(frozenset({"maker"}))):
        state = posts.evolve(state, e)
    for action in actions:
        kind, roles = action[0], action[1]
        before = state
        try:
            if kind == "revise":
                content: Content = action[2]
                cmd: Any = posts.RevisePost("P1", "标题", content.text, TODAY)
                new = posts.revise(cmd, state, ctx(roles))
            else:
                new = posts.withdraw(posts.WithdrawPost("P1", action[2]), state, ctx(roles))
        except Refusal as rejected:
            if kind == "revise":
                assert_not_echoed(rejected, content.resident_id, content.mobile)
            continue
        assert not before.withdrawn, "nothing is recorded after a withdrawal"
        for e in new:
            state = posts.evolve(state, e)
        event(f"recorded: {kind}")
        if kind == "revise":
            assert roles & posts.SUBMIT_ROLES
            assert content.mark is None
            assert state.content_version == before.content_version + 1
            assert state.content_digest != before.content_digest
            assert_masked(new[0], content)
        else:
            assert roles & posts.WITHDRAW_ROLES and state.withdrawn
