//! A file export as a source, as HR systems produce: JSON Lines (`.jsonl`) or CSV (`.csv`),
//! one identity per line, with the columns documented in `docs/design/sync.md`:
//! `type` (`user`, `group`, `servicePrincipal`), `id` (stable, required), `userName`,
//! `displayName`, `givenName`, `familyName`, `email`, `externalId`, `applicationId`,
//! `active` (`true`/`false`, default true) and, for groups, `members` (ids; in CSV separated
//! by `;`).

use crate::model::{Identity, Kind, Snapshot};
use serde_json::{Map, Value};

/// Reads a snapshot from a file's text; `csv` picks the format. Errors name the line.
pub fn parse(text: &str, csv: bool) -> Result<Snapshot, String> {
    let mut identities = Vec::new();
    if csv {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty());
        let Some((_, header)) = lines.next() else {
            return Ok(Snapshot::default());
        };
        let columns = csv_fields(header).map_err(|error| format!("line 1: {error}"))?;
        for (index, line) in lines {
            let fields =
                csv_fields(line).map_err(|error| format!("line {}: {error}", index + 1))?;
            let mut record = Map::new();
            for (column, field) in columns.iter().zip(fields) {
                if field.is_empty() {
                    continue;
                }
                let value = if column == "members" {
                    Value::Array(
                        field
                            .split(';')
                            .map(|id| Value::String(id.trim().to_string()))
                            .collect(),
                    )
                } else if column == "active" {
                    Value::Bool(!field.eq_ignore_ascii_case("false"))
                } else {
                    Value::String(field)
                };
                record.insert(column.trim().to_string(), value);
            }
            identities.push(
                identity_of(&record).map_err(|error| format!("line {}: {error}", index + 1))?,
            );
        }
    } else {
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let record: Map<String, Value> = serde_json::from_str(line)
                .map_err(|error| format!("line {}: {error}", index + 1))?;
            identities.push(
                identity_of(&record).map_err(|error| format!("line {}: {error}", index + 1))?,
            );
        }
    }
    Ok(Snapshot::of(identities))
}

const KNOWN: [&str; 11] = [
    "type",
    "id",
    "userName",
    "displayName",
    "givenName",
    "familyName",
    "email",
    "externalId",
    "applicationId",
    "active",
    "members",
];

fn identity_of(record: &Map<String, Value>) -> Result<Identity, String> {
    if let Some(unknown) = record.keys().find(|key| !KNOWN.contains(&key.as_str())) {
        return Err(format!("unknown column `{unknown}`"));
    }
    let text = |name: &str| record.get(name).and_then(Value::as_str);
    let kind_name = text("type").ok_or("`type` is required")?;
    let kind = Kind::parse(kind_name).ok_or_else(|| format!("unknown type `{kind_name}`"))?;
    let id = text("id")
        .filter(|id| !id.is_empty())
        .ok_or("`id` is required")?;
    let mut identity = Identity::new(kind, id);
    for (column, attribute) in [
        ("userName", "userName"),
        ("displayName", "displayName"),
        ("givenName", "name.givenName"),
        ("familyName", "name.familyName"),
        ("email", "emails"),
        ("externalId", "externalId"),
        ("applicationId", "applicationId"),
    ] {
        if let Some(value) = text(column) {
            identity
                .attributes
                .insert(attribute.to_string(), Value::String(value.to_string()));
        }
    }
    if kind == Kind::User && text("userName").is_none() {
        return Err("a user needs `userName`".into());
    }
    if kind == Kind::Group && text("displayName").is_none() {
        return Err("a group needs `displayName`".into());
    }
    if record.get("active").and_then(Value::as_bool) == Some(false) {
        identity = identity.inactive();
    }
    if let Some(members) = record.get("members").and_then(Value::as_array) {
        identity.members = members
            .iter()
            .filter_map(|m| m.as_str().map(str::to_string))
            .collect();
    }
    Ok(identity)
}

/// One CSV line's fields (RFC 4180 quoting: `"a, b"`, `""` for a quote inside one).
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("an unterminated quote".into());
    }
    fields.push(field.trim_end_matches('\r').to_string());
    Ok(fields)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn json_lines_give_users_and_groups_with_members() {
        let text = r#"{"type":"user","id":"e1","userName":"ada","email":"ada@x","active":false}
{"type":"group","id":"g1","displayName":"eng","members":["e1"]}
"#;
        let snapshot = parse(text, false).expect("parses");
        assert_eq!(snapshot.identities[0].text("emails"), Some("ada@x"));
        assert_eq!(snapshot.identities[0].active, Some(false));
        assert_eq!(snapshot.identities[1].members, ["e1"]);
    }

    #[test]
    fn csv_gives_the_same_with_quoted_fields_and_semicolon_members() {
        let text = "type,id,userName,displayName,members\n\
                    user,e1,ada,\"Lovelace, Ada\",\n\
                    group,g1,,eng,e1;e2\n";
        let snapshot = parse(text, true).expect("parses");
        assert_eq!(
            snapshot.identities[0].text("displayName"),
            Some("Lovelace, Ada")
        );
        assert_eq!(snapshot.identities[1].members, ["e1", "e2"]);
    }

    #[test]
    fn a_bad_line_is_named_and_unknown_columns_are_refused() {
        let error = parse("{\"type\":\"user\",\"id\":\"e1\"}\n", false).expect_err("no userName");
        assert!(error.starts_with("line 1:"), "{error}");
        let error = parse("type,id,userName,colour\nuser,e1,ada,red\n", true).expect_err("unknown");
        assert!(error.contains("colour"), "{error}");
    }
}
