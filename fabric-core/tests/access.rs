//! Who may do what on the broker: refused logins and virtual hosts, the least-privilege
//! permissions of each role (as the README's "Security" section lists them), and that no
//! password leaks into what fabric shows, logs or sends. On one private RabbitMQ node shared
//! by the file's tests, whose users and vhosts they may change freely.

mod support;

use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use fabric_core::{
    fabric_service, ConnectionState, Error, Fabric, FabricConfig, Headers, LogFilter, Refusal,
    RemoteLogger, ServiceEvent, ServiceFilter,
};
use log::{Level, LevelFilter, Log, Metadata, Record};

use support::private_broker::PrivateBroker;

/// How long anything expected may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

#[fabric_service]
pub trait Calc {
    fn multiply(&self, x: i64, y: i64) -> i64;
}

struct Calculator;

impl Calc for Calculator {
    fn multiply(&self, x: i64, y: i64) -> i64 {
        x * y
    }
}

static NODE: OnceLock<PrivateBroker> = OnceLock::new();

fn node() -> &'static PrivateBroker {
    NODE.get_or_init(|| {
        // Every log line of this process goes through the capturing logger, so the leak
        // test sees what the other tests logged too.
        log::set_logger(&Captured).expect("the only logger of this binary");
        log::set_max_level(LevelFilter::Trace);
        PrivateBroker::start()
    })
}

/// Every log line of this process, for the leak test.
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Captured;

impl Log for Captured {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &Record<'_>) {
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        LOG.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }
    fn flush(&self) {}
}

/// A role of fabric on the broker, with the names it touches.
enum Role<'a> {
    /// Serves `domain`/`service_type`/`id` and announces itself (keep-alives).
    Service(&'a str, &'a str, &'a str),
    /// Calls services.
    Client,
    /// Lists services (`keep_alive_listen`), as participant `domain`/`service_type`/`id`.
    Listener(&'a str, &'a str, &'a str),
    /// Publishes to `domain`'s data stream.
    DataPublisher(&'a str),
    /// Subscribes to `domain`'s data stream with subscriber name `name`.
    DataSubscriber(&'a str, &'a str),
    /// Publishes events of `domain`.
    EventPublisher(&'a str),
    /// Subscribes to `domain`'s events with subscriber name `name`.
    EventSubscriber(&'a str, &'a str),
    /// Ships log records of `domain`.
    LogShipper(&'a str),
    /// Tails the logs of `domain`.
    LogTail(&'a str),
}

/// A RabbitMQ regex matching `name` exactly.
fn exact(name: &str) -> String {
    name.replace('.', "\\.")
}

/// The configure, write and read patterns that `roles` need together: the README's table.
fn permissions(roles: &[Role]) -> [String; 3] {
    let mut sets: [Vec<String>; 3] = Default::default();
    let mut add = |configure: &[String], write: &[String], read: &[String]| {
        for (set, names) in sets.iter_mut().zip([configure, write, read]) {
            for name in names {
                if !set.contains(name) {
                    set.push(name.clone());
                }
            }
        }
    };
    let discovery = exact("msc.discovery");
    for role in roles {
        match *role {
            Role::Service(domain, service_type, id) => {
                let exchange = exact(&format!("{domain}.api.{service_type}.{id}"));
                let queues = format!("{exchange}::.+");
                add(
                    &[exchange.clone(), queues.clone(), discovery.clone()],
                    &[
                        queues.clone(),
                        exact("amq.default"),
                        exact("rpc.dlx"),
                        discovery.clone(),
                    ],
                    &[exchange, queues],
                );
            }
            Role::Client => {
                let reply = "amq\\.gen-.+".to_owned();
                add(
                    &[reply.clone(), exact("rpc.dlx")],
                    &[reply.clone(), exact("amq.default")],
                    &[reply, exact("rpc.dlx")],
                );
            }
            Role::Listener(domain, service_type, id) => {
                let queue = format!(
                    "{}\\..+",
                    exact(&format!("{domain}.{service_type}.{id}.subscriber"))
                );
                add(
                    &[discovery.clone(), queue.clone()],
                    std::slice::from_ref(&queue),
                    &[discovery.clone(), queue.clone()],
                );
            }
            Role::DataPublisher(domain) | Role::EventPublisher(domain) => {
                let stream = if matches!(role, Role::DataPublisher(_)) {
                    "data"
                } else {
                    "events"
                };
                let exchange = exact(&format!("{domain}.{stream}"));
                add(
                    std::slice::from_ref(&exchange),
                    std::slice::from_ref(&exchange),
                    &[],
                );
            }
            Role::DataSubscriber(domain, name) | Role::EventSubscriber(domain, name) => {
                let stream = if matches!(role, Role::DataSubscriber(..)) {
                    "data"
                } else {
                    "events"
                };
                let exchange = exact(&format!("{domain}.{stream}"));
                add(
                    &[exchange.clone(), exact(name)],
                    &[exact(name)],
                    &[exchange, exact(name)],
                );
            }
            Role::LogShipper(domain) => {
                let exchange = exact(&format!("{domain}.log.records"));
                add(
                    std::slice::from_ref(&exchange),
                    std::slice::from_ref(&exchange),
                    &[],
                );
            }
            Role::LogTail(domain) => {
                let exchange = exact(&format!("{domain}.log.records"));
                let queue = format!("{}\\..+", exact(&format!("{domain}.log.tail")));
                add(
                    &[exchange.clone(), queue.clone()],
                    std::slice::from_ref(&queue),
                    &[exchange.clone(), queue.clone()],
                );
            }
        }
    }
    sets.map(|set| format!("^({})$", set.join("|")))
}

/// Creates broker user `user` with `password` and the permissions `roles` need on vhost `/`.
fn add_user(user: &str, password: &str, roles: &[Role]) {
    let node = node();
    node.rabbitmqctl(&["add_user", user, password]);
    let [configure, write, read] = permissions(roles);
    println!("rabbitmqctl set_permissions -p / {user} '{configure}' '{write}' '{read}'");
    node.rabbitmqctl(&[
        "set_permissions",
        "-p",
        "/",
        user,
        &configure,
        &write,
        &read,
    ]);
}

/// The node's URL for `user` with `password`.
fn url_of(user: &str, password: &str) -> String {
    node()
        .url()
        .replacen("guest:guest", &format!("{user}:{password}"), 1)
}

fn config(url: &str, domain: &str, service_type: &str, id: &str) -> FabricConfig {
    FabricConfig::new(url, domain, service_type, id)
        .heartbeat(Duration::from_secs(5))
        .call_timeout(PATIENCE)
}

fn connect(config: FabricConfig) -> Fabric {
    Fabric::connect(config).expect("connect to the private broker")
}

fn assert_denied<T: std::fmt::Debug>(outcome: fabric_core::Result<T>, what: &str) {
    match outcome {
        Err(Error::PermissionDenied { message, .. }) => {
            assert!(message.contains("ACCESS_REFUSED"), "{what}: {message}");
            println!("{what}: refused: {message}");
        }
        other => panic!("{what}: expected PermissionDenied, got {other:?}"),
    }
}

#[test]
fn each_role_runs_under_its_least_privilege_permissions() {
    let domain = support::unique_domain("least");
    let d = domain.as_str();
    add_user(
        "svc-calc",
        "svc-pw",
        &[
            Role::Service(d, "calc", "c1"),
            Role::DataPublisher(d),
            Role::EventPublisher(d),
            Role::LogShipper(d),
        ],
    );
    add_user(
        "app-console",
        "app-pw",
        &[
            Role::Client,
            Role::Listener(d, "console", "k1"),
            Role::DataSubscriber(d, &format!("{d}.console")),
            Role::EventSubscriber(d, &format!("{d}.console.events")),
            Role::LogTail(d),
        ],
    );

    let service = connect(
        config(&url_of("svc-calc", "svc-pw"), d, "calc", "c1")
            .keep_alive(Duration::from_millis(200)),
    );
    let _serving = CalcServer::new(Calculator).serve(&service).expect("serve");

    let console = connect(
        config(&url_of("app-console", "app-pw"), d, "console", "k1").keep_alive_listen(true),
    );
    let calc = CalcClient::connect(&console, d, "calc", "c1").expect("client");
    assert_eq!(calc.multiply(6, 7).expect("a call"), 42);
    // An instance that does not run is still told apart from a missing method.
    let absent = CalcClient::connect(&console, d, "calc", "c9").expect("client");
    assert!(matches!(
        absent.multiply(1, 1),
        Err(Error::NoSuchService { .. })
    ));

    let events = console
        .service_events(&ServiceFilter::any().domain(d).service_type("calc"))
        .expect("registry");
    assert!(
        matches!(
            events.recv_timeout(PATIENCE),
            Ok(Some(ServiceEvent::Appeared(_)))
        ),
        "the service's keep-alive"
    );

    let (got, readings) = mpsc::channel();
    let _sub = console
        .data_subscriber(&format!("{d}.console"))
        .header("kind", "reading")
        .handle(move |m| {
            let _ = got.send(m.into_body());
        })
        .expect("subscribe");
    service
        .publish_data(b"7", &Headers::new().with("kind", "reading"))
        .expect("publish")
        .wait()
        .expect("confirmed");
    assert_eq!(readings.recv_timeout(PATIENCE).expect("the reading"), b"7");

    let inbox = console
        .event_subscriber(&format!("{d}.console.events"))
        .topic("order.*")
        .inbox()
        .expect("subscribe to events");
    service
        .publish_event("order.created", &5u32)
        .expect("publish an event")
        .wait()
        .expect("confirmed");
    let event = inbox
        .recv_timeout(PATIENCE)
        .expect("the inbox")
        .expect("the event");
    assert_eq!(event.decode::<u32>().expect("decode"), 5);

    let (got, records) = mpsc::channel();
    let _tail = console
        .subscribe_logs(&LogFilter::new(), move |record| {
            let _ = got.send(record.message().to_owned());
        })
        .expect("tail the logs");
    let logger = RemoteLogger::builder(&service).build().expect("logger");
    logger.log(
        &Record::builder()
            .level(Level::Warn)
            .target("calc")
            .args(format_args!("shipped under least privilege"))
            .build(),
    );
    let message = records.recv_timeout(PATIENCE).expect("the record");
    assert!(
        message.contains("shipped under least privilege"),
        "{message}"
    );
}

#[test]
fn outside_its_permissions_a_participant_is_refused() {
    let domain = support::unique_domain("denied");
    let d = domain.as_str();
    add_user("svc-narrow", "narrow-pw", &[Role::Service(d, "calc", "c1")]);
    add_user("app-narrow", "narrow-pw", &[Role::Client]);
    let url = url_of("svc-narrow", "narrow-pw");

    // Another service's address.
    let other = connect(config(&url, d, "calc", "c2"));
    assert_denied(CalcServer::new(Calculator).serve(&other), "serve calc/c2");
    // Its own, but announcing without the registry's exchange is fine; listening is not.
    let listening = Fabric::connect(config(&url, d, "calc", "c1").keep_alive_listen(true));
    assert_denied(listening, "listen to keep-alives");
    // Another domain's data stream and logs.
    let own = connect(config(&url, d, "calc", "c1"));
    assert_denied(
        own.publish_data(b"x", &Headers::new())
            .and_then(|r| r.wait()),
        "publish data",
    );
    let client = connect(config(
        &url_of("app-narrow", "narrow-pw"),
        d,
        "console",
        "k1",
    ));
    assert_denied(
        client.data_subscriber("anything").handle(|_| {}),
        "subscribe to data",
    );
    assert_denied(
        client.subscribe_logs(&LogFilter::new(), |_| {}),
        "tail the logs",
    );
}

#[test]
fn a_vhost_the_user_may_not_use_is_refused() {
    let node = node();
    node.rabbitmqctl(&["add_vhost", "restricted"]);
    add_user("vhost-outsider", "outsider-pw", &[Role::Client]);
    let url = url_of("vhost-outsider", "outsider-pw").replace("/%2f", "/restricted");
    let err = Fabric::connect(config(&url, "d", "t", "i")).unwrap_err();
    println!("{err}");
    match &err {
        Error::AccessRefused {
            refusal: Refusal::VirtualHost,
            message,
            ..
        } => assert!(
            message.contains("restricted") && message.contains("vhost-outsider"),
            "{err}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(!err.to_string().contains("outsider-pw"), "{err}");
}

#[test]
fn a_wrong_password_is_refused_at_once() {
    add_user("pw-user", "right-pw", &[Role::Client]);
    let started = Instant::now();
    let err = Fabric::connect(config(&url_of("pw-user", "wrong-pw"), "d", "t", "i")).unwrap_err();
    println!("refused after {:?}: {err}", started.elapsed());
    match &err {
        // The broker's words come only with a close at once (authentication_failure_close).
        Error::AccessRefused {
            refusal: Refusal::Login,
            message,
            ..
        } => assert!(message.contains("Login was refused"), "{err}"),
        other => panic!("{other:?}"),
    }
    let unknown =
        Fabric::connect(config(&url_of("no-such-user", "pw"), "d", "t", "i")).unwrap_err();
    assert!(
        matches!(
            unknown,
            Error::AccessRefused {
                refusal: Refusal::Login,
                ..
            }
        ),
        "{unknown:?}"
    );
}

#[test]
fn no_password_leaks_into_debug_errors_logs_keep_alives_or_client_properties() {
    const SECRET: &str = "pw-SECRET-7731";
    let node = node();
    let domain = support::unique_domain("leak");
    let d = domain.as_str();
    add_user(
        "leaky",
        SECRET,
        &[
            Role::Service(d, "calc", "c1"),
            Role::Listener(d, "calc", "c1"),
        ],
    );
    let url = url_of("leaky", SECRET);
    let mut shown = Vec::new();

    let config = config(&url, d, "calc", "c1")
        .keep_alive(Duration::from_millis(200))
        .keep_alive_listen(true)
        .fallback_url(&url);
    shown.push(format!("{config:?}"));
    let fabric = connect(config);
    let serving = CalcServer::new(Calculator).serve(&fabric).expect("serve");
    shown.push(format!("{fabric:?} {:?}", fabric.connection_state()));

    // What others hear: the keep-alive, parsed and raw.
    let events = fabric
        .service_events(&ServiceFilter::any().domain(d))
        .expect("registry");
    match events.recv_timeout(PATIENCE) {
        Ok(Some(event)) => shown.push(format!("{event:?}")),
        other => panic!("no keep-alive: {other:?}"),
    }

    // What the broker was told: the client properties.
    let fqn = format!("{d}.calc.c1");
    let properties = node
        .rabbitmqctl(&[
            "list_connections",
            "-q",
            "--no-table-headers",
            "user",
            "client_properties",
        ])
        .lines()
        .find(|line| line.starts_with("leaky\t"))
        .unwrap_or_else(|| panic!("no connection of user leaky"))
        .to_owned();
    assert!(
        properties.contains(&format!("{{\"information\",\"fabric {fqn}\"}}")),
        "the information property is the participant's name, no more: {properties}"
    );
    assert!(
        properties.contains("{\"authentication_failure_close\",true}"),
        "{properties}"
    );
    shown.push(properties);

    // A reconnection, which is logged and told with the URL.
    let (changed, changes) = mpsc::channel();
    let changed = Mutex::new(changed);
    fabric.on_connection_change(move |state| {
        let _ = changed.lock().unwrap().send(state.clone());
    });
    node.close_connection_of(&fqn);
    loop {
        match changes.recv_timeout(PATIENCE).expect("the reconnection") {
            state @ ConnectionState::Connected { .. } => {
                shown.push(format!("{state} {state:?}"));
                break;
            }
            state => shown.push(format!("{state} {state:?}")),
        }
    }

    // Errors that name the URL.
    for bad in [
        url.replace("amqp://", "http://"),
        format!("{url}?frame_max=1"),
        url.replace(SECRET, "not-it"),
        url.replace("/%2f", "/no-such-vhost"),
        url.replace(&node.port().to_string(), "1"),
    ] {
        let err = Fabric::connect(
            FabricConfig::new(&bad, d, "calc", "c1").connect_timeout(Duration::from_secs(2)),
        )
        .unwrap_err();
        shown.push(format!("{err} {err:?}"));
    }

    serving.close().expect("stop the server");
    fabric.close().expect("close");
    shown.extend(
        LOG.lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned(),
    );
    assert!(shown.len() > 10, "{shown:#?}");
    for text in &shown {
        assert!(!text.contains(SECRET), "the password leaked: {text}");
    }
}
