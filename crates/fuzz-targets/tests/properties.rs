//! The targets' invariants over generated inputs that look like the real thing: request heads
//! with repeated and mangled headers, forwarding chains mixing trusted, untrusted and
//! malformed hops, IServ claims in every shape, desktop hosts and ids, configurations with
//! environment variables. proptest shrinks any failure to a small input; add that input to
//! `fuzz/regressions/<target>/` when fixing it.

use proptest::prelude::*;
use serde_json::{Value, json};

fn one_of(items: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(items).prop_map(str::to_owned)
}

/// Header lines of a WebSocket upgrade, each perhaps dropped, repeated, re-cased or mangled.
fn request_head() -> impl Strategy<Value = Vec<u8>> {
    let method = one_of(&["GET", "POST", "get", "HEAD"]);
    let version = one_of(&["HTTP/1.1", "HTTP/1.0"]);
    let line = (
        one_of(&[
            "Host",
            "Upgrade",
            "Connection",
            "Sec-WebSocket-Key",
            "Sec-WebSocket-Version",
            "Origin",
            "Sec-WebSocket-Origin",
            "Sec-WebSocket-Protocol",
            "Cookie",
            "Authorization",
            "Proxy-Authorization",
            "X-Forwarded-For",
            "Forwarded",
            "X-Real-IP",
            "Transfer-Encoding",
            "Set-Cookie",
            "Strict-Transport-Security",
            "Keep-Alive",
        ]),
        prop_oneof![
            one_of(&[
                "websocket",
                "WebSocket",
                "h2c",
                "Upgrade",
                "keep-alive, Upgrade",
                "keep-alive, cookie, authorization, x-forwarded-for",
                "dGhlIHNhbXBsZSBub25jZQ==",
                "c2hvcnQ=",
                "13",
                "8",
                "https://portal.school.example",
                "https://evil.example",
                "null",
                "binary, base64",
                " , ,binary,",
                "ird_session=abc",
                "Basic YWxpY2U6c2VjcmV0",
                "chunked",
                "203.0.113.9",
            ]),
            "[ -~]{0,24}",
        ],
    );
    (method, version, proptest::collection::vec(line, 0..14)).prop_map(|(method, version, lines)| {
        let mut head = format!("{method} /desktop/alice-ubuntu/websockify {version}\r\n");
        for (name, value) in lines {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head.into_bytes()
    })
}

fn desktop_path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        one_of(&[
            "",
            ".",
            "..",
            "%2e%2e",
            "%2F",
            "alice-ubuntu",
            "max.mustermann-ubuntu",
            "?a=/b",
            "\\",
            "//evil.example"
        ]),
        "[ -~]{0,12}",
    ];
    (
        one_of(&["/desktop/", "/desktop", "/Desktop/", "//desktop/", ""]),
        proptest::collection::vec(segment, 0..5),
    )
        .prop_map(|(prefix, segments)| format!("{prefix}{}", segments.join("/")))
}

fn desktop_id() -> impl Strategy<Value = String> {
    prop_oneof![
        one_of(&[
            "alice-ubuntu",
            "max.mustermann-ubuntu",
            "Max-ubuntu",
            "d0-0123456789abcdef01234567",
            "-a",
            "a-",
            ""
        ]),
        "[a-z0-9.-]{1,70}",
        any::<String>(),
    ]
}

fn host_for(label: String) -> impl Strategy<Value = String> {
    (
        one_of(&[
            ".desktops.school.example",
            ".DESKTOPS.school.example",
            ".localhost",
            ".school.example",
            ".desktops.school.example.evil",
            "",
        ]),
        one_of(&["", ":443", ":80", ":5020", ":8443", ":x", ":"]),
    )
        .prop_map(move |(suffix, port)| format!("{label}{suffix}{port}"))
}

fn desktop_host_input() -> impl Strategy<Value = Vec<u8>> {
    let template = prop_oneof![
        one_of(&[
            "https://{id}.desktops.school.example",
            "http://{id}.localhost:5020",
            "https://{id}.school.example:443",
            "HTTPS://{id}.Desktops.School.Example",
            "https://{id}.desktops.school.example/",
            "https://{id}.xn--schle-kva.example",
            "https://{id}.",
        ]),
        "[ -~]{0,30}",
    ];
    let public_url = one_of(&[
        "https://portal.school.example/",
        "https://school.example/",
        "https://desktops.school.example/",
        "http://127.0.0.1:5020/",
        "http://localhost:5020/",
        "http://[::1]:5020/",
        "https://portal.school.example:8443/",
    ]);
    (template, desktop_id(), desktop_id().prop_flat_map(host_for), public_url)
        .prop_map(|(t, id, host, url)| format!("{t}\n{host}\n{id}\n{url}").into_bytes())
}

fn forwarded_for_input() -> impl Strategy<Value = Vec<u8>> {
    let trusted = one_of(&[
        "127.0.0.1",
        "127.0.0.1, ::1",
        "10.0.0.0/8, 127.0.0.1",
        "fd00::/8,10.0.0.5",
        "",
        "10.0.0.5/8",
        "::ffff:10.0.0.0/104",
    ]);
    let peer = one_of(&[
        "127.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
        "10.0.0.5",
        "192.0.2.1",
        "fd12::1",
    ]);
    let entry = prop_oneof![
        one_of(&[
            "203.0.113.9",
            "198.51.100.7:4711",
            "[2001:db8::7]:443",
            "2001:db8::7",
            "10.1.2.3",
            "10.0.0.5",
            "127.0.0.1",
            "::1",
            "::ffff:10.0.0.5",
            "fd00::5",
            "unknown",
            "",
            "300.1.1.1",
            "_hidden",
            " 10.0.0.7 ",
        ]),
        "[ -~]{0,16}",
    ];
    let line = proptest::collection::vec(entry, 0..6).prop_map(|e| e.join(","));
    (trusted, peer, proptest::collection::vec(line, 0..4))
        .prop_map(|(t, p, lines)| format!("{t}\n{p}\n{}", lines.join("\n")).into_bytes())
}

/// A group or role name as IServ writes one, never one the test configurations promote.
fn plain_name() -> impl Strategy<Value = String> {
    prop_oneof![
        one_of(&[
            "5a",
            "6b",
            "schueler",
            "Klasse 5a",
            "ROLE_STUDENT",
            "ROLE_USER",
            "admin",
            "ROLE_ADMINS",
            "lehrer-in"
        ]),
        "[A-Za-z0-9_ .-]{0,12}",
    ]
    .prop_filter("a promoted name", |n| {
        let n = n.trim();
        !["admins", "lehrer", "lehrkräfte", "role_admin", "role_teacher"]
            .iter()
            .any(|w| w.eq_ignore_ascii_case(n))
    })
}

/// Names in one of IServ's shapes: list, list of objects, keyed object, string.
fn shaped(names: Vec<String>, shape: u8, id_field: &'static str) -> Value {
    match shape % 4 {
        0 => json!(names),
        1 => Value::Array(
            names
                .iter()
                .map(|n| json!({ id_field: n, "name": "Anzeige", "uuid": "u-1" }))
                .collect(),
        ),
        2 => Value::Object(names.iter().map(|n| (n.clone(), json!({ id_field: n }))).collect()),
        _ => json!(names.join(",")),
    }
}

fn student_claims() -> impl Strategy<Value = Value> {
    (
        proptest::collection::vec(plain_name(), 0..5),
        proptest::collection::vec(plain_name(), 0..3),
        any::<u8>(),
        any::<u8>(),
        any::<bool>(),
        // Promoting names where they must not count: the display name, e-mail, login name.
        one_of(&["admins", "ROLE_ADMIN", "Lehrer", "Anna Schmidt"]),
    )
        .prop_map(|(groups, roles, gs, rs, prefixed, decoy)| {
            let (gk, rk) = if prefixed {
                ("iserv:groups", "iserv:roles")
            } else {
                ("groups", "roles")
            };
            json!({
                "sub": "s-1",
                "iserv:uuid": "9f1c-uuid",
                "preferred_username": decoy,
                "name": decoy,
                "email": format!("{decoy}@school.example"),
                "ROLE_ADMIN": true,
                "admin_groups": ["admins"],
                gk: shaped(groups, gs, "act"),
                rk: shaped(roles, rs, "id"),
            })
        })
}

fn config_input() -> impl Strategy<Value = Vec<u8>> {
    let toml_line = one_of(&[
        "listen = \"127.0.0.1:5020\"",
        "listen = \"[::1]:0\"",
        "public_url = \"https://portal.school.example\"",
        "public_url = \"http://localhost:5020\"",
        "public_url = \"https://portal.school.example:8443/\"",
        "desktop_origin = \"https://{id}.desktops.school.example\"",
        "desktop_origin = \"https://{id}.school.example\"",
        "desktop_origin = \"http://{id}.localhost:5020\"",
        "desktop_origin = \"off\"",
        "desktop_origin = \" OFF \"",
        "session_ttl_hours = 0",
        "session_idle_minutes = 0",
        "session_ttl_secs = 1",
        "local_login = false",
        "[proxy]\ntrusted_proxies = \"127.0.0.1, ::1\"",
        "[proxy]\nticket_ttl_secs = 60",
        "[oidc]\nclient_id = \"portal\"\nissuer = \"https://iserv.school.example\"\nclient_secret = \"s3cret\"",
        "[kasm]\nprotocol = \"http\"",
        "[[static_desktops]]\nid = \"lab-1\"\nurl = \"https://10.0.0.9:6901\"",
        "x = ",
        "[metrics]\nlisten = \"0.0.0.0:9020\"",
    ]);
    let env_line = one_of(&[
        "IRD_PUBLIC_URL=https://portal.school.example",
        "IRD_DESKTOP_ORIGIN=https://{id}.desktops.school.example",
        "IRD_DESKTOP_ORIGIN=https://{id}.school.example",
        "IRD_PROXY__TRUSTED_PROXIES=10.0.0.0/8,::1",
        "IRD_PROXY__TRUSTED_PROXIES=nope",
        "IRD_PROXY__IDLE_TIMEOUT_SECS=600",
        "IRD_PROXY__IDLE_TIMEOUT_SECS=[1, 2]",
        "IRD_SESSION_IDLE_SECS=0",
        "IRD_SESSION_TTL_SECS=0",
        "IRD_LOCAL_LOGIN=false",
        "IRD_OIDC__CLIENT_ID=portal",
        "IRD__=1",
        "IRD_=x",
        "FRONTEND_URL=https://portal.school.example/",
        "DATABASE_URI=postgres://ird:secret@db/ird",
        "KASM_VERIFY_SSL=yes",
        "ROLE_ADMIN=admins, lehrer",
        "OAUTH_CLIENT_SECRET=s3cret",
        "SECRET_KEY=abc",
    ]);
    (
        proptest::collection::vec(toml_line, 0..5),
        proptest::collection::vec(env_line, 0..5),
    )
        .prop_map(|(toml, env)| format!("{}\n%%env\n{}", toml.join("\n"), env.join("\n")).into_bytes())
}

proptest! {
    #[test]
    fn request_heads(head in request_head()) {
        fuzz_targets::request_head::run(&head);
    }

    #[test]
    fn desktop_paths(path in desktop_path()) {
        fuzz_targets::desktop_path::run(path.as_bytes());
    }

    #[test]
    fn desktop_hosts(input in desktop_host_input()) {
        fuzz_targets::desktop_host::run(&input);
    }

    #[test]
    fn forwarding_chains(input in forwarded_for_input()) {
        fuzz_targets::forwarded_for::run(&input);
    }

    #[test]
    fn claims_of_any_shape(claims in student_claims()) {
        fuzz_targets::claims::run(claims.to_string().as_bytes());
    }

    /// A student-shaped claim set (no configured group or role in any shape, promoting words
    /// only in the name, e-mail and login name) is a student under every configuration.
    #[test]
    fn student_shaped_claims_make_a_student(claims in student_claims()) {
        let claims = claims.as_object().cloned().unwrap_or_default();
        let identity = iserv_oidc::Identity::from_claims(&claims);
        prop_assert!(identity.is_ok());
        let identity = identity.unwrap_or_else(|_| unreachable!());
        let school = iserv_oidc::OidcConfig {
            admin_groups: vec!["admins".into()],
            teacher_groups: vec!["lehrer".into()],
            ..iserv_oidc::OidcConfig::default()
        };
        for cfg in [iserv_oidc::OidcConfig::default(), school] {
            prop_assert_eq!(identity.role(&cfg), portal_store::Role::Student);
        }
    }
}

proptest! {
    // Each case writes a file and swaps the environment: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn configurations(input in config_input()) {
        fuzz_targets::config::run(&input);
    }
}

/// Paths built from the segments that matter (the planted link, dots, odd names) and new names
/// with umlauts, control characters and the reserved prefix.
fn file_path_input() -> impl Strategy<Value = Vec<u8>> {
    let segment = prop_oneof![
        one_of(&[
            "out",
            "dir",
            "secret",
            "file",
            "..",
            ".",
            "",
            "Übung 1.pdf",
            ".ird-upload-1"
        ]),
        "[a-zA-Z0-9 ._-]{1,12}",
    ];
    let path = proptest::collection::vec(segment, 0..6).prop_map(|s| s.join("/"));
    let name = prop_oneof![one_of(&["neu", "a\tb", ".ird-x", "..", "Übung 1.pdf"]), ".{0,40}"];
    (path, name).prop_map(|(p, n)| format!("{p}\n{n}").into_bytes())
}

proptest! {
    #[test]
    fn file_paths_stay_inside_their_tree(input in file_path_input()) {
        fuzz_targets::file_paths::run(&input);
    }
}
