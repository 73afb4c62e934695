"""An amqp-fabric (Python) client for the interoperability tests.

Usage: client.py URL DOMAIN TYPE ID. Calls the Rust service and prints one JSON line per call:
{"call": ..., "result": ...} or {"call": ..., "error": "<exception class>", "message": ...}.
"""
import asyncio
import json
import sys

from amqp_fabric.amq_broker_connector import AmqBrokerConnector


async def main(url, domain, service_type, service_id):
    amq = AmqBrokerConnector(
        amqp_uri=url,
        service_domain=domain,
        service_type="py_client",
        service_id="p1",
    )
    await amq.open(timeout=10)
    proxy = await amq.rpc_proxy(domain, service_id, service_type)
    calls = [
        ("multiply", {"x": 6, "y": 7}),
        ("describe", {"name": "py", "tags": ["b", "a"]}),
        ("health_check", {}),
        ("multiply", {"x": "not a number", "y": 7}),
    ]
    for name, kwargs in calls:
        try:
            result = await asyncio.wait_for(getattr(proxy, name)(**kwargs), 10)
            print(json.dumps({"call": name, "result": result}), flush=True)
        except Exception as e:  # the test reads what each failure looks like
            print(json.dumps({"call": name, "error": type(e).__name__, "message": str(e)}), flush=True)
    await amq.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
