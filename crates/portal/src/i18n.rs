//! The UI's texts per language, from Fluent files, and choosing a language per request.
//!
//! Each folder `locales/<code>/` with a `main.ftl` is a language (build.rs embeds them all), so
//! adding a language is adding a folder; translators never touch Rust. German is the default
//! and fills in any text another language lacks (the product is made for German schools).
//!
//! The choice per request is: the `lang` cookie (the language switch), else `Accept-Language`,
//! else German.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use fluent_syntax::ast;
use http::HeaderMap;
use http::header::{ACCEPT_LANGUAGE, COOKIE};
use unic_langid::LanguageIdentifier;

// `LOCALES`: every language folder's code and Fluent source, German first (see build.rs).
include!(concat!(env!("OUT_DIR"), "/locales.rs"));

/// The embedded languages, loaded on first use (parsing takes a few milliseconds, once).
static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(|| {
    let catalogue = Catalogue::new(
        LOCALES
            .iter()
            .map(|(code, ftl)| ((*code).to_owned(), (*ftl).to_owned())),
    );
    // A unit test keeps the files clean; should a broken one ship anyway, its good messages
    // still work and the rest fall back to German.
    for problem in &catalogue.problems {
        tracing::error!(%problem, "a language file has errors");
    }
    catalogue
});

/// What `t` shows for a key no language has (a unit test keeps that from happening).
const MISSING: &str = "??";

/// The scripts (portal.js `ago`) choose between a singular and a plural text themselves and
/// fill in `{n}`: for each key they use, the Fluent message it comes from and the count that
/// picks the form (`None`: the plural/other form with `{n}` left for the script). Languages
/// with more plural forms than two get the other form in the browser until the next render
/// on the server, which picks by the language's own plural rules.
const SCRIPT_PLURALS: &[(&str, &str, Option<i64>)] = &[
    ("ago_minute", "ago_minutes", Some(1)),
    ("ago_minutes", "ago_minutes", None),
    ("ago_hour", "ago_hours", Some(1)),
    ("ago_hours", "ago_hours", None),
    ("ago_day", "ago_days", Some(1)),
    ("ago_days", "ago_days", None),
    // The start queue's place, `{n}` of `{m}`, filled in by the dashboard's script.
    ("step_queued", "step_queued", None),
];

/// A language the UI speaks: a handle into the loaded languages (German is the default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Lang(usize);

impl Lang {
    /// Every language there is, German first: what the language switch offers.
    pub fn all() -> impl Iterator<Item = Lang> {
        (0..CATALOGUE.languages.len()).map(Lang)
    }

    /// The code, as in `?lang=…`, the cookie and `<html lang>`.
    pub fn code(self) -> &'static str {
        CATALOGUE.language(self.0).code.as_str()
    }

    /// The language's name in itself ("Deutsch", "English"), from its `language_name`.
    pub fn name(self) -> &'static str {
        CATALOGUE.language(self.0).name.as_str()
    }

    /// The language for a code such as `en`, `en-GB` or `EN_us`, if there is one.
    pub fn parse(code: &str) -> Option<Lang> {
        CATALOGUE.find(code).map(Lang)
    }

    /// The language for a request, from its headers.
    pub fn from_headers(headers: &HeaderMap) -> Lang {
        let from_cookie = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().strip_prefix("lang="))
            .find_map(Lang::parse);
        from_cookie
            .or_else(|| {
                headers
                    .get(ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(from_accept_language)
            })
            .unwrap_or_default()
    }

    /// The text for `key` (a message without variables); German when this language lacks it.
    pub fn t(self, key: &str) -> &'static str {
        CATALOGUE.text(self.0, key)
    }

    /// The text for `key` with its variables filled in, e.g. `t_with("ago_minutes", &[("n", 5)])`;
    /// Fluent picks the plural form by the language's rules.
    pub fn t_with<V: Into<FluentValue<'static>> + Copy>(self, key: &str, args: &[(&str, V)]) -> String {
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            fluent_args.set(name.to_string(), (*value).into());
        }
        CATALOGUE.format(self.0, key, &fluent_args)
    }

    /// The text for a key the scripts use (see [`SCRIPT_PLURALS`]).
    pub fn script_text(self, key: &str) -> String {
        CATALOGUE.script_text(self.0, key)
    }
}

/// Picks the best of the languages there are from an `Accept-Language` value, honouring q-values.
fn from_accept_language(value: &str) -> Option<Lang> {
    let mut best: Option<(f32, Lang)> = None;
    for part in value.split(',') {
        let mut it = part.split(';');
        let Some(lang) = it.next().and_then(Lang::parse) else {
            continue;
        };
        let q = it
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, l)| l)
}

/// One language's file, loaded.
struct Language {
    code: String,
    /// Its `language_name`, else its code.
    name: String,
    /// Only its own file's messages: German fills in at lookup, not here.
    bundle: FluentBundle<FluentResource>,
    /// Its messages without variables, formatted once, so `t` can hand out references as
    /// string constants did before.
    texts: HashMap<String, String>,
}

/// All languages, German (the fallback) first.
struct Catalogue {
    languages: Vec<Language>,
    /// Parse and resolution errors, one line each.
    problems: Vec<String>,
}

impl Catalogue {
    /// Loads `(code, Fluent source)` pairs; `de` becomes the first (default) language.
    fn new(sources: impl IntoIterator<Item = (String, String)>) -> Catalogue {
        let mut problems = Vec::new();
        let mut languages: Vec<Language> = sources
            .into_iter()
            .filter_map(|(code, source)| Language::load(code, source, &mut problems))
            .collect();
        languages.sort_by(|a, b| (a.code != "de", &a.code).cmp(&(b.code != "de", &b.code)));
        if languages.first().is_none_or(|l| l.code != "de") {
            problems.push("there is no German (de) file, the default and fallback".to_owned());
        }
        if languages.is_empty() {
            // Only a broken build gets here; an empty catalogue still serves pages (with "??").
            languages.extend(Language::load("de".to_owned(), String::new(), &mut problems));
        }
        Catalogue { languages, problems }
    }

    /// Loads every `<dir>/<code>/main.ftl`, as build.rs embeds them.
    #[cfg(test)]
    fn from_dir(dir: &std::path::Path) -> std::io::Result<Catalogue> {
        let mut sources = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let folder = entry?.path();
            let file = folder.join("main.ftl");
            if let (Some(code), true) = (folder.file_name().and_then(|n| n.to_str()), file.is_file()) {
                sources.push((code.to_owned(), std::fs::read_to_string(file)?));
            }
        }
        Ok(Catalogue::new(sources))
    }

    fn language(&self, index: usize) -> &Language {
        // A `Lang` only ever comes from this catalogue, so the index exists; German otherwise.
        self.languages.get(index).unwrap_or(&self.languages[0])
    }

    fn find(&self, code: &str) -> Option<usize> {
        let code = code.trim();
        let primary = code.split(['-', '_']).next()?;
        let matches = |l: &Language, wanted: &str| l.code.eq_ignore_ascii_case(wanted);
        // A folder for the exact variant (pt-BR) wins over one for the language (pt).
        let exact = self.languages.iter().position(|l| matches(l, &code.replace('_', "-")));
        exact.or_else(|| self.languages.iter().position(|l| matches(l, primary)))
    }

    fn text(&self, index: usize, key: &str) -> &str {
        [self.language(index), &self.languages[0]]
            .into_iter()
            .find_map(|l| l.texts.get(key))
            .map_or(MISSING, String::as_str)
    }

    fn format(&self, index: usize, key: &str, args: &FluentArgs<'_>) -> String {
        let Some((language, pattern)) = [self.language(index), &self.languages[0]]
            .into_iter()
            .find_map(|l| Some((l, l.bundle.get_message(key)?.value()?)))
        else {
            return MISSING.to_owned();
        };
        let mut errors = Vec::new();
        let text = language
            .bundle
            .format_pattern(pattern, Some(args), &mut errors)
            .into_owned();
        if !errors.is_empty() {
            tracing::warn!(key, lang = %language.code, ?errors, "a text's variables do not match");
        }
        text
    }

    fn script_text(&self, index: usize, key: &str) -> String {
        match SCRIPT_PLURALS.iter().find(|(k, ..)| *k == key) {
            Some((_, message, Some(n))) => self.format(index, message, &FluentArgs::from_iter([("n", *n)])),
            Some((_, message, None)) => {
                self.format(index, message, &FluentArgs::from_iter([("n", "{n}"), ("m", "{m}")]))
            }
            None => self.text(index, key).to_owned(),
        }
    }

    /// Whether the language's own file has the message behind `key` (a script key counts
    /// as its message).
    #[cfg(test)]
    fn has(&self, index: usize, key: &str) -> bool {
        let id = SCRIPT_PLURALS
            .iter()
            .find(|(k, ..)| *k == key)
            .map_or(key, |(_, m, _)| m);
        self.language(index).bundle.has_message(id)
    }
}

impl Language {
    fn load(code: String, source: String, problems: &mut Vec<String>) -> Option<Language> {
        let id: LanguageIdentifier = match code.parse() {
            Ok(id) => id,
            Err(e) => {
                problems.push(format!("{code}: not a language code ({e})"));
                return None;
            }
        };
        let resource = FluentResource::try_new(source).unwrap_or_else(|(partial, errors)| {
            problems.extend(errors.iter().map(|e| format!("{code}/main.ftl: {e}")));
            partial
        });
        let ids: HashSet<String> = resource
            .entries()
            .filter_map(|entry| match entry {
                ast::Entry::Message(m) => Some(m.id.name.to_owned()),
                _ => None,
            })
            .collect();
        let mut bundle = FluentBundle::new_concurrent(vec![id]);
        // Fluent wraps variables in Unicode isolation marks by default; the texts go into HTML
        // and JSON that tests and scripts compare, and no right-to-left language is planned.
        bundle.set_use_isolating(false);
        if let Err(errors) = bundle.add_resource(resource) {
            problems.extend(errors.iter().map(|e| format!("{code}/main.ftl: {e}")));
        }
        let texts = ids
            .iter()
            .filter_map(|id| {
                let pattern = bundle.get_message(id)?.value()?;
                let mut errors = Vec::new();
                let text = bundle.format_pattern(pattern, None, &mut errors);
                // Messages with variables go through `t_with` instead.
                errors.is_empty().then(|| (id.clone(), text.into_owned()))
            })
            .collect::<HashMap<_, _>>();
        let name = texts.get("language_name").cloned().unwrap_or_else(|| code.clone());
        Some(Language {
            code,
            name,
            bundle,
            texts,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::path::Path;

    fn lang(code: &str) -> Lang {
        Lang::parse(code).unwrap()
    }

    #[test]
    fn accept_language_respects_quality() {
        assert_eq!(from_accept_language("fr, en;q=0.8, de;q=0.9"), Some(lang("de")));
        assert_eq!(from_accept_language("en-GB,en;q=0.9"), Some(lang("en")));
        assert_eq!(from_accept_language("fr"), None);
    }

    #[test]
    fn cookie_beats_accept_language() {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT_LANGUAGE, HeaderValue::from_static("de"));
        h.insert(COOKIE, HeaderValue::from_static("x=1; lang=en"));
        assert_eq!(Lang::from_headers(&h), lang("en"));
        assert_eq!(Lang::from_headers(&HeaderMap::new()), lang("de"));
        assert_eq!(Lang::default().code(), "de", "German is the default");
    }

    #[test]
    fn every_language_file_is_valid_fluent() {
        assert!(CATALOGUE.problems.is_empty(), "{:#?}", CATALOGUE.problems);
        let names: Vec<_> = Lang::all().map(|l| (l.code(), l.name())).collect();
        assert_eq!(names[..2], [("de", "Deutsch"), ("en", "English")]);
    }

    #[test]
    fn plurals_and_variables_fill_in() {
        let (de, en) = (lang("de"), lang("en"));
        assert_eq!(en.t_with("ago_minutes", &[("n", 1)]), "1 minute ago");
        assert_eq!(de.t_with("ago_days", &[("n", 3)]), "vor 3 Tagen");
        assert_eq!(
            en.t_with("login_wait_minutes", &[("minutes", 5_u64)]),
            "Too many failed sign-in attempts. Please wait 5 minute(s), then try again."
        );
        // The scripts get both forms and fill in `{n}` themselves.
        assert_eq!(de.script_text("ago_hour"), "vor 1 Stunde");
        assert_eq!(de.script_text("ago_hours"), "vor {n} Stunden");
        assert_eq!(en.script_text("ago_now"), "just now");
        assert_eq!(en.t("no_such_key"), MISSING);
    }

    /// The source files under `dir` whose names end in `ext`, with their text.
    fn sources(dir: &Path, ext: &str) -> Vec<(String, String)> {
        let mut found = Vec::new();
        // Modules may be folders (src/web/), so walk the tree.
        let mut dirs = vec![dir.to_path_buf()];
        while let Some(d) = dirs.pop() {
            for entry in std::fs::read_dir(d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.to_string_lossy().ends_with(ext) {
                    found.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        found
    }

    /// What follows each `marker` in `text`, up to the next `"`.
    fn after<'a>(text: &'a str, marker: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        text.split(marker).skip(1).map(|p| p.split('"').next().unwrap())
    }

    /// Keys the code computes at run time rather than writing `.t("…")`.
    const COMPUTED_KEYS: &[&str] = &[
        // web/events.rs `state_key`
        "state_none",
        "state_starting",
        "state_running",
        "state_stopping",
        "state_stopped",
        "state_failed",
        // web/events.rs `reason_key`
        "reason_user",
        "reason_admin",
        "reason_idle",
        "reason_max_age",
        "reason_oom",
        "reason_crashed",
        "reason_start_timeout",
        "reason_image",
        "reason_failed",
        // web/pages.rs `role_key`, web/admin/users.rs role choice
        "role_admin",
        "role_teacher",
        "role_student",
        // web/events.rs `ago`
        "ago_now",
        "ago_minutes",
        "ago_hours",
        "ago_days",
        // web/signin/local.rs
        "login_wait_minutes",
        // the language switch (base.html, `Lang::name`)
        "language_name",
    ];

    /// Every key the templates, the Rust code and the scripts use exists in every language's
    /// own file (German filling in would hide a missing translation).
    #[test]
    fn every_used_key_is_in_every_language() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut keys: Vec<(String, String)> = Vec::new();
        let mut add = |origin: &str, key: &str| keys.push((origin.to_owned(), key.to_owned()));

        for (file, text) in sources(&root.join("templates"), ".html") {
            after(&text, "t(\"").for_each(|k| add(&file, k));
        }
        let mut script_keys = None;
        for (file, text) in sources(&root.join("src"), ".rs") {
            // This file's tests name keys on purpose, missing ones too.
            if file.ends_with("i18n.rs") {
                continue;
            }
            after(&text, ".t(\"").for_each(|k| add(&file, k));
            after(&text, ".t_with(\"").for_each(|k| add(&file, k));
            // Errors name their `err_…` key in code (web/error.rs, web/admin/mod.rs).
            after(&text, "\"err_").for_each(|k| add(&file, &format!("err_{k}")));
            // Texts handed to the scripts (web/dashboard.rs, and the admin pages' in web/pages.rs).
            for list_name in [
                "const JS_TEXT_KEYS: &[&str] = &[",
                "const ADMIN_JS_TEXT_KEYS: &[&str] = &[",
            ] {
                if let Some(list) = text.split(list_name).nth(1) {
                    let list = list.split("];").next().unwrap();
                    let listed: Vec<_> = list.split('"').skip(1).step_by(2).map(str::to_owned).collect();
                    listed.iter().for_each(|k| add(&file, k));
                    script_keys.get_or_insert_with(Vec::new).extend(listed);
                }
            }
        }
        let script_keys = script_keys.expect("JS_TEXT_KEYS in the sources");
        // Scripts read the texts the page hands them (`t("…")` in portal.js and its users):
        // each must be among JS_TEXT_KEYS, or the script shows the bare key.
        for (file, text) in sources(&root.join("static"), ".js") {
            // `t("…")` calls (not `parseInt("…")`), and portal.js `ago`'s keys, which it picks by count.
            let calls = text
                .match_indices("t(\"")
                .filter(|(i, _)| !text[..*i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '.'))
                .map(|(i, _)| text[i + 3..].split('"').next().unwrap().to_owned());
            let ago = after(&text, "\"ago_").map(|k| format!("ago_{k}"));
            for key in calls.chain(ago) {
                assert!(
                    script_keys.contains(&key),
                    "{file} uses {key:?}, which JS_TEXT_KEYS does not hand over"
                );
                add(&file, &key);
            }
        }
        COMPUTED_KEYS.iter().for_each(|k| add("COMPUTED_KEYS", k));
        for kind in portal_store::AuditKind::ALL {
            add("AuditKind::ALL", &format!("audit_{}", kind.as_str()));
        }

        assert!(
            keys.len() > 100,
            "the scan found only {} keys; is it still looking in the right place?",
            keys.len()
        );
        let mut missing = Vec::new();
        for lang in Lang::all() {
            for (origin, key) in &keys {
                if !CATALOGUE.has(lang.0, key) {
                    missing.push(format!("{}/main.ftl lacks {key:?} (used in {origin})", lang.code()));
                }
            }
        }
        missing.dedup();
        assert!(missing.is_empty(), "{missing:#?}");
    }

    /// Dropping one file into a new folder adds a language: it is offered in the switch under
    /// its own name, speaks its texts and falls back to German for the rest.
    #[test]
    fn a_new_language_folder_adds_a_language() {
        let dir = tempfile::tempdir().unwrap();
        for (code, ftl) in LOCALES {
            std::fs::create_dir(dir.path().join(code)).unwrap();
            std::fs::write(dir.path().join(code).join("main.ftl"), ftl).unwrap();
        }
        std::fs::create_dir(dir.path().join("eo")).unwrap();
        std::fs::write(
            dir.path().join("eo/main.ftl"),
            "language_name = Esperanto\nsign_in = Ensaluti\nago_minutes = { $n ->\n    [one] antaŭ { $n } minuto\n   *[other] antaŭ { $n } minutoj\n}\n",
        )
        .unwrap();

        let catalogue = Catalogue::from_dir(dir.path()).unwrap();
        assert!(catalogue.problems.is_empty(), "{:#?}", catalogue.problems);
        let switch: Vec<_> = catalogue
            .languages
            .iter()
            .map(|l| (l.code.as_str(), l.name.as_str()))
            .collect();
        assert_eq!(switch, [("de", "Deutsch"), ("en", "English"), ("eo", "Esperanto")]);

        let eo = catalogue.find("eo-x-test").unwrap();
        assert_eq!(catalogue.text(eo, "sign_in"), "Ensaluti");
        assert_eq!(
            catalogue.format(eo, "ago_minutes", &FluentArgs::from_iter([("n", 2)])),
            "antaŭ 2 minutoj"
        );
        assert_eq!(catalogue.text(eo, "sign_out"), "Abmelden", "German fills in");
        assert_eq!(
            catalogue.format(eo, "ago_hours", &FluentArgs::from_iter([("n", 2)])),
            "vor 2 Stunden"
        );
        assert!(
            !catalogue.has(eo, "sign_out"),
            "the key check sees what the file itself lacks"
        );
    }
}
