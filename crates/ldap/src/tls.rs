//! How a read reaches the directory: TLS from the start (`ldaps://`), upgraded by StartTLS
//! (`ldap://` with `starttls`), or plain, which is allowed only where nothing crosses a
//! network (a Unix socket, a loopback address) or where the configuration says so in as many
//! words (`allow_insecure`).
//!
//! Plain LDAP to another host is refused by default, bound or not: the bind password would
//! travel in clear, and, worse for a provisioning source, anyone on the path could rewrite the
//! answers and put themselves in a group the job hands privileges to. The directory's
//! certificate is checked against the certificate authorities in `ca_file` alone when it is
//! set (a directory's certificate is nearly always issued by a private CA, which should not
//! share its say with every public one), else against the system's trust store.

use crate::{DirectoryConfig, DirectoryError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::net::IpAddr;
use std::sync::Arc;

/// What the configuration asks of the connection, checked.
pub(crate) struct Transport {
    /// Upgrade an `ldap://` connection with StartTLS before anything else is sent.
    pub starttls: bool,
    /// The TLS client's settings when `ca_file` names the CAs to trust; `None` leaves the
    /// system's trust store (and plain connections) to `ldap3`.
    pub client_config: Option<Arc<rustls::ClientConfig>>,
}

enum Scheme {
    Plain,
    Tls,
    Socket,
}

impl Transport {
    /// Checks the URL and the TLS settings together, before any connection is made.
    pub(crate) fn of(config: &DirectoryConfig) -> Result<Transport, DirectoryError> {
        let refuse = |reason: String| Err(DirectoryError::Config(reason));
        let url = config.url.as_str();
        let lower = url.to_ascii_lowercase();
        let (scheme, rest) = if let Some(rest) = lower.strip_prefix("ldaps://") {
            (Scheme::Tls, rest)
        } else if let Some(rest) = lower.strip_prefix("ldap://") {
            (Scheme::Plain, rest)
        } else if let Some(rest) = lower.strip_prefix("ldapi://") {
            (Scheme::Socket, rest)
        } else {
            return refuse(format!(
                "url {url:?} is not an ldap://, ldaps:// or ldapi:// URL"
            ));
        };
        match scheme {
            Scheme::Socket if config.starttls || config.ca_file.is_some() => {
                return refuse(format!(
                    "{url} is a local socket: starttls and ca_file do not apply to it"
                ))
            }
            Scheme::Tls if config.starttls => {
                return refuse(format!(
                    "{url} is TLS from the start; starttls is for ldap:// URLs"
                ))
            }
            Scheme::Plain if !config.starttls && config.ca_file.is_some() => {
                return refuse(format!(
                    "ca_file is set but {url} is plain LDAP: use ldaps:// or starttls = true"
                ))
            }
            Scheme::Plain if !config.starttls && !config.allow_insecure && !is_loopback(rest) => {
                return refuse(format!(
                    "{url} is plain LDAP over the network, where anyone on the path can read \
                     the bind password and change the answers (who is in which group): use \
                     ldaps:// or starttls = true (with ca_file for a private CA), or set \
                     allow_insecure = true to accept that"
                ))
            }
            _ => {}
        }
        let client_config = match &config.ca_file {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path).map_err(|error| {
                    DirectoryError::Config(format!("ca_file {}: {error}", path.display()))
                })?;
                Some(Arc::new(client_config_trusting(&pem).map_err(
                    |reason| {
                        DirectoryError::Config(format!("ca_file {}: {reason}", path.display()))
                    },
                )?))
            }
        };
        Ok(Transport {
            starttls: config.starttls,
            client_config,
        })
    }
}

/// A TLS client that trusts the certificates of `pem` (one or more `CERTIFICATE` blocks) and
/// nothing else, with rustls' safe defaults and the `ring` provider, chosen here rather than
/// left to a process-wide default. rustls marks ring's provider deprecated since it has no
/// post-quantum key exchange; that needs aws-lc-rs, a second crypto library to build, which the
/// HTTP client does not use either.
#[allow(deprecated)]
fn client_config_trusting(pem: &[u8]) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(pem) {
        let certificate =
            certificate.map_err(|error| format!("not a PEM certificate bundle: {error}"))?;
        roots
            .add(certificate)
            .map_err(|error| format!("a certificate that cannot be a trust anchor: {error}"))?;
    }
    if roots.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Whether the authority part of an `ldap://` URL (`host:port/...`) names this machine: a
/// loopback address or `localhost`, or no host at all (which `ldap3` takes as `localhost`).
fn is_loopback(rest: &str) -> bool {
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _port)| host),
    };
    host.is_empty()
        || host == "localhost"
        || host
            .parse::<IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// A connection that failed, said plainly: a certificate the client does not trust is told
/// apart from a directory that cannot be reached, since the fix differs (`ca_file`).
pub(crate) fn connect_error(url: &str, error: ldap3::LdapError) -> DirectoryError {
    let tls = match &error {
        ldap3::LdapError::Io { source } => source
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    match tls {
        Some(rustls::Error::InvalidCertificate(reason)) => DirectoryError::UntrustedCertificate {
            url: url.to_string(),
            reason: format!("{reason:?}"),
        },
        Some(other) => DirectoryError::Tls {
            url: url.to_string(),
            reason: other.to_string(),
        },
        None => DirectoryError::Unreachable {
            url: url.to_string(),
            reason: error.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn config(url: &str) -> DirectoryConfig {
        crate::tests::config_of(url, crate::Flavor::Openldap)
    }

    fn refusal(config: &DirectoryConfig) -> String {
        match Transport::of(config) {
            Err(DirectoryError::Config(reason)) => reason,
            Err(other) => panic!("not a configuration error: {other}"),
            Ok(_) => panic!("{} was accepted", config.url),
        }
    }

    #[test]
    fn plain_ldap_to_another_host_is_refused_unless_allowed() {
        let reason = refusal(&config("ldap://dc1.example.com:389"));
        assert!(reason.contains("ldaps://"), "{reason}");
        assert!(reason.contains("allow_insecure"), "{reason}");
        let mut allowed = config("ldap://dc1.example.com:389");
        allowed.allow_insecure = true;
        assert!(Transport::of(&allowed).is_ok());
        for here in [
            "ldap://127.0.0.1:3890",
            "ldap://localhost",
            "ldap://[::1]:389/",
            "ldap:///",
            "ldapi://%2Frun%2Fslapd%2Fldapi",
            "ldaps://dc1.example.com",
        ] {
            assert!(Transport::of(&config(here)).is_ok(), "{here}");
        }
        let mut upgraded = config("ldap://dc1.example.com");
        upgraded.starttls = true;
        assert!(Transport::of(&upgraded).is_ok());
    }

    #[test]
    fn tls_settings_that_cannot_apply_are_refused() {
        let mut both = config("ldaps://dc1.example.com");
        both.starttls = true;
        assert!(refusal(&both).contains("starttls"));
        let mut ca_without_tls = config("ldap://127.0.0.1");
        ca_without_tls.ca_file = Some("/ca.pem".into());
        assert!(refusal(&ca_without_tls).contains("ca_file"));
        let mut socket = config("ldapi://%2Frun%2Fldapi");
        socket.starttls = true;
        assert!(refusal(&socket).contains("socket"));
        assert!(refusal(&config("http://dc1")).contains("not an ldap://"));
    }

    #[test]
    fn a_ca_file_without_a_certificate_is_refused_naming_it() {
        let directory =
            std::env::temp_dir().join(format!("scimitar-ldap-ca-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let mut with_ca = config("ldaps://dc1.example.com");
        with_ca.ca_file = Some(path.clone());
        let reason = refusal(&with_ca);
        assert!(
            reason.contains("empty.pem") && reason.contains("no PEM"),
            "{reason}"
        );
        with_ca.ca_file = Some(directory.join("absent.pem"));
        assert!(refusal(&with_ca).contains("absent.pem"));
        let _ = std::fs::remove_dir_all(&directory);
    }
}
