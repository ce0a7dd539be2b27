"""Rules every piece of submitted text passes: screening, sizes, the payload ceiling."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from gongkai.events import EventPayload, payload_json
from gongkai.events.contracts.intake import Attachment, MaskedSpan, Screening
from gongkai.refusal import Refusal
from gongkai_intake.domain import limits
from gongkai_intake.domain.screening import ScreeningResult, screen


def content_fields(
    title: str, body: str, attachments: Sequence[Attachment], source: str | None = None
) -> dict[str, str]:
    """The text of a post that goes online, keyed by the request field it came from."""
    fields = {"title": title, "body": body}
    if source:
        fields["source"] = source
    for i, a in enumerate(attachments):
        fields[f"attachments.{i}.name"] = a.name
    return fields


def _refuse_marks(result: ScreeningResult) -> None:
    if not result.refused:
        return
    first = result.marks[0]
    raise Refusal(
        "refused",
        "Classified content refused",
        f"{first.field} carries a classification mark ({first.level}★); classified "
        "information never goes online and nothing was recorded",
        field=first.field,
        # Positions and levels only: the refused text must not travel any further.
        extra={
            "marks": [
                {"field": m.field, "level": m.level, "start": m.start, "end": m.end}
                for m in result.marks
            ]
        },
    )


def screen_post(fields: Mapping[str, str], today: date) -> Screening:
    """Refuse classified content; flag personal data with masked spans for secrecy review."""
    result = screen(fields, today=today)
    _refuse_marks(result)
    return Screening(
        needs_secrecy_review=result.needs_secrecy_review,
        spans=tuple(
            MaskedSpan(kind=s.kind, field=s.field, start=s.start, end=s.end, masked=s.masked)
            for s in result.spans
        ),
    )


def screen_free_text(field: str, text: str, today: date) -> None:
    """Reasons and summaries are recorded as they are and never reviewed.

    So unlike a post, personal data there cannot wait for the secrecy stage: it is refused.
    """
    result = screen({field: text}, today=today)
    _refuse_marks(result)
    if result.spans:
        kinds = ", ".join(sorted({s.kind for s in result.spans}))
        raise Refusal(
            "invalid",
            "Personal data in a free-text field",
            f"{field} contains personal data ({kinds}); it would be recorded unreviewed — "
            "remove it",
            field=field,
            extra={"personal_data": [{"kind": s.kind, "masked": s.masked} for s in result.spans]},
        )


def require_text(field: str, value: str, what: str) -> None:
    if not value.strip():
        raise Refusal("invalid", f"{what} is blank", f"{field} must not be blank", field=field)


def check_reason(reason: str, today: date) -> None:
    """A withdrawal's or a removal's reason: given, within ``REASON_MAX``, and free of what
    ``screen_free_text`` refuses."""
    require_text("reason", reason, "Reason")
    if len(reason) > limits.REASON_MAX:
        raise Refusal("invalid", "Reason too long", f"at most {limits.REASON_MAX}", field="reason")
    screen_free_text("reason", reason, today)


def check_content(title: str, body: str, attachments: Sequence[Attachment]) -> None:
    require_text("title", title, "Title")
    if not body.strip() and not attachments:
        raise Refusal(
            "invalid",
            "Empty post",
            "a post needs a body or at least one attachment",
            field="body",
        )
    if len(title) > limits.TITLE_MAX:
        raise Refusal("invalid", "Title too long", f"at most {limits.TITLE_MAX}", field="title")
    if len(body) > limits.BODY_MAX:
        raise Refusal("invalid", "Body too long", f"at most {limits.BODY_MAX}", field="body")
    if len(attachments) > limits.ATTACHMENTS_MAX:
        raise Refusal(
            "invalid",
            "Too many attachments",
            f"at most {limits.ATTACHMENTS_MAX} attachments",
            field="attachments",
        )
    for i, a in enumerate(attachments):
        if a.size > limits.ATTACHMENT_SIZE_MAX:
            raise Refusal(
                "invalid",
                "Attachment too large",
                f"at most {limits.ATTACHMENT_SIZE_MAX} bytes",
                field=f"attachments.{i}.size",
            )


def check_payload_size(payload: EventPayload) -> None:
    """Screening spans add to the body's size; the whole event must still fit the log."""
    size = len(payload_json(payload))
    if size > limits.PAYLOAD_BYTES_MAX:
        raise Refusal(
            "too_large",
            "Post too large",
            f"the recorded post would take {size} bytes (limit {limits.PAYLOAD_BYTES_MAX}); "
            "split it or move content into attachments",
            field="body",
        )


def check_not_future(field: str, value: date, today: date) -> None:
    if value > today:
        raise Refusal(
            "invalid",
            "Date in the future",
            f"{field} {value.isoformat()} is after today ({today.isoformat()}, Asia/Shanghai)",
            field=field,
        )
