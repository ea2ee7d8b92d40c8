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
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
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
            Scheme::Socket if config.client_cert_file.is_some() => {
                return refuse(format!(
                    "{url} is a local socket: client_cert_file does not apply to it"
                ))
            }
            Scheme::Plain if !config.starttls && config.ca_file.is_some() => {
                return refuse(format!(
                    "ca_file is set but {url} is plain LDAP: use ldaps:// or starttls = true"
                ))
            }
            Scheme::Plain if !config.starttls && config.client_cert_file.is_some() => {
                return refuse(format!(
                    "client_cert_file is set but {url} is plain LDAP: use ldaps:// or \
                     starttls = true"
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
        let identity = client_identity(config)?;
        let client_config = match (&config.ca_file, identity) {
            (None, None) => None,
            (ca_file, identity) => {
                let roots = match ca_file {
                    Some(path) => {
                        let pem = std::fs::read(path).map_err(|error| {
                            DirectoryError::Config(format!("ca_file {}: {error}", path.display()))
                        })?;
                        roots_of(&pem).map_err(|reason| {
                            DirectoryError::Config(format!("ca_file {}: {reason}", path.display()))
                        })?
                    }
                    None => system_roots(),
                };
                Some(Arc::new(client_config_with(roots, identity)?))
            }
        };
        Ok(Transport {
            starttls: config.starttls,
            client_config,
        })
    }
}

/// The certificate chain and private key this client presents (mutual TLS), read from
/// `client_cert_file` and `client_key_file`; `None` when neither is set. A file that cannot be
/// read or parsed stops the read before anything is sent, naming the file and never quoting
/// what it holds (the key).
fn client_identity(config: &DirectoryConfig) -> Result<Option<ClientIdentity>, DirectoryError> {
    let refuse = |reason: String| Err(DirectoryError::Config(reason));
    let (certificate_path, key_path) = match (&config.client_cert_file, &config.client_key_file) {
        (None, None) => return Ok(None),
        (Some(certificate), Some(key)) => (certificate, key),
        (Some(_), None) => return refuse("client_cert_file needs client_key_file".into()),
        (None, Some(_)) => return refuse("client_key_file needs client_cert_file".into()),
    };
    let certificate_pem = std::fs::read(certificate_path).map_err(|error| {
        DirectoryError::Config(format!(
            "client_cert_file {}: {error}",
            certificate_path.display()
        ))
    })?;
    let chain = CertificateDer::pem_slice_iter(&certificate_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| {
            DirectoryError::Config(format!(
                "client_cert_file {}: not a PEM certificate chain: {error}",
                certificate_path.display()
            ))
        })?;
    if chain.is_empty() {
        return refuse(format!(
            "client_cert_file {}: holds no PEM certificate",
            certificate_path.display()
        ));
    }
    let key_pem = std::fs::read(key_path).map_err(|error| {
        DirectoryError::Config(format!("client_key_file {}: {error}", key_path.display()))
    })?;
    // The parser's error names what is wrong with the file, not its content.
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| {
        DirectoryError::Config(format!(
            "client_key_file {}: no PEM private key: {error}",
            key_path.display()
        ))
    })?;
    Ok(Some(ClientIdentity { chain, key }))
}

/// A client certificate chain and its private key.
struct ClientIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// The trust anchors of `pem` (one or more `CERTIFICATE` blocks), and nothing else.
fn roots_of(pem: &[u8]) -> Result<rustls::RootCertStore, String> {
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
    Ok(roots)
}

/// The system's trust store, as `ldap3` uses it when given no TLS settings: needed here only
/// when a client certificate is configured without `ca_file`. Certificates the store holds
/// that rustls cannot use are skipped, as `ldap3` skips them.
fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    roots
}

/// A TLS client that trusts `roots` and nothing else, presenting `identity` when the directory
/// asks for a certificate, with rustls' safe defaults and the `ring` provider, chosen here
/// rather than left to a process-wide default. rustls marks ring's provider deprecated since
/// it has no post-quantum key exchange; that needs aws-lc-rs, a second crypto library to
/// build, which the HTTP client does not use either.
#[allow(deprecated)]
fn client_config_with(
    roots: rustls::RootCertStore,
    identity: Option<ClientIdentity>,
) -> Result<rustls::ClientConfig, DirectoryError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| DirectoryError::Config(error.to_string()))?
        .with_root_certificates(roots);
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some(ClientIdentity { chain, key }) => {
            builder.with_client_auth_cert(chain, key).map_err(|error| {
                DirectoryError::Config(format!(
                    "client_cert_file and client_key_file do not make a usable client \
                     certificate: {error}"
                ))
            })
        }
    }
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
    match rustls_error(&error) {
        Some(rustls::Error::InvalidCertificate(reason)) => DirectoryError::UntrustedCertificate {
            url: url.to_string(),
            reason: format!("{reason:?}"),
        },
        Some(rustls::Error::AlertReceived(alert)) if refuses_client_certificate(alert) => {
            DirectoryError::ClientCertificateRefused {
                url: url.to_string(),
                reason: format!("{alert:?}"),
            }
        }
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

/// The TLS error under an `ldap3` error, if that is what it is.
fn rustls_error(error: &ldap3::LdapError) -> Option<&rustls::Error> {
    match error {
        ldap3::LdapError::Io { source } => source
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        _ => None,
    }
}

/// The alerts a server sends when it wants a client certificate it did not get, or does not
/// trust the one it got.
fn refuses_client_certificate(alert: &rustls::AlertDescription) -> bool {
    use rustls::AlertDescription::*;
    matches!(
        alert,
        CertificateRequired
            | BadCertificate
            | UnknownCA
            | UnsupportedCertificate
            | CertificateUnknown
            | AccessDenied
            | HandshakeFailure
    )
}

/// A failed bind or operation right after the TLS handshake: under TLS 1.3 the server checks
/// the client's certificate after the client thinks the handshake is done, so its refusal
/// arrives as the first answer's failure. Said as such rather than as a refused bind.
/// A directory that checks client certificates with GnuTLS (Debian's slapd) sends no alert:
/// it closes the connection, which rustls reports as an end of stream without `close_notify`.
/// Right after a TLS handshake, before any answer, that is the refusal too.
pub(crate) fn client_certificate_refusal(
    url: &str,
    error: &ldap3::LdapError,
    over_tls: bool,
) -> Option<DirectoryError> {
    let refusal = |reason: String| {
        Some(DirectoryError::ClientCertificateRefused {
            url: url.to_string(),
            reason,
        })
    };
    if let Some(rustls::Error::AlertReceived(alert)) = rustls_error(error) {
        return match refuses_client_certificate(alert) {
            true => refusal(format!("{alert:?}")),
            false => None,
        };
    }
    match error {
        ldap3::LdapError::Io { source }
            if over_tls && source.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            refusal("the connection was closed without a TLS close_notify".into())
        }
        _ => None,
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
    fn a_client_certificate_needs_its_key_and_tls_and_files_that_read() {
        let mut alone = config("ldaps://dc1.example.com");
        alone.client_cert_file = Some("/client.pem".into());
        assert!(refusal(&alone).contains("needs client_key_file"));
        let mut key_alone = config("ldaps://dc1.example.com");
        key_alone.client_key_file = Some("/client.key".into());
        assert!(refusal(&key_alone).contains("needs client_cert_file"));
        let mut plain = config("ldap://127.0.0.1");
        plain.client_cert_file = Some("/client.pem".into());
        plain.client_key_file = Some("/client.key".into());
        assert!(refusal(&plain).contains("plain LDAP"));

        let directory =
            std::env::temp_dir().join(format!("scimitar-ldap-client-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let certificate = directory.join("client.pem");
        std::fs::write(&certificate, "not a certificate\n").unwrap();
        let key = directory.join("client.key");
        let secret =
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n";
        std::fs::write(&key, secret).unwrap();
        let mut files = config("ldaps://dc1.example.com");
        files.client_cert_file = Some(certificate.clone());
        files.client_key_file = Some(directory.join("absent.key"));
        let reason = refusal(&files);
        assert!(
            reason.contains("client.pem") && reason.contains("no PEM"),
            "{reason}"
        );
        std::fs::write(&certificate, CERTIFICATE).unwrap();
        let reason = refusal(&files);
        assert!(
            reason.contains("client_key_file") && reason.contains("absent.key"),
            "{reason}"
        );
        files.client_key_file = Some(key);
        let reason = refusal(&files);
        // Whatever is wrong with the key, its content is never in the message.
        assert!(!reason.contains("c2VjcmV0"), "{reason}");
        let _ = std::fs::remove_dir_all(&directory);
    }

    /// A self-signed certificate (P-256), to stand in a client certificate file.
    const CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----
MIIBeTCCAR+gAwIBAgIUPJ7S8m8ymQ3g1k5lJ7Vu0Yy3n6AwCgYIKoZIzj0EAwIw
EjEQMA4GA1UEAwwHY2xpZW50MB4XDTI2MDEwMTAwMDAwMFoXDTM2MDEwMTAwMDAw
MFowEjEQMA4GA1UEAwwHY2xpZW50MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
-----END CERTIFICATE-----
";

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
