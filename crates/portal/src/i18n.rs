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
        "err_desktop_own_origin" => (
            "Dieser Desktop läuft unter einer eigenen Adresse. Öffne ihn über die Startseite des Portals.",
            "This desktop is served at an address of its own. Open it from the portal's start page.",
        ),
        "err_desktop_origin_required" => (
            "Fremde Desktops lassen sich erst öffnen, wenn die Schule eigene Desktop-Adressen eingerichtet hat \
             (Einstellung desktop_origin). Bis dahin kann nur die Besitzerin oder der Besitzer den Desktop öffnen: \
             Sonst könnte eine Seite aus dem Desktop in deinem Namen handeln.",
            "Other people's desktops can be opened only once the school has set up desktop addresses of their own \
             (setting desktop_origin). Until then only the desktop's owner may open it: otherwise a page inside \
             the desktop could act in your name.",
        ),
        "err_desktop_origin_session" => (
            "Diese Desktop-Adresse kennt dich nicht (mehr). Öffne den Desktop über das Portal.",
            "This desktop address does not know you (any more). Open the desktop from the portal.",
        ),
        "err_desktop_ticket" => (
            "Dieser Link ist abgelaufen oder wurde schon benutzt. Öffne den Desktop erneut über das Portal.",
            "This link has expired or was already used. Open the desktop again from the portal.",
        ),
        "err_desktop_other_site" => (
            "Anfragen von anderen Seiten an diesen Desktop werden abgewiesen. Öffne den Desktop über das Portal.",
            "Requests from other sites to this desktop are refused. Open the desktop from the portal.",
        ),
        "desktop_origin_portal_link" => ("Portal", "Portal"),
        "admin_open_desktop" => ("Öffnen", "Open"),
        "admin_no_desktop_origin" => (
            "Desktops teilen sich die Adresse des Portals (desktop_origin ist nicht gesetzt). Nur ihre Besitzer \
             können sie öffnen; Administratoren und Lehrkräfte sehen fremde Desktops erst, wenn eigene \
             Desktop-Adressen eingerichtet sind (siehe Installationsanleitung).",
            "Desktops share the portal's address (desktop_origin is not set). Only their owners can open them; \
             administrators and teachers can open other people's desktops only once desktops have addresses of \
             their own (see the deployment guide).",
        ),
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
        // Sign-in with IServ and local sign-in (oidc/, login.rs).
        "sign_in_iserv" => ("Mit IServ anmelden", "Sign in with IServ"),
        "sign_in_local_hint" => (
            "Ohne IServ-Konto (nur für eingerichtete lokale Konten):",
            "Without an IServ account (only for set-up local accounts):",
        ),
        "login_wait_minutes" => (
            "Zu viele fehlgeschlagene Anmeldeversuche. Bitte warte {minutes} Minute(n) und versuche es dann erneut.",
            "Too many failed sign-in attempts. Please wait {minutes} minute(s), then try again.",
        ),
        "err_local_login_off" => (
            "Die Anmeldung mit Benutzername und Passwort ist abgeschaltet. Bitte melde dich mit IServ an.",
            "Signing in with a username and password is switched off. Please sign in with IServ.",
        ),
        "err_oidc_config" => (
            "Die Anmeldung mit IServ ist falsch eingerichtet. Bitte sag der Schul-IT Bescheid.",
            "Sign-in with IServ is set up wrongly. Please tell the school's IT admin.",
        ),
        "err_oidc_unavailable" => (
            "Die Anmeldung mit IServ ist gerade nicht erreichbar. Bitte versuche es in einer Minute erneut.",
            "IServ sign-in is currently unavailable. Please try again in a minute.",
        ),
        "err_oidc_state" => (
            "Dieser Anmeldevorgang ist abgelaufen, wurde schon benutzt oder in einem anderen Browser begonnen. Bitte melde dich noch einmal an.",
            "This sign-in has expired, was already used or was started in another browser. Please sign in again.",
        ),
        "err_oidc_denied" => (
            "Du hast die Anmeldung bei IServ abgelehnt. Um das Portal zu nutzen, melde dich erneut an und stimme der Freigabe zu.",
            "You declined the sign-in at IServ. To use the portal, sign in again and allow the access.",
        ),
        "err_oidc_code_used" => (
            "Der Anmeldecode von IServ ist abgelaufen oder wurde schon benutzt. Bitte melde dich noch einmal an.",
            "IServ's sign-in code has expired or was already used. Please sign in again.",
        ),
        "err_oidc_provider_error" => (
            "IServ hat bei der Anmeldung einen Fehler gemeldet. Bitte versuche es in einer Minute erneut; bleibt der Fehler, sag der Schul-IT Bescheid.",
            "IServ reported an error during sign-in. Please try again in a minute; if it keeps happening, tell the school's IT admin.",
        ),
        "err_oidc_token_invalid" => (
            "Die Antwort von IServ konnte nicht bestätigt werden, deshalb wurdest du nicht angemeldet. Bitte versuche es erneut; bleibt der Fehler, sag der Schul-IT Bescheid.",
            "IServ's answer could not be verified, so you were not signed in. Please try again; if it keeps happening, tell the school's IT admin.",
        ),
        "err_oidc_token_expired" => (
            "Die Anmeldung von IServ war schon abgelaufen, als sie ankam. Bitte versuche es erneut; bleibt der Fehler, muss die Schul-IT die Uhrzeit der Server prüfen.",
            "IServ's sign-in had already expired when it arrived. Please try again; if it keeps happening, the school's IT admin must check the servers' clocks.",
        ),
        "err_oidc_no_username" => (
            "IServ hat deinen Benutzernamen nicht mitgeteilt. Die Schul-IT muss dem Portal in IServ den Bereich „profile“ freigeben.",
            "IServ did not tell us your username. The school's IT admin must allow the portal the scope \"profile\" in IServ.",
        ),
        "err_oidc_not_allowed" => (
            "Dein IServ-Konto ist für dieses Portal nicht freigeschaltet. Wenn du es nutzen sollst, frag deine Lehrkraft oder die Schul-IT.",
            "Your IServ account is not allowed to use this portal. If you should be able to, ask your teacher or the school's IT admin.",
        ),
        "err_oidc_bad_username" => (
            "Dein IServ-Benutzername kann hier nicht verwendet werden. Bitte sag der Schul-IT Bescheid.",
            "Your IServ username cannot be used here. Please tell the school's IT admin.",
        ),
        "err_oidc_username_taken" => (
            "Dein Benutzername gehört hier schon zu einem anderen IServ-Konto (z. B. nach einer Umbenennung). Bitte sag der Schul-IT Bescheid.",
            "Your username already belongs to another IServ account here (e.g. after a rename). Please tell the school's IT admin.",
        ),
        // Admin pages (desktops, types, users, audit log, branding).
        "admin_section_desktops" => ("Desktops", "Desktops"),
        "admin_section_types" => ("Desktop-Arten", "Desktop types"),
        "admin_section_users" => ("Benutzer", "Users"),
        "admin_section_audit" => ("Protokoll", "Audit log"),
        "admin_section_branding" => ("Erscheinungsbild", "Branding"),
        "admin_confirm_cleanup" => (
            "Alle beendeten Desktops entfernen? Die Dateien der Benutzer bleiben erhalten.",
            "Remove all stopped desktops? The users' files are kept.",
        ),
        "admin_confirm_stop" => (
            "Desktop beenden? Nicht gespeicherte Arbeit in offenen Programmen geht verloren.",
            "Stop the desktop? Unsaved work in open programs is lost.",
        ),
        "admin_confirm_remove" => (
            "Desktop entfernen? Laufende Programme werden beendet; die Dateien im Home-Verzeichnis bleiben.",
            "Remove the desktop? Running programs end; the files in the home folder are kept.",
        ),
        "admin_select_all" => ("Alle auswählen", "Select all"),
        "admin_selected" => ("Ausgewählte:", "Selected:"),
        "admin_type" => ("Art", "Type"),
        "admin_cpu" => ("CPU", "CPU"),
        "admin_memory" => ("Speicher", "Memory"),
        "admin_recent_events" => ("Letzte Ereignisse", "Recent events"),
        "admin_all_events" => ("Ganzes Protokoll", "Whole audit log"),
        "admin_save" => ("Speichern", "Save"),
        "admin_back" => ("Zurück", "Back"),
        "admin_upload" => ("Hochladen", "Upload"),
        "admin_upload_help" => (
            "PNG-, JPEG- oder WebP-Bild, höchstens",
            "PNG, JPEG or WebP image, at most",
        ),
        "admin_image_remove" => ("Bild entfernen", "Remove image"),
        "admin_types_new" => ("Neue Desktop-Art", "New desktop type"),
        "admin_types_config_note" => (
            "Desktop-Arten aus der Konfigurationsdatei werden aus der Datei übernommen, wenn ihr Eintrag dort neu ist oder sich ändert; Änderungen hier bleiben bis dahin erhalten.",
            "Desktop types from the configuration file are taken from the file when their entry there is new or changes; changes made here are kept until then.",
        ),
        "admin_types_everyone" => ("alle Angemeldeten", "everyone signed in"),
        "admin_type_key" => ("Schlüssel", "Key"),
        "admin_type_key_help" => (
            "a–z, 0–9 und -, höchstens 32 Zeichen; Teil der Desktop-Adressen, später nicht änderbar.",
            "a–z, 0–9 and -, at most 32 characters; part of desktop addresses, cannot be changed later.",
        ),
        "admin_type_name" => ("Name", "Name"),
        "admin_type_description" => ("Beschreibung", "Description"),
        "admin_type_emoji" => (
            "Symbol (Emoji, falls kein Bild)",
            "Symbol (emoji, when there is no image)",
        ),
        "admin_type_icon" => ("Bild", "Icon"),
        "admin_type_image" => ("Container-Image", "Container image"),
        "admin_type_port" => ("Port im Container", "Port in the container"),
        "admin_type_protocol" => ("Protokoll", "Protocol"),
        "admin_type_memory" => (
            "Arbeitsspeicher in MiB (leer = unbegrenzt)",
            "Memory in MiB (empty = unlimited)",
        ),
        "admin_type_cpus" => ("CPUs (leer = unbegrenzt)", "CPUs (empty = unlimited)"),
        "admin_type_shm" => ("/dev/shm in MiB", "/dev/shm in MiB"),
        "admin_type_idle" => (
            "Beenden nach Minuten ohne Eingabe (0 = nie)",
            "Stop after minutes without input (0 = never)",
        ),
        "admin_type_max_age" => (
            "Höchstlaufzeit in Stunden (0 = unbegrenzt)",
            "Maximum run time in hours (0 = unlimited)",
        ),
        "admin_type_groups" => ("Erlaubte Gruppen", "Allowed groups"),
        "admin_type_users" => ("Erlaubte Benutzer", "Allowed users"),
        "admin_type_who" => ("Wer darf", "Who may use it"),
        "admin_type_who_help" => (
            "Durch Komma oder Zeilen getrennt. Beide Listen leer: alle Angemeldeten.",
            "Separated by commas or lines. Both lists empty: everyone signed in.",
        ),
        "admin_type_env" => (
            "Umgebungsvariablen (NAME=Wert je Zeile)",
            "Environment (NAME=value per line)",
        ),
        "admin_type_sort" => ("Reihenfolge", "Order"),
        "admin_type_enabled" => ("Eingeschaltet", "Enabled"),
        "admin_type_disabled" => ("Ausgeschaltet", "Disabled"),
        "admin_type_enable" => ("Einschalten", "Enable"),
        "admin_type_disable" => ("Ausschalten", "Disable"),
        "admin_type_delete" => ("Löschen", "Delete"),
        "admin_type_confirm_delete" => (
            "Desktop-Art löschen? Das geht nur, wenn keine Desktops dieser Art mehr existieren.",
            "Delete the desktop type? This only works when no desktops of the type exist.",
        ),
        "admin_type_pull" => ("Image laden", "Pull image"),
        "admin_pull_done" => ("Image geladen.", "Image pulled."),
        "admin_pull_failed" => ("Laden fehlgeschlagen:", "Pull failed:"),
        "admin_user_name" => ("Benutzername", "Username"),
        "admin_user_display" => ("Anzeigename", "Display name"),
        "admin_user_role" => ("Rolle", "Role"),
        "admin_user_groups" => ("Gruppen", "Groups"),
        "admin_user_source" => ("Herkunft", "Source"),
        "admin_user_local" => ("Lokal", "Local"),
        "admin_user_last_sign_in" => ("Letzte Anmeldung", "Last sign-in"),
        "admin_user_end_sessions" => ("Abmelden", "End sessions"),
        "admin_user_confirm_end_sessions" => (
            "Alle Sitzungen dieses Benutzers beenden? Er muss sich neu anmelden.",
            "End all sessions of this user? They have to sign in again.",
        ),
        "admin_sessions_ended" => ("Sitzungen beendet.", "Sessions ended."),
        "admin_user_reset" => ("Neues Passwort", "New password"),
        "admin_user_confirm_reset" => (
            "Neues Passwort erzeugen? Das alte gilt dann nicht mehr.",
            "Generate a new password? The old one stops working.",
        ),
        "admin_user_delete" => ("Konto löschen", "Delete account"),
        "admin_user_confirm_delete" => (
            "Konto und seine Desktops löschen? Die Dateien im Home-Volume bleiben auf dem Server.",
            "Delete the account and its desktops? The files in its home volume stay on the server.",
        ),
        "admin_user_new" => ("Neues lokales Konto", "New local account"),
        "admin_user_create" => ("Anlegen", "Create"),
        "admin_user_password_help" => (
            "Leer lassen, um ein sicheres Passwort zu erzeugen (wird einmal angezeigt).",
            "Leave empty to generate a strong password (shown once).",
        ),
        "admin_password_for" => ("Neues Passwort für", "New password for"),
        "admin_password_once" => (
            "Jetzt notieren oder weitergeben: Es wird nur dieses eine Mal angezeigt.",
            "Write it down or pass it on now: it is shown only this once.",
        ),
        "audit_when" => ("Zeit", "When"),
        "audit_kind" => ("Ereignis", "Event"),
        "audit_actor" => ("Von", "By"),
        "audit_target" => ("Betrifft", "Concerns"),
        "audit_detail" => ("Details", "Details"),
        "audit_system" => ("Portal", "Portal"),
        "audit_none" => ("Keine Ereignisse.", "No events."),
        "audit_all_kinds" => ("Alle Ereignisse", "All events"),
        "audit_filter" => ("Filtern", "Filter"),
        "audit_retention" => ("Aufbewahrung des Protokolls in Tagen", "Audit log kept for days"),
        "audit_pages" => ("Seiten", "Pages"),
        "audit_page" => ("Seite", "Page"),
        "audit_newer" => ("Neuere", "Newer"),
        "audit_older" => ("Ältere", "Older"),
        "audit_desktop_started" => ("Desktop gestartet", "Desktop started"),
        "audit_desktop_stopped" => ("Desktop beendet", "Desktop stopped"),
        "audit_desktop_failed" => ("Desktop-Start fehlgeschlagen", "Desktop start failed"),
        "audit_desktop_removed" => ("Desktop entfernt", "Desktop removed"),
        "audit_type_created" => ("Desktop-Art angelegt", "Desktop type created"),
        "audit_type_changed" => ("Desktop-Art geändert", "Desktop type changed"),
        "audit_type_deleted" => ("Desktop-Art gelöscht", "Desktop type deleted"),
        "audit_sign_in" => ("Anmeldung", "Sign-in"),
        "audit_sign_in_failed" => ("Anmeldung fehlgeschlagen", "Failed sign-in"),
        "audit_sign_out" => ("Abmeldung", "Sign-out"),
        "audit_user_created" => ("Konto angelegt", "Account created"),
        "audit_user_changed" => ("Konto geändert", "Account changed"),
        "audit_user_deleted" => ("Konto gelöscht", "Account deleted"),
        "audit_settings_changed" => ("Einstellungen geändert", "Settings changed"),
        "audit_admin_action" => ("Verwaltungsaktion", "Admin action"),
        "branding_school_name" => ("Name der Schule", "School name"),
        "branding_color" => ("Hauptfarbe", "Primary colour"),
        "branding_logo" => ("Logo", "Logo"),
        "err_admin_invalid" => ("Die Eingabe ist nicht gültig.", "The input is not valid."),
        "err_admin_conflict" => ("Das geht so nicht.", "This cannot be done."),
        "err_upload_too_large" => (
            "Die Datei ist zu groß: höchstens 256 KiB.",
            "The file is too large: at most 256 KiB.",
        ),
        "err_upload_type" => (
            "Nur PNG-, JPEG- oder WebP-Bilder sind erlaubt (kein SVG).",
            "Only PNG, JPEG or WebP images are allowed (no SVG).",
        ),
        // End of the admin pages' block.
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
        // Modules may be folders (src/oidc/), so walk the tree.
        let mut dirs = vec![dir.join("templates"), dir.join("src")];
        while let Some(d) = dirs.pop() {
            for entry in std::fs::read_dir(d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                // This file defines the catalogue; scanning it would find its own patterns.
                } else if path.file_name().is_some_and(|n| n != "i18n.rs") {
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
