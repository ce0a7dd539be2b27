"""The answers' JSON written by orjson (stop 26): the same bytes Starlette's ``JSONResponse``
writes for what intake answers, and a stored answer that reads back to the same value; what
orjson refuses or writes otherwise is left to ``json``, as before."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.responses import JSONResponse

from gongkai.runtime.http import AnswerResponse
from gongkai.runtime.idempotency import _body_text

ANSWERS: list[Any] = [
    {
        "post_id": "post-0123456789abcdef0123",
        "unit": "finance",
        "column": "other_documents",
        "content_version": 1,
        "content_digest": "a" * 64,
        "maker_unsure": False,
        "needs_secrecy_review": True,
        "personal_data": [{"kind": "mobile", "field": "body", "start": 3, "end": 14}],
        "event_id": "7d0c6d0e-1f7a-4d43-9b7e-6b61676f6e67",
        "sequence": 12,
        "note": None,
    },
    {"title": "关于加强专项资金管理的通知（第1号）\u2028\x00\"\\/", "z": [], "a": {}},
    [1, -(2**63), 2**64 - 1, True, None, "x"],
]


@pytest.mark.parametrize("body", ANSWERS)
def test_an_answer_is_the_json_starlette_writes(body: Any) -> None:
    assert AnswerResponse(body).body == JSONResponse(body).body


def test_what_orjson_refuses_is_written_as_starlette_writes_it() -> None:
    for body in ({1: "a"}, {"n": 2**70}):
        assert AnswerResponse(body).body == JSONResponse(body).body


@pytest.mark.parametrize("body", ANSWERS)
def test_a_stored_answer_reads_back_to_the_same_value(body: Any) -> None:
    assert json.loads(_body_text(body)) == body


def test_a_stored_datetime_is_written_as_before() -> None:
    body = {"at": datetime(2026, 3, 1, 8, 0, tzinfo=UTC), "big": 2**70}
    assert _body_text(body) == json.dumps(body, ensure_ascii=False, default=str)
    assert _body_text({"at": body["at"]}) == json.dumps(
        {"at": body["at"]}, ensure_ascii=False, default=str
    )
