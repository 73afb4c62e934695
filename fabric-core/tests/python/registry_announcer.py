"""An amqp-fabric (Python) participant that announces itself, for the registry tests.

Usage: registry_announcer.py URL DOMAIN TYPE ID. Sends keep-alives every second (amqp-fabric's
empty body), prints "ready" once connected, and stops, without a goodbye (amqp-fabric has
none), when stdin closes.
"""
import asyncio
import sys

from amqp_fabric.amq_broker_connector import AmqBrokerConnector


async def main(url, domain, service_type, service_id):
    amq = AmqBrokerConnector(
        amqp_uri=url,
        service_domain=domain,
        service_type=service_type,
        service_id=service_id,
        keep_alive_seconds=1,
    )
    await amq.open(timeout=10)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await amq.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
