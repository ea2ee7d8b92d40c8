//! Active Directory's range retrieval of large multi-valued attributes.
//!
//! AD returns at most `MaxValRange` values (1,500 by default) of an attribute such as a
//! group's `member` in one answer, and says so by the attribute's name: the entry carries
//! `member;range=0-1499` instead of `member`. The rest is read by asking for the entry again
//! with the attribute `member;range=1500-*`, which answers `member;range=1500-2999`, and so on
//! until a range that ends in `*` (the last). Without this, a group of 1,501 members would
//! arrive with no `member` at all, a silent drop of every one of them. OpenLDAP never answers
//! this way, and an entry without ranged attributes is left as it is, with nothing more read.

use crate::DirectoryError;
use ldap3::SearchEntry;

/// Reads one attribute of one entry, by DN: how the remaining ranges are asked for.
pub(crate) trait AttributeReader {
    async fn read_attribute(
        &mut self,
        dn: &str,
        attribute: &str,
    ) -> Result<SearchEntry, DirectoryError>;
}

/// A ranged attribute's name taken apart: `member;range=1500-2999` is `("member", 1500,
/// Some(2999))`, `member;range=1500-*` is `("member", 1500, None)`.
fn parse(name: &str) -> Option<(&str, u64, Option<u64>)> {
    let (base, range) = name.split_once(';')?;
    let range = range
        .get(..6)
        .filter(|prefix| prefix.eq_ignore_ascii_case("range="))
        .map(|_| &range[6..])?;
    let (low, high) = range.split_once('-')?;
    let low = low.parse().ok()?;
    let high = match high {
        "*" => None,
        high => Some(high.parse().ok()?),
    };
    Some((base, low, high))
}

/// Reads every value of the entry's ranged attributes: the values it carries are moved to the
/// attribute's own name, and the rest asked for, range after range, until the last.
pub(crate) async fn complete(
    entry: &mut SearchEntry,
    reader: &mut impl AttributeReader,
) -> Result<(), DirectoryError> {
    let ranged: Vec<String> = entry
        .attrs
        .keys()
        .filter(|name| parse(name).is_some())
        .cloned()
        .collect();
    let mut pending = Vec::new();
    for name in ranged {
        let values = entry.attrs.remove(&name).unwrap_or_default();
        if let Some(next) = absorb(entry, &name, values) {
            pending.push(next);
        }
    }
    let dn = entry.dn.clone();
    while let Some((base, low)) = pending.pop() {
        let asked = format!("{base};range={low}-*");
        let failed = |reason: String| DirectoryError::SearchFailed {
            base: dn.clone(),
            filter: format!("(objectClass=*) for {asked}"),
            reason,
        };
        let answer = reader.read_attribute(&dn, &asked).await?;
        let Some((name, values)) = answer.attrs.into_iter().find(|(name, _)| {
            parse(name).is_some_and(|(answered, answered_low, _)| {
                answered.eq_ignore_ascii_case(&base) && answered_low == low
            })
        }) else {
            return Err(failed(
                "the directory's answer carries no values of that range".into(),
            ));
        };
        if let Some(next) = absorb(entry, &name, values) {
            if next.1 <= low {
                return Err(failed(format!("the range {name} does not move forward")));
            }
            pending.push(next);
        }
    }
    Ok(())
}

/// Appends the values of the ranged attribute `name` to its base attribute, and returns what
/// to ask for next (the base name and the first value not yet read), or `None` after the last
/// range.
fn absorb(entry: &mut SearchEntry, name: &str, values: Vec<String>) -> Option<(String, u64)> {
    let (base, _, high) = parse(name)?;
    let base = base.to_string();
    let existing = entry
        .attrs
        .keys()
        .find(|key| key.eq_ignore_ascii_case(&base))
        .cloned()
        .unwrap_or_else(|| base.clone());
    entry.attrs.entry(existing).or_default().extend(values);
    high.map(|high| (base, high.saturating_add(1)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::collections::HashMap;

    const GROUP: &str = "CN=All Staff,OU=Groups,DC=corp,DC=example";

    /// Answers as Active Directory does with `MaxValRange` values per answer: the range asked
    /// for, cut at `page` values, its end written as `*` when it is the last.
    struct ActiveDirectory {
        members: Vec<String>,
        page: usize,
        asked: Vec<String>,
    }

    impl ActiveDirectory {
        fn new(count: usize, page: usize) -> ActiveDirectory {
            ActiveDirectory {
                members: (0..count)
                    .map(|n| format!("CN=User {n},OU=People,DC=corp,DC=example"))
                    .collect(),
                page,
                asked: Vec::new(),
            }
        }

        /// The group as a search for `member` returns it.
        fn first_answer(&self) -> SearchEntry {
            let mut attrs = HashMap::new();
            attrs.insert("cn".to_string(), vec!["All Staff".to_string()]);
            let (name, values) = self.range(0);
            attrs.insert(name, values);
            SearchEntry {
                dn: GROUP.into(),
                attrs,
                bin_attrs: HashMap::new(),
            }
        }

        fn range(&self, low: usize) -> (String, Vec<String>) {
            let high = (low + self.page).min(self.members.len());
            let end = if high == self.members.len() {
                "*".to_string()
            } else {
                (high - 1).to_string()
            };
            (
                format!("member;range={low}-{end}"),
                self.members[low..high].to_vec(),
            )
        }
    }

    impl AttributeReader for ActiveDirectory {
        async fn read_attribute(
            &mut self,
            dn: &str,
            attribute: &str,
        ) -> Result<SearchEntry, DirectoryError> {
            assert_eq!(dn, GROUP);
            self.asked.push(attribute.to_string());
            let (_, low, high) = parse(attribute).expect("a range is asked for");
            assert_eq!(high, None, "the rest is asked for, not a bounded range");
            let (name, values) = self.range(low as usize);
            Ok(SearchEntry {
                dn: dn.into(),
                attrs: HashMap::from([(name, values)]),
                bin_attrs: HashMap::new(),
            })
        }
    }

    #[tokio::test]
    async fn a_group_of_3500_members_is_read_in_three_ranges_in_order() {
        let mut directory = ActiveDirectory::new(3500, 1500);
        let mut entry = directory.first_answer();
        assert!(entry.attrs.contains_key("member;range=0-1499"));
        complete(&mut entry, &mut directory).await.expect("read");
        assert_eq!(
            directory.asked,
            ["member;range=1500-*", "member;range=3000-*"]
        );
        assert_eq!(entry.attrs["member"], directory.members);
        assert_eq!(entry.attrs["cn"], ["All Staff"]);
        assert!(entry.attrs.keys().all(|name| !name.contains(';')));
    }

    #[tokio::test]
    async fn a_first_range_that_is_also_the_last_needs_no_further_read() {
        let mut directory = ActiveDirectory::new(1500, 1500);
        let mut entry = directory.first_answer();
        assert!(entry.attrs.contains_key("member;range=0-*"));
        complete(&mut entry, &mut directory).await.expect("read");
        assert!(directory.asked.is_empty());
        assert_eq!(entry.attrs["member"].len(), 1500);
    }

    /// What OpenLDAP (and AD below the limit) returns is left exactly as it is.
    #[tokio::test]
    async fn an_entry_without_ranges_is_unchanged_and_nothing_more_is_read() {
        let mut directory = ActiveDirectory::new(0, 1500);
        let members = vec!["uid=a,ou=people".to_string(), "uid=b,ou=people".to_string()];
        let mut entry = SearchEntry {
            dn: GROUP.into(),
            attrs: HashMap::from([
                ("member".to_string(), members.clone()),
                ("cn".to_string(), vec!["x".to_string()]),
            ]),
            bin_attrs: HashMap::new(),
        };
        let before = entry.attrs.clone();
        complete(&mut entry, &mut directory).await.expect("read");
        assert!(directory.asked.is_empty());
        assert_eq!(entry.attrs, before);
    }

    /// A server that answers the same range again would otherwise be asked forever.
    #[tokio::test]
    async fn a_range_that_does_not_move_forward_is_an_error() {
        struct Stuck;
        impl AttributeReader for Stuck {
            async fn read_attribute(
                &mut self,
                dn: &str,
                _: &str,
            ) -> Result<SearchEntry, DirectoryError> {
                Ok(SearchEntry {
                    dn: dn.into(),
                    attrs: HashMap::from([(
                        "member;range=1500-1000".to_string(),
                        vec!["CN=x".to_string()],
                    )]),
                    bin_attrs: HashMap::new(),
                })
            }
        }
        let mut entry = ActiveDirectory::new(3000, 1500).first_answer();
        let error = complete(&mut entry, &mut Stuck).await.expect_err("refused");
        assert!(
            error.to_string().contains("does not move forward"),
            "{error}"
        );
    }

    #[test]
    fn range_names_are_taken_apart() {
        assert_eq!(
            parse("member;range=0-1499"),
            Some(("member", 0, Some(1499)))
        );
        assert_eq!(parse("member;Range=1500-*"), Some(("member", 1500, None)));
        assert_eq!(parse("member"), None);
        assert_eq!(parse("member;binary"), None);
        assert_eq!(parse("member;range=x-1"), None);
    }
}
