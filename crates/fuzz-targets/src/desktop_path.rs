//! `/desktop/{id}/rest` as the portal splits it (`web::desktop::split_desktop_path`), and the
//! launch URL `GET /desktop/{id}` redirects to.
//!
//! Invariants: the id is exactly the first segment after `/desktop/` (never a `/` in it, so a
//! path cannot name a desktop through another one), the rest is what follows it and starts
//! with `/` when not empty (the path the desktop sees), nothing is lost or added; the launch
//! URL stays on the portal (a path, never `//host`) and is a valid `Location` for any path a
//! request can carry.

use http::HeaderValue;
use portal::domain::lifecycle::launch_url;
use portal::web::desktop::split_desktop_path;

pub fn run(data: &[u8]) {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    check(path);
    // What a request line can actually carry: a path hyper accepted.
    if let Ok(pq) = http::uri::PathAndQuery::try_from(data)
        && let Some((id, _)) = check(pq.path())
    {
        assert!(
            HeaderValue::from_str(&launch_url(id)).is_ok(),
            "the launch URL for {id:?} is no valid Location"
        );
    }
}

fn check(path: &str) -> Option<(&str, &str)> {
    let split = split_desktop_path(path);
    match split {
        None => assert!(!path.starts_with("/desktop/"), "{path:?} not split"),
        Some((id, rest)) => {
            assert!(!id.contains('/'), "id {id:?} from {path:?}");
            assert!(rest.is_empty() || rest.starts_with('/'), "rest {rest:?} from {path:?}");
            assert_eq!(format!("/desktop/{id}{rest}"), path, "the split loses or adds nothing");
            let launch = launch_url(id);
            assert!(
                launch.starts_with("/desktop/") && !launch.starts_with("//"),
                "{launch:?}"
            );
            // The launch URL names the same desktop again.
            assert_eq!(split_desktop_path(&launch).map(|(i, _)| i), Some(id));
        }
    }
    split
}
