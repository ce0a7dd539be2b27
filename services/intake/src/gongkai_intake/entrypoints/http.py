"""HTTP routes: validate the body, authenticate, hand the command to the application layer.

No ``from __future__ import annotations`` here: FastAPI reads the route signatures at runtime,
and ``Caller`` is local to ``install_routes``, where a string annotation could not be resolved.
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from gongkai.directory import Directory, Principal, bearer_auth
from gongkai.runtime.http import PROBLEM, PathId
from gongkai_intake import schemas
from gongkai_intake.app import Answer, IntakeApp

_problem: dict[str, Any] = {"content": {PROBLEM: {}}}
PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Idempotency-Key missing or malformed", **_problem},
    401: {"description": "no or unknown bearer token", **_problem},
    403: {"description": "the caller's roles do not allow this", **_problem},
    404: {"description": "unknown post, publication, unit or person", **_problem},
    409: {"description": "conflicts with what is recorded", **_problem},
    413: {"description": "the recorded event would exceed the log's message limit", **_problem},
    422: {
        "description": "invalid field, classified content refused, or key reused",
        **_problem,
    },
}
KeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="required: a retry with the same key returns the first answer",
    ),
]


def respond(answer: Answer) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else {}
    return JSONResponse(answer.body, status_code=answer.status, headers=headers)


def install_routes(
    router: APIRouter, app: Callable[[], IntakeApp], directory: Callable[[], Directory]
) -> None:
    check = bearer_auth(directory)

    async def authenticate(request: Request) -> Principal:
        # The token lookup is a microsecond SQLite read, cheaper on the loop than in a thread.
        return await check(request)

    Caller = Annotated[Principal, Depends(authenticate)]

    async def run(
        command: str, caller: Principal, key: str | None, params: dict[str, str], body: Any
    ) -> JSONResponse:
        return respond(await app().execute(command, caller, key, params, body))

    # ---- posts -------------------------------------------------------------------------

    @router.post(
        "/posts",
        tags=["posts"],
        status_code=201,
        response_model=schemas.PostAccepted,
        responses=PROBLEMS,
        summary="Submit a post for review (Attachment 1's fields and the content)",
    )
    async def submit_post(
        body: schemas.SubmitPostRequest, caller: Caller, key: KeyHeader = None
    ) -> JSONResponse:
        return await run("submit_post", caller, key, {}, body)

    @router.post(
        "/posts/{post_id}/revisions",
        tags=["posts"],
        status_code=201,
        response_model=schemas.PostAccepted,
        responses=PROBLEMS,
        summary="Record a new content version; any review of an earlier version is void",
    )
    async def revise_post(
        post_id: PathId, body: schemas.RevisePostRequest, caller: Caller, key: KeyHeader = None
    ) -> JSONResponse:
        return await run("revise_post", caller, key, {"post_id": post_id}, body)

    @router.post(
        "/posts/{post_id}/withdrawal",
        tags=["posts"],
        response_model=schemas.PostWithdrawnAnswer,
        responses=PROBLEMS,
        summary="Withdraw a post",
    )
    async def withdraw_post(
        post_id: PathId, body: schemas.WithdrawPostRequest, caller: Caller, key: KeyHeader = None
    ) -> JSONResponse:
        return await run("withdraw_post", caller, key, {"post_id": post_id}, body)

    @router.get(
        "/posts/{post_id}", tags=["posts"], response_model=schemas.PostView, responses=PROBLEMS
    )
    async def get_post(post_id: PathId, caller: Caller) -> schemas.PostView:
        return await app().post(caller, post_id)

    # ---- publications ------------------------------------------------------------------

    @router.post(
        "/publications",
        tags=["publications"],
        status_code=201,
        response_model=schemas.PublicationRecorded,
        responses=PROBLEMS,
        summary="Report an item seen online (from the CMS or the office's site reading)",
    )
    async def report_publication(
        body: schemas.ReportPublicationRequest, caller: Caller, key: KeyHeader = None
    ) -> JSONResponse:
        return await run("report_publication", caller, key, {}, body)

    @router.post(
        "/publications/{publication_id}/removal",
        tags=["publications"],
        response_model=schemas.PublicationRemovedAnswer,
        responses=PROBLEMS,
        summary="Report that a published item was taken down",
    )
    async def remove_publication(
        publication_id: PathId,
        body: schemas.RemovePublicationRequest,
        caller: Caller,
        key: KeyHeader = None,
    ) -> JSONResponse:
        return await run(
            "remove_publication", caller, key, {"publication_id": publication_id}, body
        )

    @router.get(
        "/publications/{publication_id}",
        tags=["publications"],
        response_model=schemas.PublicationView,
        responses=PROBLEMS,
    )
    async def get_publication(publication_id: PathId, caller: Caller) -> schemas.PublicationView:
        return await app().publication(caller, publication_id)

    # ---- directory ---------------------------------------------------------------------

    @router.post(
        "/units",
        tags=["directory"],
        status_code=201,
        response_model=schemas.DirectoryChange,
        responses=PROBLEMS,
        summary="Register a unit or change its details (office)",
    )
    async def register_unit(
        body: schemas.RegisterUnitRequest, caller: Caller, key: KeyHeader = None
    ) -> JSONResponse:
        return await run("register_unit", caller, key, {}, body)

    @router.get("/units", tags=["directory"], response_model=list[schemas.UnitView])
    async def list_units(caller: Caller) -> list[schemas.UnitView]:
        return await app().units()

    @router.post(
        "/units/{unit}/leadership-changes",
        tags=["directory"],
        response_model=schemas.DirectoryChange,
        responses=PROBLEMS,
        summary="Record a change of the unit's leaders or their duties (领导成员和分工)",
    )
    async def record_leadership_change(
        unit: PathId, body: schemas.LeadershipChangeRequest, caller: Caller, key: KeyHeader = None
    ) -> JSONResponse:
        return await run("record_leadership_change", caller, key, {"unit": unit}, body)

    @router.post(
        "/people",
        tags=["directory"],
        status_code=201,
        response_model=schemas.DirectoryChange,
        responses=PROBLEMS,
        summary="Register a person or change their name (office)",
    )
    async def register_person(
        body: schemas.RegisterPersonRequest, caller: Caller, key: KeyHeader = None
    ) -> JSONResponse:
        return await run("register_person", caller, key, {}, body)

    @router.post(
        "/people/{person_id}/roles",
        tags=["directory"],
        response_model=schemas.DirectoryChange,
        responses=PROBLEMS,
        summary="Grant a role in a unit (office)",
    )
    async def grant_role(
        person_id: PathId, body: schemas.RoleRequest, caller: Caller, key: KeyHeader = None
    ) -> JSONResponse:
        return await run("grant_role", caller, key, {"person_id": person_id}, body)

    @router.post(
        "/people/{person_id}/roles/revocation",
        tags=["directory"],
        response_model=schemas.DirectoryChange,
        responses=PROBLEMS,
        summary="Revoke a role in a unit (office)",
    )
    async def revoke_role(
        person_id: PathId, body: schemas.RoleRequest, caller: Caller, key: KeyHeader = None
    ) -> JSONResponse:
        return await run("revoke_role", caller, key, {"person_id": person_id}, body)

    @router.post(
        "/people/{person_id}/tokens/revocation",
        tags=["directory"],
        response_model=schemas.DirectoryChange,
        responses=PROBLEMS,
        summary="Revoke one of the person's tokens, or all (office); every service refuses "
        "them from the answer on",
    )
    async def revoke_tokens(
        person_id: PathId,
        body: schemas.TokenRevocationRequest,
        caller: Caller,
        key: KeyHeader = None,
    ) -> JSONResponse:
        return await run("revoke_tokens", caller, key, {"person_id": person_id}, body)

    @router.get(
        "/people/{person_id}/tokens",
        tags=["directory"],
        response_model=list[schemas.TokenView],
        responses=PROBLEMS,
        summary="The person's live tokens: hint, issued at, expires at; never a secret (office)",
    )
    async def list_tokens(person_id: PathId, caller: Caller) -> list[schemas.TokenView]:
        return app().tokens(caller, person_id)

    @router.get("/me", tags=["directory"], response_model=schemas.Me)
    async def me(caller: Caller) -> schemas.Me:
        return schemas.Me(
            person_id=caller.person_id,
            name=caller.name,
            roles=[{"unit": u, "role": r} for u, r in sorted(caller.roles)],
        )
