//! Creates sent in SCIM Bulk requests (RFC 7644 section 3.7) where a target advertises Bulk
//! and the job allows it (`[target] bulk`): many creates per round trip instead of one.
//!
//! Bulk is not a transaction: each operation of a Bulk answer stands alone. So an operation
//! that failed is that item's failure and the others stand, a 409 goes through the same
//! adopt-on-conflict rule as a single create ([`ScimEndpoint::existing_on_conflict`]), and an
//! operation the answer does not mention (a target that stopped early) is that item's failure,
//! retried by the next run like any other. Requests are cut to the target's `maxOperations`
//! and `maxPayloadSize`; a create too large for any Bulk request is sent alone.
//!
//! Each operation carries a `bulkId` naming its item's place in the list, so answers are
//! matched by id, never by their order. A target that advertises Bulk but refuses the request
//! itself (404, 405, 413, 501) is sent that request's creates one at a time.

use crate::model::Kind;
use crate::pace::each_limited;
use crate::scim::{create_body, Created, HttpFailure, ScimEndpoint};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

const BULK_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// Whether a job may write to a target in Bulk requests.
///
/// `auto` is the default because it measured best against a Scimitar target (whose `/Bulk`
/// runs independent creates together, sharing commits): at 10,000 users on a loaded machine,
/// 16.4 s for the initial sync against 32.8 s with one request per create (BENCHMARKS.md,
/// "Issue 17: sync at scale"). A target that does not advertise Bulk is unaffected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BulkSetting {
    /// Creates go in Bulk requests when the target's `/ServiceProviderConfig` says
    /// `bulk.supported`, one request per create otherwise.
    #[default]
    Auto,
    /// One request per create, whatever the target advertises.
    Off,
}

/// How large one Bulk request to a target may be, from its `/ServiceProviderConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkLimits {
    pub max_operations: usize,
    /// In bytes, of the whole request body.
    pub max_payload_size: usize,
}

impl BulkLimits {
    /// The limits a `/ServiceProviderConfig` document advertises; `None` when it does not
    /// support Bulk or gives no usable limits (a service that says nothing of its limits is
    /// not written to in Bulk: a guess that is too large fails every item).
    pub fn advertised(config: &Value) -> Option<BulkLimits> {
        let bulk = &config["bulk"];
        if bulk["supported"].as_bool() != Some(true) {
            return None;
        }
        let positive = |name: &str| {
            bulk[name]
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n > 0)
        };
        Some(BulkLimits {
            max_operations: positive("maxOperations")?,
            max_payload_size: positive("maxPayloadSize")?,
        })
    }
}

/// The Bulk limits a job writes to `target` with: `None` (one request per create) when its
/// setting is off, when it does not advertise Bulk, or when its `/ServiceProviderConfig`
/// cannot be read (single requests still work then).
pub async fn limits_for(target: &ScimEndpoint) -> Option<BulkLimits> {
    if target.bulk_setting() == BulkSetting::Off {
        return None;
    }
    match target
        .send(reqwest::Method::GET, "ServiceProviderConfig", None)
        .await
    {
        Ok((_, config)) => BulkLimits::advertised(&config),
        Err(failure) => {
            tracing::info!(%failure, "no Bulk: /ServiceProviderConfig unreadable");
            None
        }
    }
}

/// One create, as `apply` plans it.
#[derive(Debug, Clone)]
pub struct CreateRequest<'a> {
    pub kind: Kind,
    pub attributes: &'a BTreeMap<String, Value>,
    pub active: Option<bool>,
    /// Target ids of a group's members, created with it.
    pub members: Vec<String>,
}

/// The envelope of a Bulk request around its operations, in bytes (schemas, the key, the
/// brackets), with room to spare.
const ENVELOPE_BYTES: usize = 128;

/// Cuts operations of `sizes` bytes into consecutive requests of at most `limits`: each
/// range is one request (a range of one operation larger than the payload limit by itself is
/// sent without Bulk). Pure, so the cutting is tested without a server.
pub fn batches(sizes: &[usize], limits: BulkLimits) -> Vec<Range<usize>> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut bytes = ENVELOPE_BYTES;
    for (index, size) in sizes.iter().enumerate() {
        // One more operation and its separating comma.
        let grown = bytes + size + 1;
        let full = index - start >= limits.max_operations || grown > limits.max_payload_size;
        if full && index > start {
            batches.push(start..index);
            start = index;
            bytes = ENVELOPE_BYTES + size + 1;
        } else {
            bytes = grown;
        }
    }
    if start < sizes.len() {
        batches.push(start..sizes.len());
    }
    batches
}

/// Makes `creates`, in Bulk requests cut to `limits`, up to the target's `max_concurrency`
/// requests in flight; answers in the order of `creates`.
pub async fn create_all(
    target: &ScimEndpoint,
    creates: &[CreateRequest<'_>],
    limits: BulkLimits,
) -> Vec<Result<Created, HttpFailure>> {
    let operations: Vec<Value> = creates
        .iter()
        .enumerate()
        .map(|(index, create)| {
            json!({
                "method": "POST",
                "path": format!("/{}", create.kind.endpoint()),
                "bulkId": index.to_string(),
                "data": create_body(create.kind, create.attributes, create.active, &create.members),
            })
        })
        .collect();
    let sizes: Vec<usize> = operations.iter().map(|op| op.to_string().len()).collect();
    let requests = batches(&sizes, limits)
        .into_iter()
        .map(|range| send_batch(target, creates, &operations, range, limits))
        .collect();
    each_limited(requests, target.limits().max_concurrency)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// One Bulk request of the operations in `range` (a lone operation too large for Bulk goes as
/// a plain create); its answers in the order of `range`.
async fn send_batch(
    target: &ScimEndpoint,
    creates: &[CreateRequest<'_>],
    operations: &[Value],
    range: Range<usize>,
    limits: BulkLimits,
) -> Vec<Result<Created, HttpFailure>> {
    let ops = &operations[range.clone()];
    if ops.len() == 1 && ops[0].to_string().len() + ENVELOPE_BYTES > limits.max_payload_size {
        let create = &creates[range.start];
        return vec![
            target
                .create(
                    create.kind,
                    create.attributes,
                    create.active,
                    &create.members,
                )
                .await,
        ];
    }
    let body = json!({"schemas": [BULK_REQUEST_SCHEMA], "Operations": ops});
    let answers = match target
        .send(reqwest::Method::POST, "Bulk", Some(&body))
        .await
    {
        Ok((_, answer)) => answers_by_bulk_id(&answer),
        // A target that advertises Bulk but refuses the request itself (no such endpoint,
        // not implemented, too large after all) still takes the creates one by one.
        Err(failure) if failure.status.is_some_and(bulk_itself_refused) => {
            tracing::info!(%failure, "Bulk refused: creating one at a time");
            let singles = creates[range]
                .iter()
                .map(|create| {
                    target.create(
                        create.kind,
                        create.attributes,
                        create.active,
                        &create.members,
                    )
                })
                .collect();
            return each_limited(singles, target.limits().max_concurrency).await;
        }
        Err(failure) => return range.map(|_| Err(failure.clone())).collect(),
    };
    let mut results = Vec::with_capacity(range.len());
    for index in range {
        let create = &creates[index];
        let result = match answers.get(&index.to_string()) {
            None => Err(HttpFailure {
                status: None,
                message: "the Bulk response did not answer this operation".into(),
            }),
            Some(Answer::Created(id)) => Ok(Created::New(id.clone())),
            Some(Answer::Failed(failure)) => {
                target
                    .existing_on_conflict(create.kind, create.attributes, failure.clone())
                    .await
            }
        };
        results.push(result);
    }
    results
}

/// Whether a Bulk request's status says the target will not take Bulk requests (rather than
/// that something went wrong with these creates): 404, 405, 413, 501.
fn bulk_itself_refused(status: u16) -> bool {
    matches!(status, 404 | 405 | 413 | 501)
}

/// What a Bulk response said of one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// Created, with the new object's id.
    Created(String),
    Failed(HttpFailure),
}

/// A Bulk response's operations by `bulkId`. A created resource's id is the last segment of its
/// `location` (RFC 7644 section 3.7.3), or the `id` of a `response` body where one is given.
fn answers_by_bulk_id(response: &Value) -> HashMap<String, Answer> {
    let mut answers = HashMap::new();
    for operation in response["Operations"].as_array().into_iter().flatten() {
        let Some(bulk_id) = operation["bulkId"].as_str() else {
            continue;
        };
        let status = match &operation["status"] {
            Value::String(text) => text
                .split_whitespace()
                .next()
                .and_then(|code| code.parse::<u16>().ok()),
            Value::Number(number) => number.as_u64().and_then(|n| u16::try_from(n).ok()),
            _ => None,
        };
        let answer = match status {
            Some(status) if (200..300).contains(&status) => {
                let id = operation["response"]["id"]
                    .as_str()
                    .or_else(|| {
                        operation["location"]
                            .as_str()
                            .and_then(|location| location.trim_end_matches('/').rsplit('/').next())
                    })
                    .filter(|id| !id.is_empty());
                match id {
                    Some(id) => Answer::Created(id.to_string()),
                    None => Answer::Failed(HttpFailure {
                        status: Some(status),
                        message: "the Bulk response names no created resource".into(),
                    }),
                }
            }
            _ => Answer::Failed(HttpFailure {
                status,
                message: operation["response"]["detail"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| operation["response"].to_string()),
            }),
        };
        answers.insert(bulk_id.to_string(), answer);
    }
    answers
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: BulkLimits = BulkLimits {
        max_operations: 3,
        max_payload_size: 1_000,
    };

    #[test]
    fn a_service_provider_config_without_bulk_or_its_limits_gives_no_bulk() {
        assert_eq!(BulkLimits::advertised(&json!({})), None);
        assert_eq!(
            BulkLimits::advertised(
                &json!({"bulk": {"supported": false, "maxOperations": 10, "maxPayloadSize": 10}})
            ),
            None
        );
        assert_eq!(
            BulkLimits::advertised(
                &json!({"bulk": {"supported": true, "maxOperations": 0, "maxPayloadSize": 10}})
            ),
            None
        );
        assert_eq!(
            BulkLimits::advertised(
                &json!({"bulk": {"supported": true, "maxOperations": 10, "maxPayloadSize": 2048}})
            ),
            Some(BulkLimits {
                max_operations: 10,
                max_payload_size: 2048
            })
        );
    }

    #[test]
    fn requests_hold_at_most_max_operations() {
        assert_eq!(batches(&[10; 7], LIMITS), vec![0..3, 3..6, 6..7]);
        assert_eq!(batches(&[], LIMITS), Vec::<Range<usize>>::new());
    }

    #[test]
    fn requests_stay_under_the_payload_limit_and_an_oversized_operation_goes_alone() {
        // 128 bytes of envelope: 400 + 400 fit, a third does not.
        assert_eq!(batches(&[400, 400, 400], LIMITS), vec![0..2, 2..3]);
        assert_eq!(batches(&[10, 5_000, 10], LIMITS), vec![0..1, 1..2, 2..3]);
    }

    #[test]
    fn answers_are_matched_by_bulk_id_with_ids_from_locations_and_failures_kept_apart() {
        let answers = answers_by_bulk_id(&json!({"Operations": [
            {"method": "POST", "bulkId": "1", "status": "409",
             "response": {"status": "409", "detail": "userName taken"}},
            {"method": "POST", "bulkId": "0", "status": "201",
             "location": "https://t/scim/v2/Users/abc"},
            {"method": "POST", "bulkId": "2", "status": 201, "response": {"id": "xyz"}},
            {"method": "POST", "bulkId": "3", "status": "201"},
        ]}));
        assert_eq!(answers["0"], Answer::Created("abc".into()));
        assert_eq!(answers["2"], Answer::Created("xyz".into()));
        assert_eq!(
            answers["1"],
            Answer::Failed(HttpFailure {
                status: Some(409),
                message: "userName taken".into()
            })
        );
        assert!(matches!(answers["3"], Answer::Failed(_)));
        assert!(!answers.contains_key("4"));
    }
}
