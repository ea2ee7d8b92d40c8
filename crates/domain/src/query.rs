//! List and search requests (RFC 7644 sections 3.4.2 and 3.4.3): filter, sorting, paging and
//! projection, parsed once at the edge into a [`ListQuery`].

use crate::error::{ScimError, ScimResult};
use crate::filter::{parse_filter, ResolvedFilter};
use crate::paths::{parse_and_resolve, ResolvedAttr, ResolvedTarget};
use crate::projection::Projection;
use crate::schema::ResourceTypeDef;

/// The largest page served; advertised as `filter.maxResults`. Clients asking for more (the
/// Databricks SDK asks for 10000) get this many and page on with `startIndex`.
pub const MAX_PAGE_SIZE: u64 = 1_000;

/// The most bytes of resources one list page carries. A page ends early, before the resource
/// that would pass this, with `itemsPerPage` saying how many it holds, so clients page on from
/// `startIndex + itemsPerPage` (RFC 7644 section 3.4.2.4 lets a server return fewer than
/// `count`). A page always holds at least one resource. With resources of at most
/// [`crate::schema::MAX_RESOURCE_BYTES`] a page is full long before this is reached unless its
/// resources are unusually large or are groups with many members.
pub const MAX_LIST_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// The most group members one list page carries. A group is listed whole or not at all: the
/// page ends before the group whose members would pass this (a first group is always listed,
/// however many members it has, as a GET of it would give them). Counted before any member is
/// loaded, so a page of a thousand large groups never loads all their members.
pub const MAX_LIST_PAGE_MEMBERS: usize = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    Ascending,
    Descending,
}

#[derive(Debug, Clone)]
pub struct ListQuery {
    pub filter: Option<ResolvedFilter>,
    pub sort_by: Option<ResolvedAttr>,
    pub sort_order: SortOrder,
    /// 1-based index of the first result.
    pub start_index: u64,
    /// How many results at most, already capped at [`MAX_PAGE_SIZE`].
    pub count: u64,
    pub projection: Projection,
}

/// The raw parameters, from a query string or a `SearchRequest` body.
#[derive(Debug, Clone, Default)]
pub struct ListParameters {
    pub filter: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
    pub start_index: Option<String>,
    pub count: Option<String>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

impl ListQuery {
    pub fn parse(
        resource_type: &'static ResourceTypeDef,
        parameters: &ListParameters,
    ) -> ScimResult<Self> {
        let filter = match parameters.filter.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(parse_filter(resource_type, text)?),
        };
        let sort_by = match parameters.sort_by.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => match parse_and_resolve(resource_type, text) {
                Ok(ResolvedTarget::Attribute(attribute)) => Some(attribute),
                // Sorting by something that is not there leaves the order unspecified, which
                // RFC 7644 section 3.4.2.3 allows; refusing would break clients for nothing.
                _ => None,
            },
        };
        let sort_order = match parameters.sort_order.as_deref().map(str::trim) {
            None | Some("") => SortOrder::Ascending,
            Some(text) if text.eq_ignore_ascii_case("ascending") => SortOrder::Ascending,
            Some(text) if text.eq_ignore_ascii_case("descending") => SortOrder::Descending,
            Some(text) if text.to_ascii_uppercase().contains("UNSPECIFIED") => SortOrder::Ascending,
            Some(text) => {
                return Err(ScimError::invalid_value(format!(
                    "sortOrder must be 'ascending' or 'descending', not '{text}'"
                )))
            }
        };
        let start_index = parse_integer("startIndex", parameters.start_index.as_deref())?
            .map(|index| index.max(1) as u64)
            .unwrap_or(1);
        let count = parse_integer("count", parameters.count.as_deref())?
            .map(|count| (count.max(0) as u64).min(MAX_PAGE_SIZE))
            .unwrap_or(MAX_PAGE_SIZE);
        let projection = Projection::parse(
            resource_type,
            parameters.attributes.as_deref(),
            parameters.excluded_attributes.as_deref(),
        )?;
        Ok(ListQuery {
            filter,
            sort_by,
            sort_order,
            start_index,
            count,
            projection,
        })
    }

    /// Rows to skip: startIndex is 1-based.
    pub fn offset(&self) -> u64 {
        self.start_index - 1
    }
}

fn parse_integer(name: &str, text: Option<&str>) -> ScimResult<Option<i64>> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text.parse::<i64>().map(Some).map_err(|_| {
            ScimError::invalid_value(format!("'{name}' must be an integer, not '{text}'"))
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::schema::USER_RESOURCE;

    #[test]
    fn paging_defaults_and_caps() {
        let query = ListQuery::parse(&USER_RESOURCE, &ListParameters::default()).unwrap();
        assert_eq!((query.start_index, query.count), (1, MAX_PAGE_SIZE));
        let capped = ListQuery::parse(
            &USER_RESOURCE,
            &ListParameters {
                count: Some("10000".into()),
                start_index: Some("0".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((capped.start_index, capped.count), (1, MAX_PAGE_SIZE));
        let negative = ListQuery::parse(
            &USER_RESOURCE,
            &ListParameters {
                count: Some("-5".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(negative.count, 0);
    }

    #[test]
    fn a_non_numeric_count_is_an_invalid_value() {
        let error = ListQuery::parse(
            &USER_RESOURCE,
            &ListParameters {
                count: Some("ten".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(error.code(), "invalidValue");
    }

    #[test]
    fn sort_order_accepts_databricks_spellings() {
        for text in ["descending", "DESCENDING"] {
            let query = ListQuery::parse(
                &USER_RESOURCE,
                &ListParameters {
                    sort_order: Some(text.into()),
                    ..Default::default()
                },
            )
            .unwrap();
            assert_eq!(query.sort_order, SortOrder::Descending);
        }
    }
}
