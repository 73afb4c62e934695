"""A pytest plugin that runs amqp-fabric's own test suite with its server side played by fabric.

How it is loaded: `examples/tests/conformance.rs` puts this directory on PYTHONPATH and runs
`python3 -m pytest -p fabric_conformance` on the `tests/` folder of amqp-fabric's sdist, with
FABRIC_CONFORMANCE_PEER naming the `conformance_peer` binary. Without `-p`, the same tests
run against amqp-fabric's own (Python) server: that is the baseline.

What it replaces: `AmqBrokerConnector`, in `amqp_fabric.amq_broker_connector` as soon as the
plugin is imported (before any test module is), and again in every collected test module that
holds the original. The replacement is a subclass: a connector stays pure Python until its
first *server-side* act, and from then on it is Rust-backed, with a `conformance_peer`
process of its own (same domain, type, id, URL, keep-alive interval and exchanges):

- `rpc_register(api)`: the peer serves the Rust API whose methods are the API object's public
  methods (found as amqp-fabric finds them); `health_check` is fabric's own.
- keep-alives: the connector's Python scheduler is stopped when it becomes Rust-backed, so the
  service announces itself from Rust only (fabric announces at once, then every interval).
- `publish_data(data, headers)`: published by fabric, confirmed by the broker before it returns.
- `init_logging_handler(handler)`: the peer builds a fabric `RemoteLogger`; the handler's
  records (those that pass Python's levels) go to it instead of to aio-pika.
- `close()`: the peer closes (logs drained, a goodbye, the connection closed) and exits, then
  the connector's Python connection, which did the client-side acts, closes.

Client-side acts (`rpc_proxy`, `list_services`, `subscribe_data`,
`subscribe_service_keepalives`, and the tests' raw aio-pika clients) stay Python.

Why a test passes for the right reason: the listener side records, for every entry of its
discovery cache, whether the keep-alive that created it came from fabric (a JSON body with a
`fabric` key) or from Python (an empty body); `list_services` refuses to list a Rust-backed
service whose entry Python made. The summary lists, per test, each Rust-backed connector and
what it did (`FABRIC-CONFORMANCE` lines, which the Rust test reads).
"""

import asyncio
import json
import os
import queue
import subprocess
import sys
import threading
from types import MethodType

import pytest

import amqp_fabric.amq_broker_connector as connector_module

ORIGINAL = connector_module.AmqBrokerConnector
PEER_ENV = "FABRIC_CONFORMANCE_PEER"
SUMMARY_PREFIX = "FABRIC-CONFORMANCE"
# Every command is answered in milliseconds, but a close waits for the call in hand (the
# high-availability test's method takes a second).
REPLY_TIMEOUT_SECONDS = 30
EXIT_TIMEOUT_SECONDS = 10


class PeerError(RuntimeError):
    """The Rust peer refused a command, or did not answer."""


class Bookkeeping:
    """What the Rust peers did, per test, for the summary and for clean-up."""

    def __init__(self):
        self.binary = None
        self.current_test = None
        self.acts = {}  # nodeid -> {who: [act, ...]}
        self.rust = {}  # nodeid -> {fqn of a Rust-backed connector}
        self.live = []  # peers not closed yet

    def act(self, who, what, once=False):
        test = self.current_test or "(outside a test)"
        acts = self.acts.setdefault(test, {}).setdefault(who, [])
        if not (once and what in acts):
            acts.append(what)

    def new_peer(self, fqn):
        """Notes a Rust peer for `fqn` in this test; returns the summary's name for it: the
        FQN, numbered when the test has several for one FQN (a clique)."""
        self.rust.setdefault(self.current_test, set()).add(fqn)
        taken = self.acts.get(self.current_test, {})
        if fqn not in taken:
            return fqn
        n = 2
        while f"{fqn} #{n}" in taken:
            n += 1
        return f"{fqn} #{n}"

    def rust_fqns(self):
        return self.rust.get(self.current_test, set())


BOOK = Bookkeeping()


class RustPeer:
    """A `conformance_peer` process: one JSON command per line in, one reply per line out."""

    def __init__(self, label):
        self.label = label
        self.closed = False
        self._lock = threading.Lock()
        self._lines = queue.Queue()
        # stderr is inherited: pytest captures it with the test's output.
        self._process = subprocess.Popen(
            [BOOK.binary],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._read, daemon=True).start()
        BOOK.live.append(self)

    def _read(self):
        for line in self._process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def request(self, command):
        """Sends one command and returns the peer's `ok` reply; raises PeerError otherwise."""
        with self._lock:
            if self.closed:
                raise PeerError(f"the Rust peer of {self.label} is closed: {command['cmd']}")
            try:
                self._process.stdin.write(json.dumps(command) + "\n")
                self._process.stdin.flush()
            except OSError as e:
                raise PeerError(f"the Rust peer of {self.label} is gone ({e})") from e
            try:
                line = self._lines.get(timeout=REPLY_TIMEOUT_SECONDS)
            except queue.Empty:
                raise PeerError(
                    f"the Rust peer of {self.label} did not answer {command['cmd']} "
                    f"within {REPLY_TIMEOUT_SECONDS} s"
                ) from None
            if line is None:
                raise PeerError(
                    f"the Rust peer of {self.label} exited ({self._process.wait()}) "
                    f"instead of answering {command['cmd']}"
                )
            reply = json.loads(line)
            if "error" in reply:
                raise PeerError(f"the Rust peer of {self.label}: {command['cmd']}: {reply['error']}")
            return reply["ok"]

    def close(self):
        """Asks the peer to close, then waits for it to exit (killing it if it does not)."""
        try:
            return self.request({"cmd": "close"})
        finally:
            self.closed = True
            self._end()

    def _end(self):
        try:
            self._process.stdin.close()
        except OSError:
            pass
        try:
            self._process.wait(timeout=EXIT_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
            raise PeerError(f"the Rust peer of {self.label} did not exit; killed") from None
        finally:
            if self in BOOK.live:
                BOOK.live.remove(self)

    def abandon(self):
        """Ends a peer its test never closed: its stdin closes, and it closes itself."""
        self.closed = True
        self._end()


async def _in_thread(function, *args):
    """Runs a blocking exchange with a peer without stopping the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)


def _is_fabric_keep_alive(body):
    try:
        value = json.loads(body)
    except ValueError:
        return False
    return isinstance(value, dict) and "fabric" in value


class RustBackedConnector(ORIGINAL):
    """amqp-fabric's connector whose server-side acts a fabric process performs."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._rust_peer = None
        self._rust_label = None
        self._python_keep_alives = 0
        self._first_keep_alive_from = {}

    # --- becoming Rust-backed ---

    def _stop_python_keep_alives(self):
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None

    def _start_peer(self):
        self._rust_label = BOOK.new_peer(self.fqn)
        peer = RustPeer(self._rust_label)
        keep_alive = self._keep_alive_seconds or None
        peer.request(
            {
                "cmd": "start",
                "url": self._amqp_uri,
                "domain": self._service_domain,
                "service_type": self._service_type,
                "service_id": self._service_id,
                "keep_alive": float(keep_alive) if keep_alive else None,
                "data_exchange": connector_module.DATA_EXCHANGE_NAME,
                "discovery_exchange": self._discovery_exchange_name,
            }
        )
        before = (
            f", after {self._python_keep_alives} Python keep-alives"
            if self._python_keep_alives
            else ""
        )
        BOOK.act(self._rust_label, f"start (keep_alive={keep_alive}{before})")
        return peer

    async def _rust(self):
        if self._rust_peer is None:
            self._stop_python_keep_alives()
            self._rust_peer = await _in_thread(self._start_peer)
        return self._rust_peer

    def _rust_now(self):
        """`_rust` for the synchronous acts (publish_data is not a coroutine)."""
        if self._rust_peer is None:
            self._stop_python_keep_alives()
            self._rust_peer = self._start_peer()
        return self._rust_peer

    # --- server-side acts, played by Rust ---

    async def rpc_register(self, api):
        methods = sorted(
            name
            for name in dir(api)
            if isinstance(getattr(api, name), MethodType) and not name.startswith("_")
        )
        peer = await self._rust()
        served = await _in_thread(peer.request, {"cmd": "serve", "methods": methods})
        BOOK.act(self._rust_label, served)

    async def _on_send_keep_alive(self):
        if self._rust_peer is not None:
            # The scheduler is stopped; this would be a job it had already started.
            return
        self._python_keep_alives += 1
        await super()._on_send_keep_alive()

    def publish_data(self, data, headers):
        peer = self._rust_now()
        peer.request(
            {
                "cmd": "publish_data",
                "body_hex": bytes(data).hex(),
                "headers": dict(headers),
            }
        )
        BOOK.act(self._rust_label, f"publish_data {len(data)} bytes")

    async def init_logging_handler(self, handler):
        peer = await self._rust()
        await _in_thread(peer.request, {"cmd": "logging"})
        label = self._rust_label

        def emit(record):
            if peer.closed:
                # amqp-fabric's handler loses such a record too (its publish task fails).
                print(
                    f"{label}: log record after close, dropped: {record.getMessage()}",
                    file=sys.stderr,
                )
                return
            peer.request(
                {
                    "cmd": "log",
                    "logger": record.name,
                    "level": record.levelname,
                    "levelno": record.levelno,
                    "message": record.getMessage(),
                }
            )
            BOOK.act(label, f"log {record.levelname}")

        # An instance attribute: this handler's records go to Rust, never to aio-pika
        # (init_connection is not called, so it has no exchange of its own either).
        handler.emit = emit
        BOOK.act(label, "logging")

    async def close(self):
        peer = self._rust_peer
        if peer is None:
            return await super().close()
        closed = await _in_thread(peer.close)
        BOOK.act(self._rust_label, closed)
        await self._broker_conn.close()

    # --- client-side acts stay Python; these two are watched, not changed ---

    async def _on_get_keep_alive(self, message):
        fqn = None
        try:
            headers = dict(message.headers)
            fqn = connector_module.broker_fqn(
                headers["service_domain"], headers["service_type"], headers["service_id"]
            )
            fresh = fqn not in self._discovery_cache
        except Exception:  # amqp-fabric logs and drops what it cannot read
            fresh = False
        await super()._on_get_keep_alive(message)
        if fresh and fqn in self._discovery_cache:
            origin = "rust" if _is_fabric_keep_alive(message.body) else "python"
            self._first_keep_alive_from[fqn] = origin

    def list_services(self, service_domain=None, service_type=None, health_check=True):
        services = super().list_services(service_domain, service_type, health_check)
        rust = BOOK.rust_fqns()
        for service in services:
            fqn = connector_module.broker_fqn(service["domain"], service["type"], service["id"])
            origin = self._first_keep_alive_from.get(fqn)
            if fqn not in rust:
                continue
            if origin != "rust":
                raise AssertionError(
                    f"{fqn} is Rust-backed, but {self.fqn} lists it from a {origin} keep-alive: "
                    "the listing would not test fabric"
                )
            BOOK.act(f"{self.fqn} (Python)", f"listed {fqn} from a Rust keep-alive", once=True)
        return services


def pytest_configure(config):
    binary = os.environ.get(PEER_ENV)
    if not binary or not os.access(binary, os.X_OK):
        raise pytest.UsageError(
            f"fabric_conformance needs {PEER_ENV} to name the conformance_peer binary "
            f"(got {binary!r}); `cargo test -p fabric-examples --test conformance` sets it"
        )
    BOOK.binary = binary
    connector_module.AmqBrokerConnector = RustBackedConnector


def pytest_collection_modifyitems(session, config, items):
    for module in {item.module for item in items if getattr(item, "module", None)}:
        if getattr(module, "AmqBrokerConnector", None) is ORIGINAL:
            module.AmqBrokerConnector = RustBackedConnector


def pytest_runtest_logstart(nodeid, location):
    BOOK.current_test = nodeid


def pytest_runtest_teardown(item, nextitem):
    for peer in list(BOOK.live):
        BOOK.act(peer.label, "never closed by the test: ended by the plugin")
        peer.abandon()


def pytest_unconfigure(config):
    for peer in list(BOOK.live):
        peer.abandon()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    write = terminalreporter.write_line
    write(f"{SUMMARY_PREFIX} server side played by {BOOK.binary}")
    for test, connectors in BOOK.acts.items():
        described = "; ".join(f"{who}: {', '.join(acts)}" for who, acts in connectors.items())
        write(f"{SUMMARY_PREFIX} {test} | {described}")
