"""``evolve``: how each event of the log changes the accountability read model.

Pure: no clock, no I/O beyond the ``Rows`` it is handed. Decisions that follow from a fact
(a publication without an approved chain, a confirmed finding, a late item) are written as
*obligations* in the ``todo`` table, keyed by the command id that will discharge them; the
service turns them into events (``decide``), and when such an event comes back through the
log its obligation is struck out. Because the command id fixes the event id and the aggregate
id, an obligation can be discharged only once, whatever restarts or replays happen between.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time, timedelta
from typing import Any

from gongkai.calendar import SHANGHAI, local_date
from gongkai.events import Envelope
from gongkai.subjects import event_subject
from gongkai_accountability.domain.rows import Row, Rows
from gongkai_accountability.domain.violation import rectify_command_id

#: Rule kinds whose deadline runs from a trigger ("within N working days of ..."): missing one
#: is late publication; periodic and blank staleness is handled by supervision.
TRIGGERED_KINDS = ("triggered", "leadership")
SERIOUS_FINDINGS = ("false", "privacy_leak")


def end_of(d: date) -> datetime:
    """The last instant of a Shanghai calendar day (as the next day's midnight)."""
    return datetime.combine(d + timedelta(days=1), time(0), SHANGHAI)


def short_id(prefix: str, key: str) -> str:
    """A subject-safe aggregate id derived from a decision's key."""
    return f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:20]}"


def actor_of(env: Envelope[Any]) -> dict[str, str]:
    a = env.actor
    return {"person": a.person, "role": a.role, "unit": a.unit}


_ISO: dict[tuple[datetime, Any], str] = {}


def iso(ts: datetime) -> str:
    """``ts.isoformat()``, remembered: an event's business and recording times are usually the
    same instant, and formatting an aware datetime cost a rebuild more than its row writes.

    Keyed with the offset too: equal instants in different zones compare equal but print
    differently.
    """
    key = (ts, ts.utcoffset())
    s = _ISO.get(key)
    if s is None:
        if len(_ISO) > 4096:
            _ISO.clear()
        s = _ISO[key] = ts.isoformat()
    return s


def step(env: Envelope[Any], seq: int, what: str, **detail: Any) -> Row:
    """One line of a chain of custody: who did what, when, on which content."""
    a = env.actor
    row: Row = {
        "seq": seq,
        "event_id": env.event_id,
        "what": what,
        "at": iso(env.business_time),
        "recorded_at": iso(env.recorded_at),
        "person": a.person,
        "role": a.role,
        "unit": a.unit,
    }
    for k, v in detail.items():
        if v is not None:
            row[k] = v
    return row


def _unit(rows: Rows, code: str) -> Row:
    return rows.get("unit", code) or {"code": code, "name": code, "roles": {}, "names": {}}


def holders(rows: Rows, unit: str, role: str) -> list[str]:
    return sorted(_unit(rows, unit)["roles"].get(role, []))


def _first(item: list[Any]) -> Any:
    return item[0]


def holders_at(rows: Rows, unit: str, role: str, when: datetime) -> list[str]:
    """Who held ``role`` in ``unit`` at the business time ``when``.

    A verdict names the people responsible when the lapse happened, not whoever holds the role
    when some service's reaction happens to be folded: grants and revocations are replayed by
    their own business time, so the answer does not depend on where they sit in the log
    relative to other services' reactions.
    """
    people: set[str] = set()
    # Sorted by business time: a grant recorded late but dated earlier still counts.
    for at, r, person, granted in sorted(_unit(rows, unit).get("history", []), key=_first):
        if r != role or datetime.fromisoformat(at) > when:
            continue
        if granted:
            people.add(person)
        else:
            people.discard(person)
    return sorted(people)


def _oblige(rows: Rows, command_id: str, unit: str, row: Row) -> None:
    # An obligation already discharged (its event is in the log before this point) is never
    # re-created: the ledger of done keys lives in the violation/case/finding rows.
    rows.put("todo", command_id, {"unit": unit, **row})


def _unit_responsible(rows: Rows, unit: str, roles: tuple[str, ...]) -> list[Row]:
    return [{"person": p, "role": r, "unit": unit} for r in roles for p in holders(rows, unit, r)]


def responsible_for_post(
    rows: Rows, post: Row | None, unit: str, when: datetime | None = None
) -> list[Row]:
    """谁制作、谁审核: the maker and the principal leader who signed, or the unit's leader.

    ``when``: the unit's leader as of that business time (default: as the fold stands now,
    which is the same thing while folding the fact being judged).
    """
    out: list[Row] = []
    if post is not None:
        out.append({"person": post["maker"]["person"], "role": "maker", "unit": unit})
        leaders = sorted(post.get("leader_signers", []))
        out += [{"person": p, "role": "leader", "unit": unit} for p in leaders]
        if leaders:
            return out
    # Nobody in gongkai signed: the unit's principal leader answers for what it put online.
    leaders = holders_at(rows, unit, "leader", when) if when is not None else []
    if not leaders:
        return _dedupe(out + _unit_responsible(rows, unit, ("leader",)))
    return _dedupe(out + [{"person": x, "role": "leader", "unit": unit} for x in leaders])


def _dedupe(people: list[Row]) -> list[Row]:
    seen: set[tuple[str, str, str]] = set()
    out = []
    for p in people:
        k = (p["person"], p["role"], p["unit"])
        if k not in seen:
            seen.add(k)
            out.append(p)
    return out


def _violation_obligation(
    rows: Rows,
    *,
    key: str,
    kind: str,
    unit: str,
    responsible: list[Row],
    evidence: list[str],
    severity: str,
    occurred_at: datetime | str,
    summary: str,
    **refs: str | None,
) -> None:
    command_id = f"violation:{kind}:{key}"
    vid = short_id("V", command_id)
    if rows.get("violation", vid) is not None or rows.get("todo", command_id) is not None:
        # The first fact that demands a violation words it: a later one (a second rule set
        # seeing the same late item) must not reword it depending on whether accountability
        # happened to decide in between.
        return
    _oblige(
        rows,
        command_id,
        unit,
        {
            "event": "ViolationRecorded",
            "aggregate_id": vid,
            "payload": {
                "kind": kind,
                "unit": unit,
                "responsible": responsible,
                "evidence": evidence,
                "severity": severity,
                "occurred_at": occurred_at
                if isinstance(occurred_at, str)
                else occurred_at.isoformat(),
                "summary": summary,
                **{k: v for k, v in refs.items() if v is not None},
            },
        },
    )


# ---- the fold ---------------------------------------------------------------------------


def evolve(rows: Rows, env: Envelope[Any], seq: int) -> None:
    """Apply one recorded event (at stream sequence ``seq``) to the read model."""
    handler = _HANDLERS.get(env.type)
    if handler is not None:
        handler(rows, env, seq)
    if rows.get("todo", env.command_id) is not None:
        rows.delete("todo", env.command_id)


def _no_granter(rows: Rows, env: Envelope[Any]) -> str | None:
    """Why the actor of a directory change could not make it (as gongkai.directory decides)."""
    a = env.actor
    if a.unit == "system":
        return None
    if a.role == "office" and a.person in holders_at(rows, a.unit, "office", env.business_time):
        return None
    return f"{a.person} ({a.role}, {a.unit}) may not change the directory"


def _directory(rows: Rows, env: Envelope[Any], seq: int) -> None:
    p = env.payload
    why = _no_granter(rows, env)
    if why is not None:
        _alert(rows, env, seq, "authority", why)
        return
    if env.type == "UnitRegistered":
        u = _unit(rows, p.code)
        u.setdefault("registered_at", env.business_time.isoformat())
        u["name"] = p.name
        u["kind"] = p.kind
        rows.put("unit", p.code, u)
    elif env.type in ("RoleGranted", "RoleRevoked"):
        u = _unit(rows, p.unit)
        people = set(u["roles"].get(p.role, []))
        if env.type == "RoleGranted":
            people.add(p.person_id)
        else:
            people.discard(p.person_id)
        u["roles"][p.role] = sorted(people)
        u.setdefault("history", []).append(
            [iso(env.business_time), p.role, p.person_id, env.type == "RoleGranted"]
        )
        rows.put("unit", p.unit, u)


def _post(rows: Rows, env: Envelope[Any], seq: int) -> None:
    p = env.payload
    post_id = env.aggregate_id
    post = rows.get("post", post_id)
    flagged = bool(
        getattr(p, "screening", None) and (p.screening.needs_secrecy_review or p.screening.spans)
    )
    if env.type == "PostSubmitted":
        post = {
            "post_id": post_id,
            "unit": p.unit,
            "column": p.column,
            "title": p.title,
            "important_kind": p.important_kind,
            "maker": actor_of(env),
            "digest": p.content_digest,
            "version": p.content_version,
            "flagged_digests": [p.content_digest] if flagged else [],
            "approved": {},
            "leader_signers": [],
            "publications": [],
            "withdrawn": False,
            "trail": [],
        }
        post["trail"].append(
            step(
                env,
                seq,
                "submitted",
                digest=p.content_digest,
                version=p.content_version,
                title=p.title,
                important_kind=p.important_kind,
                needs_secrecy_review=p.screening.needs_secrecy_review,
                personal_data=len(p.screening.spans) or None,
            )
        )
    elif post is None:
        return  # a revision of a post never submitted: nothing to hang it on
    elif env.type == "PostRevised":
        if env.actor.person not in post.setdefault("makers", [post["maker"]["person"]]):
            post["makers"].append(env.actor.person)
        # A revision ends the standing of every earlier approval by itself: review's void
        # (ReviewConcluded voided) is a reaction that may land before or after a publication
        # report, and the verdict must not depend on which (docs/accountability.md, "Facts").
        post["approved"] = {}
        post["digest"] = p.content_digest
        post["version"] = p.content_version
        post["title"] = p.title
        if flagged:
            post["flagged_digests"].append(p.content_digest)
        post["trail"].append(
            step(env, seq, "revised", digest=p.content_digest, version=p.content_version)
        )
        _answer_findings(rows, post_id, None, env, "revised")
    elif env.type == "PostWithdrawn":
        post["approved"] = {}
        post["withdrawn"] = True
        post["trail"].append(step(env, seq, "withdrawn", reason=p.reason))
    rows.put("post", post_id, post)


def _no_authority(rows: Rows, env: Envelope[Any], post: Row) -> str | None:
    """Why the signer of a ReviewSigned could not sign, by the directory at its business time.

    Review's signature on the event proves review recorded it, not that review was right (or
    that review's key was not misused): the stage's role in the post's unit, held when the
    signature was given, and no self-approval by a maker, are checked again here.
    """
    p = env.payload
    s = p.signer
    if s.unit != post["unit"] or s.role != p.stage:
        return f"signer {s.person} acted as {s.role} of {s.unit} on a post of {post['unit']}"
    if s.person not in holders_at(rows, post["unit"], p.stage, env.business_time):
        return (
            f"{s.person} did not hold the {p.stage} role in {post['unit']} at "
            f"{iso(env.business_time)}"
        )
    if p.stage == "leader" and s.person in post.get("makers", [post["maker"]["person"]]):
        return f"{s.person} made post {post['post_id']} and may not approve it"
    return None


def _alert(rows: Rows, env: Envelope[Any], seq: int, check: str, detail: str) -> None:
    """Oblige an IntegrityAlert for the event at ``seq``: it was not applied."""
    command_id = f"integrity:{seq}"
    if rows.get("alert", str(seq)) is not None or rows.get("todo", command_id) is not None:
        return
    _oblige(
        rows,
        command_id,
        "",
        {
            "event": "IntegrityAlert",
            "aggregate_id": f"seq-{seq}",
            "payload": {
                "sequence": seq,
                "subject": event_subject(env.aggregate_type, env.aggregate_id, env.type),
                "check": check,
                "detail": detail[:1000],
                "claimed_event_id": env.event_id,
                "claimed_type": env.type,
            },
        },
    )


def _review(rows: Rows, env: Envelope[Any], seq: int) -> None:
    p = env.payload
    post = rows.get("post", p.post_id)
    if post is None:
        return
    if env.type == "ReviewSigned":
        why = _no_authority(rows, env, post)
        if why is not None:
            # Never an approval: the chain it claims to belong to approves nothing.
            post.setdefault("tainted_chains", []).append(p.chain)
            rows.put("post", p.post_id, post)
            _alert(rows, env, seq, "authority", why)
            return
        s = p.signer
        post["trail"].append(
            step(
                env,
                seq,
                f"signed:{p.stage}",
                digest=p.content_digest,
                decision=p.decision,
                opinion=p.opinion,
                chain=p.chain,
                signer=s.person,
                signer_role=s.role,
                signer_unit=s.unit,
            )
        )
        if p.stage == "leader" and p.decision == "agree":
            if s.person not in post["leader_signers"]:
                post["leader_signers"].append(s.person)
            # The chains an approval may stand on: a believed leader's agreement of that digest.
            post.setdefault("agreed", {})[str(p.chain)] = p.content_digest
    else:  # ReviewConcluded
        chain = str(p.chain)
        stands = None
        if p.outcome == "approved" and (
            p.chain in post.get("tainted_chains", ())
            or post.get("agreed", {}).get(chain) != p.content_digest
        ):
            # An approval nobody with the authority agreed to: not history, an alert.
            _alert(
                rows,
                env,
                seq,
                "authority",
                f"approves chain {p.chain} of {p.post_id} without a believed leader's agreement",
            )
            return
        if p.outcome == "approved":
            if _approves_current(post, p):
                post["approved"][chain] = p.content_digest
            else:
                # Decided on content a revision or withdrawal had already overtaken in the log:
                # it approves nothing (review voids the chain when it reads the revision).
                stands = False
        else:
            post["approved"].pop(chain, None)
        post["trail"].append(
            step(
                env,
                seq,
                f"review:{p.outcome}",
                digest=p.content_digest,
                chain=p.chain,
                reason=p.reason,
                stands=stands,
            )
        )
    rows.put("post", p.post_id, post)


def _approves_current(post: Row, p: Any) -> bool:
    """An approval stands only for the post's current, not withdrawn, content version."""
    if post["withdrawn"] or p.content_digest != post["digest"]:
        return False
    return p.content_version is None or p.content_version == post["version"]


def _publication(rows: Rows, env: Envelope[Any], seq: int) -> None:
    p = env.payload
    pub_id = p.publication_id
    post = rows.get("post", p.post_id) if p.post_id else None
    if env.type == "PostPublished":
        s = step(
            env,
            seq,
            "published",
            digest=p.content_digest,
            publication_id=pub_id,
            url=p.url,
            online_at=iso(p.online_at),
            reported_by=p.reported_by,
            redated=p.redated or None,
        )
        pub = {
            "publication_id": pub_id,
            "post_id": p.post_id,
            "unit": p.unit,
            "column": p.column,
            "digest": p.content_digest,
            "online_at": iso(p.online_at),
            "removed": False,
            "event_id": env.event_id,
            "trail": [s],
        }
        rows.put("publication", pub_id, pub)
        if post is not None:
            post["trail"].append(s)
            post["publications"].append(pub_id)
            if "published_responsible" not in post:
                # Who answers for the item going online, fixed when it did: a late-publication
                # verdict (freshness's ColumnRefreshed, a reaction) names these people however
                # many signatures or role changes land between the publication and it.
                post["published_responsible"] = responsible_for_post(rows, post, p.unit)
            rows.put("post", post["post_id"], post)
        _check_review(rows, env, pub, post)
    else:  # PublicationRemoved
        known = rows.get("publication", pub_id)
        s = step(
            env,
            seq,
            "removed",
            publication_id=pub_id,
            reason=p.reason,
            removed_at=p.removed_at.isoformat(),
        )
        if known is not None:
            known["removed"] = True
            known["trail"].append(s)
            rows.put("publication", pub_id, known)
            if known.get("unreviewed_violation"):
                _oblige_rectify(
                    rows,
                    known["unreviewed_violation"],
                    known["unit"],
                    "removed",
                    [env.event_id],
                    env,
                )
        if post is not None:
            post["trail"].append(s)
            rows.put("post", post["post_id"], post)
        _answer_findings(rows, p.post_id, pub_id, env, "removed")


def _check_review(rows: Rows, env: Envelope[Any], pub: Row, post: Row | None) -> None:
    """Published without review: no post at all, or no standing approval of this digest."""
    p = env.payload
    if post is not None and p.content_digest in post["approved"].values():
        return
    unit = rows.get("unit", p.unit)
    if post is None and (
        unit is None
        or "registered_at" not in unit
        or p.online_at < datetime.fromisoformat(unit["registered_at"])
    ):
        # Content online before the unit joined gongkai predates its review duties here.
        return
    if post is None:
        summary = f"item {p.publication_id} went online in {p.column} with no post in gongkai"
        serious = False
        evidence = [env.event_id]
    else:
        approved = bool(post["approved"])
        summary = (
            f"post {post['post_id']} went online in a version that differs from the approved one"
            if approved
            else f"post {post['post_id']} went online without the principal leader's approval"
        )
        serious = p.content_digest in post["flagged_digests"] or (
            not approved and bool(post["flagged_digests"])
        )
        evidence = [post["trail"][0]["event_id"], env.event_id]
    # Who published (if a person of the unit did) is responsible beside maker and leader.
    people = responsible_for_post(rows, post, p.unit)
    if env.actor.unit == p.unit:
        people = _dedupe([*people, actor_of(env)])
    vid_key = p.publication_id
    _violation_obligation(
        rows,
        key=vid_key,
        kind="published_without_review",
        unit=p.unit,
        responsible=people,
        evidence=evidence,
        severity="serious" if serious else "minor",
        occurred_at=p.online_at,
        summary=summary,
        column=p.column,
        post_id=post["post_id"] if post else None,
        publication_id=p.publication_id,
    )
    pub["unreviewed_violation"] = short_id("V", f"violation:published_without_review:{vid_key}")
    rows.put("publication", p.publication_id, pub)


def _oblige_rectify(
    rows: Rows, vid: str, unit: str, how: str, evidence: list[str], env: Envelope[Any]
) -> None:
    v = rows.get("violation", vid)
    if v is not None and v.get("rectified"):
        return
    _oblige(
        rows,
        rectify_command_id(vid),
        unit,
        {
            "event": "ViolationRectified",
            "aggregate_id": vid,
            "payload": {
                "violation_id": vid,
                "unit": unit,
                "how": how,
                "evidence": evidence,
                "rectified_at": env.business_time.isoformat(),
            },
        },
    )


# ---- columns and supervision --------------------------------------------------------------


def _column_row(rows: Rows, unit: str, column: str) -> Row:
    return rows.get("column", f"{unit}--{column}") or {
        "unit": unit,
        "column": column,
        "open": {},
        "case": None,
        "cases": 0,
        "hidden": False,
        "late": {},
    }


def _column(rows: Rows, env: Envelope[Any], seq: int) -> None:
    p = env.payload
    key = f"{p.unit}--{p.column}"
    col = _column_row(rows, p.unit, p.column)
    if env.type == "ColumnStale":
        episode = f"{p.rule_set}/{p.rule}/{p.episode}"
        col["open"][episode] = {
            "event_id": env.event_id,
            "due_date": p.due_date.isoformat(),
            "rule_kind": p.rule_kind,
            "rule": p.rule,
            "rule_set": p.rule_set,
            "post_id": p.post_id,
            "since": local_date(env.business_time).isoformat(),
        }
        current = rows.get("case", col["case"]) if col["case"] is not None else None
        if current is not None and current.get("closing"):
            # Every episode of that case was refreshed; its SupervisionClosed (accountability's
            # own reaction) may not be recorded yet. A new staleness is a new case either way.
            col["case"] = None
        if col["case"] is None:
            col["cases"] += 1
            case_id = f"{p.unit}--{p.column}--{col['cases']}"
            col["case"] = case_id
            rows.put(
                "case",
                case_id,
                {
                    "case_id": case_id,
                    "unit": p.unit,
                    "column": p.column,
                    "status": "open",
                    "opened_on": local_date(env.business_time).isoformat(),
                    "stale_event_ids": [env.event_id],
                    "notice": None,
                    "breach": None,
                    "closed": None,
                },
            )
        else:
            case = rows.get("case", col["case"])
            if case is not None and env.event_id not in case["stale_event_ids"]:
                case["stale_event_ids"].append(env.event_id)
                rows.put("case", col["case"], case)
    elif env.type == "ColumnRefreshed":
        episode = f"{p.rule_set}/{p.rule}/{p.episode}"
        opened = col["open"].pop(episode, None)
        if (
            p.resolution == "published"
            and p.rule_kind in TRIGGERED_KINDS
            and (p.late_days or 0) > 0
        ):
            _late(rows, env, col, opened)
        if not col["open"] and col["case"] is not None:
            case = rows.get("case", col["case"])
            if case is not None and case["status"] != "closed":
                case.setdefault("refreshed", []).append(env.event_id)
                # The day the column was put right (the item's own online day when it went
                # online), not the day freshness's reaction was recorded.
                case["closing"] = (p.met_on or local_date(env.business_time)).isoformat()
                rows.put("case", col["case"], case)
                _oblige_close(rows, case)
        elif col["case"] is not None:
            case = rows.get("case", col["case"])
            if case is not None:
                case.setdefault("refreshed", []).append(env.event_id)
                rows.put("case", col["case"], case)
    elif env.type == "ColumnHidden":
        col["hidden"] = True
    elif env.type == "ColumnKept":
        col["hidden"] = False
    rows.put("column", key, col)


def _oblige_close(rows: Rows, case: Row) -> None:
    closed_on = case["closing"]
    notice = case["notice"]
    if notice is None:
        outcome = "before_notice"
    elif closed_on <= notice["deadline"]:
        outcome = "within_deadline"
    else:
        outcome = "after_deadline"
    _oblige(
        rows,
        f"supervision-closed:{case['case_id']}",
        case["unit"],
        {
            "event": "SupervisionClosed",
            "aggregate_id": case["case_id"],
            "payload": {
                "case_id": case["case_id"],
                "unit": case["unit"],
                "column": case["column"],
                "outcome": outcome,
                "closed_on": closed_on,
                "refreshed_event_ids": case.get("refreshed", []),
            },
        },
    )
    breach = rows.get("violation", case["breach"]) if case.get("breach") else None
    # Rectified already (the office may do it by hand before the column is refreshed): no
    # second rectification is owed, and an obligation nobody discharges must not linger.
    if case.get("breach") and not (breach is not None and breach.get("rectified")):
        _oblige(
            rows,
            rectify_command_id(case["breach"]),
            case["unit"],
            {
                "event": "ViolationRectified",
                "aggregate_id": case["breach"],
                "payload": {
                    "violation_id": case["breach"],
                    "unit": case["unit"],
                    "how": "refreshed",
                    "evidence": case.get("refreshed", []),
                    "rectified_at": closed_on + "T00:00:00+08:00",
                },
            },
        )


def _late(rows: Rows, env: Envelope[Any], col: Row, opened: Row | None) -> None:
    p = env.payload
    # One late item is one lapse, even when several rule sets saw it late.
    item = p.post_id or f"{p.rule_kind}-{p.due_date.isoformat()}"
    key = f"{p.unit}:{p.column}:{item}"
    post = rows.get("post", p.post_id) if p.post_id else None
    evidence = [e for e in (p.stale_event_id, env.event_id) if e]
    if post is not None:
        evidence = [post["trail"][0]["event_id"], *evidence]
    if post is not None and "published_responsible" in post:
        people = post["published_responsible"]
    else:
        # No publication of a gongkai post to anchor on: the unit's leaders when the item went
        # online (by business time), not when freshness's reaction is folded.
        when = p.last_publication_at or end_of(p.met_on or p.due_date)
        people = responsible_for_post(rows, post, p.unit, when)
    _violation_obligation(
        rows,
        key=key,
        kind="late_publication",
        unit=p.unit,
        responsible=people,
        evidence=evidence,
        severity="minor",
        occurred_at=env.business_time,
        summary=(
            f"{p.column} item {'for post ' + p.post_id if p.post_id else ''} went online "
            f"{p.late_days} day(s) after its due date {p.due_date} ({p.rule_set} {p.rule})"
        ),
        column=p.column,
        post_id=p.post_id,
    )


def _supervision(rows: Rows, env: Envelope[Any], seq: int) -> None:
    p = env.payload
    case = rows.get("case", p.case_id)
    if case is None:
        return
    if env.type == "SupervisionIssued":
        case["status"] = "issued"
        case["notice"] = {
            "event_id": env.event_id,
            "issued_on": p.issued_on.isoformat(),
            "deadline": p.deadline.isoformat(),
            "working_days": p.working_days,
            "provisional": p.provisional,
            "automatic": p.automatic,
            "by": actor_of(env),
        }
    else:
        case["status"] = "closed"
        case["closed"] = {
            "event_id": env.event_id,
            "outcome": p.outcome,
            "closed_on": p.closed_on.isoformat(),
        }
        col = _column_row(rows, p.unit, p.column)
        if col["case"] == p.case_id:
            col["case"] = None
            rows.put("column", f"{p.unit}--{p.column}", col)
    rows.put("case", p.case_id, case)


# ---- findings -------------------------------------------------------------------------------


def _answer_findings(
    rows: Rows, post_id: str | None, pub_id: str | None, env: Envelope[Any], how: str
) -> None:
    ids: list[str] = []
    if post_id:
        ids += (rows.get("post", post_id) or {}).get("findings", [])
    if pub_id:
        ids += (rows.get("publication", pub_id) or {}).get("findings", [])
    for fid in sorted(set(ids)):
        f = rows.get("finding", fid)
        if f is None or f["status"] != "reported":
            continue
        _oblige(
            rows,
            f"finding-resolved:{fid}",
            f["unit"],
            {
                "event": "FindingResolved",
                "aggregate_id": fid,
                "payload": {
                    "finding_id": fid,
                    "unit": f["unit"],
                    "how": how,
                    "evidence": [env.event_id],
                },
            },
        )


def _finding(rows: Rows, env: Envelope[Any], seq: int) -> None:
    p = env.payload
    if env.type == "FindingReported":
        reported = {
            "finding_id": p.finding_id,
            "unit": p.unit,
            "kind": p.kind,
            "post_id": p.post_id,
            "publication_id": p.publication_id,
            "column": p.column,
            "description": p.description,
            "evidence": list(p.evidence),
            "reported_on": p.reported_on.isoformat(),
            "reported_by": actor_of(env),
            "event_id": env.event_id,
            "status": "reported",
            "answer": None,
        }
        rows.put("finding", p.finding_id, reported)
        for table, key in (("post", p.post_id), ("publication", p.publication_id)):
            target = rows.get(table, key) if key else None
            if target is not None and key:
                target.setdefault("findings", []).append(p.finding_id)
                target["trail"].append(
                    step(env, seq, "finding", finding_id=p.finding_id, kind=p.kind)
                )
                rows.put(table, key, target)
        return
    f = rows.get("finding", p.finding_id)
    if f is None:
        return
    if env.type == "FindingResolved":
        f["status"] = "resolved"
        f["answer"] = {"how": p.how, "evidence": list(p.evidence), "event_id": env.event_id}
    else:  # FindingConfirmed
        f["status"] = "confirmed"
        f["answer"] = {"note": p.note, "event_id": env.event_id, "by": actor_of(env)}
        post = rows.get("post", f["post_id"]) if f["post_id"] else None
        pub = rows.get("publication", f["publication_id"]) if f["publication_id"] else None
        if post is None and pub is not None and pub.get("post_id"):
            post = rows.get("post", pub["post_id"])
        people = responsible_for_post(rows, post, f["unit"])
        if pub is not None:
            publisher = pub["trail"][0]
            if publisher["unit"] == f["unit"]:
                people = _dedupe([*people, {k: publisher[k] for k in ("person", "role", "unit")}])
        _violation_obligation(
            rows,
            key=p.finding_id,
            kind="wrong_information",
            unit=f["unit"],
            responsible=people,
            evidence=[f["event_id"], env.event_id],
            severity="serious" if f["kind"] in SERIOUS_FINDINGS else "minor",
            occurred_at=env.business_time,
            summary=f"finding {p.finding_id} ({f['kind']}) confirmed: {f['description'][:200]}",
            column=f["column"],
            post_id=f["post_id"] or (post["post_id"] if post else None),
            publication_id=f["publication_id"],
            finding_id=p.finding_id,
        )
    rows.put("finding", p.finding_id, f)


# ---- violations -----------------------------------------------------------------------------


def _violation(rows: Rows, env: Envelope[Any], seq: int) -> None:
    p = env.payload
    vid = env.aggregate_id
    if env.type == "ViolationRecorded":
        v = p.model_dump(mode="json")
        v.update(
            violation_id=vid,
            event_id=env.event_id,
            recorded_at=env.recorded_at.isoformat(),
            rectified=None,
        )
        rows.put("violation", vid, v)
        if p.case_id:
            case = rows.get("case", p.case_id)
            if case is not None:
                case["breach"] = vid
                rows.put("case", p.case_id, case)
        post = rows.get("post", p.post_id) if p.post_id else None
        if post is not None:
            post["trail"].append(step(env, seq, "violation", violation_id=vid, kind=p.kind))
            rows.put("post", p.post_id or "", post)
    else:
        v = rows.get("violation", p.violation_id)
        if v is None:
            return
        v["rectified"] = {"how": p.how, "at": p.rectified_at.isoformat(), "event_id": env.event_id}
        rows.put("violation", p.violation_id, v)


def _integrity(rows: Rows, env: Envelope[Any], seq: int) -> None:
    p = env.payload
    rows.put(
        "alert",
        str(p.sequence),
        {
            "sequence": p.sequence,
            "subject": p.subject,
            "check": p.check,
            "kind": p.check,
            "detail": p.detail,
            "claimed_event_id": p.claimed_event_id,
            "claimed_type": p.claimed_type,
            "event_id": env.event_id,
            "recorded_at": iso(env.recorded_at),
        },
    )


_HANDLERS: dict[str, Any] = {
    "IntegrityAlert": _integrity,
    "UnitRegistered": _directory,
    "RoleGranted": _directory,
    "RoleRevoked": _directory,
    "PostSubmitted": _post,
    "PostRevised": _post,
    "PostWithdrawn": _post,
    "ReviewSigned": _review,
    "ReviewConcluded": _review,
    "PostPublished": _publication,
    "PublicationRemoved": _publication,
    "ColumnStale": _column,
    "ColumnRefreshed": _column,
    "ColumnHidden": _column,
    "ColumnKept": _column,
    "SupervisionIssued": _supervision,
    "SupervisionClosed": _supervision,
    "FindingReported": _finding,
    "FindingResolved": _finding,
    "FindingConfirmed": _finding,
    "ViolationRecorded": _violation,
    "ViolationRectified": _violation,
}
#: The event types the fold reads; the projection filters nothing else out of interest.
RELEVANT = frozenset(_HANDLERS)

__all__ = ["RELEVANT", "date", "end_of", "evolve", "holders_at", "local_date", "short_id"]
