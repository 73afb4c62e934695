//! Certificates made at run time for the TLS tests: certificate authorities, and server and
//! client certificates they sign (valid or expired), with the OpenSSL that native-tls links.
//! EC P-256 keys, PKCS#8 PEM (what fabric and RabbitMQ both read).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509Builder, X509NameBuilder, X509};

const DAY: i64 = 24 * 60 * 60;

/// A certificate and its private key, in PEM, and where they were written.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl Issued {
    /// The certificate and key as URL query parameters.
    pub fn url_params(&self) -> String {
        format!(
            "certfile={}&keyfile={}",
            self.cert_file.display(),
            self.key_file.display()
        )
    }
}

/// A certificate authority that signs certificates for the tests.
pub struct Authority {
    cert: X509,
    key: PKey<Private>,
    /// Its certificate in PEM, written to `file`.
    pub pem: Vec<u8>,
    pub file: PathBuf,
    dir: PathBuf,
}

/// What kind of certificate to issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Server,
    Client,
}

impl Authority {
    /// A new self-signed CA named `name`, its certificate written to `dir/{name}.ca.pem`.
    pub fn new(dir: &Path, name: &str) -> Authority {
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let key = new_key();
        let mut builder = builder(name, &key, -DAY, 30 * DAY);
        builder.set_issuer_name(&name_of(name)).unwrap();
        builder
            .append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        builder
            .append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()
                    .unwrap(),
            )
            .unwrap();
        builder.sign(&key, MessageDigest::sha256()).unwrap();
        let cert = builder.build();
        let pem = cert.to_pem().unwrap();
        let file = dir.join(format!("{name}.ca.pem"));
        std::fs::write(&file, &pem).unwrap();
        Authority {
            cert,
            key,
            pem,
            file,
            dir: dir.to_owned(),
        }
    }

    /// A certificate for `common_name` (and, for a server, the DNS names `hosts`), valid now,
    /// written to `dir/{file_name}.pem` and `.key.pem`.
    pub fn issue(
        &self,
        file_name: &str,
        common_name: &str,
        usage: Usage,
        hosts: &[&str],
    ) -> Issued {
        self.issue_valid(file_name, common_name, usage, hosts, -DAY, 30 * DAY)
    }

    /// Like [`issue`](Self::issue), but expired yesterday.
    pub fn issue_expired(
        &self,
        file_name: &str,
        common_name: &str,
        usage: Usage,
        hosts: &[&str],
    ) -> Issued {
        self.issue_valid(file_name, common_name, usage, hosts, -10 * DAY, -DAY)
    }

    fn issue_valid(
        &self,
        file_name: &str,
        common_name: &str,
        usage: Usage,
        hosts: &[&str],
        from: i64,
        until: i64,
    ) -> Issued {
        let key = new_key();
        let mut builder = builder(common_name, &key, from, until);
        builder.set_issuer_name(self.cert.subject_name()).unwrap();
        builder
            .append_extension(BasicConstraints::new().build().unwrap())
            .unwrap();
        builder
            .append_extension(
                KeyUsage::new()
                    .critical()
                    .digital_signature()
                    .key_agreement()
                    .build()
                    .unwrap(),
            )
            .unwrap();
        let mut purpose = ExtendedKeyUsage::new();
        match usage {
            Usage::Server => purpose.server_auth(),
            Usage::Client => purpose.client_auth(),
        };
        builder.append_extension(purpose.build().unwrap()).unwrap();
        if !hosts.is_empty() {
            let mut names = SubjectAlternativeName::new();
            for host in hosts {
                names.dns(host);
            }
            let names = names
                .build(&builder.x509v3_context(Some(&self.cert), None))
                .unwrap();
            builder.append_extension(names).unwrap();
        }
        builder.sign(&self.key, MessageDigest::sha256()).unwrap();
        let cert_pem = builder.build().to_pem().unwrap();
        let key_pem = key.private_key_to_pem_pkcs8().unwrap();
        let cert_file = self.dir.join(format!("{file_name}.pem"));
        let key_file = self.dir.join(format!("{file_name}.key.pem"));
        std::fs::write(&cert_file, &cert_pem).unwrap();
        std::fs::write(&key_file, &key_pem).unwrap();
        Issued {
            cert_pem,
            key_pem,
            cert_file,
            key_file,
        }
    }
}

fn new_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn name_of(common_name: &str) -> openssl::x509::X509Name {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)
        .unwrap();
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "fabric tests")
        .unwrap();
    name.build()
}

/// A certificate builder for `common_name` with `key`, valid from `from` to `until` seconds
/// from now, with a serial number of its own.
fn builder(common_name: &str, key: &PKey<Private>, from: i64, until: i64) -> X509Builder {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_secs() as i64;
    let mut builder = X509Builder::new().unwrap();
    builder.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial
        .rand(127, openssl::bn::MsbOption::MAYBE_ZERO, false)
        .unwrap();
    builder
        .set_serial_number(&Asn1Integer::from_bn(&serial).unwrap())
        .unwrap();
    builder.set_subject_name(&name_of(common_name)).unwrap();
    builder.set_pubkey(key).unwrap();
    builder
        .set_not_before(&Asn1Time::from_unix(now + from).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::from_unix(now + until).unwrap())
        .unwrap();
    builder
}
