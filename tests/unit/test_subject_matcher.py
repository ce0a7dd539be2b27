"""``subjects.matcher``: the reader's filter is exactly NATS's, however it is made."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gongkai import subjects

TYPE_FILTERS = (
    "gk.ev.post.*.PostSubmitted",
    "gk.ev.post.*.PostRevised",
    "gk.ev.*.*.ReviewSigned",
)
OTHER_FILTERS = ("gk.ev.person.*.*", "gk.ev.unit.>")


@pytest.mark.parametrize(
    ("filters", "subject", "expected"),
    [
        # given type filters, a subject of a listed type under its aggregate type is wanted
        (TYPE_FILTERS, "gk.ev.post.P1.PostSubmitted", True),
        # ... under another aggregate type it is not
        (TYPE_FILTERS, "gk.ev.review.P1.PostSubmitted", False),
        # ... unless the filter leaves the aggregate type open
        (TYPE_FILTERS, "gk.ev.review.R1.ReviewSigned", True),
        # a type nobody listed
        (TYPE_FILTERS, "gk.ev.post.P1.PostWithdrawn", False),
        # a subject of another shape, or outside the events
        (TYPE_FILTERS, "gk.ev.post.PostSubmitted", False),
        (TYPE_FILTERS, "gk.dlq.review.post.P1.PostSubmitted", False),
        (TYPE_FILTERS, "gk.cmd.post.P1.PostSubmitted", False),
        # filters that are not type filters are matched token by token
        (OTHER_FILTERS, "gk.ev.person.A.RoleGranted", True),
        (OTHER_FILTERS, "gk.ev.unit.U.UnitRegistered", True),
        (OTHER_FILTERS, "gk.ev.post.P.PostSubmitted", False),
        ((), "gk.ev.post.P1.PostSubmitted", False),
    ],
)
def test_matcher_table(filters: tuple[str, ...], subject: str, expected: bool) -> None:
    assert subjects.matcher(filters)(subject) is expected
    assert any(subjects.matches(f, subject) for f in filters) is expected


_tok = st.sampled_from(["gk", "ev", "post", "review", "P1", "PostSubmitted", "ReviewSigned", "x"])
_filter_tok = st.one_of(_tok, st.just("*"))


@given(
    filters=st.lists(
        st.builds(
            lambda agg, typ: f"gk.ev.{agg}.*.{typ}",
            _filter_tok,
            _tok,
        )
        | st.lists(_filter_tok, min_size=1, max_size=6).map(".".join)
        | st.lists(_filter_tok, min_size=1, max_size=5).map(lambda t: ".".join([*t, ">"])),
        max_size=4,
    ),
    subject=st.lists(_tok, min_size=1, max_size=7).map(".".join),
)
def test_matcher_is_any_matches(filters: list[str], subject: str) -> None:
    assert subjects.matcher(filters)(subject) == any(subjects.matches(f, subject) for f in filters)
