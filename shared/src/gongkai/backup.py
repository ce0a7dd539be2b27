"""Backup and restore of the log: ``gongkai events export`` and ``gongkai events import``.

The log is the system of record (every read model is rebuilt from it), so its backup is a copy
of the stream's messages as stored: sequence, subject, headers (``Nats-Msg-Id``, the
signature and batch path ``Gk-*``) and the exact bytes, one JSON line each after a header line.
Restored into an empty stream, every message lands at its original sequence, so the signed
checkpoints still cover the same ranges and ``gongkai audit verify`` passes on the copy. What is
not kept: the time the server stored each message (the restored copy has its own; the events
carry their own ``recorded_at``), and the dead-letter stream (operational, not the record).

Import reads the whole file once before storing anything: a damaged file is refused with the
line at fault and records nothing. An import that stopped half-way is resumed by running it
again: the messages the stream already holds are checked to be the file's, then skipped.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from gongkai.eventlog import EventLog, EventLogError, ack_position

FORMAT = "gongkai-export-v1"
#: Messages stored per round of pipelined acks during an import.
CHUNK = 2000

Progress = Callable[[int, int], None]


class ExportFileError(ValueError):
    """An export file that cannot be imported; the message names the line."""


@dataclass(frozen=True)
class ExportHeader:
    stream: str
    last_sequence: int
    exported_at: str


def printer(out: IO[str], verb: str, every_s: float = 2.0) -> Progress:
    """A progress line every two seconds and one at the end, for a person watching."""
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= every_s:
            last[0] = now
            share = f" ({100 * done // total} %)" if total else ""
            print(f"{verb} {done:,} of {total:,}{share}", file=out, flush=True)

    return report


async def export_log(evlog: EventLog, out: IO[str], progress: Progress | None = None) -> int:
    """Write the whole stream as it stands now; returns how many messages were written."""
    last = await evlog.last_sequence()
    header = {
        "format": FORMAT,
        "stream": evlog.stream,
        "last_sequence": last,
        "exported_at": datetime.now(UTC).isoformat(),
    }
    out.write(json.dumps(header) + "\n")
    n = 0
    if last:
        async for msg in evlog.raw_replay(from_seq=1):
            seq, ns, _ = ack_position(msg)
            if seq > last:
                break
            line = {
                "seq": seq,
                "subject": msg.subject,
                "stored_ns": ns,
                "headers": dict(msg.headers or {}),
                "data": base64.b64encode(msg.data).decode(),
            }
            out.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
            n += 1
            if progress is not None:
                progress(n, last)
    if progress is not None:
        progress(n, last)
    return n


Message = tuple[int, str, dict[str, str], bytes]


def _messages(path: Path) -> Iterator[Message]:
    with path.open(encoding="utf-8") as f:
        next(f, None)
        for lineno, line in enumerate(f, 2):
            yield _message(line, lineno)


def _message(line: str, lineno: int) -> Message:
    try:
        row = json.loads(line)
        seq, subject, headers = row["seq"], row["subject"], row["headers"]
        data = base64.b64decode(row["data"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ExportFileError(f"line {lineno}: not an exported message ({exc})") from None
    if (
        not isinstance(seq, int)
        or seq < 1
        or not isinstance(subject, str)
        or not isinstance(headers, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    ):
        raise ExportFileError(f"line {lineno}: seq, subject or headers malformed")
    return seq, subject, headers, data


def check_file(path: Path) -> ExportHeader:
    """Read the whole file and refuse it, naming the line, unless it can be imported whole."""
    try:
        with path.open(encoding="utf-8") as f:
            first = f.readline()
    except OSError as exc:
        raise ExportFileError(f"{path}: {exc.strerror}") from None
    try:
        head: dict[str, Any] = json.loads(first)
    except ValueError:
        raise ExportFileError(f"{path}: line 1 is not a gongkai export header") from None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise ExportFileError(f"{path}: not a {FORMAT} file")
    expected = 1
    try:
        for seq, _, _, _ in _messages(path):
            if seq != expected:
                raise ExportFileError(
                    f"{path}: sequence {expected} missing (line {expected + 1} holds {seq})"
                )
            expected += 1
    except UnicodeDecodeError:
        raise ExportFileError(f"{path}: not UTF-8 text") from None
    if expected - 1 != head.get("last_sequence"):
        raise ExportFileError(
            f"{path}: the header promises {head.get('last_sequence')} messages, "
            f"the file holds {expected - 1} (cut short?)"
        )
    return ExportHeader(str(head.get("stream")), expected - 1, str(head.get("exported_at")))


async def import_log(evlog: EventLog, path: Path, progress: Progress | None = None) -> int:
    """Store the file's messages after what the stream holds; returns how many were stored.

    The stream must be empty or hold a prefix of this very export (a resumed import).
    """
    header = check_file(path)
    have = await evlog.last_sequence()
    if have > header.last_sequence:
        raise EventLogError(
            f"the stream holds {have:,} messages, the export only {header.last_sequence:,}: "
            "import into an empty stream"
        )
    stored, chunk = 0, []
    for message in _messages(path):
        seq = message[0]
        if seq < have:
            continue
        if seq == have:
            await _same(evlog, message)
            continue
        chunk.append(message)
        if len(chunk) == CHUNK:
            stored += await evlog.restore(chunk)
            chunk = []
            if progress is not None:
                progress(have + stored, header.last_sequence)
    if chunk:
        stored += await evlog.restore(chunk)
    if progress is not None:
        progress(have + stored, header.last_sequence)
    return stored


async def _same(evlog: EventLog, message: Message) -> None:
    """The stream's last message is the file's at that sequence, or the import is refused."""
    seq, subject, _, data = message
    stored = await evlog.js.get_msg(evlog.stream, seq)
    if stored.subject != subject or stored.data != data:
        raise EventLogError(
            f"the stream's message {seq} is not the export's: import into an empty stream"
        )
