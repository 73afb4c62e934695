"""An amqp-fabric (Python) server for the interoperability tests.

Usage: server.py URL DOMAIN TYPE ID. Prints "ready" once registered, serves until stdin closes.
"""
import asyncio
import sys

from amqp_fabric.abstract_service_api import AbstractServiceApi
from amqp_fabric.amq_broker_connector import AmqBrokerConnector


class CalculatorApi(AbstractServiceApi):
    def multiply(self, x, y):
        return x * y

    def divide(self, x, y):
        return x // y

    def root(self, x):
        if x < 0:
            raise ValueError("the root of a negative number")
        return x ** 0.5

    def explode(self):
        raise RuntimeError("kaboom")

    async def nap(self, seconds):
        await asyncio.sleep(seconds)
        return seconds

    def describe(self, name, tags):
        return {"name": name.upper(), "tags": sorted(tags), "count": len(tags)}


async def main(url, domain, service_type, service_id):
    amq = AmqBrokerConnector(
        amqp_uri=url,
        service_domain=domain,
        service_type=service_type,
        service_id=service_id,
    )
    await amq.open(timeout=10)
    await amq.rpc_register(CalculatorApi())
    print("ready", flush=True)
    # Serve until the test closes our stdin.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await amq.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
