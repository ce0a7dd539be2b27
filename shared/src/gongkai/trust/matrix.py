"""The NATS permission matrix: who may do what on the bus, in one place.

Every NATS user of gongkai and its permissions are declared here once, and every server
configuration is generated from it:

- the embedded server of ``gongkai up`` (NKey users: the config holds public keys only);
- ``deploy/nats/auth.conf`` (compose) and the same text in ``deploy/k8s/nats.yaml`` (Kubernetes),
  whose users authenticate with passwords the nats-server reads from its environment
  (``$GK_NATS_<USER>_PASSWORD``, from ``.env`` or the ``gongkai-nats`` Secret).

``gongkai nats config`` (``make nats-config``) rewrites the deploy files; a test checks the
committed files are what this module generates, and that the embedded config grants the same.

Publish rights follow event ownership (``gongkai.trust.owners``): a service may append only the
event types it decides. Only ``admin`` creates, changes or deletes streams and other users'
consumers; nobody, not even ``admin``, may delete or purge the event log or delete a message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

from gongkai import subjects
from gongkai.trust.owners import SERVICES, owned_types

LOG = subjects.STREAM
DLQ = subjects.DLQ_STREAM
#: The account every gongkai user but ``sys`` lives in (it holds the JetStream streams).
ACCOUNT = "GONGKAI"
SYSTEM_ACCOUNT = "SYS"

#: The read-only downstream users. Each owns DURABLE_SLOTS durable consumer names of its own
#: (``subscriber_durables``): NATS permissions match whole subject tokens, so "names starting
#: with sub-<user>-" cannot be granted; these exact names can. Another downstream system gets a
#: user of its own here (and a ROLES line): its durables are then out of every other's reach.
SUBSCRIBERS: tuple[str, ...] = ("subscriber",)
DURABLE_SLOTS = 8

#: Every user, in the order the configurations list them.
USERS: tuple[str, ...] = (
    "sys", "admin", *SERVICES, "inspector", "cms", *SUBSCRIBERS,
)

#: Who each user is, as the generated configurations say it.
ROLES: dict[str, str] = {
    "sys": "the system account (server monitoring, `nats server report`)",
    "admin": "creates and changes the streams (the stream-init step, `gongkai up` at start) and "
    "may delete other users' consumers and streams other than the log; nobody may delete or "
    "purge the event log or delete one of its messages, not even admin",
    "intake": "publishes only the events it owns; reads the log (ordered consumers, its "
    "durable pull consumers, acks, flow control); writes its own dead letters; answers "
    "requests on gk.cmd.intake.>; no stream or consumer administration",
    "review": "as intake, for review's events and gk.cmd.review.>",
    "freshness": "as intake, for freshness's events and gk.cmd.freshness.>",
    "accountability": "as intake, for accountability's events and gk.cmd.accountability.>",
    "inspector": "read-only tools (`gongkai audit`, `gongkai events tail`): reads the log and "
    "the dead letters through ephemeral consumers; publishes nothing",
    "cms": "the CMS or demo client: reads the log, sends requests to gk.cmd.intake.>",
    "subscriber": "a read-only downstream system: reads the log; creates, reads and deletes "
    "only the durable consumers named sub-subscriber-1 to sub-subscriber-8; publishes no event",
}

_API = "$JS.API"
#: What no user may ever do to the log (deny wins over allow in NATS permissions).
_NEVER = (
    f"{_API}.STREAM.DELETE.{LOG}", f"{_API}.STREAM.DELETE.{DLQ}",
    f"{_API}.STREAM.PURGE.>", f"{_API}.STREAM.MSG.DELETE.>",
)
#: Stream and consumer administration: admin's alone.
_ADMINISTRATION = (
    f"{_API}.STREAM.CREATE.>", f"{_API}.STREAM.UPDATE.>", f"{_API}.STREAM.DELETE.>",
    f"{_API}.STREAM.PURGE.>", f"{_API}.STREAM.MSG.DELETE.>", f"{_API}.CONSUMER.DELETE.>",
)


def _read(stream: str) -> list[str]:
    """Read one stream: direct and leader gets, ephemeral (ordered, following) consumers."""
    return [
        f"{_API}.STREAM.INFO.{stream}",
        # Direct gets: the batched form (the request in the body) and by last subject.
        f"{_API}.DIRECT.GET.{stream}", f"{_API}.DIRECT.GET.{stream}.>",
        f"{_API}.STREAM.MSG.GET.{stream}",
        f"{_API}.CONSUMER.CREATE.{stream}",
        f"{_API}.CONSUMER.INFO.{stream}.*", f"{_API}.CONSUMER.MSG.NEXT.{stream}.*",
        f"$JS.ACK.{stream}.>", f"$JS.FC.{stream}.>",
    ]


def _durables(stream: str) -> list[str]:
    """Create (and update) durable or named consumers on a stream."""
    return [
        f"{_API}.CONSUMER.CREATE.{stream}.>", f"{_API}.CONSUMER.DURABLE.CREATE.{stream}.*",
    ]


def subscriber_durables(user: str) -> tuple[str, ...]:
    """The durable consumer names ``user`` (one of SUBSCRIBERS) may create, use and delete."""
    return tuple(f"sub-{user}-{i}" for i in range(1, DURABLE_SLOTS + 1))


def _own(durable: str) -> list[str]:
    """Create (or update) and delete one named durable consumer on the log."""
    return [
        f"{_API}.CONSUMER.CREATE.{LOG}.{durable}", f"{_API}.CONSUMER.CREATE.{LOG}.{durable}.>",
        f"{_API}.CONSUMER.DURABLE.CREATE.{LOG}.{durable}",
        f"{_API}.CONSUMER.DELETE.{LOG}.{durable}",
    ]


def _protect(durable: str) -> list[str]:
    """What others may not do to a service's durable consumer: take it over, drain, delete."""
    return [
        f"{_API}.CONSUMER.CREATE.{LOG}.{durable}", f"{_API}.CONSUMER.CREATE.{LOG}.{durable}.>",
        f"{_API}.CONSUMER.DURABLE.CREATE.{LOG}.{durable}",
        f"{_API}.CONSUMER.MSG.NEXT.{LOG}.{durable}", f"{_API}.CONSUMER.DELETE.{LOG}.{durable}",
        f"$JS.ACK.{LOG}.{durable}.>",
    ]


@dataclass(frozen=True)
class Permissions:
    publish_allow: tuple[str, ...]
    publish_deny: tuple[str, ...] = ()
    subscribe_allow: tuple[str, ...] = ("_INBOX.>",)
    subscribe_deny: tuple[str, ...] = ()
    #: May answer requests (publish to the reply subject of a message it received).
    allow_responses: bool = False


@dataclass(frozen=True)
class User:
    name: str
    account: str
    role: str
    #: None: unrestricted within its account (the system user).
    permissions: Permissions | None


@dataclass(frozen=True)
class Matrix:
    users: tuple[User, ...]
    #: service -> the names of its durable consumers, which no one else may touch.
    durables: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def user(self, name: str) -> User:
        return next(u for u in self.users if u.name == name)

    def as_dict(self) -> dict[str, object]:
        """The whole matrix as plain data (what the agreement test compares)."""
        out: dict[str, object] = {}
        for u in self.users:
            p = u.permissions
            out[u.name] = {
                "account": u.account,
                "permissions": None if p is None else {
                    "publish": {"allow": list(p.publish_allow), "deny": list(p.publish_deny)},
                    "subscribe": {
                        "allow": list(p.subscribe_allow), "deny": list(p.subscribe_deny),
                    },
                    "allow_responses": p.allow_responses,
                },
            }
        return out


def event_subjects(service: str) -> list[str]:
    """The subjects of every event ``service`` owns (any aggregate id)."""
    return [subjects.type_filter(t, agg) for agg, t in owned_types(service)]


@cache
def discovered_durables() -> dict[str, tuple[str, ...]]:
    """Each installed service's durable consumer names, from the services themselves."""
    from gongkai.runtime.service import ServiceContext, discover
    from gongkai.runtime.settings import Settings

    ctx = ServiceContext(settings=Settings(), nats_url="nats://localhost:4222")
    found: dict[str, tuple[str, ...]] = {}
    for name, build in discover().items():
        svc = build(ctx)
        found[name] = tuple(sorted(svc.durable_names()))
    return found


def build(durables: Mapping[str, Sequence[str]] | None = None) -> Matrix:
    """The matrix; ``durables`` defaults to the installed services' durable consumers."""
    given = discovered_durables() if durables is None else durables
    durs = {k: tuple(v) for k, v in given.items()}

    def others(owner: str | None) -> list[str]:
        return [x for s, names in sorted(durs.items()) if s != owner for d in names
                for x in _protect(d)]

    users: list[User] = [User("sys", SYSTEM_ACCOUNT, ROLES["sys"], None)]
    users.append(User("admin", ACCOUNT, ROLES["admin"], Permissions(
        publish_allow=(f"{_API}.>", "$JS.ACK.>", "$JS.FC.>"),
        publish_deny=_NEVER,
    )))
    for svc in SERVICES:
        users.append(User(svc, ACCOUNT, ROLES[svc], Permissions(
            publish_allow=(
                *event_subjects(svc), f"gk.dlq.{svc}.>",
                f"{_API}.INFO", *_read(LOG), f"{_API}.STREAM.INFO.{DLQ}", *_durables(LOG),
            ),
            publish_deny=(*_ADMINISTRATION, *others(svc)),
            subscribe_allow=("_INBOX.>", f"gk.cmd.{svc}.>"),
            allow_responses=True,
        )))
    read_all = (f"{_API}.INFO", f"{_API}.STREAM.NAMES", f"{_API}.STREAM.LIST", *_read(LOG))
    users.append(User("inspector", ACCOUNT, ROLES["inspector"], Permissions(
        publish_allow=(*read_all, *_read(DLQ)),
        publish_deny=(*_ADMINISTRATION, *others(None)),
    )))
    users.append(User("cms", ACCOUNT, ROLES["cms"], Permissions(
        publish_allow=("gk.cmd.intake.>", *read_all, *_durables(LOG)),
        publish_deny=(*_ADMINISTRATION, *others(None)),
    )))
    for sub in SUBSCRIBERS:
        # Reading (info, next, ack) stays open for the ephemeral consumers a replay makes,
        # whose names the server picks; creating and deleting a named one is allowed for its
        # own names alone, and the services' and other subscribers' durables are denied.
        theirs = [x for other in SUBSCRIBERS if other != sub
                  for d in subscriber_durables(other) for x in _protect(d)]
        users.append(User(sub, ACCOUNT, ROLES[sub], Permissions(
            publish_allow=(
                *read_all, *[x for d in subscriber_durables(sub) for x in _own(d)],
                f"{_API}.CONSUMER.NAMES.{LOG}", f"{_API}.CONSUMER.LIST.{LOG}",
            ),
            publish_deny=(
                *[a for a in _ADMINISTRATION if ".CONSUMER.DELETE." not in a],
                *others(None), *theirs,
            ),
        )))
    return Matrix(tuple(users), durs)


# ---- rendering ----------------------------------------------------------------------------


def _q(items: Sequence[str]) -> str:
    return ", ".join(json.dumps(i) for i in items)


def _list(items: Sequence[str], indent: str, width: int = 96) -> list[str]:
    """A quoted list, several items a line, wrapped below ``width`` columns."""
    lines: list[str] = []
    line = ""
    for item in items:
        piece = json.dumps(item)
        candidate = f"{line}, {piece}" if line else piece
        if line and len(indent) + len(candidate) + 1 > width:
            lines.append(f"{indent}{line},")
            line = piece
        else:
            line = candidate
    if line:
        lines.append(f"{indent}{line}")
    return lines


def _user_block(user: User, auth: str, indent: str) -> list[str]:
    p = user.permissions
    if p is None:
        return [f"{indent}{{ {auth} }}"]
    i2, i3, i4 = indent + "  ", indent + "    ", indent + "      "
    out = [f"{indent}{{", f"{i2}{auth}", f"{i2}permissions: {{", f"{i3}publish: {{"]
    out += [f"{i4}allow: [", *_list(p.publish_allow, i4 + "  "), f"{i4}]"]
    if p.publish_deny:
        out += [f"{i4}deny: [", *_list(p.publish_deny, i4 + "  "), f"{i4}]"]
    out.append(f"{i3}}}")
    sub = f"allow: [{_q(p.subscribe_allow)}]"
    if p.subscribe_deny:
        sub += f", deny: [{_q(p.subscribe_deny)}]"
    out.append(f"{i3}subscribe: {{ {sub} }}")
    if p.allow_responses:
        out.append(f"{i3}allow_responses: true")
    out += [f"{i2}}}", f"{indent}}}"]
    return out


def render_accounts(matrix: Matrix, auth: Callable[[str], str]) -> str:
    """The ``accounts`` block and ``system_account``; ``auth(user)`` says how each logs in."""
    lines = ["accounts {"]
    for account, extra in ((SYSTEM_ACCOUNT, None), (ACCOUNT, "jetstream: enabled")):
        members = [u for u in matrix.users if u.account == account]
        lines.append(f"  {account}: {{")
        if extra:
            lines.append(f"    {extra}")
        lines.append("    users: [")
        for u in members:
            lines.append(f"      # ---- {u.name}")
            lines += _user_block(u, auth(u.name), "      ")
        lines += ["    ]", "  }"]
    lines += ["}", "", f"system_account: {SYSTEM_ACCOUNT}", ""]
    return "\n".join(lines)


def password_env(user: str) -> str:
    """The environment variable a deploy nats-server reads ``user``'s password from."""
    return f"GK_NATS_{user.upper()}_PASSWORD"


def _roles_comment(matrix: Matrix) -> list[str]:
    out: list[str] = []
    for u in matrix.users:
        words = u.role.split()
        line = f"#   {u.name:<15}"
        for w in words:
            if len(line) + len(w) + 1 > 96:
                out.append(line.rstrip())
                line = "#" + " " * 18
            line += w + " "
        out.append(line.rstrip())
    protected = sorted(d for names in matrix.durables.values() for d in names)
    if protected:
        out.append("# Services' durable consumers, which only their service (and admin) may "
                   "create,")
        out.append(f"# read or delete: {', '.join(protected)}.")
    return out


def deploy_auth_conf(matrix: Matrix | None = None) -> str:
    """``deploy/nats/auth.conf``: password users, passwords from the server's environment."""
    m = matrix or build()
    head = [
        "# gongkai on NATS: accounts, users and least-privilege permissions.",
        "#",
        "# GENERATED from shared/src/gongkai/trust/matrix.py by `gongkai nats config` (make",
        "# nats-config): do not edit by hand. Included by every nats-server of the cluster",
        "# (compose: deploy/nats/nats-server.conf; Kubernetes: the same text in",
        "# deploy/k8s/nats.yaml). Passwords come from the environment of the nats-server process",
        "# ($GK_NATS_<USER>_PASSWORD). The embedded server of `gongkai up` grants the same",
        "# permissions to NKey users instead (docs/operations.md, \"Credentials\").",
        "#",
        "# Who may do what (tested against a real nats-server in",
        "# tests/integration/test_nats_permissions.py and tests/security/):",
        *_roles_comment(m),
        "",
    ]
    body = render_accounts(m, lambda u: f"user: {u}, password: ${password_env(u)}")
    return "\n".join(head) + "\n" + body


def embedded_auth_conf(public_keys: Mapping[str, str], matrix: Matrix | None = None) -> str:
    """The embedded server's accounts: NKey users, identified by public key only."""
    m = matrix or build()
    missing = [u for u in USERS if u not in public_keys]
    if missing:
        raise ValueError(f"no NKey for {', '.join(missing)}")
    head = "# gongkai NKey users, generated from gongkai.trust.matrix: public keys only.\n"
    return head + render_accounts(m, lambda u: f"nkey: {public_keys[u]}")
