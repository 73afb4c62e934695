"""An amqp-fabric (Python) listener that looks for one participant, for the registry tests.

Usage: registry_lister.py URL DOMAIN TYPE ID. Listens to keep-alives until amqp-fabric's
`list_services` shows DOMAIN.TYPE.ID (at most 30 s), then prints one JSON line:
{"by_type": list_services(DOMAIN, TYPE), "by_domain": list_services(DOMAIN),
 "body": the keep-alive body amqp-fabric kept for it (its json.loads), or "" if empty,
 "headers": the headers its `subscribe_service_keepalives` callback got}
or {"error": "timeout", "by_domain": ...} when it never shows.
"""
import asyncio
import json
import sys

from amqp_fabric.amq_broker_connector import AmqBrokerConnector


async def main(url, domain, service_type, service_id):
    amq = AmqBrokerConnector(
        amqp_uri=url,
        service_domain=domain,
        service_type="py_lister",
        service_id="l1",
        keep_alive_listen=True,
    )
    await amq.open(timeout=10)
    wanted = {"domain": domain, "type": service_type, "id": service_id}
    heard = {}

    async def on_keep_alive(headers):
        if headers.get("service_id") == service_id:
            heard.update(headers)

    # Filtered by domain and type: amqp-fabric's filter by id raises (a misspelled attribute).
    amq.subscribe_service_keepalives(
        "lister", on_keep_alive, service_domain=domain, service_type=service_type
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    # amqp-fabric's registry is a cache to ask, with no way to wait for a change: poll it.
    while not heard or wanted not in amq.list_services(service_domain=domain, service_type=service_type):
        if loop.time() > deadline:
            print(json.dumps({"error": "timeout", "by_domain": amq.list_services(domain)}), flush=True)
            await amq.close()
            return
        await asyncio.sleep(0.05)
    result = {
        "by_type": amq.list_services(service_domain=domain, service_type=service_type),
        "by_domain": amq.list_services(service_domain=domain),
        "body": amq._discovery_cache.get(f"{domain}.{service_type}.{service_id}"),
        "headers": heard,
    }
    print(json.dumps(result, default=str), flush=True)
    await amq.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
