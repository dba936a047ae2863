//! Valid engine names and desktop ids from user input (usernames), readable where possible.
//!
//! Usernames come from IServ and may be long (64 characters and more) or contain characters no
//! Docker name or desktop id allows (`ä`, `@`, spaces, upper case in ids). A name that is valid
//! as it is stays unchanged, so existing containers and volumes keep their names; any other
//! becomes its readable part plus a hash of the whole input, so two inputs never share a name
//! by being cut or cleaned the same way.

use sha2::{Digest, Sha256};

/// Hex digits of the hash suffix: 48 bits, so an accidental clash needs millions of names.
const HASH_HEX: usize = 12;
/// Longest desktop id ([`crate::valid_id`]) and Docker object name this portal makes.
const MAX_LEN: usize = 64;

/// `raw` as a desktop id ([`crate::valid_id`]: 1–64 of `a-z 0-9 - _ .`): unchanged when
/// valid, else e.g. `anna.mueller-a1b2c3d4e5f6` for `Anna.Müller`.
pub fn safe_id(raw: &str) -> String {
    safe(raw, crate::valid_id, |c| {
        let c = c.to_ascii_lowercase();
        (c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')).then_some(c)
    })
}

/// `raw` as a Docker container, volume or network name (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most
/// 64 characters here): unchanged when valid, else its readable part plus a hash.
pub fn safe_docker_name(raw: &str) -> String {
    safe(raw, valid_docker_name, |c| {
        (c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).then_some(c)
    })
}

/// Docker object names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, kept to 64 characters.
pub fn valid_docker_name(name: &str) -> bool {
    name.len() <= MAX_LEN
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// SHA-256 of `text` in lower-case hex.
pub(crate) fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn safe(raw: &str, valid: impl Fn(&str) -> bool, keep: impl Fn(char) -> Option<char>) -> String {
    if valid(raw) {
        return raw.to_owned();
    }
    let cleaned: String = raw.chars().map(|c| keep(c).unwrap_or('-')).collect();
    // Starts with a letter or digit (both rules want that); `-` + hash must still fit.
    let readable = cleaned.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let readable = &readable[..readable.len().min(MAX_LEN - 1 - HASH_HEX)];
    let readable = readable.trim_end_matches(['-', '.', '_']);
    let hash = &sha256_hex(raw)[..HASH_HEX];
    if readable.is_empty() {
        hash.to_owned()
    } else {
        format!("{readable}-{hash}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_stay_unchanged() {
        assert_eq!(safe_id("alice-ubuntu"), "alice-ubuntu");
        assert_eq!(safe_docker_name("ird-home-Alice.B_1"), "ird-home-Alice.B_1");
    }

    #[test]
    fn long_and_unusual_input_becomes_a_readable_valid_name() {
        let long = "a".repeat(64) + "-ubuntu";
        let id = safe_id(&long);
        assert!(crate::valid_id(&id), "{id}");
        assert!(id.starts_with("aaaa"), "{id}");
        for raw in [
            "Anna.Müller-ubuntu",
            "o'brien@school de",
            "..-ä",
            "ÄÖÜ",
            "x".repeat(300).as_str(),
        ] {
            let id = safe_id(raw);
            assert!(crate::valid_id(&id), "{raw:?} → {id:?}");
            let name = safe_docker_name(&format!("ird-home-{raw}"));
            assert!(valid_docker_name(&name), "{raw:?} → {name:?}");
        }
        assert!(safe_id("Anna.Müller-ubuntu").starts_with("anna.m-ller-ubuntu-"));
    }

    #[test]
    fn inputs_cleaned_alike_get_different_names() {
        assert_ne!(safe_id("Anna-x"), safe_id("anna-X"));
        assert_ne!(safe_id(&("b".repeat(70) + "1")), safe_id(&("b".repeat(70) + "2")));
        assert_ne!(safe_docker_name("ä"), safe_docker_name("ö"));
    }
}
