//! Discovery (RFC 7644 section 4): what the server says it supports, readable without a token.

use crate::support::*;
use serde_json::Value;

async fn unauthenticated(app: &TestApp, path: &str) -> Reply {
    read(app.client.get(app.url(path)).send().await.unwrap()).await
}

#[tokio::test]
async fn the_service_provider_config_advertises_what_the_server_enforces() {
    let app = spawn_app().await;
    let reply = unauthenticated(&app, "/ServiceProviderConfig").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let config = &reply.body;
    assert_eq!(config["patch"]["supported"], true);
    assert_eq!(config["bulk"]["supported"], true);
    assert_eq!(config["bulk"]["maxOperations"], 1000);
    assert_eq!(config["bulk"]["maxPayloadSize"], 1_048_576);
    assert_eq!(config["filter"]["supported"], true);
    assert_eq!(
        config["filter"]["maxResults"],
        scimitar_domain::query::MAX_PAGE_SIZE
    );
    assert_eq!(config["sort"]["supported"], true);
    assert_eq!(config["etag"]["supported"], true);
    assert!(config["authenticationSchemes"]
        .as_array()
        .is_some_and(|schemes| !schemes.is_empty()));
}

#[tokio::test]
async fn resource_types_list_users_with_the_enterprise_extension_groups_and_service_principals() {
    let app = spawn_app().await;
    let reply = unauthenticated(&app, "/ResourceTypes").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let types = reply.resources();
    let find = |name: &str| -> &Value {
        types
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    let user = find("User");
    assert_eq!(user["endpoint"], "/Users");
    assert_eq!(user["schema"], USER_SCHEMA);
    assert_eq!(user["schemaExtensions"][0]["schema"], ENTERPRISE_SCHEMA);
    assert_eq!(user["schemaExtensions"][0]["required"], false);
    assert_eq!(find("Group")["endpoint"], "/Groups");
    assert_eq!(find("ServicePrincipal")["schema"], SERVICE_PRINCIPAL_SCHEMA);
    assert_eq!(reply.total(), 3);
    let one = unauthenticated(&app, "/ResourceTypes/User").await;
    assert_eq!(one.body["endpoint"], "/Users");
    unauthenticated(&app, "/ResourceTypes/Widget")
        .await
        .assert_error(404, None);
}

#[tokio::test]
async fn schemas_describe_each_resource_with_its_attributes() {
    let app = spawn_app().await;
    let reply = unauthenticated(&app, "/Schemas").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    for (urn, attribute) in [
        (USER_SCHEMA, "userName"),
        (ENTERPRISE_SCHEMA, "employeeNumber"),
        (GROUP_SCHEMA, "members"),
        (SERVICE_PRINCIPAL_SCHEMA, "applicationId"),
    ] {
        let schema = reply
            .resources()
            .iter()
            .find(|schema| schema["id"] == urn)
            .unwrap_or_else(|| panic!("{urn} missing"));
        let attributes = schema["attributes"].as_array().unwrap();
        assert!(
            attributes.iter().any(|a| a["name"] == attribute),
            "{urn} lacks {attribute}"
        );
    }
    let user = unauthenticated(&app, &format!("/Schemas/{USER_SCHEMA}")).await;
    let user_name = user.body["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "userName")
        .unwrap()
        .clone();
    assert_eq!(user_name["required"], true);
    assert_eq!(user_name["uniqueness"], "server");
    let password = user.body["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "password")
        .unwrap()
        .clone();
    assert_eq!(password["returned"], "never");
    assert_eq!(password["mutability"], "writeOnly");
}

#[tokio::test]
async fn discovery_is_served_at_the_databricks_mounts_too() {
    let app = spawn_app().await;
    let reply = read(
        app.client
            .get(format!(
                "{}/api/2.0/preview/scim/v2/ServiceProviderConfig",
                app.address
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["etag"]["supported"], true);
}
