//! The untyped client that generated `{Trait}Client`s wrap.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::caller::{Caller, Outcome, PendingReply};
use super::context::CallContext;
use super::dispatch::Dispatch;
use super::local::{Faults, LocalReply, LocalTransport};
use super::protocol::{self, error_kind, Failure};
use super::retry::RetryPolicy;
use crate::address::ServiceAddress;
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::observe::{self, ClientCall};
use crate::participant::Participant;

/// A handle for calling one service: cheap to clone, and shared by any number of threads.
///
/// Generated clients wrap it; use it directly to call a service without a Rust trait, such
/// as a Python amqp-fabric one:
///
/// ```no_run
/// # fn main() -> fabric_core::Result<()> {
/// use fabric_core::{Codec, Fabric, FabricConfig, RpcClient};
/// use serde::Serialize;
///
/// #[derive(Serialize)]
/// struct Args { x: i64, y: i64 }
///
/// let fabric = Fabric::connect(FabricConfig::new("amqp://127.0.0.1", "my_project", "client_app", "c1"))?;
/// let python = RpcClient::new(&fabric, "my_project", "server_app", "my_app")?.with_codec(Codec::Json);
/// let product: i64 = python.call("multiply", &Args { x: 5, y: 7 })?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RpcClient {
    transport: Transport,
    address: Arc<ServiceAddress>,
    timeout: Duration,
    codec: Codec,
    retry: RetryPolicy,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient")
            .field("service", &self.address.fqn())
            .field("timeout", &self.timeout)
            .field("codec", &self.codec)
            .field("local", &matches!(self.transport, Transport::Local(_)))
            .finish()
    }
}

/// Where a client's calls go.
#[derive(Clone)]
enum Transport {
    /// To the broker, over a fabric's connection.
    Broker {
        /// The fabric's connection and a hold that keeps it open while the client lives.
        participant: Participant,
        caller: Arc<Caller>,
    },
    /// To a dispatcher in this process (`RpcClient::local`).
    Local(Arc<LocalTransport>),
}

impl RpcClient {
    /// A client of the service at `address`, calling through `caller` over the
    /// participant's connection, with its default timeout and codec (see `RpcClient::new`).
    pub(crate) fn with_parts(
        participant: Participant,
        caller: Arc<Caller>,
        address: ServiceAddress,
    ) -> RpcClient {
        let config = participant.config();
        RpcClient {
            timeout: config.call_timeout,
            codec: config.codec,
            retry: RetryPolicy::default(),
            transport: Transport::Broker {
                participant,
                caller,
            },
            address: Arc::new(address),
        }
    }

    /// A client whose calls run in this process on `dispatcher`, with no broker and no
    /// network: for tests of code that calls a service. Generated clients offer it as
    /// `{Trait}Client::local(imp)`.
    ///
    /// A call goes the way it goes over the broker, minus the broker: its arguments are
    /// encoded with the client's codec, a thread of its own runs the dispatcher with a
    /// [`CallContext`] set (trace, deadline, correlation id) and the panic caught, and the
    /// reply is encoded and decoded again. So a type that does not round-trip fails as it
    /// would on the wire, a panic is [`Error::Remote`] with kind `"panic"`, arguments that do
    /// not fit are [`Error::BadArguments`], the service's own errors arrive intact, and a call
    /// that takes longer than the timeout fails with [`Error::Timeout`]. `with_timeout`,
    /// `with_codec`, `with_retry` and idempotent retries work as on a broker client;
    /// [`local_faults`](Self::local_faults) makes calls fail on demand.
    ///
    /// The address is `local.{SERVICE}.local` (see [`Dispatch::SERVICE`]); the timeout is
    /// 30 s and the codec bincode, as [`FabricConfig`](crate::FabricConfig)'s defaults.
    ///
    /// A call that timed out or was dropped goes on running on its thread; dropping the last
    /// clone of the client waits for such calls to end, so no thread is left behind.
    pub fn local<D: Dispatch>(dispatcher: D) -> RpcClient {
        let address = ServiceAddress::new("local", D::SERVICE, "local")
            .or_else(|_| ServiceAddress::new("local", "service", "local"))
            .expect("a valid address");
        RpcClient {
            timeout: crate::config::DEFAULT_CALL_TIMEOUT,
            codec: crate::config::DEFAULT_CODEC,
            retry: RetryPolicy::default(),
            transport: Transport::Local(Arc::new(LocalTransport::new(dispatcher))),
            address: Arc::new(address),
        }
    }

    /// The faults of a local client ([`local`](Self::local)), to make its next calls fail
    /// with a [`Fault`](crate::testing::Fault) of choice; `None` for a client over the
    /// broker. Every clone of the client shares them.
    pub fn local_faults(&self) -> Option<Faults> {
        match &self.transport {
            Transport::Local(local) => Some(local.faults().clone()),
            Transport::Broker { .. } => None,
        }
    }

    /// The same client with another call timeout. The timeout also goes with each call as its
    /// expiration, so the broker drops a call that waited in its queue too long.
    #[must_use = "with_timeout returns a new client; the original is unchanged"]
    pub fn with_timeout(&self, timeout: Duration) -> RpcClient {
        RpcClient {
            timeout,
            ..self.clone()
        }
    }

    /// The same client with another codec; [`Codec::Json`] talks to Python peers.
    #[must_use = "with_codec returns a new client; the original is unchanged"]
    pub fn with_codec(&self, codec: Codec) -> RpcClient {
        RpcClient {
            codec,
            ..self.clone()
        }
    }

    /// The same client with another retry policy for idempotent calls
    /// ([`call_idempotent`](Self::call_idempotent), and the methods a trait marks
    /// `#[fabric(idempotent)]`). Default: [`RetryPolicy::default`].
    #[must_use = "with_retry returns a new client; the original is unchanged"]
    pub fn with_retry(&self, retry: RetryPolicy) -> RpcClient {
        RpcClient {
            retry,
            ..self.clone()
        }
    }

    /// The retry policy of idempotent calls.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// The service this client calls.
    pub fn address(&self) -> &ServiceAddress {
        &self.address
    }

    /// The timeout of each call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The codec of each call.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Asks the service whether it is up; any running instance answers `true`.
    pub fn health_check(&self) -> Result<bool> {
        self.call(protocol::HEALTH_CHECK, &EmptyArgs {})
    }

    /// Calls `method` with `args` (a struct whose fields are the keyword arguments) and
    /// decodes the result as `R`. Blocks until the reply, an error, or the timeout.
    pub fn call<A: Serialize, R: DeserializeOwned>(&self, method: &str, args: &A) -> Result<R> {
        self.start_call(method, args)?.wait()
    }

    /// Calls `method` as [`call`](Self::call) does, but tries again under the client's
    /// [`RetryPolicy`] when the call may not have completed. Use it only for methods that
    /// are harmless to run twice: a retried call may run once per attempt.
    ///
    /// Tried again after [`Error::CallInterrupted`] (the connection broke with the call in
    /// flight), [`Error::Unavailable`] (the broker stayed unreachable for the whole timeout),
    /// [`Error::Timeout`] and [`Error::NoSuchService`] (after a reconnection a server's queues
    /// are missing until it has declared them again). Never after an answer from the service
    /// ([`Error::Remote`], [`Error::UnknownMethod`]), a [`Error::Codec`] error, or
    /// [`Error::Closed`]: trying again would end the same way. Each attempt has the client's
    /// full timeout; between attempts the caller sleeps the policy's backoff, doubled after
    /// each retry. The last attempt's error is returned.
    ///
    /// ```no_run
    /// # fn main() -> fabric_core::Result<()> {
    /// # use fabric_core::{Fabric, FabricConfig, RetryPolicy, RpcClient};
    /// # use std::time::Duration;
    /// # #[derive(serde::Serialize)] struct Args { sku: String }
    /// # let fabric = Fabric::connect(FabricConfig::new("amqp://127.0.0.1", "d", "t", "i"))?;
    /// let stock = RpcClient::new(&fabric, "shop", "stock", "s1")?
    ///     .with_retry(RetryPolicy::new(5, Duration::from_millis(100)));
    /// let count: u32 = stock.call_idempotent("count", &Args { sku: "A-1".into() })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn call_idempotent<A: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<R> {
        self.retry_idempotent(method, || self.call(method, args))
    }

    /// Runs `attempt` (a call of `method`) under the client's [`RetryPolicy`], as
    /// [`call_idempotent`](Self::call_idempotent) does: again after an error that says the
    /// call may not have completed, never after an answer. For calls other than
    /// [`call`](Self::call), such as [`call_fallible`](Self::call_fallible).
    pub fn retry_idempotent<R>(
        &self,
        method: &str,
        mut attempt: impl FnMut() -> Result<R>,
    ) -> Result<R> {
        let mut tried = 1;
        loop {
            let error = match attempt() {
                Ok(result) => return Ok(result),
                Err(error) => error,
            };
            let Some(delay) = self.retry.delay_after(tried, &error) else {
                return Err(error);
            };
            log::info!(
                "fabric: {}::{method} failed ({error}); trying again in {delay:?} \
                 (attempt {} of {})",
                self.address.fqn(),
                tried + 1,
                self.retry.attempts
            );
            std::thread::sleep(delay);
            tried += 1;
        }
    }

    /// Calls a method that returns `Result<T, E>`: its `Ok(v)` comes as a `result` message
    /// holding `v`, its `Err(e)` as an `error` reply carrying `e`, and both come back as the
    /// inner `Result`. Every other failure is the outer error, as for [`call`](Self::call);
    /// an error reply without a value (a Python server's exception) too, as
    /// [`Error::Remote`] or [`Error::BadArguments`].
    pub fn call_fallible<A: Serialize, T: DeserializeOwned, E: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<std::result::Result<T, E>> {
        self.start_call_fallible(method, args)?.wait()
    }

    /// Sends a call without waiting for it: the reply is awaited on the returned handle. One
    /// thread can so keep many calls in flight (pipelining); the timeout runs from now.
    ///
    /// ```no_run
    /// # fn main() -> fabric_core::Result<()> {
    /// # use fabric_core::{Fabric, FabricConfig, RpcClient};
    /// # #[derive(serde::Serialize)] struct Args { x: i64, y: i64 }
    /// # let fabric = Fabric::connect(FabricConfig::new("amqp://127.0.0.1", "d", "t", "i"))?;
    /// let client = RpcClient::new(&fabric, "my_project", "server_app", "my_app")?;
    /// let calls: Vec<_> = (0..64)
    ///     .map(|i| client.start_call::<_, i64>("multiply", &Args { x: i, y: 2 }))
    ///     .collect::<Result<_, _>>()?;
    /// for call in calls {
    ///     call.wait()?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn start_call<A: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<PendingCall<R>> {
        self.send(method, args, read_value::<R>)
    }

    /// Sends a call of a method that returns `Result<T, E>` without waiting for it, as
    /// [`start_call`](Self::start_call) does; see [`call_fallible`](Self::call_fallible).
    pub fn start_call_fallible<A: Serialize, T: DeserializeOwned, E: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<PendingCall<std::result::Result<T, E>>> {
        self.send(method, args, read_fallible::<T, E>)
    }

    fn send<A: Serialize, R>(
        &self,
        method: &str,
        args: &A,
        read: ReadAnswer<R>,
    ) -> Result<PendingCall<R>> {
        let queue = self.address.checked_method_queue(method)?;
        // Inside a handler the call continues its trace, and waits no longer than the
        // handler's caller will.
        let (trace, left) = CallContext::outgoing();
        let observed = ClientCall::start(&self.address, method, trace);
        let sent = (|| {
            if left == Some(Duration::ZERO) {
                return Err(Error::DeadlineExceeded {
                    service: self.address.fqn(),
                    method: method.to_owned(),
                });
            }
            let timeout = left.map_or(self.timeout, |left| left.min(self.timeout));
            let body = self
                .codec
                .encode(args, format_args!("the arguments of `{method}`"))?;
            let reply = match &self.transport {
                Transport::Broker { caller, .. } => Waiting::Broker(caller.send(
                    queue,
                    body,
                    self.codec,
                    timeout,
                    observed.trace(),
                )?),
                Transport::Local(local) => Waiting::Local(local.send(
                    &self.address,
                    method,
                    body,
                    self.codec,
                    timeout,
                    observed.trace(),
                )?),
            };
            Ok((timeout, reply))
        })();
        match sent {
            Ok((timeout, reply)) => Ok(PendingCall {
                client: self.clone(),
                method: method.to_owned(),
                timeout,
                reply,
                read,
                observed,
            }),
            Err(error) => {
                observed.finish(error.kind());
                Err(error)
            }
        }
    }

    /// Turns an outcome into the caller's result, and the label of that outcome; `read` reads
    /// what the server answered, and `timeout` is what the call waited at most.
    fn outcome<R>(
        &self,
        method: &str,
        outcome: Option<Outcome>,
        read: ReadAnswer<R>,
        timeout: Duration,
    ) -> (Result<R>, &'static str) {
        let labelled = |result: Result<R>| {
            let label = result.as_ref().map_or_else(Error::kind, |_| observe::OK);
            (result, label)
        };
        let answer = match outcome {
            Some(Outcome::Result { codec, body }) => Answer::Value { codec, body },
            Some(Outcome::Failed { codec, body }) => Answer::Failed { codec, body },
            Some(Outcome::Undecodable { content_type }) => {
                return labelled(Err(Error::Codec {
                    context: format!("decode the result of `{method}`"),
                    reason: format!(
                        "its content type {content_type:?} names no codec fabric knows"
                    ),
                }))
            }
            Some(Outcome::Returned) => return labelled(Err(self.unroutable(method))),
            Some(Outcome::Expired) | None => {
                return labelled(Err(Error::Timeout {
                    service: self.address.fqn(),
                    method: method.to_owned(),
                    timeout,
                }))
            }
            Some(Outcome::Interrupted(reason)) => {
                return labelled(Err(Error::CallInterrupted {
                    service: self.address.fqn(),
                    method: method.to_owned(),
                    reason,
                }))
            }
            Some(Outcome::Closed) => return labelled(Err(Error::Closed)),
        };
        let failed = matches!(answer, Answer::Failed { .. });
        match read(method, answer) {
            // An error reply read as the method's own `Err`.
            Read::Done(Ok(value)) if failed => (Ok(value), observe::SERVICE_ERROR),
            Read::Done(result) => labelled(result),
            Read::Failed { codec, body } => {
                labelled(Err(self.failed(method, codec, &body, timeout)))
            }
        }
    }

    /// The error of an error reply that carries no value of the method's error type.
    fn failed(&self, method: &str, codec: Option<Codec>, body: &[u8], timeout: Duration) -> Error {
        let Failure { kind, message } = protocol::decode_error(codec, body);
        let (service, method) = (self.address.fqn(), method.to_owned());
        match kind.as_str() {
            error_kind::UNKNOWN_METHOD => Error::UnknownMethod { service, method },
            // The server saw the deadline pass before it could start: what the caller would
            // get after its timeout, a little early.
            error_kind::DEADLINE_EXCEEDED => Error::Timeout {
                service,
                method,
                timeout,
            },
            error_kind::BAD_ARGUMENTS | error_kind::BAD_ARGUMENTS_QUALIFIED => {
                Error::BadArguments {
                    service,
                    method,
                    message,
                }
            }
            _ => Error::Remote {
                service,
                method,
                kind,
                message,
            },
        }
    }

    /// The broker had no queue for the call: tell a missing service from a missing method.
    ///
    /// A method is unknown only to a service that is up: its `health_check` queue (every
    /// server has one) has a consumer, and, looked up after that, the method's queue does not
    /// exist. A server consumes every method queue of its service on one channel (its
    /// intake's), `health_check` last, and stops consuming all of them when one goes; so a
    /// consumer on `health_check` means a server that had the method's queue too. Anything else is a
    /// service that is not there (yet): no `health_check` queue, one without a consumer (a
    /// server starting, or declaring its queues again after losing its connection or the
    /// node they lived on), or a method queue that exists by now. That is
    /// `NoSuchService`, an outage error, never `UnknownMethod` for a method the service has.
    fn unroutable(&self, method: &str) -> Error {
        let Transport::Broker { participant, .. } = &self.transport else {
            return Error::NoSuchService {
                service: self.address.fqn(),
            };
        };
        let consumers = |method: &str| {
            let queue = self.address.method_queue(method);
            // A lookup that fails (the connection went) tells nothing: as if absent.
            participant.link().queue_consumers(&queue).unwrap_or(None)
        };
        let serving = consumers(protocol::HEALTH_CHECK).is_some_and(|n| n > 0);
        if serving && consumers(method).is_none() {
            Error::UnknownMethod {
                service: self.address.fqn(),
                method: method.to_owned(),
            }
        } else {
            Error::NoSuchService {
                service: self.address.fqn(),
            }
        }
    }
}

/// What the server answered a call: a `result` or an `error` message.
enum Answer {
    Value { codec: Codec, body: Vec<u8> },
    Failed { codec: Option<Codec>, body: Vec<u8> },
}

/// What reading an answer came to: the caller's result, or a failure that is not the
/// method's own value (a panic, bad arguments, a Python exception), for the client to name.
enum Read<R> {
    Done(Result<R>),
    Failed { codec: Option<Codec>, body: Vec<u8> },
}

/// How a call's answer becomes its caller's value: [`read_value`] or [`read_fallible`].
type ReadAnswer<R> = fn(&str, Answer) -> Read<R>;

/// A method's value; an error reply is a failure.
fn read_value<R: DeserializeOwned>(method: &str, answer: Answer) -> Read<R> {
    match answer {
        Answer::Value { codec, body } => {
            Read::Done(codec.decode(&body, format_args!("the result of `{method}`")))
        }
        Answer::Failed { codec, body } => Read::Failed { codec, body },
    }
}

/// A `Result` method's value: `Ok` from a `result`, `Err` from an error reply carrying the
/// method's error; an error reply without one is a failure.
fn read_fallible<T: DeserializeOwned, E: DeserializeOwned>(
    method: &str,
    answer: Answer,
) -> Read<std::result::Result<T, E>> {
    match answer {
        Answer::Value { codec, body } => Read::Done(
            codec
                .decode(&body, format_args!("the result of `{method}`"))
                .map(Ok),
        ),
        Answer::Failed { codec, body } => match protocol::decode_error_value::<E>(codec, &body) {
            Some(Ok(error)) => Read::Done(Ok(Err(error))),
            Some(Err(reason)) => Read::Done(Err(Error::Codec {
                context: format!("decode the error of `{method}`"),
                reason,
            })),
            None => Read::Failed { codec, body },
        },
    }
}

/// A call sent with [`RpcClient::start_call`], whose reply is still to come. Dropping it
/// abandons the call: its reply, if one comes, is discarded.
#[must_use = "the call's outcome is only known by waiting on it"]
pub struct PendingCall<R> {
    client: RpcClient,
    method: String,
    /// What the call waits at most: the client's timeout, or less inside a handler.
    timeout: Duration,
    reply: Waiting,
    read: ReadAnswer<R>,
    /// What the call tells metrics and tracing when it ends.
    observed: ClientCall,
}

impl<R> PendingCall<R> {
    /// Blocks until the reply, an error, or the call's timeout.
    pub fn wait(self) -> Result<R> {
        let outcome = self.reply.wait();
        let (result, label) = self
            .client
            .outcome(&self.method, outcome, self.read, self.timeout);
        self.observed.finish(label);
        result
    }
}

/// A sent call's reply to come, from the broker or from a local call.
enum Waiting {
    Broker(PendingReply),
    Local(LocalReply),
}

impl Waiting {
    /// The outcome, or `None` when the call's deadline passed first.
    fn wait(self) -> Option<Outcome> {
        match self {
            Waiting::Broker(reply) => reply.wait(),
            Waiting::Local(reply) => reply.wait(),
        }
    }
}

impl<R> std::fmt::Debug for PendingCall<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingCall")
            .field("service", &self.client.address.fqn())
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// The arguments of a method that takes none: `{}` in JSON, as amqp-fabric sends.
#[derive(Serialize)]
struct EmptyArgs {}
