//! Where the portal may send a browser: paths on its own origin only.
//!
//! Browsers drop tabs and newlines inside URLs and treat `\` like `/`, so `/\t/evil.example`
//! and `/\evil.example` would become `//evil.example` — another site. A path that could turn
//! into anything but a path on this origin is replaced by `/`.

/// `candidate` when it is a same-origin path (`/…`, not `//…`, no backslash, no control or
/// whitespace characters, at most 2 KiB), else `/`.
pub(crate) fn safe_path(candidate: Option<&str>) -> &str {
    match candidate {
        Some(p) if is_safe(p) => p,
        _ => "/",
    }
}

fn is_safe(p: &str) -> bool {
    p.starts_with('/')
        && !p.starts_with("//")
        && p.len() <= 2048
        && !p.contains('\\')
        && !p.chars().any(|c| c.is_control() || c.is_whitespace())
        // Percent-encoded forms of the same tricks, for clients that decode before resolving.
        && !contains_ascii_ci(p, "%5c")
        && !p.starts_with("/%2f")
        && !p.starts_with("/%2F")
        && !contains_ascii_ci(p, "%09")
        && !contains_ascii_ci(p, "%0a")
        && !contains_ascii_ci(p, "%0d")
}

fn contains_ascii_ci(haystack: &str, needle: &str) -> bool {
    haystack.to_ascii_lowercase().contains(needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_origin_paths_pass() {
        for ok in ["/", "/desktop/a/", "/view/x?lang=de", "/files/%C3%9Cbung%201.pdf"] {
            assert_eq!(safe_path(Some(ok)), ok);
        }
        for evil in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/%09/evil.example",
            "/\n/evil.example",
            "/%2F/evil.example",
            "/%5cevil.example",
            "https://evil.example",
            "javascript:alert(1)",
            " /x",
            "",
        ] {
            assert_eq!(safe_path(Some(evil)), "/", "{evil:?}");
        }
        assert_eq!(safe_path(None), "/");
        assert_eq!(safe_path(Some(&format!("/{}", "a".repeat(3000)))), "/");
    }
}
