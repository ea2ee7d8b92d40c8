//! What a name may be, and the one form it is kept in.
//!
//! A principal's name (a user's `userName`, a group's or service principal's `displayName`, a
//! service principal's `applicationId`) is how clients, SQL grants and uniqueness find it. Two
//! rules hold for every name, on every backend, from the edge inwards:
//!
//! - **Unicode NFC.** "é" may arrive composed (U+00E9) or decomposed (`e` + U+0301); both are
//!   the same name. Names are stored in Normalization Form C, as most directories keep them,
//!   and the values a filter compares with a name are normalised the same way, so lookups and
//!   uniqueness see one name.
//! - **Visible text.** A name is not empty or only white space, and holds no control
//!   character (C0, U+007F): names reach logs, SQL text and user interfaces.
//!
//! Every other string attribute may hold any character except U+0000, which PostgreSQL cannot
//! store in text; refusing it here makes SQLite and PostgreSQL answer the same 400.

use crate::error::{ScimError, ScimResult};
use crate::schema::PrincipalKind;
use std::borrow::Cow;
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// The attributes that name a principal of `kind` (those [`check_name`] and [`normalise`]
/// apply to).
pub fn naming_attributes(kind: PrincipalKind) -> &'static [&'static str] {
    match kind {
        PrincipalKind::User => &["userName"],
        PrincipalKind::Group => &["displayName"],
        PrincipalKind::ServicePrincipal => &["displayName", "applicationId"],
    }
}

/// Whether `attribute` (a top-level attribute's canonical name) names a principal of `kind`.
pub fn is_naming_attribute(kind: PrincipalKind, attribute: &str) -> bool {
    naming_attributes(kind)
        .iter()
        .any(|name| name.eq_ignore_ascii_case(attribute))
}

/// `text` in Unicode Normalization Form C, borrowed when it already is.
pub fn normalise(text: &str) -> Cow<'_, str> {
    match is_nfc_quick(text.chars()) {
        IsNormalized::Yes => Cow::Borrowed(text),
        IsNormalized::No | IsNormalized::Maybe => Cow::Owned(text.nfc().collect()),
    }
}

/// Refuses U+0000 in any string value: PostgreSQL cannot store it, so SQLite must not either.
pub fn check_text(attribute: &str, text: &str) -> ScimResult<()> {
    if text.contains('\0') {
        return Err(ScimError::invalid_value(format!(
            "'{attribute}' contains the character U+0000, which no value may hold"
        )));
    }
    Ok(())
}

/// Refuses a name that is empty, only white space, or holds a control character.
pub fn check_name(attribute: &str, text: &str) -> ScimResult<()> {
    if text.trim().is_empty() {
        return Err(ScimError::invalid_value(format!(
            "'{attribute}' must not be empty or only white space"
        )));
    }
    if let Some(control) = text.chars().find(|c| c.is_ascii_control()) {
        return Err(ScimError::invalid_value(format!(
            "'{attribute}' contains the control character U+{:04X}, which a name may not hold",
            u32::from(control)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn composed_and_decomposed_forms_normalise_to_the_same_name() {
        let composed = "Ren\u{e9}e";
        let decomposed = "Rene\u{301}e";
        assert_ne!(composed, decomposed);
        assert_eq!(normalise(decomposed), normalise(composed));
        assert!(matches!(normalise(composed), Cow::Borrowed(_)));
    }

    #[test]
    fn blank_names_and_control_characters_are_refused() {
        for bad in [
            "",
            "   ",
            "\t",
            "a\u{0}b",
            "line\nbreak",
            "bell\u{7}",
            "del\u{7f}",
        ] {
            assert_eq!(
                check_name("userName", bad).unwrap_err().code(),
                "invalidValue"
            );
        }
        check_name("userName", "Ren\u{e9}e O'Brien").unwrap();
    }

    proptest::proptest! {
        /// Normalising twice is normalising once, a checked name never panics, and a name
        /// that passes the check still passes once normalised (NFC adds no control character).
        #[test]
        fn normalising_is_idempotent_and_keeps_names_valid(text in "\\PC{0,24}|[e\u{301}\u{e9}a-z ]{0,12}") {
            let once = normalise(&text).into_owned();
            proptest::prop_assert_eq!(normalise(&once).into_owned(), once.clone());
            if check_name("userName", &text).is_ok() {
                proptest::prop_assert!(check_name("userName", &once).is_ok());
            }
        }
    }

    #[test]
    fn nul_is_refused_in_any_text_and_other_controls_are_kept() {
        assert!(check_text("title", "a\u{0}").is_err());
        check_text("addresses.formatted", "line one\nline two").unwrap();
    }
}
