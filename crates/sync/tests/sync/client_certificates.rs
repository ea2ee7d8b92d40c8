//! Client certificates (mutual TLS) for SCIM sources, targets and a Scimitar source's change
//! feed: a TLS front that demands a certificate its CA issued, before an in-process Scimitar.

use super::*;
use scimitar_sync::scim::TlsFiles;

/// A source and a target behind TLS fronts that demand a client certificate from `ca`: synced
/// presenting one `ca` issued (and the source's change feed read with it); refused, saying so
/// and at once, presenting none or one from another CA; and a key file that cannot be read is
/// refused when the job is built.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_presented_to_services_that_demand_them() {
    let (Some(ca), Some(other_ca)) = (PrivateCa::new(), PrivateCa::new()) else {
        return;
    };
    let (certificate, key) = ca.client_certificate("sync-job");
    let (other_certificate, other_key) = other_ca.client_certificate("stranger");
    let source = seeded_source().await;
    let target = Scimitar::start().await;
    let source_front = TlsFront::start_checking_clients(&source.address, &ca, Some(&ca)).await;
    let target_front = TlsFront::start_checking_clients(&target.address, &ca, Some(&ca)).await;
    let tls = |client: Option<(&std::path::Path, &std::path::Path)>| TlsFiles {
        ca_file: Some(ca.ca_file.clone()),
        client_cert_file: client.map(|(certificate, _)| certificate.to_path_buf()),
        client_key_file: client.map(|(_, key)| key.to_path_buf()),
    };
    let presenting = tls(Some((&certificate, &key)));
    let over_https = |front: &TlsFront, token: &str, tls: &TlsFiles| {
        endpoint(
            &format!("{}{GENERIC}", front.address),
            token,
            Profile::Generic,
        )
        .with_tls(tls)
        .expect("the TLS files")
    };
    let state = StateDatabase::sqlite().await;
    let job_to = |target_endpoint: ScimEndpoint| Job {
        source: Source::Scim(over_https(&source_front, &source.token, &presenting)),
        ..job(&source, target_endpoint, &[])
    };
    let strangers = tls(Some((&other_certificate, &other_key)));
    for (which, tls) in [("no", tls(None)), ("another CA's", strangers)] {
        let refused = run(
            &job_to(over_https(&target_front, &target.token, &tls)),
            &*state.store,
            &SystemClock,
            Mode::Apply,
        )
        .await;
        let Err(SyncError::Target(message)) = refused else {
            panic!("{which} client certificate: {refused:?}");
        };
        assert!(
            message.contains("refused this client's TLS certificate"),
            "{which}: {message}"
        );
        assert!(message.contains("client_cert_file"), "{which}: {message}");
    }
    assert!(target.find("Users", "userName", "ada").await.is_empty());

    let job = job_to(over_https(&target_front, &target.token, &presenting));
    let first = apply(&job, &state).await;
    assert_eq!(first.exit_code(), 0, "{:#?}", first.failures);
    assert_eq!(first.plan.creates.len(), 5);
    assert_eq!(target.member_names("platform").await, ["ADA", "BOB"]);

    // The change feed of a source behind the same front, with and without the certificate.
    let feed_url =
        scimitar_sync::config::changes_url_of(&format!("{}{GENERIC}", source_front.address))
            .expect("a Scimitar SCIM URL");
    let feed = ChangeFeed::new(&feed_url, Secret::new(&source.token));
    let token = feed
        .clone()
        .with_tls(&presenting)
        .expect("the TLS files")
        .current()
        .await
        .expect("the feed answers a client with the certificate");
    assert!(token > 0);
    assert!(feed
        .with_tls(&tls(None))
        .expect("the TLS files")
        .current()
        .await
        .is_err());

    // A key file that cannot be read stops the job being built, naming the file.
    let error = endpoint(&target_front.address, &target.token, Profile::Generic)
        .with_tls(&TlsFiles {
            client_key_file: Some(key.with_file_name("absent.key")),
            ..presenting.clone()
        })
        .expect_err("refused");
    assert!(
        error.contains("client_key_file") && error.contains("absent.key"),
        "{error}"
    );
    state.close().await;
}
