"""Settings from flags and environment variables (flags win)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from gongkai.trust.credentials import NatsAuth


def _env(name: str, default: str) -> str:
    return os.environ.get(f"GONGKAI_{name}", default)


def _positive_int(name: str, default: str) -> int:
    raw = _env(name, default)
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"GONGKAI_{name} must be a whole number of at least 1, got {raw!r}")
    return value


def _env_path(name: str) -> Path | None:
    raw = os.environ.get(f"GONGKAI_{name}")
    return Path(raw) if raw else None


@dataclass(frozen=True)
class Settings:
    #: None: start the embedded nats-server under ``data_dir``.
    nats_url: str | None = None
    #: The NATS credentials the operator named: an NKey seed (or .creds) file
    #: ($GONGKAI_NATS_CREDS), else a user and password ($GONGKAI_NATS_USER, _PASSWORD); none:
    #: the local data directory's (``gongkai.trust.credentials.resolve``).
    nats_auth: NatsAuth = field(default_factory=NatsAuth)
    data_dir: Path = Path("var")
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    log_format: str = "console"
    log_level: str = "info"
    #: Embedded server: fsync every write unless the operator opts out.
    nats_sync_always: bool = True
    nats_port: int = 4222
    #: The embedded server's monitoring port on loopback (for the NATS Prometheus exporter and
    #: ``curl .../jsz``); 0: a free one, printed at start.
    nats_monitor_port: int = 0
    stream_replicas: int = 1
    #: False under least privilege: services only verify the streams the init step created.
    manage_streams: bool = True
    db_urls: dict[str, str] = field(default_factory=dict)
    #: "auto": a service upgrades its database at start; "verify": it refuses to start unless
    #: the database is at the code's migration head. None: auto on SQLite, verify otherwise.
    db_migrate: str | None = None
    demo: bool = False
    #: Signing keys and trust anchors (``gongkai.trust.keys``). None: ``GONGKAI_KEYS_DIR`` if
    #: set, else ``<data_dir>/keys`` (generated there at first start on the embedded default).
    keys_dir: Path | None = field(default_factory=lambda: _env_path("KEYS_DIR"))
    #: How long a token issued by ``gongkai people token`` (and the demo's) stays valid.
    token_lifetime_days: int = 90
    #: Seconds a projection may be behind without progress before its service is not ready.
    ready_stall_seconds: int = 60

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        s = cls(
            nats_url=os.environ.get("GONGKAI_NATS_URL") or None,
            nats_auth=NatsAuth(
                file=_env_path("NATS_CREDS"),
                user=os.environ.get("GONGKAI_NATS_USER") or None,
                password=os.environ.get("GONGKAI_NATS_PASSWORD") or None,
            ),
            data_dir=Path(_env("DATA_DIR", "var")),
            http_host=_env("HTTP_HOST", "127.0.0.1"),
            http_port=int(_env("HTTP_PORT", "8080")),
            log_format=_env("LOG_FORMAT", "console"),
            log_level=_env("LOG_LEVEL", "info"),
            nats_sync_always=_env("NATS_SYNC", "always") == "always",
            nats_port=int(_env("NATS_PORT", "4222")),
            nats_monitor_port=int(_env("NATS_MONITOR_PORT", "0")),
            stream_replicas=int(_env("STREAM_REPLICAS", "1")),
            manage_streams=_env("STREAM_MANAGE", "true").lower() not in ("false", "0", "no"),
            db_migrate=os.environ.get("GONGKAI_DB_MIGRATE") or None,
            token_lifetime_days=_positive_int("TOKEN_LIFETIME_DAYS", "90"),
            ready_stall_seconds=_positive_int("READY_STALL_SECONDS", "60"),
            db_urls={
                k[len("GONGKAI_DB_URL_") :].lower(): v
                for k, v in os.environ.items()
                if k.startswith("GONGKAI_DB_URL_")
            },
        )
        return replace(s, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def keys_path(self) -> Path:
        return self.keys_dir if self.keys_dir is not None else self.data_dir / "keys"

    def db_url(self, service: str) -> str:
        if service in self.db_urls:
            return self.db_urls[service]
        return f"sqlite:///{self.data_dir / (service + '.db')}"

    def db_migrate_mode(self, service: str) -> Literal["auto", "verify"]:
        """How ``service`` treats its database's migrations at start."""
        mode = (self.db_migrate or "").lower()
        if mode in ("auto", "verify"):
            return "auto" if mode == "auto" else "verify"
        if mode:
            raise ValueError(f"GONGKAI_DB_MIGRATE must be auto or verify, got {self.db_migrate!r}")
        # A SQLite file is the service's own; a server database is shared by replicas and
        # migrated once by the init step, never by several starting pods at once.
        return "auto" if self.db_url(service).startswith("sqlite") else "verify"
