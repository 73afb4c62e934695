//! fabric over `amqps://` against a private RabbitMQ node with a TLS listener, with
//! certificates made by the test (`support/certs.rs`): a CA that signs the node's certificate
//! for `localhost` and the clients' certificates, and a rogue CA that signs what the node
//! must refuse. One node for the whole file; nothing from outside the machine is needed.

mod support;

use std::net::TcpListener;
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

use fabric_core::{
    fabric_service, AuthMechanism, ConnectionState, Error, Fabric, FabricConfig, Headers, Refusal,
    ServiceEvent, ServiceFilter, TlsConfig, TlsFailure,
};

use support::certs::{Authority, Issued, Usage};
use support::private_broker::{scratch_dir, PrivateBroker, TlsListener};

/// How long anything expected may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);
/// The broker user that EXTERNAL logins with [`Node::external`] become.
const EXTERNAL_USER: &str = "fabric-remote-site";

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

/// The file's TLS node and the certificates of its tests.
struct Node {
    broker: PrivateBroker,
    ca: Authority,
    rogue_ca: Authority,
    /// Signed by the CA, named after a user that does not exist (for PLAIN logins).
    client: Issued,
    /// Signed by the CA, named [`EXTERNAL_USER`].
    external: Issued,
    /// Signed by the CA, named after no broker user.
    stranger: Issued,
    /// Signed by the rogue CA.
    rogue_client: Issued,
    /// Signed by the CA, expired.
    expired_client: Issued,
}

static NODE: OnceLock<Node> = OnceLock::new();

fn node() -> &'static Node {
    NODE.get_or_init(|| {
        let dir = scratch_dir();
        let ca = Authority::new(&dir, "fabric-test-ca");
        let server = ca.issue("server", "localhost", Usage::Server, &["localhost"]);
        let broker = PrivateBroker::start_with_tls(TlsListener {
            cacertfile: ca.file.clone(),
            certfile: server.cert_file.clone(),
            keyfile: server.key_file.clone(),
            external_auth: true,
        });
        broker.rabbitmqctl(&["add_user", EXTERNAL_USER, "not-used-by-external-login"]);
        broker.rabbitmqctl(&["clear_password", EXTERNAL_USER]);
        broker.rabbitmqctl(&[
            "set_permissions",
            "-p",
            "/",
            EXTERNAL_USER,
            ".*",
            ".*",
            ".*",
        ]);
        let rogue_ca = Authority::new(&dir, "rogue-ca");
        Node {
            client: ca.issue("client", "plain-site", Usage::Client, &[]),
            external: ca.issue("external", EXTERNAL_USER, Usage::Client, &[]),
            stranger: ca.issue("stranger", "nobody-here", Usage::Client, &[]),
            rogue_client: rogue_ca.issue("rogue-client", EXTERNAL_USER, Usage::Client, &[]),
            expired_client: ca.issue_expired("expired", EXTERNAL_USER, Usage::Client, &[]),
            broker,
            ca,
            rogue_ca,
        }
    })
}

fn cacertfile(authority: &Authority) -> String {
    format!("cacertfile={}", authority.file.display())
}

/// A participant's configuration for `url`.
fn config(url: &str, domain: &str, service_type: &str, id: &str) -> FabricConfig {
    FabricConfig::new(url, domain, service_type, id)
        .connect_timeout(Duration::from_secs(10))
        .call_timeout(PATIENCE)
}

fn connect_err(config: FabricConfig) -> Error {
    match Fabric::connect(config) {
        Ok(_) => panic!("the connection was expected to fail"),
        Err(e) => e,
    }
}

/// The broker's view of participant `fqn`'s connection: `fields` of `rabbitmqctl
/// list_connections`, tab-separated, then its client properties.
fn connection(fqn: &str, fields: &[&str]) -> String {
    let mut args = vec!["list_connections", "-q", "--no-table-headers"];
    args.extend_from_slice(fields);
    args.push("client_properties");
    let listed = node().broker.rabbitmqctl(&args);
    let wanted = format!("fabric {fqn}\"");
    listed
        .lines()
        .find(|line| line.contains(&wanted))
        .unwrap_or_else(|| panic!("no connection of {fqn} in:\n{listed}"))
        .to_owned()
}

#[test]
fn rpc_streams_and_the_registry_work_over_amqps_with_cacertfile() {
    let node = node();
    let url = node.broker.amqps_url(&cacertfile(&node.ca));
    let domain = support::unique_domain("tls");
    let server =
        Fabric::connect(config(&url, &domain, "calc", "c1").keep_alive(Duration::from_millis(200)))
            .expect("connect the server over amqps");
    let _serving = CalcServer::new(Calculator).serve(&server).expect("serve");
    let fields = connection(&format!("{domain}.calc.c1"), &["ssl", "ssl_protocol"]);
    assert!(fields.starts_with("true\ttlsv1.3"), "{fields}");

    let client = Fabric::connect(config(&url, &domain, "caller", "k1").keep_alive_listen(true))
        .expect("connect the client over amqps");
    let calc = CalcClient::connect(&client, &domain, "calc", "c1").expect("client");
    assert_eq!(calc.multiply(6, 7).expect("call over amqps"), 42);

    let (got, received) = mpsc::channel();
    let _sub = client
        .data_subscriber(&format!("{domain}.readings"))
        .header("kind", "reading")
        .handle(move |message| {
            let _ = got.send(message.body().to_vec());
        })
        .expect("subscribe");
    server
        .publish_data(b"21.5", &Headers::new().with("kind", "reading"))
        .expect("publish")
        .wait()
        .expect("confirmed");
    assert_eq!(
        received.recv_timeout(PATIENCE).expect("the reading"),
        b"21.5"
    );

    let filter = ServiceFilter::any().domain(&domain).service_type("calc");
    let events = client.service_events(&filter).expect("watch the registry");
    match events.recv_timeout(PATIENCE).expect("the registry") {
        Some(ServiceEvent::Appeared(service)) => assert_eq!(service.address.service_id(), "c1"),
        other => panic!("no keep-alive of the server over amqps: {other:?}"),
    }
}

#[test]
fn a_client_certificate_goes_with_a_password_login() {
    let node = node();
    let url = node.broker.amqps_url(&format!(
        "{}&{}",
        cacertfile(&node.ca),
        node.client.url_params()
    ));
    let domain = support::unique_domain("tls-cert");
    let fabric = Fabric::connect(config(&url, &domain, "site", "s1")).expect("connect");
    let fields = connection(&format!("{domain}.site.s1"), &["user", "peer_cert_subject"]);
    assert!(fields.starts_with("guest\t"), "{fields}");
    assert!(fields.contains("CN=plain-site"), "{fields}");
    fabric.close().unwrap();
}

#[test]
fn external_login_takes_the_user_from_the_certificate_and_needs_no_password() {
    let node = node();
    let domain = support::unique_domain("tls-external");
    // From files named in the URL.
    let url = format!(
        "amqps://localhost:{}/%2f?{}&{}&auth_mechanism=external",
        node.broker.tls_port(),
        cacertfile(&node.ca),
        node.external.url_params()
    );
    let from_files = Fabric::connect(config(&url, &domain, "site", "files")).expect("EXTERNAL");
    let fields = connection(&format!("{domain}.site.files"), &["user", "auth_mechanism"]);
    assert!(
        fields.starts_with(&format!("{EXTERNAL_USER}\tEXTERNAL")),
        "{fields}"
    );
    let _serving = CalcServer::new(Calculator)
        .serve(&from_files)
        .expect("serve");

    // From PEM kept in memory, through TlsConfig.
    let url = format!("amqps://localhost:{}/%2f", node.broker.tls_port());
    let tls = TlsConfig::new()
        .ca_certificates_pem(node.ca.pem.clone())
        .client_identity_pem(
            node.external.cert_pem.clone(),
            node.external.key_pem.clone(),
        );
    let in_memory = Fabric::connect(
        config(&url, &domain, "site", "memory")
            .tls(tls)
            .auth_mechanism(AuthMechanism::External),
    )
    .expect("EXTERNAL with TlsConfig");
    let calc = CalcClient::connect(&in_memory, &domain, "site", "files").expect("client");
    assert_eq!(
        calc.multiply(3, 5).expect("call between EXTERNAL logins"),
        15
    );
    let fields = connection(&format!("{domain}.site.memory"), &["user"]);
    assert!(
        fields.starts_with(&format!("{EXTERNAL_USER}\t")),
        "{fields}"
    );
}

#[test]
fn external_login_with_a_certificate_of_no_user_is_refused() {
    let node = node();
    let url = format!(
        "amqps://localhost:{}/%2f?{}&{}&auth_mechanism=external",
        node.broker.tls_port(),
        cacertfile(&node.ca),
        node.stranger.url_params()
    );
    let err = connect_err(config(&url, "d", "t", "i"));
    println!("{err}");
    assert!(
        matches!(
            err,
            Error::AccessRefused {
                refusal: Refusal::Login,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_wrong_password_over_tls_is_refused_at_once() {
    let node = node();
    let url = node.broker.amqps_url(&cacertfile(&node.ca)).replacen(
        "guest:guest",
        "guest:not-the-password",
        1,
    );
    let err = connect_err(config(&url, "d", "t", "i"));
    println!("{err}");
    match &err {
        Error::AccessRefused {
            refusal: Refusal::Login,
            message,
            ..
        } => assert!(message.contains("Login was refused"), "{err}"),
        other => panic!("{other:?}"),
    }
    assert!(!format!("{err} {err:?}").contains("not-the-password"));
}

#[test]
fn a_broker_certificate_from_an_unknown_ca_is_refused_by_fabric() {
    let node = node();
    // Trusting only the rogue CA, and (without cacertfile) only the system's CAs.
    for query in [cacertfile(&node.rogue_ca), String::new()] {
        let err = connect_err(config(&node.broker.amqps_url(&query), "d", "t", "i"));
        println!("{err}");
        match &err {
            Error::Tls { failure, .. } => {
                assert_eq!(*failure, TlsFailure::UnknownCa, "{err}");
                assert!(!failure.refused_by_broker());
            }
            other => panic!("{other:?}"),
        }
    }
    // verify_none takes any certificate (and logs a warning).
    let url = node.broker.amqps_url(&format!(
        "{}&verify=verify_none",
        cacertfile(&node.rogue_ca)
    ));
    let fabric = Fabric::connect(config(&url, "d", "t", "unverified")).expect("verify_none");
    fabric.close().unwrap();
}

#[test]
fn a_tls_connection_that_breaks_is_made_again() {
    let node = node();
    let url = node.broker.amqps_url(&format!(
        "{}&{}",
        cacertfile(&node.ca),
        node.client.url_params()
    ));
    let domain = support::unique_domain("tls-again");
    let fabric = Fabric::connect(config(&url, &domain, "calc", "c1")).expect("connect");
    let _serving = CalcServer::new(Calculator).serve(&fabric).expect("serve");
    let (changed, changes) = mpsc::channel();
    let changed = std::sync::Mutex::new(changed);
    fabric.on_connection_change(move |state| {
        let _ = changed.lock().unwrap().send(state.clone());
    });
    node.broker
        .close_connection_of(&format!("{domain}.calc.c1"));
    loop {
        let state = changes.recv_timeout(PATIENCE).expect("the reconnection");
        if let ConnectionState::Connected { generation, .. } = state {
            assert_eq!(generation, 2);
            break;
        }
    }
    let fields = connection(&format!("{domain}.calc.c1"), &["ssl", "peer_cert_subject"]);
    assert!(
        fields.starts_with("true	") && fields.contains("CN=plain-site"),
        "{fields}"
    );
    let calc = CalcClient::connect(&fabric, &domain, "calc", "c1").expect("client");
    assert_eq!(
        calc.multiply(2, 21).expect("a call after the reconnection"),
        42
    );
}

#[test]
fn a_host_name_the_certificate_does_not_carry_is_refused_unless_named_by_sni() {
    let node = node();
    let port = node.broker.tls_port();
    let by_ip = format!(
        "amqps://guest:guest@127.0.0.1:{port}/%2f?{}",
        cacertfile(&node.ca)
    );
    let err = connect_err(config(&by_ip, "d", "t", "i"));
    println!("{err}");
    assert!(
        matches!(
            err,
            Error::Tls {
                failure: TlsFailure::HostnameMismatch,
                ..
            }
        ),
        "{err:?}"
    );
    let named = format!("{by_ip}&server_name_indication=localhost");
    let fabric = Fabric::connect(config(&named, "d", "t", "sni")).expect("connect with SNI");
    fabric.close().unwrap();
}

#[test]
fn client_certificates_the_broker_does_not_trust_are_refused_by_the_broker() {
    let node = node();
    for client in [&node.rogue_client, &node.expired_client] {
        let url =
            node.broker
                .amqps_url(&format!("{}&{}", cacertfile(&node.ca), client.url_params()));
        let err = connect_err(config(&url, "d", "t", "i"));
        println!("{err}");
        match &err {
            Error::Tls { failure, .. } => {
                assert_eq!(*failure, TlsFailure::ClientCertificateRefused, "{err}");
                assert!(failure.refused_by_broker());
            }
            other => panic!("{}: {other:?}", client.cert_file.display()),
        }
    }
}

#[test]
fn an_expired_broker_certificate_is_refused_by_fabric() {
    use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod};

    let node = node();
    // A TLS server of the test's own: one broker cannot show two certificates.
    let expired =
        node.ca
            .issue_expired("expired-server", "localhost", Usage::Server, &["localhost"]);
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
    acceptor
        .set_private_key_file(&expired.key_file, SslFiletype::PEM)
        .unwrap();
    acceptor
        .set_certificate_chain_file(&expired.cert_file)
        .unwrap();
    let acceptor = acceptor.build();
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            let _ = acceptor.accept(stream);
        }
    });
    let url = format!(
        "amqps://guest:guest@127.0.0.1:{port}/%2f?{}&server_name_indication=localhost",
        cacertfile(&node.ca)
    );
    let err = connect_err(config(&url, "d", "t", "i"));
    println!("{err}");
    assert!(
        matches!(
            err,
            Error::Tls {
                failure: TlsFailure::CertificateExpired,
                ..
            }
        ),
        "{err:?}"
    );
    server.join().unwrap();
}

#[test]
fn plain_amqp_to_the_tls_port_is_refused() {
    let node = node();
    let url = format!(
        "amqp://guest:guest@localhost:{}/%2f",
        node.broker.tls_port()
    );
    let err = connect_err(config(&url, "d", "t", "i"));
    println!("{err}");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
}

#[test]
fn amqps_to_the_plain_port_is_not_tls() {
    let node = node();
    let url = format!(
        "amqps://guest:guest@localhost:{}/%2f?{}",
        node.broker.port(),
        cacertfile(&node.ca)
    );
    let err = connect_err(config(&url, "d", "t", "i"));
    println!("{err}");
    assert!(
        matches!(
            err,
            Error::Tls {
                failure: TlsFailure::NotTls,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn bad_tls_files_are_refused_before_any_connection() {
    let node = node();
    // Nothing listens on port 1: reaching the network would be a Connect or Tls error.
    let base = "amqps://guest:guest@localhost:1/%2f";
    let missing = format!("{base}?cacertfile=/no/such/dir/ca.pem");
    let not_pem = format!("{base}?cacertfile={}", node.client.key_file.display());
    // The client's certificate with another certificate's key.
    let mismatched = format!(
        "{base}?certfile={}&keyfile={}",
        node.client.cert_file.display(),
        node.external.key_file.display()
    );
    let key_text = String::from_utf8(node.external.key_pem.clone()).unwrap();
    let key_body = key_text.lines().nth(1).unwrap();
    for (url, parameter) in [
        (&missing, "cacertfile"),
        (&not_pem, "cacertfile"),
        (&mismatched, "keyfile"),
    ] {
        let err = connect_err(config(url, "d", "t", "i"));
        println!("{err}");
        match &err {
            Error::InvalidTls { setting, .. } => {
                assert!(setting.starts_with(parameter), "{err}")
            }
            other => panic!("{url}: {other:?}"),
        }
        assert!(!format!("{err} {err:?}").contains(key_body), "{err}");
    }
    // In memory: a key that is not PEM at all.
    let tls = TlsConfig::new().client_identity_pem(node.client.cert_pem.clone(), "not a key");
    let err = connect_err(config(base, "d", "t", "i").tls(tls));
    assert!(
        matches!(&err, Error::InvalidTls { setting, .. } if setting.contains("client_identity_pem")),
        "{err:?}"
    );
}
