//! Distinguished names compared as a directory compares them (RFC 4514): a group's `member`
//! values are DNs written by whoever added them, so `uid=Alice, ou=People,dc=example,dc=test`
//! must find the entry the server returns as `uid=alice,ou=people,dc=example,dc=test`.

/// The form two DNs share when they name the same entry: each RDN's attribute type and value
/// trimmed of the spaces RFC 4514 allows around `=`, `,` and `+`, and lowercased (the naming
/// attributes of users and groups, `uid`, `cn`, `ou`, `dc`, match case-insensitively), with
/// escapes kept as written, so an escaped `,` never splits an RDN. Multi-valued RDNs keep
/// their order.
pub fn normalize(dn: &str) -> String {
    let mut normalized = String::with_capacity(dn.len());
    let mut component = String::new();
    let mut chars = dn.chars();
    while let Some(char) = chars.next() {
        match char {
            '\\' => {
                component.push('\\');
                if let Some(escaped) = chars.next() {
                    component.push(escaped);
                }
            }
            ',' | '+' => {
                push_component(&mut normalized, &component);
                normalized.push(char);
                component.clear();
            }
            _ => component.push(char),
        }
    }
    push_component(&mut normalized, &component);
    normalized
}

/// One `type=value` pair, trimmed around `=` and at both ends, lowercased. A trailing space
/// escaped as `\ ` is part of the value and stays.
fn push_component(normalized: &mut String, component: &str) {
    let (kind, value) = component.split_once('=').unwrap_or((component, ""));
    normalized.push_str(&kind.trim().to_lowercase());
    normalized.push('=');
    let value = value.trim_start();
    let value = if value.ends_with("\\ ") {
        value
    } else {
        value.trim_end()
    };
    normalized.push_str(&value.to_lowercase());
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn spaces_and_case_do_not_tell_two_dns_apart() {
        assert_eq!(
            normalize("uid=Alice, ou=People ,DC=example,dc=test"),
            normalize("uid=alice,ou=people,dc=example,dc=test")
        );
        assert_eq!(normalize(" CN = Eng + uid=x "), "cn=eng+uid=x");
    }

    #[test]
    fn an_escaped_comma_stays_inside_its_value() {
        let dn = normalize(r"cn=Smith\, John,ou=people,dc=example,dc=test");
        assert_eq!(dn, r"cn=smith\, john,ou=people,dc=example,dc=test");
        assert_ne!(
            dn,
            normalize("cn=Smith,cn=John,ou=people,dc=example,dc=test")
        );
    }

    #[test]
    fn different_entries_stay_different() {
        assert_ne!(
            normalize("uid=alice,ou=people,dc=example,dc=test"),
            normalize("uid=alice,ou=staff,dc=example,dc=test")
        );
        // An escaped trailing space is part of the value.
        assert_ne!(normalize(r"cn=a\ ,dc=x"), normalize("cn=a,dc=x"));
    }
}
