"""An amqp-fabric (Python) service that announces itself, for the `fabric` command's tests.

Usage: acc_service.py URL DOMAIN TYPE ID. Serves `multiply(x, y)` and `nap(seconds)`, sends
keep-alives every second, prints "ready" once registered, and stops when stdin closes.
"""
import asyncio
import sys

from amqp_fabric.abstract_service_api import AbstractServiceApi
from amqp_fabric.amq_broker_connector import AmqBrokerConnector


class AccApi(AbstractServiceApi):
    def multiply(self, x, y):
        return x * y

    async def nap(self, seconds):
        await asyncio.sleep(seconds)
        return seconds


async def main(url, domain, service_type, service_id):
    amq = AmqBrokerConnector(
        amqp_uri=url,
        service_domain=domain,
        service_type=service_type,
        service_id=service_id,
        keep_alive_seconds=1,
    )
    await amq.open(timeout=10)
    await amq.rpc_register(AccApi())
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await amq.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
