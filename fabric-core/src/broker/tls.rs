//! TLS for `amqps://` URLs: the settings, from the URL's query parameters (RabbitMQ's URI
//! spec: `cacertfile`, `certfile`, `keyfile`, `verify`, `server_name_indication`) or from a
//! [`TlsConfig`], loaded and checked before any connection; and the handshake, done by fabric
//! on its own socket so that the AMQP handshake after it can be watched (see
//! `handshake_tap.rs`).

use std::fmt;

use super::auth::AuthMechanism;

/// TLS settings given in code, for certificates kept in memory (a secret store, the
/// environment) rather than in files. Give it to
/// [`FabricConfig::tls`](crate::FabricConfig::tls); it applies to every `amqps://` URL of
/// the configuration. A URL's own query parameters (`cacertfile`, `certfile` with `keyfile`,
/// `verify`, `server_name_indication`) win over the same setting here.
///
/// Everything is checked by [`Fabric::connect`](crate::Fabric::connect) before it connects:
/// PEM that holds no certificate, a key that is not PKCS#8 or does not match its certificate
/// are [`Error::InvalidTls`](crate::Error::InvalidTls). `Debug` shows no key material.
///
/// ```
/// use fabric_core::{AuthMechanism, FabricConfig, TlsConfig};
///
/// # let (ca_pem, cert_pem, key_pem) = (Vec::<u8>::new(), Vec::<u8>::new(), Vec::<u8>::new());
/// // The broker's CA and this site's client certificate, from wherever secrets are kept.
/// let tls = TlsConfig::new()
///     .ca_certificates_pem(ca_pem)
///     .client_identity_pem(cert_pem, key_pem);
/// let config = FabricConfig::new("amqps://broker.example.com/%2f", "plant", "sensor", "s1")
///     .tls(tls)
///     .auth_mechanism(AuthMechanism::External); // log in as the certificate's user
/// ```
#[derive(Clone, Default)]
#[must_use = "a TlsConfig does nothing until it is given to FabricConfig::tls"]
pub struct TlsConfig {
    ca_certificates: Option<Vec<u8>>,
    client_identity: Option<(Vec<u8>, Vec<u8>)>,
    verify_none: bool,
    server_name: Option<ServerName>,
}

impl TlsConfig {
    /// No settings: the broker's certificate is checked against the system's root CAs and
    /// the URL's host name, and no client certificate is sent.
    pub fn new() -> TlsConfig {
        TlsConfig::default()
    }

    /// The CAs that may sign the broker's certificate, as PEM (one certificate or several).
    /// They replace the system's roots, as RabbitMQ's `cacertfile` does. The URL parameter
    /// `cacertfile` wins.
    pub fn ca_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> TlsConfig {
        self.ca_certificates = Some(pem.into());
        self
    }

    /// The client certificate fabric presents, as PEM (the certificate first, then any
    /// intermediate CAs), and its private key as unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE
    /// KEY-----`; `openssl pkcs8 -topk8 -nocrypt` converts others). Needed for
    /// [`AuthMechanism::External`], and by brokers that require client certificates. The
    /// URL parameters `certfile` and `keyfile` win.
    pub fn client_identity_pem(
        mut self,
        certificate_chain_pem: impl Into<Vec<u8>>,
        private_key_pem: impl Into<Vec<u8>>,
    ) -> TlsConfig {
        self.client_identity = Some((certificate_chain_pem.into(), private_key_pem.into()));
        self
    }

    /// Accept any certificate from the broker, for any host: RabbitMQ's `verify=verify_none`.
    /// The connection is encrypted but anyone between fabric and the broker can read it, so
    /// this is for tests only; fabric logs a warning at every connection made so.
    pub fn danger_verify_none(mut self) -> TlsConfig {
        self.verify_none = true;
        self
    }

    /// The name to send in SNI and to check the broker's certificate against, instead of the
    /// URL's host: RabbitMQ's `server_name_indication`. For a broker reached through an
    /// address its certificate does not name (a tunnel, an IP address).
    pub fn server_name(mut self, name: &str) -> TlsConfig {
        self.server_name = Some(ServerName::Name(name.to_owned()));
        self
    }

    /// Send no SNI (`server_name_indication=disable`); the certificate is still checked
    /// against the URL's host.
    pub fn disable_sni(mut self) -> TlsConfig {
        self.server_name = Some(ServerName::Disabled);
        self
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field(
                "ca_certificates",
                &self.ca_certificates.as_ref().map(|pem| {
                    format!("{} PEM certificates", pem_blocks(pem, "CERTIFICATE").len())
                }),
            )
            .field(
                "client_identity",
                &self
                    .client_identity
                    .as_ref()
                    .map(|_| "certificate and private key (not shown)"),
            )
            .field("verify_none", &self.verify_none)
            .field("server_name", &self.server_name)
            .finish()
    }
}

/// `server_name_indication`: a name to use instead of the host, or no SNI at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServerName {
    Name(String),
    Disabled,
}

/// The TLS query parameters of one URL, as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsParams {
    cacertfile: Option<String>,
    certfile: Option<String>,
    keyfile: Option<String>,
    /// `Some(false)` for `verify=verify_none`.
    verify: Option<bool>,
    server_name: Option<ServerName>,
}

impl TlsParams {
    /// The names of the parameters, for messages.
    pub(crate) const NAMES: &'static str =
        "cacertfile, certfile, keyfile, verify, server_name_indication";

    /// Takes query parameter `key` if it is one of TLS's: `Ok(true)`, or `Err` with what is
    /// wrong with its value; `Ok(false)` if it is not a TLS parameter.
    pub(crate) fn take(&mut self, key: &str, value: &str) -> std::result::Result<bool, String> {
        let path = || {
            if value.is_empty() {
                Err(format!("`{key}` needs a file name"))
            } else {
                Ok(Some(value.to_owned()))
            }
        };
        match key {
            "cacertfile" => self.cacertfile = path()?,
            "certfile" => self.certfile = path()?,
            "keyfile" => self.keyfile = path()?,
            "verify" => {
                self.verify = Some(match value {
                    "verify_peer" => true,
                    "verify_none" => false,
                    _ => {
                        return Err(format!(
                            "verify {value:?} is not `verify_peer` or `verify_none`"
                        ))
                    }
                })
            }
            "server_name_indication" => {
                self.server_name = Some(match value {
                    "" => return Err("`server_name_indication` needs a host name".to_owned()),
                    "disable" => ServerName::Disabled,
                    name => ServerName::Name(name.to_owned()),
                })
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The first parameter given, if any, for the message that refuses them on `amqp://`.
    pub(crate) fn first_given(&self) -> Option<&'static str> {
        [
            (self.cacertfile.is_some(), "cacertfile"),
            (self.certfile.is_some(), "certfile"),
            (self.keyfile.is_some(), "keyfile"),
            (self.verify.is_some(), "verify"),
            (self.server_name.is_some(), "server_name_indication"),
        ]
        .into_iter()
        .find_map(|(given, name)| given.then_some(name))
    }
}

/// The PEM blocks labelled `label` in `pem`, each from its BEGIN line to its END line.
pub(crate) fn pem_blocks<'a>(pem: &'a [u8], label: &str) -> Vec<&'a [u8]> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut blocks = Vec::new();
    let mut rest = pem;
    while let Some(start) = find(rest, begin.as_bytes()) {
        let Some(stop) = find(&rest[start..], end.as_bytes()) else {
            break;
        };
        let stop = start + stop + end.len();
        blocks.push(&rest[start..stop]);
        rest = &rest[stop..];
    }
    blocks
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The one PKCS#8 private key in `pem`, or what is wrong: other key formats are named, with
/// the command that converts them. Never quotes the key.
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
fn pkcs8_key(pem: &[u8]) -> std::result::Result<&[u8], String> {
    if let Some(key) = pem_blocks(pem, "PRIVATE KEY").first() {
        return Ok(key);
    }
    let convert = "convert it with `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pkcs8`";
    for (label, what) in [
        (
            "ENCRYPTED PRIVATE KEY",
            "an encrypted key; fabric needs it unencrypted",
        ),
        ("RSA PRIVATE KEY", "a PKCS#1 RSA key; fabric needs PKCS#8"),
        ("EC PRIVATE KEY", "a SEC1 EC key; fabric needs PKCS#8"),
    ] {
        if !pem_blocks(pem, label).is_empty() {
            return Err(format!("it holds {what}: {convert}"));
        }
    }
    Err("it holds no PEM private key (`-----BEGIN PRIVATE KEY-----`)".to_owned())
}

#[cfg(feature = "tls")]
pub(crate) use with_tls::TlsSetup;

#[cfg(not(feature = "tls"))]
pub(crate) use without_tls::TlsSetup;

#[cfg(feature = "tls")]
mod with_tls {
    use std::net::TcpStream;
    use std::time::Instant;

    use native_tls::{Certificate, Identity, TlsConnector};

    use super::{pem_blocks, pkcs8_key, AuthMechanism, ServerName, TlsConfig, TlsParams};
    use crate::broker::tls_socket::{self, TlsSocket};
    use crate::error::{Error, Result};

    /// A setting's bytes and how to name it in an error.
    struct Loaded {
        setting: String,
        pem: Vec<u8>,
    }

    impl Loaded {
        /// The file `path` of URL parameter `parameter`.
        fn file(parameter: &str, path: &str) -> Result<Loaded> {
            let setting = format!("{parameter}={path}");
            match std::fs::read(path) {
                Ok(pem) => Ok(Loaded { setting, pem }),
                Err(e) => Err(Error::InvalidTls {
                    setting,
                    reason: format!("cannot read the file: {e}"),
                }),
            }
        }

        fn memory(method: &str, pem: &[u8]) -> Loaded {
            Loaded {
                setting: format!("TlsConfig::{method}"),
                pem: pem.to_vec(),
            }
        }

        fn invalid(&self, reason: impl Into<String>) -> Error {
            Error::InvalidTls {
                setting: self.setting.clone(),
                reason: reason.into(),
            }
        }
    }

    /// Everything a TLS connection to one URL needs, loaded and checked.
    #[derive(Clone)]
    pub(crate) struct TlsSetup {
        connector: TlsConnector,
        /// The name checked against the broker's certificate and sent in SNI.
        domain: String,
        verify: bool,
    }

    impl std::fmt::Debug for TlsSetup {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("TlsSetup")
                .field("domain", &self.domain)
                .field("verify", &self.verify)
                .finish_non_exhaustive()
        }
    }

    impl TlsSetup {
        /// Loads the files the URL names (or takes `config`'s PEM), checks them, and builds
        /// the connector. `host` is the URL's host; `_url` its masked form (used without the
        /// `tls` feature only).
        pub(crate) fn load(
            params: &TlsParams,
            config: Option<&TlsConfig>,
            host: &str,
            auth: AuthMechanism,
            _url: &str,
        ) -> Result<TlsSetup> {
            let mut builder = TlsConnector::builder();
            let ca = match (
                &params.cacertfile,
                config.and_then(|c| c.ca_certificates.as_ref()),
            ) {
                (Some(path), _) => Some(Loaded::file("cacertfile", path)?),
                (None, Some(pem)) => Some(Loaded::memory("ca_certificates_pem", pem)),
                (None, None) => None,
            };
            if let Some(ca) = &ca {
                let blocks = pem_blocks(&ca.pem, "CERTIFICATE");
                if blocks.is_empty() {
                    return Err(
                        ca.invalid("it holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)")
                    );
                }
                for block in blocks {
                    let certificate = Certificate::from_pem(block)
                        .map_err(|e| ca.invalid(format!("a certificate cannot be read: {e}")))?;
                    builder.add_root_certificate(certificate);
                }
                // As RabbitMQ's cacertfile: these CAs, not the system's as well.
                builder.disable_built_in_roots(true);
            }
            let identity = match (&params.certfile, &params.keyfile) {
                (Some(cert), Some(key)) => Some((
                    Loaded::file("certfile", cert)?,
                    Loaded::file("keyfile", key)?,
                )),
                (Some(cert), None) => {
                    return Err(Error::InvalidTls {
                        setting: format!("certfile={cert}"),
                        reason: "it needs `keyfile`, its private key, beside it".to_owned(),
                    })
                }
                (None, Some(key)) => {
                    return Err(Error::InvalidTls {
                        setting: format!("keyfile={key}"),
                        reason: "it needs `certfile`, its certificate, beside it".to_owned(),
                    })
                }
                (None, None) => {
                    config
                        .and_then(|c| c.client_identity.as_ref())
                        .map(|(cert, key)| {
                            (
                                Loaded::memory("client_identity_pem (certificate)", cert),
                                Loaded::memory("client_identity_pem (private key)", key),
                            )
                        })
                }
            };
            if let Some((cert, key)) = &identity {
                if pem_blocks(&cert.pem, "CERTIFICATE").is_empty() {
                    return Err(
                        cert.invalid("it holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)")
                    );
                }
                let pkcs8 = pkcs8_key(&key.pem).map_err(|reason| key.invalid(reason))?;
                let identity = Identity::from_pkcs8(&cert.pem, pkcs8).map_err(|e| {
                    key.invalid(format!("the certificate and key cannot be read: {e}"))
                })?;
                builder.identity(identity);
            } else if auth == AuthMechanism::External {
                return Err(Error::InvalidTls {
                    setting: "auth_mechanism=external".to_owned(),
                    reason: "EXTERNAL login takes the user from the client certificate, and \
                             none is given: add `certfile` and `keyfile` to the URL (or \
                             TlsConfig::client_identity_pem)"
                        .to_owned(),
                });
            }
            let verify = params
                .verify
                .unwrap_or(!config.is_some_and(|c| c.verify_none));
            if !verify {
                builder.danger_accept_invalid_certs(true);
                builder.danger_accept_invalid_hostnames(true);
            }
            let server_name = params
                .server_name
                .as_ref()
                .or(config.and_then(|c| c.server_name.as_ref()));
            let domain = match server_name {
                Some(ServerName::Name(name)) => name.clone(),
                Some(ServerName::Disabled) => {
                    builder.use_sni(false);
                    host.to_owned()
                }
                None => host.to_owned(),
            };
            let connector = builder.build().map_err(|e| match &identity {
                // OpenSSL checks the key against the certificate here.
                Some((cert, key)) => Error::InvalidTls {
                    setting: format!("{} with {}", key.setting, cert.setting),
                    reason: format!("the private key does not fit the certificate: {e}"),
                },
                None => Error::InvalidTls {
                    setting: "TLS".to_owned(),
                    reason: format!("cannot set up TLS: {e}"),
                },
            })?;
            Ok(TlsSetup {
                connector,
                domain,
                verify,
            })
        }

        /// Whether the broker's certificate is checked (not `verify_none`).
        pub(crate) fn verifies(&self) -> bool {
            self.verify
        }

        /// Runs the TLS handshake on `stream`, bounded by `deadline`; the error is the TLS
        /// library's message.
        pub(crate) fn handshake(
            &self,
            stream: TcpStream,
            deadline: Instant,
        ) -> std::result::Result<TlsSocket, String> {
            tls_socket::handshake(&self.connector, &self.domain, stream, deadline)
        }
    }
}

#[cfg(not(feature = "tls"))]
mod without_tls {
    use super::{AuthMechanism, TlsConfig, TlsParams};
    use crate::error::{Error, Result};

    /// Why `amqps://` cannot work in a build without the `tls` feature, and what to change.
    const NO_TLS_FEATURE: &str =
        "`amqps://` needs fabric-core's `tls` feature, which this build leaves out. It is on by \
         default, so the fabric-core dependency in Cargo.toml says `default-features = false`: \
         add `features = [\"tls\"]` to it (on Linux, building it needs OpenSSL's headers, from \
         the `libssl-dev` and `pkg-config` packages)";

    /// Without the `tls` feature no URL gets a TLS setup: `load` refuses `amqps://`.
    #[derive(Debug, Clone)]
    pub(crate) enum TlsSetup {}

    impl TlsSetup {
        /// Refuses: this build has no TLS.
        pub(crate) fn load(
            _params: &TlsParams,
            _config: Option<&TlsConfig>,
            _host: &str,
            _auth: AuthMechanism,
            url: &str,
        ) -> Result<TlsSetup> {
            Err(Error::InvalidUrl {
                url: url.to_owned(),
                reason: NO_TLS_FEATURE.to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_read_and_bad_values_named() {
        let mut params = TlsParams::default();
        assert_eq!(params.take("cacertfile", "/ca.pem"), Ok(true));
        assert_eq!(params.take("verify", "verify_none"), Ok(true));
        assert_eq!(params.take("server_name_indication", "disable"), Ok(true));
        assert_eq!(params.take("heartbeat", "5"), Ok(false));
        assert_eq!(params.first_given(), Some("cacertfile"));
        assert_eq!(params.verify, Some(false));
        assert_eq!(params.server_name, Some(ServerName::Disabled));
        let err = params.take("verify", "yes").unwrap_err();
        assert!(err.contains("verify_peer"), "{err}");
        assert!(params.take("keyfile", "").unwrap_err().contains("keyfile"));
    }

    #[test]
    fn pem_blocks_are_split() {
        let pem = b"junk\n-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n\
                    -----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n";
        let blocks = pem_blocks(pem, "CERTIFICATE");
        assert_eq!(blocks.len(), 2);
        assert!(blocks[1].starts_with(b"-----BEGIN CERTIFICATE-----\nBBB"));
    }

    #[test]
    fn keys_that_are_not_pkcs8_are_named_not_quoted() {
        let rsa = b"-----BEGIN RSA PRIVATE KEY-----\nSECRETBYTES\n-----END RSA PRIVATE KEY-----\n";
        let err = pkcs8_key(rsa).unwrap_err();
        assert!(
            err.contains("PKCS#1") && err.contains("openssl pkcs8"),
            "{err}"
        );
        assert!(!err.contains("SECRETBYTES"));
        let pkcs8 = b"x\n-----BEGIN PRIVATE KEY-----\nK\n-----END PRIVATE KEY-----\n";
        assert!(pkcs8_key(pkcs8)
            .unwrap()
            .starts_with(b"-----BEGIN PRIVATE KEY-----"));
        assert!(pkcs8_key(b"nothing")
            .unwrap_err()
            .contains("no PEM private key"));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let config = TlsConfig::new()
            .client_identity_pem("CERTIFICATE BYTES", "PRIVATE KEY BYTES")
            .danger_verify_none();
        let shown = format!("{config:?}");
        assert!(!shown.contains("PRIVATE KEY BYTES"), "{shown}");
        assert!(!shown.contains("CERTIFICATE BYTES"), "{shown}");
        assert!(shown.contains("verify_none: true"), "{shown}");
    }
}
