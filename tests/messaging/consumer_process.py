"""A consumer-group member in a process of its own, for the kill tests.

``python consumer_process.py BOOTSTRAP REDIS_URL PREFIX GROUP TOPIC`` projects the
shipped ledger balances from TOPIC into Redis until SIGTERM (then leaves the
group and exits 0); the tests SIGKILL it at random moments.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from messaging import ConsumerOptions, KafkaProjection, consume
from projections import RedisReadModel
from projections.shipped import LEDGER_BALANCES

#: Small batches and a short session: many commits to be killed in the middle of,
#: and a dead member's partitions move on quickly.
OPTIONS = ConsumerOptions(
    batch_size=20, poll_timeout=0.05, session_timeout_ms=3000, heartbeat_interval_ms=300
)


async def main(bootstrap: str, redis_url: str, prefix: str, group: str, topic: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)  # SIGTERM now stops it cleanly
    async with await RedisReadModel.connect(redis_url, prefix=prefix) as read_model:
        processor = KafkaProjection(LEDGER_BALANCES, read_model)
        await consume(
            processor, bootstrap=bootstrap, group=group, topics=[topic], stop=stop, options=OPTIONS
        )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(message)s")
    asyncio.run(main(*sys.argv[1:6]))
