//! Discovery (RFC 7644 section 4): `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`,
//! generated from the same schema tables and limits the server enforces, so they describe
//! exactly what it does. They need no token: they describe the server, not its data.

use super::bulk::{MAX_BULK_OPERATIONS, MAX_BULK_PAYLOAD_BYTES};
use crate::context::AddressedAccount;
use crate::error::{scim_json, ApiResult};
use axum::extract::Path;
use axum::http::StatusCode;
use scimitar_domain::query::MAX_PAGE_SIZE;
use scimitar_domain::schema::{
    AttributeDef, Mutability, PrincipalKind, ResourceTypeDef, SchemaDef, ALL_SCHEMAS,
    LIST_RESPONSE_SCHEMA, RESOURCE_TYPE_SCHEMA, SCHEMA_SCHEMA, SERVICE_PROVIDER_CONFIG_SCHEMA,
};
use scimitar_domain::ScimError;
use serde_json::{json, Map, Value};

pub async fn service_provider_config(addressed: AddressedAccount) -> ApiResult {
    Ok(scim_json(
        StatusCode::OK,
        json!({
            "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
            "documentationUri": "https://github.com/scimitar-dev/scimitar",
            "patch": {"supported": true},
            "bulk": {
                "supported": true,
                "maxOperations": MAX_BULK_OPERATIONS,
                "maxPayloadSize": MAX_BULK_PAYLOAD_BYTES,
            },
            "filter": {"supported": true, "maxResults": MAX_PAGE_SIZE},
            "changePassword": {"supported": true},
            "sort": {"supported": true},
            "etag": {"supported": true},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "A Scimitar API token sent as 'Authorization: Bearer <token>'.",
                "primary": true,
            }],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": format!("{}/ServiceProviderConfig", addressed.base_url),
            },
        }),
    ))
}

fn resource_type_document(resource_type: &ResourceTypeDef, base_url: &str) -> Value {
    let extensions: Vec<Value> = resource_type
        .extensions
        .iter()
        .map(|(schema, required)| json!({"schema": schema.id, "required": required}))
        .collect();
    let mut document = json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": resource_type.name,
        "name": resource_type.name,
        "endpoint": resource_type.endpoint,
        "description": resource_type.description,
        "schema": resource_type.schema.id,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{base_url}/ResourceTypes/{}", resource_type.name),
        },
    });
    if !extensions.is_empty() {
        document["schemaExtensions"] = Value::Array(extensions);
    }
    document
}

fn list_of(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

pub async fn resource_types(addressed: AddressedAccount) -> ApiResult {
    let documents = PrincipalKind::ALL
        .iter()
        .map(|kind| resource_type_document(kind.resource_type(), &addressed.base_url))
        .collect();
    Ok(scim_json(StatusCode::OK, list_of(documents)))
}

pub async fn resource_type(
    addressed: AddressedAccount,
    Path(params): Path<std::collections::HashMap<String, String>>,
) -> ApiResult {
    let name = params.get("name").map(String::as_str).unwrap_or_default();
    let kind = PrincipalKind::ALL
        .into_iter()
        .find(|kind| kind.resource_type().name == name)
        .ok_or_else(|| ScimError::NotFound(format!("resource type {name} not found")))?;
    Ok(scim_json(
        StatusCode::OK,
        resource_type_document(kind.resource_type(), &addressed.base_url),
    ))
}

fn attribute_document(attribute: &AttributeDef) -> Value {
    let mut document = Map::new();
    document.insert("name".into(), json!(attribute.name));
    document.insert("type".into(), json!(attribute.kind.as_str()));
    document.insert("multiValued".into(), json!(attribute.multi_valued));
    // The limits a write is held to, in words: RFC 7643 has no field for a maximum length.
    let limits = attribute.limits_text();
    let description = if limits.is_empty() || attribute.mutability == Mutability::ReadOnly {
        attribute.description.to_string()
    } else {
        format!("{} {limits}", attribute.description)
    };
    document.insert("description".into(), json!(description));
    document.insert("required".into(), json!(attribute.required));
    document.insert("caseExact".into(), json!(attribute.case_exact));
    document.insert("mutability".into(), json!(attribute.mutability.as_str()));
    document.insert("returned".into(), json!(attribute.returned.as_str()));
    document.insert("uniqueness".into(), json!(attribute.uniqueness.as_str()));
    if !attribute.canonical_values.is_empty() {
        document.insert("canonicalValues".into(), json!(attribute.canonical_values));
    }
    if !attribute.reference_types.is_empty() {
        document.insert("referenceTypes".into(), json!(attribute.reference_types));
    }
    if attribute.is_complex() {
        let subs: Vec<Value> = attribute
            .sub_attributes
            .iter()
            .map(attribute_document)
            .collect();
        document.insert("subAttributes".into(), Value::Array(subs));
    }
    Value::Object(document)
}

fn schema_document(schema: &SchemaDef, base_url: &str) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": schema.id,
        "name": schema.name,
        "description": schema.description,
        "attributes": schema.attributes.iter().map(attribute_document).collect::<Vec<_>>(),
        "meta": {
            "resourceType": "Schema",
            "location": format!("{base_url}/Schemas/{}", schema.id),
        },
    })
}

pub async fn schemas(addressed: AddressedAccount) -> ApiResult {
    let documents = ALL_SCHEMAS
        .iter()
        .map(|schema| schema_document(schema, &addressed.base_url))
        .collect();
    Ok(scim_json(StatusCode::OK, list_of(documents)))
}

pub async fn schema(
    addressed: AddressedAccount,
    Path(params): Path<std::collections::HashMap<String, String>>,
) -> ApiResult {
    let id = params.get("name").map(String::as_str).unwrap_or_default();
    let schema = ALL_SCHEMAS
        .iter()
        .find(|schema| schema.id.eq_ignore_ascii_case(id))
        .ok_or_else(|| ScimError::NotFound(format!("schema {id} not found")))?;
    Ok(scim_json(
        StatusCode::OK,
        schema_document(schema, &addressed.base_url),
    ))
}
