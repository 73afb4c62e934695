"""An amqp-fabric (Python) client for the interoperability tests.

Usage: client.py URL DOMAIN TYPE ID CALLS, where CALLS is a JSON list of [method, kwargs]
pairs. Calls the service and prints one JSON line per call: {"call": ..., "result": ...}, or
{"call": ..., "raised": "<module.Class>", "type": <the error body's type, for a JsonRPCError>,
"message": ...}.
"""
import asyncio
import json
import sys

from aio_pika.patterns.rpc import JsonRPCError
from amqp_fabric.amq_broker_connector import AmqBrokerConnector


def raised(e):
    """What a caller's `except` sees: the exception's class, and a JsonRPCError's body type."""
    cls = type(e)
    outcome = {"raised": f"{cls.__module__}.{cls.__qualname__}", "message": str(e)}
    if isinstance(e, JsonRPCError) and len(e.args) > 1 and isinstance(e.args[1], dict):
        outcome["type"] = e.args[1].get("error", {}).get("type")
    return outcome


async def main(url, domain, service_type, service_id, calls):
    amq = AmqBrokerConnector(
        amqp_uri=url,
        service_domain=domain,
        service_type="py_client",
        service_id="p1",
    )
    await amq.open(timeout=10)
    proxy = await amq.rpc_proxy(domain, service_id, service_type)
    for name, kwargs in json.loads(calls):
        try:
            result = await asyncio.wait_for(getattr(proxy, name)(**kwargs), 10)
            print(json.dumps({"call": name, "result": result}), flush=True)
        except Exception as e:  # the test reads what each failure looks like
            print(json.dumps({"call": name, **raised(e)}), flush=True)
    await amq.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
