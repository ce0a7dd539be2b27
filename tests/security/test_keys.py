"""Signing keys: generated owner-only, rotated without invalidating history, checked in order.

Against a real nats-server: events appended with a service's first key, the key rotated, more
events appended with the new one — a reader holding the new trust anchors believes all of them;
an event signed with the retired key after its retirement is refused (``retired_key``), as are
an event signed by another service's key and a body altered after signing.
"""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gongkai import subjects
from gongkai.eventlog import EventIntegrityError, EventLog, StreamSettings
from gongkai.events import Actor, new_event
from gongkai.events.contracts.intake import UnitRegistered
from gongkai.natsserver import NatsServer
from gongkai.trust.keys import (
    HDR_SIG,
    TRUST_FILE,
    IntegrityError,
    Keyring,
    ServiceKey,
    TrustStore,
    provision,
    rotate,
)

OFFICE = Actor(person="office", role="office", unit="county-office")
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def unit(code: str, at: datetime) -> object:
    return new_event(
        UnitRegistered(code=code, name=code, kind="department", contact_name="x",
                       contact_mobile="x"),
        aggregate_id=code, actor=OFFICE, command_id=f"u-{code}", recorded_at=at,
    )


def test_keys_are_generated_owner_only_and_kept(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    first = provision(keys)
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    for f in keys.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f
    again = provision(keys)
    assert {s: k.key_id for s, k in first.private.items()} == {
        s: k.key_id for s, k in again.private.items()
    }
    assert len(TrustStore.load(keys / TRUST_FILE).keys) == 4


def test_a_stated_key_id_is_never_trusted(tmp_path: Path) -> None:
    """trust.json names keys, but the id a reader uses is derived from the public key."""
    ring = provision(tmp_path / "keys")
    text = (tmp_path / "keys" / TRUST_FILE).read_text().replace(
        ring.private["review"].key_id, "0" * 16
    )
    trust = TrustStore.from_json(text)
    assert ring.private["review"].key_id in trust.keys and "0" * 16 not in trust.keys


async def test_rotation_keeps_history_valid_and_refuses_the_retired_key_after(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    provision(keys)
    old_intake = ServiceKey.load(keys / "intake.key")
    writer = await EventLog.connect(nats_server.url, keys=Keyring.load(keys))
    await writer.ensure_stream(StreamSettings())
    try:
        await writer.append([unit("before", T0)])  # type: ignore[list-item]
        rotate(keys, "intake", at=T0 + timedelta(hours=1))
        writer.use_keys(Keyring.load(keys))
        await writer.append([unit("after", T0 + timedelta(hours=2))])  # type: ignore[list-item]
        # The retired key used after its retirement (a stolen old key, say).
        late = unit("stolen", T0 + timedelta(hours=3))
        subject = subjects.event_subject("unit", "stolen", "UnitRegistered")
        data = late.to_json()  # type: ignore[attr-defined]
        await writer.js.publish(
            subject, data, stream=subjects.STREAM, headers=old_intake.sign_event(subject, data)
        )
        # Another service's current key, and a body altered after it was signed.
        wrong = unit("wrong", T0)
        wsubj = subjects.event_subject("unit", "wrong", "UnitRegistered")
        wdata = wrong.to_json()  # type: ignore[attr-defined]
        review = ServiceKey.load(keys / "review.key")
        await writer.js.publish(
            wsubj, wdata, stream=subjects.STREAM, headers=review.sign_event(wsubj, wdata)
        )
        alt = unit("altered", T0)
        asubj = subjects.event_subject("unit", "altered", "UnitRegistered")
        adata = alt.to_json()  # type: ignore[attr-defined]
        hdr = Keyring.load(keys).private["intake"].sign_event(asubj, adata)
        await writer.js.publish(
            asubj, adata.replace(b'"altered"', b'"alterex"', 1), stream=subjects.STREAM,
            headers=hdr,
        )
        anchors = Keyring(TrustStore.load(keys / TRUST_FILE))  # a reader holds no private key
        reader = await EventLog.connect(nats_server.url, keys=anchors)
        try:
            believed = [e.envelope.aggregate_id async for e in reader.replay()]
            assert believed == ["before", "after"]
            checks = []
            async for msg in reader.raw_replay():
                try:
                    reader.decode(msg)
                except EventIntegrityError as exc:
                    checks.append(exc.check)
            assert checks == ["retired_key", "wrong_service", "bad_signature"]
        finally:
            await reader.close()
    finally:
        await writer.close()


async def test_a_service_cannot_append_what_another_decides(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    provision(tmp_path / "keys")
    review_only = Keyring.load(tmp_path / "keys", ["review"])
    evlog = await EventLog.connect(nats_server.url, keys=review_only)
    try:
        with pytest.raises(Exception, match="holds no key of intake"):
            await evlog.append([unit("x", T0)])  # type: ignore[list-item]
    finally:
        await evlog.close()
    assert HDR_SIG == "Gk-Sig"


async def test_a_pipelined_burst_is_signed_in_batches_and_each_event_still_stands_alone(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """Given 300 events appended pipelined (three batch signatures), when a reader holding
    only the trust anchors replays them, then all 300 are believed; and one of them copied
    with its body altered, or its headers moved onto a neighbour's body, is refused."""
    provision(tmp_path / "keys")
    writer = await EventLog.connect(nats_server.url, keys=Keyring.load(tmp_path / "keys"))
    await writer.ensure_stream(StreamSettings())
    reader = await EventLog.connect(
        nats_server.url, keys=Keyring(TrustStore.load(tmp_path / "keys" / TRUST_FILE))
    )
    try:
        results = await writer.append_pipelined(
            [(unit(f"b{i}", T0), None) for i in range(300)]  # type: ignore[misc]
        )
        assert all(not isinstance(r, Exception) for r in results)
        assert len([e async for e in reader.replay()]) == 300
        msgs = [m async for m in reader.raw_replay()]
        assert len({m.headers[HDR_SIG] for m in msgs if m.headers}) == 3
        trust = reader.keys.trust  # type: ignore[union-attr]
        first, second = msgs[0], msgs[1]
        for subject, data, headers in (
            (first.subject, first.data.replace(b'"b0"', b'"bX"', 1), first.headers),
            (second.subject, second.data, first.headers),
        ):
            with pytest.raises(IntegrityError) as exc:
                trust.check(subject, data, headers, "UnitRegistered")
            assert exc.value.check == "bad_signature"
    finally:
        await reader.close()
        await writer.close()
