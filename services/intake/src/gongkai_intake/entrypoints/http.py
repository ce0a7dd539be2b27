"""HTTP routes: validate the body, authenticate, hand the command to the application layer.

No ``from __future__ import annotations`` here: FastAPI reads the route signatures at runtime,
and ``Caller`` is local to ``install_routes``, where a string annotation could not be resolved.
"""

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from gongkai.directory import Directory, Principal, bearer_auth
from gongkai.runtime.direct import Run, direct_route_class
from gongkai.runtime.http import PROBLEM, AnswerResponse, PathId
from gongkai_intake.entrypoints import schemas
from gongkai_intake.entrypoints.api import Answer, IntakeApp

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


@dataclass(frozen=True)
class CommandRoute:
    """A command as a POST route: its path (the ids in it are the command's parameters) and
    the answer it gives, with the OpenAPI document's tag and summary; the body it takes is the
    command's request model (``IntakeApp.COMMANDS``), as on the bus."""

    command: str
    path: str
    answer: type[BaseModel]
    tag: str
    summary: str
    status: int = 200

    @property
    def ids(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    @property
    def body(self) -> type[BaseModel]:
        return IntakeApp.COMMANDS[self.command][0]


COMMANDS = (
    CommandRoute(
        "submit_post", "/posts", schemas.PostAccepted, "posts",
        "Submit a post for review (Attachment 1's fields and the content)", 201,
    ),
    CommandRoute(
        "revise_post", "/posts/{post_id}/revisions", schemas.PostAccepted, "posts",
        "Record a new content version; any review of an earlier version is void", 201,
    ),
    CommandRoute(
        "withdraw_post", "/posts/{post_id}/withdrawal", schemas.PostWithdrawnAnswer, "posts",
        "Withdraw a post",
    ),
    CommandRoute(
        "report_publication", "/publications", schemas.PublicationRecorded, "publications",
        "Report an item seen online (from the CMS or the office's site reading)", 201,
    ),
    CommandRoute(
        "remove_publication", "/publications/{publication_id}/removal",
        schemas.PublicationRemovedAnswer, "publications",
        "Report that a published item was taken down",
    ),
    CommandRoute(
        "register_unit", "/units", schemas.DirectoryChange,
        "directory", "Register a unit or change its details (office)", 201,
    ),
    CommandRoute(
        "record_leadership_change", "/units/{unit}/leadership-changes",
        schemas.DirectoryChange, "directory",
        "Record a change of the unit's leaders or their duties (领导成员和分工)",
    ),
    CommandRoute(
        "register_person", "/people", schemas.DirectoryChange,
        "directory", "Register a person or change their name (office)", 201,
    ),
    CommandRoute(
        "grant_role", "/people/{person_id}/roles", schemas.DirectoryChange, "directory",
        "Grant a role in a unit (office)",
    ),
    CommandRoute(
        "revoke_role", "/people/{person_id}/roles/revocation", schemas.DirectoryChange,
        "directory", "Revoke a role in a unit (office)",
    ),
    CommandRoute(
        "revoke_tokens", "/people/{person_id}/tokens/revocation",
        schemas.DirectoryChange, "directory",
        "Revoke one of the person's tokens, or all (office); every service refuses them "
        "from the answer on",
    ),
)


def respond(answer: Answer) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else {}
    return AnswerResponse(answer.body, status_code=answer.status, headers=headers)


def install_routes(
    router: APIRouter, app: Callable[[], IntakeApp], directory: Callable[[], Directory]
) -> None:
    check = bearer_auth(directory)

    async def authenticate(request: Request) -> Principal:
        # The token lookup is a microsecond SQLite read, cheaper on the loop than in a thread.
        return await check(request)

    Caller = Annotated[Principal, Depends(authenticate)]

    def command_endpoint(route: CommandRoute) -> Callable[..., Awaitable[JSONResponse]]:
        """The route's handler: its path ids, body, caller and Idempotency-Key, handed to the
        application layer as the command ``route.command``."""

        async def endpoint(
            body: Any, caller: Principal, key: str | None = None, **ids: str
        ) -> JSONResponse:
            return respond(await app().execute(route.command, caller, key, ids, body))

        # FastAPI reads what to parse from the signature: declare this route's own path ids
        # and body model there (with the name the OpenAPI document gives the operation).
        endpoint.__name__ = route.command
        endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [
                *(
                    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=PathId)
                    for name in route.ids
                ),
                inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=route.body),
                inspect.Parameter("caller", inspect.Parameter.KEYWORD_ONLY, annotation=Caller),
                inspect.Parameter(
                    "key", inspect.Parameter.KEYWORD_ONLY, annotation=KeyHeader, default=None
                ),
            ],
            return_annotation=JSONResponse,
        )
        return endpoint

    def run(route: CommandRoute) -> Run:
        async def command(
            request: Request, caller: Principal, key: str | None, ids: dict[str, str],
            body: BaseModel,
        ) -> Response:
            return respond(await app().execute(route.command, caller, key, ids, body))

        return command

    for route in COMMANDS:
        router.add_api_route(
            route.path,
            command_endpoint(route),
            # The direct way for a well-formed request (FastAPI's dependency solving was about
            # a sixth of a submission's CPU); anything else is FastAPI's, refusals included.
            route_class_override=direct_route_class(
                route.ids, route.body, authenticate, run(route)
            ),
            methods=["POST"],
            tags=[route.tag],
            status_code=route.status,
            response_model=route.answer,
            responses=PROBLEMS,
            summary=route.summary,
        )

    @router.get(
        "/posts/{post_id}", tags=["posts"], response_model=schemas.PostView, responses=PROBLEMS
    )
    async def get_post(post_id: PathId, caller: Caller) -> schemas.PostView:
        return await app().post(caller, post_id)

    @router.get(
        "/publications/{publication_id}",
        tags=["publications"],
        response_model=schemas.PublicationView,
        responses=PROBLEMS,
    )
    async def get_publication(publication_id: PathId, caller: Caller) -> schemas.PublicationView:
        return await app().publication(caller, publication_id)

    @router.get("/units", tags=["directory"], response_model=list[schemas.UnitView])
    async def list_units(caller: Caller) -> list[schemas.UnitView]:
        return await app().units()

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
