//! A throwaway OpenLDAP server for tests (built with the `testing` feature): Debian's `slapd`,
//! started in the foreground on a free loopback port with a temporary configuration and
//! database, suffix `dc=example,dc=test`, root `cn=admin,dc=example,dc=test` with password
//! [`ROOT_PASSWORD`], the `memberof` overlay loaded; killed and its files removed on drop.
//! It holds the suffix, `ou=people` and `ou=groups` under it, and a reader
//! ([`READER_DN`], [`READER_PASSWORD`]) to read as, since the root DN is not held to the
//! server's size limit of 5 entries per search (paged searches are unlimited), which the
//! reads must therefore page through.
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
    pub url: String,
}

/// An entry to add: its DN and its attributes, each with its values.
pub type Entry<'a> = (&'a str, Vec<(&'a str, Vec<&'a str>)>);

impl Slapd {
    pub async fn start() -> Option<Slapd> {
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
        let config = format!(
            "include /etc/ldap/schema/core.schema\n\
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
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let url = format!("ldap://127.0.0.1:{port}");
        let child = Command::new(&binary)
            .arg("-f")
            .arg(dir.join("slapd.conf"))
            .arg("-h")
            .arg(format!("{url}/"))
            .arg("-d")
            .arg("0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("slapd starts");
        let slapd = Slapd { child, dir, url };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "slapd did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
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
