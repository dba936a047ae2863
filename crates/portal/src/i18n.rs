//! German and English texts, and choosing one per request.
//!
//! The choice is: the `lang` cookie (the language switch), else `Accept-Language`, else German
//! (the product is made for German schools).

use http::HeaderMap;
use http::header::{ACCEPT_LANGUAGE, COOKIE};

/// A language the UI speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    De,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::De => "de",
            Lang::En => "en",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        let primary = code.split(['-', '_']).next()?.trim();
        if primary.eq_ignore_ascii_case("de") {
            Some(Lang::De)
        } else if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else {
            None
        }
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

    /// The text for `key`; a missing key shows the key itself (a unit test keeps the
    /// catalogue complete for every key used in templates and code).
    pub fn t(self, key: &str) -> &'static str {
        match lookup(key) {
            Some((de, en)) => match self {
                Lang::De => de,
                Lang::En => en,
            },
            None => "??",
        }
    }
}

/// Picks the best of de/en from an `Accept-Language` value, honouring q-values.
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

/// The catalogue: key → (German, English).
fn lookup(key: &str) -> Option<(&'static str, &'static str)> {
    Some(match key {
        "app_name" => ("IServ Remote Desktop", "IServ Remote Desktop"),
        "sign_in" => ("Anmelden", "Sign in"),
        "sign_out" => ("Abmelden", "Sign out"),
        "username" => ("Benutzername", "Username"),
        "password" => ("Passwort", "Password"),
        "sign_in_intro" => (
            "Melde dich mit deinem Schulkonto an, um deinen Linux-Desktop im Browser zu öffnen.",
            "Sign in with your school account to open your Linux desktop in the browser.",
        ),
        "your_desktops" => ("Deine Desktops", "Your desktops"),
        "no_desktops" => (
            "Für dich ist noch kein Desktop freigegeben. Bitte wende dich an deine Lehrkraft oder die Schul-IT.",
            "No desktop is available to you yet. Please ask your teacher or the school's IT admin.",
        ),
        "open" => ("Öffnen", "Open"),
        "start" => ("Starten", "Start"),
        "admin_title" => ("Verwaltung", "Administration"),
        "admin_runtime_ok" => (
            "Der Container-Dienst ist erreichbar",
            "The container service is reachable",
        ),
        "admin_running" => ("Desktops laufen", "desktops running"),
        "admin_stop_all" => ("Alle beenden", "Stop all"),
        "admin_confirm_stop_all" => (
            "Wirklich alle laufenden Desktops beenden? Nicht gespeicherte Arbeit geht verloren.",
            "Really stop every running desktop? Unsaved work is lost.",
        ),
        "admin_cleanup" => ("Beendete aufräumen", "Clean up stopped"),
        "admin_remove" => ("Entfernen", "Remove"),
        "admin_desktop" => ("Desktop", "Desktop"),
        "admin_owner" => ("Benutzer", "User"),
        "admin_state" => ("Zustand", "State"),
        "admin_started" => ("Gestartet", "Started"),
        "admin_last_input" => ("Letzte Eingabe", "Last input"),
        "admin_none" => ("Noch keine Desktops.", "No desktops yet."),
        "stop" => ("Beenden", "Stop"),
        "idle_stopped" => (
            "Dein Desktop wurde wegen Inaktivität beendet. Deine Dateien bleiben erhalten; du kannst ihn auf der Startseite neu starten.",
            "Your desktop was stopped because it was idle. Your files are kept; you can start it again from the start page.",
        ),
        "state_none" => ("Noch nicht gestartet", "Not started yet"),
        "state_starting" => ("Startet …", "Starting …"),
        "state_running" => ("Läuft", "Running"),
        "state_stopping" => ("Wird beendet …", "Stopping …"),
        "state_stopped" => ("Beendet", "Stopped"),
        "state_failed" => ("Fehlgeschlagen", "Failed"),
        "step_pulling" => ("Image wird geladen", "Downloading image"),
        "step_creating" => ("Desktop wird angelegt", "Creating desktop"),
        "step_starting" => ("Desktop startet", "Starting desktop"),
        "step_waiting" => ("Warte auf den Desktop", "Waiting for the desktop"),
        // Dashboard, desktop view, teacher page, language switch (live states and actions).
        "step_ready" => ("Bereit – wird geöffnet …", "Ready – opening …"),
        "step_requested" => ("Start angefordert …", "Start requested …"),
        "last_used" => ("Zuletzt benutzt", "Last used"),
        "never_used" => ("Noch nie benutzt", "Never used"),
        "ago_now" => ("gerade eben", "just now"),
        "ago_minute" => ("vor {n} Minute", "{n} minute ago"),
        "ago_minutes" => ("vor {n} Minuten", "{n} minutes ago"),
        "ago_hour" => ("vor {n} Stunde", "{n} hour ago"),
        "ago_hours" => ("vor {n} Stunden", "{n} hours ago"),
        "ago_day" => ("vor {n} Tag", "{n} day ago"),
        "ago_days" => ("vor {n} Tagen", "{n} days ago"),
        "remove" => ("Entfernen …", "Remove …"),
        "remove_confirm_text" => (
            "Der Container deines Desktops wird gelöscht; deine Dateien bleiben erhalten.",
            "Your desktop's container is deleted; your files stay.",
        ),
        "remove_confirm" => ("Ja, entfernen", "Yes, remove"),
        "stop_confirm_text" => (
            "Desktop beenden? Nicht gespeicherte Arbeit in offenen Programmen geht verloren; deine Dateien bleiben erhalten.",
            "Stop the desktop? Unsaved work in open programs is lost; your files stay.",
        ),
        "start_again" => ("Neu starten", "Start again"),
        "fullscreen" => ("Vollbild", "Full screen"),
        "reconnect" => ("Neu verbinden", "Reconnect"),
        "view_stopped" => ("Dein Desktop ist beendet.", "Your desktop has stopped."),
        "view_starting" => ("Dein Desktop startet …", "Your desktop is starting …"),
        "view_disconnected" => (
            "Die Verbindung zum Portal ist unterbrochen. Prüfe dein Netzwerk; es wird automatisch neu verbunden.",
            "The connection to the portal was lost. Check your network; it reconnects by itself.",
        ),
        "view_reconnect_hint" => (
            "Die Verbindung ist wieder da. Verbinde den Desktop neu, falls er nicht mehr reagiert.",
            "The connection is back. Reconnect the desktop if it no longer responds.",
        ),
        "live_offline" => (
            "Live-Anzeige unterbrochen – wird neu verbunden …",
            "Live updates interrupted – reconnecting …",
        ),
        "err_network" => (
            "Keine Verbindung zum Portal. Prüfe dein Netzwerk und versuche es erneut.",
            "No connection to the portal. Check your network and try again.",
        ),
        "noscript" => (
            "Ohne JavaScript funktionieren Starten, Beenden und Entfernen, aber der Zustand wird nicht live angezeigt: lade die Seite neu, um ihn zu sehen.",
            "Without JavaScript, start, stop and remove work, but states do not update live: reload the page to see them.",
        ),
        "reason_user" => (
            "Du hast ihn beendet. Deine Dateien bleiben erhalten.",
            "You stopped it. Your files are kept.",
        ),
        "reason_admin" => (
            "Die Schul-IT hat ihn beendet. Deine Dateien bleiben erhalten; du kannst ihn neu starten.",
            "An administrator stopped it. Your files are kept; you can start it again.",
        ),
        "reason_idle" => (
            "Wegen Inaktivität beendet. Deine Dateien bleiben erhalten; du kannst ihn neu starten.",
            "Stopped because it was idle. Your files are kept; you can start it again.",
        ),
        "reason_max_age" => (
            "Nach der längsten erlaubten Laufzeit beendet. Du kannst ihn neu starten.",
            "Stopped after the longest allowed running time. You can start it again.",
        ),
        "reason_oom" => (
            "Der Arbeitsspeicher war voll, deshalb wurde er beendet. Starte ihn neu und öffne weniger Programme gleichzeitig.",
            "It ran out of memory and was stopped. Start it again and open fewer programs at once.",
        ),
        "reason_crashed" => (
            "Er wurde unerwartet beendet. Starte ihn neu; passiert das öfter, sag der Schul-IT Bescheid.",
            "It stopped unexpectedly. Start it again; if this keeps happening, tell the school's IT admin.",
        ),
        "reason_start_timeout" => (
            "Er hat beim Start nicht rechtzeitig geantwortet. Versuche es noch einmal; klappt es wieder nicht, sag der Schul-IT Bescheid.",
            "It did not answer in time while starting. Try again; if it fails again, tell the school's IT admin.",
        ),
        "reason_image" => (
            "Das Desktop-Abbild konnte nicht geladen werden. Bitte sag der Schul-IT Bescheid.",
            "The desktop image could not be loaded. Please tell the school's IT admin.",
        ),
        "reason_failed" => (
            "Der Start hat nicht geklappt. Versuche es noch einmal; klappt es wieder nicht, sag der Schul-IT Bescheid.",
            "The start did not work. Try again; if it fails again, tell the school's IT admin.",
        ),
        "details" => ("Technische Details", "Technical details"),
        "skip_to_content" => ("Zum Inhalt springen", "Skip to content"),
        "teacher_saved_hint" => ("Die Änderung gilt sofort.", "The change applies at once."),
        "lang_de" => ("Deutsch", "German"),
        "lang_en" => ("Englisch", "English"),
        "teacher_title" => ("Meine Klassen", "My classes"),
        "teacher_intro" => (
            "Gib deinen Gruppen Desktops frei und sieh, welche Desktops deiner Schülerinnen und Schüler laufen.",
            "Enable desktops for your groups and see which of your students' desktops run.",
        ),
        "teacher_assign_title" => ("Desktops für deine Gruppen", "Desktops for your groups"),
        "teacher_group" => ("Gruppe", "Group"),
        "teacher_type" => ("Desktop", "Desktop"),
        "teacher_assign" => ("Freigeben", "Enable"),
        "teacher_revoke" => ("Freigabe entfernen", "Disable"),
        "teacher_granted_by" => ("Freigegeben von", "Enabled by"),
        "teacher_no_grants" => ("Noch keine Freigaben.", "Nothing enabled yet."),
        "teacher_no_groups" => (
            "Du bist in keiner Gruppe. Gruppen kommen aus IServ; frag die Schul-IT.",
            "You are not in any group. Groups come from IServ; ask the school's IT admin.",
        ),
        "teacher_no_types" => (
            "Es gibt keine Desktops, die du freigeben kannst.",
            "There are no desktops you can enable.",
        ),
        "teacher_students_title" => ("Desktops deiner Schülerinnen und Schüler", "Your students' desktops"),
        "teacher_student" => ("Schüler/in", "Student"),
        "teacher_groups_col" => ("Gruppen", "Groups"),
        "teacher_no_students" => (
            "Gerade hat niemand aus deinen Gruppen einen Desktop.",
            "Nobody in your groups has a desktop right now.",
        ),
        "teacher_saved" => ("Gespeichert.", "Saved."),
        "err_teacher_only" => (
            "Diese Seite ist nur für Lehrkräfte und die Schul-IT.",
            "This page is for teachers and administrators only.",
        ),
        "err_not_your_group" => (
            "Du kannst Desktops nur für Gruppen freigeben, in denen du selbst bist.",
            "You can only enable desktops for groups you are in yourself.",
        ),
        "err_type_not_grantable" => (
            "Diesen Desktop kannst du nicht freigeben: Er ist abgeschaltet oder für dich selbst nicht freigegeben.",
            "You cannot enable this desktop: it is switched off or not enabled for you yourself.",
        ),
        "signed_in_as" => ("Angemeldet als", "Signed in as"),
        "role_admin" => ("Administration", "Administrator"),
        "role_teacher" => ("Lehrkraft", "Teacher"),
        "role_student" => ("Schüler/in", "Student"),
        "language" => ("Sprache", "Language"),
        "back_to_start" => ("Zur Startseite", "Back to the start page"),
        "error_title" => ("Das hat nicht geklappt", "Something went wrong"),
        // Errors: what happened and what to do.
        "err_bad_credentials" => (
            "Benutzername oder Passwort ist falsch.",
            "The username or password is wrong.",
        ),
        "err_too_many_attempts" => (
            "Zu viele fehlgeschlagene Anmeldeversuche. Bitte warte 15 Minuten und versuche es dann erneut.",
            "Too many failed sign-in attempts. Please wait 15 minutes, then try again.",
        ),
        "err_unauthorized" => ("Bitte melde dich zuerst an.", "Please sign in first."),
        "err_forbidden_desktop" => (
            "Dieser Desktop gehört jemand anderem. Öffne deinen eigenen Desktop über die Startseite.",
            "This desktop belongs to someone else. Open your own desktop from the start page.",
        ),
        "err_foreign_origin" => (
            "Die Verbindung wurde abgelehnt, weil sie nicht vom Portal selbst kam.",
            "The connection was refused because it did not come from the portal itself.",
        ),
        "err_csrf" => (
            "Das Formular ist abgelaufen. Bitte lade die Seite neu und versuche es noch einmal.",
            "The form has expired. Please reload the page and try again.",
        ),
        "err_not_found" => ("Diese Seite gibt es nicht.", "This page does not exist."),
        "err_desktop_not_found" => (
            "Diesen Desktop gibt es nicht oder er läuft gerade nicht. Starte ihn über die Startseite.",
            "This desktop does not exist or is not running. Start it from the start page.",
        ),
        "err_no_desktop_selected" => (
            "Es ist kein Desktop ausgewählt. Öffne einen Desktop über die Startseite.",
            "No desktop is selected. Open a desktop from the start page.",
        ),
        "err_bad_request" => ("Die Anfrage ist ungültig.", "The request is invalid."),
        "err_bad_upgrade" => (
            "Die WebSocket-Anfrage ist ungültig.",
            "The WebSocket request is invalid.",
        ),
        "err_too_large" => ("Die Anfrage ist zu groß.", "The request is too large."),
        "err_desktop_unreachable" => (
            "Der Desktop ist gerade nicht erreichbar. Vielleicht startet er noch – versuche es in ein paar Sekunden erneut.",
            "The desktop cannot be reached right now. It may still be starting – try again in a few seconds.",
        ),
        "err_desktop_timeout" => (
            "Der Desktop antwortet nicht rechtzeitig. Versuche es gleich noch einmal; hilft das nicht, starte ihn neu.",
            "The desktop did not answer in time. Try again in a moment; if that does not help, restart it.",
        ),
        "err_desktop_bad_response" => (
            "Der Desktop hat ungültig geantwortet. Bitte starte ihn neu; bleibt der Fehler, melde dich bei der Schul-IT.",
            "The desktop sent an invalid answer. Please restart it; if this keeps happening, tell the school's IT admin.",
        ),
        "err_unavailable" => (
            "Der Dienst ist gerade nicht verfügbar. Bitte versuche es in einer Minute erneut.",
            "The service is unavailable right now. Please try again in a minute.",
        ),
        "err_internal" => (
            "Ein interner Fehler ist aufgetreten. Bitte versuche es erneut; bleibt der Fehler, melde dich bei der Schul-IT.",
            "An internal error occurred. Please try again; if it keeps happening, tell the school's IT admin.",
        ),
        "err_admin_only" => ("Das dürfen nur Administratoren.", "Only administrators may do this."),
        "err_unknown_type" => (
            "Diese Desktop-Art gibt es nicht. Wähle eine auf der Startseite.",
            "This kind of desktop does not exist. Pick one on the start page.",
        ),
        "err_type_disabled" => (
            "Diese Desktop-Art ist gerade abgeschaltet. Bitte wähle eine andere oder frage die Schul-IT.",
            "This kind of desktop is switched off right now. Please pick another or ask the school's IT admin.",
        ),
        "err_type_not_allowed" => (
            "Diese Desktop-Art ist für deine Gruppe nicht freigegeben. Frag deine Lehrkraft.",
            "This kind of desktop is not enabled for your group. Ask your teacher.",
        ),
        "err_limit_user" => (
            "Du hast schon so viele Desktops laufen, wie erlaubt sind. Beende einen, bevor du einen weiteren startest.",
            "You already run as many desktops as allowed. Stop one before you start another.",
        ),
        "err_limit_total" => (
            "Gerade laufen so viele Desktops, wie der Server verkraftet. Bitte versuche es in ein paar Minuten erneut.",
            "The server runs as many desktops as it can right now. Please try again in a few minutes.",
        ),
        "err_too_many_starts" => (
            "Gerade starten viele Desktops gleichzeitig. Bitte versuche es in einer Minute erneut.",
            "Many desktops are starting at the same time. Please try again in a minute.",
        ),
        "err_unsupported" => (
            "Dieses Portal bietet nur fest eingerichtete Desktops an; sie können hier nicht gestartet oder beendet werden.",
            "This portal offers only pre-configured desktops; they cannot be started or stopped here.",
        ),
        "err_runtime_unavailable" => (
            "Desktops können gerade nicht gestartet werden, weil der Container-Dienst nicht erreichbar ist. Bitte sag der Schul-IT Bescheid.",
            "Desktops cannot be started right now because the container service is unreachable. Please tell the school's IT admin.",
        ),
        "err_runtime_error" => (
            "Der Container-Dienst hat einen Fehler gemeldet. Versuche es erneut; bleibt der Fehler, sag der Schul-IT Bescheid.",
            "The container service reported an error. Try again; if it keeps happening, tell the school's IT admin.",
        ),
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn accept_language_respects_quality() {
        assert_eq!(from_accept_language("fr, en;q=0.8, de;q=0.9"), Some(Lang::De));
        assert_eq!(from_accept_language("en-GB,en;q=0.9"), Some(Lang::En));
        assert_eq!(from_accept_language("fr"), None);
    }

    #[test]
    fn cookie_beats_accept_language() {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT_LANGUAGE, HeaderValue::from_static("de"));
        h.insert(COOKIE, HeaderValue::from_static("x=1; lang=en"));
        assert_eq!(Lang::from_headers(&h), Lang::En);
        assert_eq!(Lang::from_headers(&HeaderMap::new()), Lang::De);
    }

    /// Every `t("…")` key used in templates and code exists in the catalogue.
    #[test]
    fn every_used_key_is_translated() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut sources = Vec::new();
        for sub in ["templates", "src"] {
            for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
                let path = entry.unwrap().path();
                // This file defines the catalogue; scanning it would find its own patterns.
                if path.file_name().is_some_and(|n| n != "i18n.rs") {
                    sources.push(std::fs::read_to_string(path).unwrap());
                }
            }
        }
        let mut checked = 0;
        for text in &sources {
            // `.t("key")` in templates, and the `"err_…"` keys that errors name in code.
            let in_templates = text
                .split(".t(\"")
                .skip(1)
                .map(|p| p.split('"').next().unwrap().to_owned());
            let in_code = text
                .split("\"err_")
                .skip(1)
                .map(|p| format!("err_{}", p.split('"').next().unwrap()));
            for key in in_templates.chain(in_code) {
                assert!(lookup(&key).is_some(), "missing translation for {key:?}");
                checked += 1;
            }
        }
        assert!(
            checked > 10,
            "the scan found only {checked} keys; is it still looking in the right place?"
        );
    }
}
