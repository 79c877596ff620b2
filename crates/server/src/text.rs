//! What text Leadroute accepts, on every surface: no control characters (tab, newline and
//! carriage return aside) and no string longer than [`MAX_TEXT`] characters, whether it
//! arrives in a JSON body, a form, a query or a path. PostgreSQL refuses a NUL in a text
//! column and a terminal obeys escape codes, so such bytes are refused at the door with `422`
//! and the field's name instead of failing a transaction or a log line later. Fields with a
//! tighter limit (names, notes, tags) check it where the field is parsed.

use axum::http::StatusCode;
use serde_json::Value;

use crate::error::ApiError;

/// The longest string any field takes, in characters.
pub const MAX_TEXT: usize = 10_000;
/// Names of people, teams and settings, in characters.
pub const MAX_NAME: usize = 200;

/// Whether a character is refused in text: C0 controls but tab, newline and carriage return;
/// DEL; C1 controls.
pub fn refused(character: char) -> bool {
    matches!(character, '\0'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// Checks one string: no refused character, at most `max` characters.
pub fn check(value: &str, field: &str, max: usize) -> Result<(), ApiError> {
    if value.chars().any(refused) {
        return Err(ApiError::invalid(
            "control_character",
            field,
            format!("{field} contains a control character"),
        ));
    }
    if value.len() > max && value.chars().count() > max {
        return Err(ApiError::invalid(
            "too_long",
            field,
            format!("{field} is at most {max} characters"),
        ));
    }
    Ok(())
}

/// Checks a name: a line of at most [`MAX_NAME`] characters.
pub fn check_name(value: &str, field: &str) -> Result<(), ApiError> {
    check(value, field, MAX_NAME)?;
    if value.contains(['\n', '\r', '\t']) {
        return Err(ApiError::invalid(
            "control_character",
            field,
            format!("{field} is one line"),
        ));
    }
    Ok(())
}

/// Checks every string (and key) of a JSON body. A linear scan finds bodies that may hold a
/// refused character or a long string; only those are parsed again to name the field, so
/// clean bodies cost one pass over their bytes.
pub fn check_json(bytes: &[u8]) -> Result<(), ApiError> {
    if !suspicious(bytes) {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        // Not JSON: the parser that follows says where.
        return Ok(());
    };
    check_value(&value, &mut String::new())
}

fn check_value(value: &Value, path: &mut String) -> Result<(), ApiError> {
    let field = |path: &str| {
        if path.is_empty() {
            ".".to_owned()
        } else {
            path.to_owned()
        }
    };
    match value {
        Value::String(text) => check(text, &field(path), MAX_TEXT),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let length = path.len();
                path.push_str(&format!("[{index}]"));
                check_value(item, path)?;
                path.truncate(length);
            }
            Ok(())
        }
        Value::Object(entries) => {
            for (key, item) in entries {
                let length = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                check(key, &field(path), MAX_NAME)?;
                check_value(item, path)?;
                path.truncate(length);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Whether a JSON text may hold a refused character (escaped, or a raw C1 in UTF-8) or a
/// string longer than [`MAX_TEXT`]. Raw C0 controls inside strings are invalid JSON anyway.
fn suspicious(bytes: &[u8]) -> bool {
    let mut in_string = false;
    let mut length = 0usize;
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if !in_string {
            if byte == b'"' {
                in_string = true;
                length = 0;
            }
            index += 1;
            continue;
        }
        match byte {
            b'"' => in_string = false,
            b'\\' => {
                if bytes.get(index + 1) == Some(&b'u') {
                    let code = bytes
                        .get(index + 2..index + 6)
                        .and_then(|hex| std::str::from_utf8(hex).ok())
                        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                        .and_then(char::from_u32);
                    if code.is_some_and(refused) {
                        return true;
                    }
                }
                index += 1;
                length += 1;
            }
            0xC2 if bytes
                .get(index + 1)
                .is_some_and(|next| (0x80..=0x9F).contains(next)) =>
            {
                return true;
            }
            _ if byte & 0xC0 != 0x80 => length += 1,
            _ => {}
        }
        if length > MAX_TEXT {
            return true;
        }
        index += 1;
    }
    false
}

/// A `400` for a path or query that is not clean text.
pub fn bad_address() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_characters",
        "the address holds bytes that are not text (a control character or invalid UTF-8)",
    )
}

/// Whether a percent-encoded path or query decodes to clean text.
pub fn clean_address(encoded: &str) -> bool {
    // Most addresses are plain printable ASCII: nothing to decode.
    if encoded
        .bytes()
        .all(|byte| (0x20..0x7f).contains(&byte) && byte != b'%')
    {
        return true;
    }
    std::str::from_utf8(&percent_decode(encoded)).is_ok_and(|text| !text.chars().any(refused))
}

fn percent_decode(encoded: &str) -> Vec<u8> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let Some(hex) = bytes.get(index + 1..index + 3)
            && let Ok(byte) = u8::from_str_radix(std::str::from_utf8(hex).unwrap_or("zz"), 16)
        {
            out.push(byte);
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_found_in_escapes_keys_and_raw_c1() {
        assert!(check_json(br#"{"name": "Li Lei\n", "tags": ["a\tb"]}"#).is_ok());
        let error =
            check_json(br#"{"leads": [{"name": "ok"}, {"name": "a\u0000b"}]}"#).expect_err("NUL");
        assert_eq!(error.field.as_deref(), Some("leads[1].name"));
        assert_eq!(error.code, "control_character");
        assert!(check_json(br#"{"a\u001b": 1}"#).is_err());
        assert!(check_json("{\"a\": \"x\u{85}\"}".as_bytes()).is_err());
        // An escaped backslash followed by the letters u0000 is text, not a NUL.
        assert!(check_json(br#"{"a": "\\u0000"}"#).is_ok());
    }

    #[test]
    fn long_strings_are_refused_with_their_field() {
        let long = format!(r#"{{"note": "{}"}}"#, "字".repeat(MAX_TEXT + 1));
        let error = check_json(long.as_bytes()).expect_err("too long");
        assert_eq!(
            (error.code.as_str(), error.field.as_deref()),
            ("too_long", Some("note"))
        );
        let fits = format!(r#"{{"note": "{}"}}"#, "字".repeat(MAX_TEXT));
        assert!(check_json(fits.as_bytes()).is_ok());
    }

    #[test]
    fn addresses_with_nul_or_broken_utf8_are_not_clean() {
        assert!(clean_address("/api/v1/leads/abc"));
        assert!(clean_address("status=new&q=%E4%B8%AD"));
        assert!(!clean_address("/api/v1/leads/%00"));
        assert!(!clean_address("/api/v1/leads/%FF"));
        assert!(!clean_address("q=a%1Bb"));
    }
}
