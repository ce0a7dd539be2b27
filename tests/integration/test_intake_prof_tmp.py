from datetime import UTC, datetime
from gongkai.eventlog import EventLog
from gongkai_intake.demo import seed_demo

async def test_prof(evlog: EventLog) -> None:
    await seed_demo(evlog, datetime(2026, 3, 2, tzinfo=UTC))
    holder = []
    agen = evlog.raw_replay(filter_subject="gk.ev.column.*.*", follow=True, subscription_out=holder)
    import asyncio
    task = asyncio.ensure_future(agen.__anext__())
    await asyncio.sleep(0.5)
    info = await holder[0].consumer_info()
    print("INFO", info.num_pending, info.delivered, info.ack_floor)
    task.cancel()
