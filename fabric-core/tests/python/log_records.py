"""Ships log records through amqp-fabric's AmqpHandler, for the remote-logging tests.

Usage: log_records.py URL DOMAIN TYPE ID. Logs one record at each of Python's levels and one
at a custom level, lets the handler's publish tasks finish, prints "done" and exits.
"""
import asyncio
import logging
import sys

from amqp_fabric.amq_broker_connector import AmqBrokerConnector
from amqp_fabric.logging_amqp_handler import AmqpHandler

NOTICE = 25


async def main(url, domain, service_type, service_id):
    amq = AmqBrokerConnector(
        amqp_uri=url,
        service_domain=domain,
        service_type=service_type,
        service_id=service_id,
    )
    await amq.open(timeout=10)
    handler = AmqpHandler()
    await amq.init_logging_handler(handler)

    logging.addLevelName(NOTICE, "NOTICE")
    logger = logging.getLogger("py_interop")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)

    logger.debug("py debug %d", 1)
    logger.info("py info %s", "two")
    logger.warning("py warning é")
    logger.error("py error")
    logger.critical("py critical")
    logger.log(NOTICE, "py notice")

    # emit() publishes from tasks of its own: give them time to run before closing.
    await asyncio.sleep(1)
    print("done", flush=True)
    await amq.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
