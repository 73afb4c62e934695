"""An amqp-fabric (Python) data-stream peer for the interoperability tests.

Usage: data_peer.py URL DOMAIN publish|subscribe
- publish: publishes b'{"reading": 21.5}' with headers {"msg_type": "TEMPERATURE"}, prints "sent".
- subscribe: subscribes as "py_reader" to msg_type=TEMPERATURE, prints "ready", then prints one
  JSON line per message: {"body": <text>, "headers": {...}} and exits after the first one.
"""
import asyncio
import json
import sys

from amqp_fabric.amq_broker_connector import AmqBrokerConnector


async def main(url, domain, mode):
    amq = AmqBrokerConnector(
        amqp_uri=url, service_domain=domain, service_type="py_sensor", service_id="py1"
    )
    await amq.open(timeout=10)
    if mode == "publish":
        amq.publish_data(b'{"reading": 21.5}', {"msg_type": "TEMPERATURE"})
        await asyncio.sleep(0.5)  # publish_data is fire-and-forget: give the task time to run
        print("sent", flush=True)
    else:
        got = asyncio.get_running_loop().create_future()

        async def on_message(message):
            async with message.process():
                headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in message.headers.items()}
                if not got.done():
                    got.set_result({"body": message.body.decode(), "headers": headers})

        await amq.subscribe_data("py_reader", {"msg_type": "TEMPERATURE"}, on_message)
        print("ready", flush=True)
        print(json.dumps(await asyncio.wait_for(got, 30)), flush=True)
    await amq.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
