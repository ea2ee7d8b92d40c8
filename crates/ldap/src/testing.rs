//! A throwaway OpenLDAP server for tests (built with the `testing` feature): Debian's `slapd`,
//! started in the foreground on a free loopback port with a temporary configuration and
//! database, suffix `dc=example,dc=test`, root `cn=admin,dc=example,dc=test` with password
//! [`ROOT_PASSWORD`], the `memberof` overlay loaded; killed and its files removed on drop.
//! It holds the suffix, `ou=people` and `ou=groups` under it, and a reader
//! ([`READER_DN`], [`READER_PASSWORD`]) to read as, since the root DN is not held to the
//! server's size limit of 5 entries per search (paged searches are unlimited), which the
//! reads must therefore page through.
//!
//! [`Slapd::start_with_tls`] also serves `ldaps://` and StartTLS with a certificate from a
//! [`PrivateCa`], a throwaway certificate authority made with `openssl`'s command line (the
//! sync engine's HTTPS tests use it too).
//!
//! [`Slapd::start`] returns `None` when no `slapd` is installed (a developer's machine), after
//! saying so, unless the environment variable `CI` is set: there a missing `slapd` fails the
//! test, since a CI run that skipped the directory would prove nothing about it (`.ci/run`
//! installs it). `SCIMITAR_SLAPD` names the binary if it is not `/usr/sbin/slapd`.

// Test support: a failure to set the server up is the test's failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ldap3::{Ldap, LdapConnAsync, Mod};
use std::collections::HashSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SUFFIX: &str = "dc=example,dc=test";
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=test";
pub const ROOT_PASSWORD: &str = "secret";
pub const READER_DN: &str = "cn=reader,dc=example,dc=test";
pub const READER_PASSWORD: &str = "reader-secret";
pub const PEOPLE: &str = "ou=people,dc=example,dc=test";
pub const GROUPS: &str = "ou=groups,dc=example,dc=test";

pub struct Slapd {
    child: Child,
    dir: PathBuf,
    /// `ldap://127.0.0.1:port` (StartTLS too, when started with TLS).
    pub url: String,
    /// `ldaps://127.0.0.1:port`, when started with TLS.
    pub ldaps_url: Option<String>,
}

/// An entry to add: its DN and its attributes, each with its values.
pub type Entry<'a> = (&'a str, Vec<(&'a str, Vec<&'a str>)>);

impl Slapd {
    pub async fn start() -> Option<Slapd> {
        Slapd::start_with(None).await
    }

    /// A server that also speaks TLS, with a certificate `ca` issued for `127.0.0.1`.
    pub async fn start_with_tls(ca: &PrivateCa) -> Option<Slapd> {
        Slapd::start_with(Some(ca)).await
    }

    /// A server that speaks TLS as [`Slapd::start_with_tls`] does and demands a client
    /// certificate issued by `ca` (`TLSVerifyClient demand`): a TLS client without one, or
    /// with one from another CA, is refused during the handshake.
    pub async fn start_demanding_client_certificates(ca: &PrivateCa) -> Option<Slapd> {
        Slapd::start_configured(Some(ca), true).await
    }

    async fn start_with(tls: Option<&PrivateCa>) -> Option<Slapd> {
        Slapd::start_configured(tls, false).await
    }

    async fn start_configured(tls: Option<&PrivateCa>, demand_client: bool) -> Option<Slapd> {
        let binary = std::env::var("SCIMITAR_SLAPD").unwrap_or_else(|_| "/usr/sbin/slapd".into());
        if !std::path::Path::new(&binary).exists() {
            let advice = "apt-get install slapd (with debconf's slapd/no_configuration true), \
                          or set SCIMITAR_SLAPD";
            assert!(
                std::env::var_os("CI").is_none(),
                "slapd is not installed at {binary}, and CI must test against it: {advice}"
            );
            eprintln!("skipped: slapd is not installed at {binary} ({advice})");
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "scimitar-slapd-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("db")).expect("a temporary directory for slapd");
        let tls_config = match tls {
            None => String::new(),
            Some(ca) => format!(
                "TLSCACertificateFile {}\nTLSCertificateFile {}\nTLSCertificateKeyFile {}\n{}",
                ca.ca_file.display(),
                ca.certificate_file.display(),
                ca.key_file.display(),
                if demand_client {
                    "TLSVerifyClient demand\n"
                } else {
                    ""
                }
            ),
        };
        let config = format!(
            "{tls_config}include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             moduleload memberof\n\
             pidfile {dir}/slapd.pid\n\
             sizelimit size.soft=5 size.hard=5 size.prtotal=unlimited\n\
             database mdb\n\
             suffix \"{SUFFIX}\"\n\
             rootdn \"{ROOT_DN}\"\n\
             rootpw {ROOT_PASSWORD}\n\
             directory {dir}/db\n\
             maxsize 104857600\n\
             index objectClass eq\n\
             overlay memberof\n",
            dir = dir.display()
        );
        std::fs::write(dir.join("slapd.conf"), config).expect("slapd.conf written");
        let free_port = || {
            TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free port")
                .port()
        };
        let port = free_port();
        let url = format!("ldap://127.0.0.1:{port}");
        let ldaps = tls.map(|_| free_port());
        let ldaps_url = ldaps.map(|port| format!("ldaps://127.0.0.1:{port}"));
        let listeners = match &ldaps_url {
            None => format!("{url}/"),
            Some(ldaps_url) => format!("{url}/ {ldaps_url}/"),
        };
        let child = Command::new(&binary)
            .arg("-f")
            .arg(dir.join("slapd.conf"))
            .arg("-h")
            .arg(listeners)
            .arg("-d")
            .arg("0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("slapd starts");
        let slapd = Slapd {
            child,
            dir,
            url,
            ldaps_url,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        for port in std::iter::once(port).chain(ldaps) {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "slapd did not listen on {port}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        slapd
            .add(&[
                (
                    SUFFIX,
                    vec![
                        ("objectClass", vec!["dcObject", "organization"]),
                        ("o", vec!["example"]),
                        ("dc", vec!["example"]),
                    ],
                ),
                (
                    PEOPLE,
                    vec![
                        ("objectClass", vec!["organizationalUnit"]),
                        ("ou", vec!["people"]),
                    ],
                ),
                (
                    GROUPS,
                    vec![
                        ("objectClass", vec!["organizationalUnit"]),
                        ("ou", vec!["groups"]),
                    ],
                ),
                (
                    READER_DN,
                    vec![
                        (
                            "objectClass",
                            vec!["organizationalRole", "simpleSecurityObject"],
                        ),
                        ("cn", vec!["reader"]),
                        ("userPassword", vec![READER_PASSWORD]),
                    ],
                ),
            ])
            .await;
        Some(slapd)
    }

    /// A connection bound as the root DN, to change the directory.
    pub async fn admin(&self) -> Ldap {
        let (connection, mut ldap) = LdapConnAsync::new(&self.url).await.expect("connect");
        tokio::spawn(async move {
            let _ = connection.drive().await;
        });
        ldap.simple_bind(ROOT_DN, ROOT_PASSWORD)
            .await
            .and_then(|result| result.success())
            .expect("root bind");
        ldap
    }

    pub async fn add(&self, entries: &[Entry<'_>]) {
        let mut ldap = self.admin().await;
        for (dn, attributes) in entries {
            let attributes: Vec<(&str, HashSet<&str>)> = attributes
                .iter()
                .map(|(name, values)| (*name, values.iter().copied().collect()))
                .collect();
            ldap.add(dn, attributes)
                .await
                .and_then(|result| result.success())
                .unwrap_or_else(|error| panic!("adding {dn}: {error}"));
        }
        let _ = ldap.unbind().await;
    }

    pub async fn replace(&self, dn: &str, attribute: &str, values: &[&str]) {
        let mut ldap = self.admin().await;
        ldap.modify(
            dn,
            vec![Mod::Replace(attribute, values.iter().copied().collect())],
        )
        .await
        .and_then(|result| result.success())
        .unwrap_or_else(|error| panic!("modifying {dn}: {error}"));
        let _ = ldap.unbind().await;
    }

    pub async fn delete(&self, dn: &str) {
        let mut ldap = self.admin().await;
        ldap.delete(dn)
            .await
            .and_then(|result| result.success())
            .unwrap_or_else(|error| panic!("deleting {dn}: {error}"));
        let _ = ldap.unbind().await;
    }
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A throwaway certificate authority and one server certificate it issued (for `127.0.0.1`
/// and `localhost`), as PEM files in a temporary directory removed on drop; made with
/// `openssl`'s command line, which every Debian machine with CA certificates has.
///
/// `new` returns `None` when `openssl` is missing, after saying so, except under `CI`, where
/// that fails the test.
pub struct PrivateCa {
    dir: PathBuf,
    /// The CA's certificate: what a client given `ca_file` trusts.
    pub ca_file: PathBuf,
    /// The server's certificate and its key.
    pub certificate_file: PathBuf,
    pub key_file: PathBuf,
}

impl PrivateCa {
    pub fn new() -> Option<PrivateCa> {
        if Command::new("openssl")
            .arg("version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            assert!(
                std::env::var_os("CI").is_none(),
                "openssl is not installed, and CI must test TLS: apt-get install openssl"
            );
            eprintln!("skipped: openssl is not installed (apt-get install openssl)");
            return None;
        }
        let name = format!(
            "scimitar-ca-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        // Each CA its own name, so that one is never taken for another's issuer.
        let subject = format!("/CN=Scimitar test CA {name}");
        let dir = std::env::temp_dir().join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory for the CA");
        let openssl = |arguments: &[&str]| {
            let output = Command::new("openssl")
                .args(arguments)
                .current_dir(&dir)
                .output()
                .expect("openssl runs");
            assert!(
                output.status.success(),
                "openssl {arguments:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    &subject,
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ],
            ]
            .concat(),
        );
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
             basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\n",
        )
        .expect("server.ext written");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        Some(PrivateCa {
            ca_file: dir.join("ca.pem"),
            certificate_file: dir.join("server.pem"),
            key_file: dir.join("server.key"),
            dir,
        })
    }
}

impl PrivateCa {
    /// A client certificate this CA issues (for mutual TLS), as PEM files in the CA's
    /// directory: the certificate and its key.
    pub fn client_certificate(&self, name: &str) -> (PathBuf, PathBuf) {
        let openssl = |arguments: &[&str]| {
            let output = Command::new("openssl")
                .args(arguments)
                .current_dir(&self.dir)
                .output()
                .expect("openssl runs");
            assert!(
                output.status.success(),
                "openssl {arguments:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let (key, csr, certificate, extensions) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ]);
        std::fs::write(
            self.dir.join(&extensions),
            "basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\n\
             extendedKeyUsage=clientAuth\n",
        )
        .expect("the client certificate's extensions written");
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &certificate,
            "-days",
            "2",
            "-extfile",
            &extensions,
        ]);
        (self.dir.join(certificate), self.dir.join(key))
    }
}

impl Drop for PrivateCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
