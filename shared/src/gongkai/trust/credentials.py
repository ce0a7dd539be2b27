"""NATS credentials: NKey seeds under the data directory, and how a client finds its own.

The embedded server of ``gongkai up`` knows each user of the permission matrix
(``gongkai.trust.matrix``) by its NKey *public* key only; the seed (the private key) lives in
``<data_dir>/credentials/<user>.nk``, created at first start (directory 0700, files 0600) and
reused after. A client proves it holds the seed by signing the server's nonce: nothing
replayable crosses the wire and the server's configuration holds no secret.

A client finds its credentials in this order (``resolve``):

1. an explicit file: ``--creds FILE`` or ``$GONGKAI_NATS_CREDS`` (an NKey seed file, or a
   ``.creds`` file with a user JWT for an operator-mode server);
2. a user name and password: ``$GONGKAI_NATS_USER`` / ``$GONGKAI_NATS_PASSWORD`` (the compose
   and Kubernetes deployments);
3. the local data directory's seed for the role the tool acts in
   (``<data_dir>/credentials/<role>.nk``);
4. none: an anonymous connection (a test server, or a NATS without authentication).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nkeys

from gongkai.trust.matrix import USERS

if TYPE_CHECKING:
    from gongkai.eventlog import EventLog
    from gongkai.runtime.settings import Settings
    from gongkai.trust.keys import Keyring

#: Under the data directory. (``keys/`` beside it holds the event-signing keys.)
CREDENTIALS_DIR = "credentials"
SEED_SUFFIX = ".nk"


class CredentialsError(RuntimeError):
    """A credential file is missing, unreadable or not an NKey seed; one line."""


def credentials_dir(data_dir: Path) -> Path:
    return Path(data_dir) / CREDENTIALS_DIR


def seed_file(data_dir: Path, user: str) -> Path:
    return credentials_dir(data_dir) / f"{user}{SEED_SUFFIX}"


def public_key(seed: bytes | str) -> str:
    """The public key (``U...``) of an NKey user seed (``SU...``)."""
    raw = seed.encode() if isinstance(seed, str) else seed
    try:
        kp = nkeys.from_seed(bytearray(raw.strip()))
    except Exception as exc:  # noqa: BLE001 - nkeys raises several kinds
        raise CredentialsError(f"not an NKey seed: {type(exc).__name__}") from None
    key = kp.public_key.decode()
    kp.wipe()
    return key


def new_seed() -> bytes:
    """A fresh NKey user seed."""
    return bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` 0600 from the start (never readable by others, not even briefly)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _tighten(path: Path, mode: int) -> None:
    """Owner-only: a credential directory or file others can read is narrowed at once."""
    current = stat.S_IMODE(path.stat().st_mode)
    if current != mode:
        path.chmod(mode)


def ensure_credentials(
    data_dir: Path, users: tuple[str, ...] = USERS
) -> dict[str, str]:
    """Each user's public key; seeds missing under ``data_dir`` are generated (0700 / 0600)."""
    d = credentials_dir(data_dir)
    old_umask = os.umask(0o077)
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    finally:
        os.umask(old_umask)
    _tighten(d, 0o700)
    keys: dict[str, str] = {}
    for user in users:
        path = seed_file(data_dir, user)
        if not path.exists():
            _write_private(path, new_seed() + b"\n")
        _tighten(path, 0o600)
        try:
            keys[user] = public_key(path.read_bytes())
        except CredentialsError as exc:
            raise CredentialsError(f"{path}: {exc}; delete it to generate a new one") from None
    return keys


def rotate(data_dir: Path, user: str) -> str:
    """Replace ``user``'s seed with a new one; the new public key (restart to apply)."""
    if user not in USERS:
        raise CredentialsError(f"unknown NATS user {user!r}; known: {', '.join(USERS)}")
    ensure_credentials(data_dir)
    path = seed_file(data_dir, user)
    _write_private(path, new_seed() + b"\n")
    return public_key(path.read_bytes())


@dataclass(frozen=True)
class NatsAuth:
    """How one client authenticates: an NKey seed or .creds file, a password, or nothing."""

    file: Path | None = None
    user: str | None = None
    password: str | None = None
    #: Where a tool finds the signing keys and trust anchors (its ``--data-dir``'s ``keys/``,
    #: or ``GONGKAI_KEYS_DIR``): it signs as the owning service and verifies what it reads.
    keys_dir: Path | None = None

    def options(self) -> dict[str, Any]:
        """Keyword arguments for ``nats.connect`` (and faststream's ``NatsBroker``)."""
        if self.file is not None:
            try:
                head = self.file.read_text(errors="replace")[:200]
            except OSError as exc:
                raise CredentialsError(
                    f"cannot read NATS credentials {self.file}: {exc.strerror}"
                ) from None
            if "NATS USER JWT" in head:
                return {"user_credentials": str(self.file)}
            return {"nkeys_seed": str(self.file)}
        if self.user:
            return {"user": self.user, "password": self.password or ""}
        return {}

    def keyring(self) -> Keyring | None:
        """The signing keys and trust anchors of ``keys_dir``, if it holds trust anchors."""
        from gongkai.trust.keys import TRUST_FILE, Keyring

        if self.keys_dir is None or not (self.keys_dir / TRUST_FILE).exists():
            return None
        return Keyring.load(self.keys_dir)

    def describe(self) -> str:
        if self.file is not None:
            return f"credentials {self.file}"
        if self.user:
            return f"user {self.user}"
        return "no credentials"


def resolve(settings: Settings, role: str, creds: str | Path | None = None) -> NatsAuth:
    """The credentials a client acting as ``role`` uses (see the module's order)."""
    named = settings.nats_auth
    explicit = creds or named.file
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise CredentialsError(f"NATS credentials file {path} does not exist")
        return NatsAuth(file=path)
    if named.user:
        return NatsAuth(user=named.user, password=named.password)
    local = seed_file(Path(settings.data_dir), role)
    if local.is_file():
        return NatsAuth(file=local.resolve())
    return NatsAuth()


# ---- command-line tools ---------------------------------------------------------------------

CREDS_HELP = (
    "NATS credentials: an NKey seed or .creds file ($GONGKAI_NATS_CREDS); default: the "
    "{role} credentials of the local data directory (<data-dir>/credentials/{role}.nk)"
)


def add_tool_arguments(parser: argparse.ArgumentParser, role: str) -> None:
    """``--creds FILE`` and ``--data-dir DIR`` for a tool that connects to NATS as ``role``."""
    parser.add_argument("--creds", metavar="FILE", help=CREDS_HELP.format(role=role))
    if "--data-dir" not in parser._option_string_actions:
        parser.add_argument(
            "--data-dir", help="the platform's data directory ($GONGKAI_DATA_DIR, ./var)"
        )
    parser.set_defaults(nats_role=role)


def for_tool(args: argparse.Namespace, role: str | None = None) -> NatsAuth:
    """The credentials of a command-line tool (see ``add_tool_arguments``)."""
    from gongkai.runtime.settings import Settings

    data_dir = getattr(args, "data_dir", None)
    settings = Settings.from_env(data_dir=Path(data_dir) if data_dir else None)
    acting = role or getattr(args, "nats_role", None) or "inspector"
    auth = resolve(settings, acting, getattr(args, "creds", None))
    return dataclasses.replace(auth, keys_dir=settings.keys_path)


async def connect_tool(url: str, auth: NatsAuth, **options: Any) -> EventLog:
    """Connect for a command-line tool: fail at once (in two seconds) instead of retrying."""
    from gongkai.eventlog import EventLog

    async def quiet(_exc: Exception) -> None:
        # nats-py's default callback logs each failure with a traceback; a tool reports the
        # failure once, in one line, from the exception its call raises.
        return None

    opts: dict[str, Any] = {
        "error_cb": quiet,
        "connect_timeout": 2,
        "allow_reconnect": False,
        "max_reconnect_attempts": 1,
        # nats-py waits this long before its one more attempt at a refused first connect.
        "reconnect_time_wait": 0,
        **options,
        **auth.options(),
    }
    return await EventLog.connect(url, keys=auth.keyring(), **opts)
