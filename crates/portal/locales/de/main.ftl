## Die deutschen Texte von IServ Remote Desktop (Deutsch ist die Vorgabe: Texte, die einer anderen
## Sprache fehlen, kommen von hier). Die Namen links sind die Schlüssel aus Code und Vorlagen;
## `{ $n }` usw. setzt der Code ein.

# The language's own name, shown in the language switch.
language_name = Deutsch

## Sign-in, dashboard, admin overview, states.

app_name = IServ Remote Desktop
sign_in = Anmelden
sign_out = Abmelden
username = Benutzername
password = Passwort
sign_in_intro = Melde dich mit deinem Schulkonto an, um deinen Linux-Desktop im Browser zu öffnen.
your_desktops = Deine Desktops
no_desktops = Für dich ist noch kein Desktop freigegeben. Bitte wende dich an deine Lehrkraft oder die Schul-IT.
open = Öffnen
start = Starten
admin_title = Verwaltung
admin_runtime_ok = Der Container-Dienst ist erreichbar
admin_running = Desktops laufen
admin_stop_all = Alle beenden
admin_confirm_stop_all = Wirklich alle laufenden Desktops beenden? Nicht gespeicherte Arbeit geht verloren.
admin_cleanup = Beendete aufräumen
admin_remove = Entfernen
admin_desktop = Desktop
admin_owner = Benutzer
admin_state = Zustand
admin_started = Gestartet
admin_last_input = Letzte Eingabe
admin_none = Noch keine Desktops.
stop = Beenden
idle_stopped = Dein Desktop wurde wegen Inaktivität beendet. Deine Dateien bleiben erhalten; du kannst ihn auf der Startseite neu starten.
state_none = Noch nicht gestartet
state_starting = Startet …
state_running = Läuft
state_stopping = Wird beendet …
state_stopped = Beendet
state_failed = Fehlgeschlagen
step_pulling = Image wird geladen
step_creating = Desktop wird angelegt
step_starting = Desktop startet
start_progress = Fortschritt des Starts
step_waiting = Warte auf den Desktop
step_queued = Wartet, bis es losgeht: Platz { $n } von { $m }

## Dashboard, desktop view, teacher page, language switch (live states and actions).

step_ready = Bereit – wird geöffnet …
step_requested = Start angefordert …
last_used = Zuletzt benutzt
never_used = Noch nie benutzt
ago_now = gerade eben
ago_minutes =
    { $n ->
        [one] vor { $n } Minute
       *[other] vor { $n } Minuten
    }
ago_hours =
    { $n ->
        [one] vor { $n } Stunde
       *[other] vor { $n } Stunden
    }
ago_days =
    { $n ->
        [one] vor { $n } Tag
       *[other] vor { $n } Tagen
    }
remove = Entfernen …
remove_confirm_text = Der Container deines Desktops wird gelöscht; deine Dateien bleiben erhalten.
remove_confirm = Ja, entfernen
stop_confirm_text = Desktop beenden? Nicht gespeicherte Arbeit in offenen Programmen geht verloren; deine Dateien bleiben erhalten.
start_again = Neu starten
fullscreen = Vollbild
reconnect = Neu verbinden
view_stopped = Dein Desktop ist beendet.
view_starting = Dein Desktop startet …
view_disconnected = Die Verbindung zum Portal ist unterbrochen. Prüfe dein Netzwerk; es wird automatisch neu verbunden.
view_reconnect_hint = Die Verbindung ist wieder da. Verbinde den Desktop neu, falls er nicht mehr reagiert.
live_offline = Live-Anzeige unterbrochen – wird neu verbunden …
err_network = Keine Verbindung zum Portal. Prüfe dein Netzwerk und versuche es erneut.
noscript = Ohne JavaScript funktionieren Starten, Beenden und Entfernen, aber der Zustand wird nicht live angezeigt: lade die Seite neu, um ihn zu sehen.
reason_user = Du hast ihn beendet. Deine Dateien bleiben erhalten.
reason_admin = Die Schul-IT hat ihn beendet. Deine Dateien bleiben erhalten; du kannst ihn neu starten.
reason_idle = Wegen Inaktivität beendet. Deine Dateien bleiben erhalten; du kannst ihn neu starten.
reason_max_age = Nach der längsten erlaubten Laufzeit beendet. Du kannst ihn neu starten.
reason_oom = Der Arbeitsspeicher war voll, deshalb wurde er beendet. Starte ihn neu und öffne weniger Programme gleichzeitig.
reason_crashed = Er wurde unerwartet beendet. Starte ihn neu; passiert das öfter, sag der Schul-IT Bescheid.
reason_start_timeout = Er hat beim Start nicht rechtzeitig geantwortet. Versuche es noch einmal; klappt es wieder nicht, sag der Schul-IT Bescheid.
reason_image = Das Desktop-Abbild konnte nicht geladen werden. Bitte sag der Schul-IT Bescheid.
reason_failed = Der Start hat nicht geklappt. Versuche es noch einmal; klappt es wieder nicht, sag der Schul-IT Bescheid.
details = Technische Details
skip_to_content = Zum Inhalt springen
teacher_saved_hint = Die Änderung gilt sofort.
teacher_title = Meine Klassen
teacher_intro = Gib deinen Gruppen Desktops frei und sieh, welche Desktops deiner Schülerinnen und Schüler laufen.
teacher_assign_title = Desktops für deine Gruppen
teacher_group = Gruppe
teacher_type = Desktop
teacher_assign = Freigeben
teacher_revoke = Freigabe entfernen
teacher_granted_by = Freigegeben von
teacher_no_grants = Noch keine Freigaben.
teacher_no_groups = Du bist in keiner Gruppe. Gruppen kommen aus IServ, bei lokalen Konten von der Schul-IT; frag die Schul-IT.
teacher_no_types = Es gibt keine Desktops, die du freigeben kannst.
teacher_students_title = Desktops deiner Schülerinnen und Schüler
teacher_student = Schüler/in
teacher_groups_col = Gruppen
teacher_no_students = Gerade hat niemand aus deinen Gruppen einen Desktop.
teacher_saved = Gespeichert.
lesson_title = Stunde vorbereiten
lesson_intro = Startet vor der Stunde für jede Schülerin und jeden Schüler einer Gruppe einen Desktop – so, als hätten sie selbst auf „Starten“ gedrückt. Sie warten der Reihe nach, bis sie dran sind.
lesson_type_for = Desktop für
lesson_start = Desktops starten
lesson_status_title = Vorbereitete Stunden
lesson_by = Gestartet von
lesson_queued = Warten
lesson_starting = Starten
lesson_running = Laufen
lesson_failed = Fehlgeschlagen
lesson_stopped = Beendet
lesson_skipped = Nicht gestartet
lesson_skip_not_allowed = darf diesen Desktop nicht nutzen
lesson_skip_limit = hat schon so viele Desktops, wie erlaubt
lesson_skip_other_start = startet gerade einen anderen Desktop
lesson_skip_full = der Server ist gerade ausgelastet
lesson_skip_home_full = hat mehr gespeichert, als der Speicherplatz erlaubt; muss erst Dateien löschen
lesson_skip_failed = der Start ist fehlgeschlagen
err_teacher_only = Diese Seite ist nur für Lehrkräfte und die Schul-IT.
err_not_your_group = Du kannst Desktops nur für Gruppen freigeben, in denen du selbst bist.
err_type_not_grantable = Diesen Desktop kannst du nicht freigeben: Er ist abgeschaltet oder für dich selbst nicht freigegeben.
signed_in_as = Angemeldet als
role_admin = Administration
role_teacher = Lehrkraft
role_student = Schüler/in
language = Sprache
back_to_start = Zur Startseite
error_title = Das hat nicht geklappt

## Errors: what happened and what to do.

err_bad_credentials = Benutzername oder Passwort ist falsch.
err_too_many_attempts = Zu viele fehlgeschlagene Anmeldeversuche. Bitte warte 15 Minuten und versuche es dann erneut.
err_unauthorized = Bitte melde dich zuerst an.
err_foreign_origin = Die Verbindung wurde abgelehnt, weil sie nicht vom Portal selbst kam.
err_csrf = Das Formular ist abgelaufen. Bitte lade die Seite neu und versuche es noch einmal.
err_not_found = Diese Seite gibt es nicht.
err_desktop_not_found = Diesen Desktop gibt es nicht oder er läuft gerade nicht. Starte ihn über die Startseite.
err_no_desktop_selected = Es ist kein Desktop ausgewählt. Öffne einen Desktop über die Startseite.
err_bad_request = Die Anfrage ist ungültig.
err_bad_upgrade = Die WebSocket-Anfrage ist ungültig.
err_too_large = Die Anfrage ist zu groß.
err_desktop_unreachable = Der Desktop ist gerade nicht erreichbar. Vielleicht startet er noch – versuche es in ein paar Sekunden erneut.
err_desktop_timeout = Der Desktop antwortet nicht rechtzeitig. Versuche es gleich noch einmal; hilft das nicht, starte ihn neu.
err_desktop_bad_response = Der Desktop hat ungültig geantwortet. Bitte starte ihn neu; bleibt der Fehler, melde dich bei der Schul-IT.
err_unavailable = Der Dienst ist gerade nicht verfügbar. Bitte versuche es in einer Minute erneut.
err_internal = Ein interner Fehler ist aufgetreten. Bitte versuche es erneut; bleibt der Fehler, melde dich bei der Schul-IT.
err_admin_only = Das dürfen nur Administratoren.
err_unknown_type = Diese Desktop-Art gibt es nicht. Wähle eine auf der Startseite.
err_type_disabled = Diese Desktop-Art ist gerade abgeschaltet. Bitte wähle eine andere oder frage die Schul-IT.
err_type_not_allowed = Diese Desktop-Art ist für deine Gruppe nicht freigegeben. Frag deine Lehrkraft.
err_limit_user = Du hast schon so viele Desktops laufen, wie erlaubt sind. Beende einen, bevor du einen weiteren startest.
err_home_over_quota = In deinem Ordner liegen { $used_mib } MiB, mehr als die { $quota_mib } MiB, die dir zustehen (auch was ein Desktop dort speichert, zählt). Lösche unter „Meine Dateien“ etwas, dann starte den Desktop wieder.
err_limit_total = Gerade laufen so viele Desktops, wie der Server verkraftet. Bitte versuche es in ein paar Minuten erneut.
err_start_queue_full = Gerade warten so viele Desktops auf ihren Start, dass die Warteschlange voll ist. Bitte versuche es in einer Minute erneut.
err_unsupported = Dieses Portal bietet nur fest eingerichtete Desktops an; sie können hier nicht gestartet oder beendet werden.
err_runtime_unavailable = Desktops können gerade nicht gestartet werden, weil der Container-Dienst nicht erreichbar ist. Bitte sag der Schul-IT Bescheid.
err_runtime_error = Der Container-Dienst hat einen Fehler gemeldet. Versuche es erneut; bleibt der Fehler, sag der Schul-IT Bescheid.

## Sign-in with IServ and local sign-in (oidc/, login.rs).

sign_in_iserv = Mit IServ anmelden
sign_in_local_hint = Ohne IServ-Konto (nur für eingerichtete lokale Konten):
login_wait_minutes = Zu viele fehlgeschlagene Anmeldeversuche. Bitte warte { $minutes } Minute(n) und versuche es dann erneut.
login_wait_seconds = Zu viele fehlgeschlagene Anmeldeversuche für dieses Konto. Bitte warte { $seconds } Sekunde(n) und versuche es dann erneut.
login_busy = Gerade melden sich sehr viele gleichzeitig an. Bitte versuche es in ein paar Sekunden erneut.
err_body_timeout = Die Anfrage kam zu langsam an und wurde abgebrochen. Bitte prüfe deine Verbindung und versuche es erneut.
err_too_many_connections = Von deiner Adresse sind zu viele Verbindungen zum Portal offen. Bitte schließe einige Tabs und versuche es in ein paar Sekunden erneut.
err_too_many_connections_total = Das Portal hat gerade zu viele offene Verbindungen. Bitte versuche es in ein paar Sekunden erneut.
err_too_many_streams = Du hast zu viele Portal-Fenster oder -Tabs gleichzeitig offen. Bitte schließe einige und lade die Seite neu.
err_too_many_websockets = Du hast zu viele Desktop-Verbindungen gleichzeitig offen. Bitte schließe Desktop-Tabs, die du nicht brauchst, und lade neu.
err_start_in_flight = Einer deiner Desktops startet gerade. Bitte warte, bis er läuft, bevor du einen weiteren startest.
err_local_login_off = Die Anmeldung mit Benutzername und Passwort ist abgeschaltet. Bitte melde dich mit IServ an.
err_oidc_config = Die Anmeldung mit IServ ist falsch eingerichtet. Bitte sag der Schul-IT Bescheid.
err_oidc_unavailable = Die Anmeldung mit IServ ist gerade nicht erreichbar. Bitte versuche es in einer Minute erneut.
err_oidc_state = Dieser Anmeldevorgang ist abgelaufen, wurde schon benutzt oder in einem anderen Browser begonnen. Bitte melde dich noch einmal an.
err_oidc_denied = Du hast die Anmeldung bei IServ abgelehnt. Um das Portal zu nutzen, melde dich erneut an und stimme der Freigabe zu.
err_oidc_code_used = Der Anmeldecode von IServ ist abgelaufen oder wurde schon benutzt. Bitte melde dich noch einmal an.
err_oidc_provider_error = IServ hat bei der Anmeldung einen Fehler gemeldet. Bitte versuche es in einer Minute erneut; bleibt der Fehler, sag der Schul-IT Bescheid.
err_oidc_token_invalid = Die Antwort von IServ konnte nicht bestätigt werden, deshalb wurdest du nicht angemeldet. Bitte versuche es erneut; bleibt der Fehler, sag der Schul-IT Bescheid.
err_oidc_token_expired = Die Anmeldung von IServ war schon abgelaufen, als sie ankam. Bitte versuche es erneut; bleibt der Fehler, muss die Schul-IT die Uhrzeit der Server prüfen.
err_oidc_no_username = IServ hat deinen Benutzernamen nicht mitgeteilt. Die Schul-IT muss dem Portal in IServ den Bereich „profile“ freigeben.
err_oidc_not_allowed = Dein IServ-Konto ist für dieses Portal nicht freigeschaltet. Wenn du es nutzen sollst, frag deine Lehrkraft oder die Schul-IT.
err_oidc_bad_username = Dein IServ-Benutzername kann hier nicht verwendet werden. Bitte sag der Schul-IT Bescheid.
err_oidc_username_taken = Dein Benutzername gehört hier schon zu einem anderen IServ-Konto (z. B. nach einer Umbenennung). Bitte sag der Schul-IT Bescheid.
err_oidc_link_needs_admin = Hier gibt es schon ein lokales Konto mit deinem Benutzernamen. Damit niemand fremde Konten übernimmt, verbindet das Portal es nur mit deinem IServ-Konto, wenn die Schul-IT das freigibt. Bitte frag die Schul-IT (Verwaltung → Benutzer → „Mit IServ verbinden“) und melde dich danach erneut an.
err_oidc_account_deleted = Dein Konto im Portal wurde von der Schul-IT gelöscht. Deine Dateien werden noch eine Weile aufbewahrt: Bitte frag die Schul-IT, ob sie das Konto wiederherstellt (Verwaltung → Benutzer → „Gelöschte Konten“), und melde dich danach erneut an.

## Admin pages (desktops, types, users, audit log, branding).

admin_section_desktops = Desktops
admin_section_types = Desktop-Arten
admin_section_users = Benutzer
admin_section_audit = Protokoll
admin_section_branding = Erscheinungsbild
admin_confirm_cleanup = Alle beendeten Desktops entfernen? Die Dateien der Benutzer bleiben erhalten.
admin_confirm_stop = Desktop beenden? Nicht gespeicherte Arbeit in offenen Programmen geht verloren.
admin_confirm_remove = Desktop entfernen? Laufende Programme werden beendet; die Dateien im Home-Verzeichnis bleiben.
admin_select_all = Alle auswählen
admin_selected = Ausgewählte:
admin_type = Art
admin_cpu = CPU
admin_memory = Speicher
admin_recent_events = Letzte Ereignisse
admin_all_events = Ganzes Protokoll
admin_save = Speichern
admin_back = Zurück
admin_upload = Hochladen
admin_upload_help = PNG-, JPEG- oder WebP-Bild, höchstens
admin_image_remove = Bild entfernen
admin_types_new = Neue Desktop-Art
admin_types_config_note = Desktop-Arten aus der Konfigurationsdatei werden aus der Datei übernommen, wenn ihr Eintrag dort neu ist oder sich ändert; Änderungen hier bleiben bis dahin erhalten.
admin_types_everyone = alle Angemeldeten
admin_type_key = Schlüssel
admin_type_key_help = a–z, 0–9 und -, höchstens 32 Zeichen; Teil der Desktop-Adressen, später nicht änderbar.
admin_type_name = Name
admin_type_description = Beschreibung
admin_type_emoji = Symbol (Emoji, falls kein Bild)
admin_type_icon = Bild
admin_type_image = Container-Image
admin_type_port = Port im Container
admin_type_protocol = Protokoll
admin_type_memory = Arbeitsspeicher in MiB (leer = unbegrenzt)
admin_type_cpus = CPUs (leer = unbegrenzt)
admin_type_shm = /dev/shm in MiB
admin_type_idle = Beenden nach Minuten ohne Eingabe (0 = nie)
admin_type_max_age = Höchstlaufzeit in Stunden (0 = unbegrenzt)
admin_type_groups = Erlaubte Gruppen
admin_type_users = Erlaubte Benutzer
admin_type_who = Wer darf
admin_type_who_help = Durch Komma oder Zeilen getrennt. Beide Listen leer: alle Angemeldeten.
admin_type_env = Umgebungsvariablen (NAME=Wert je Zeile)
admin_type_sort = Reihenfolge
admin_type_enabled = Eingeschaltet
admin_type_no_internet = Kein Internet (Prüfungsmodus): Desktops dieses Typs erreichen nichts außerhalb, nur das Portal erreicht sie
admin_type_disabled = Ausgeschaltet
admin_type_enable = Einschalten
admin_type_disable = Ausschalten
admin_type_delete = Löschen
admin_type_confirm_delete = Desktop-Art löschen? Das geht nur, wenn keine Desktops dieser Art mehr existieren.
admin_type_pull = Image laden
admin_pull_done = Image geladen.
admin_pull_failed = Laden fehlgeschlagen:
admin_user_name = Benutzername
admin_user_display = Anzeigename
admin_user_role = Rolle
admin_user_groups = Gruppen
admin_user_source = Herkunft
admin_user_local = Lokal
admin_user_last_sign_in = Letzte Anmeldung
admin_user_end_sessions = Abmelden
admin_user_confirm_end_sessions = Alle Sitzungen dieses Benutzers beenden? Er muss sich neu anmelden.
admin_sessions_ended = Sitzungen beendet.
admin_user_reset = Neues Passwort
admin_user_confirm_reset = Neues Passwort erzeugen? Das alte gilt dann nicht mehr.
admin_user_delete = Konto löschen
admin_user_confirm_delete = Konto und seine Desktops löschen? Die Dateien bleiben noch eine Weile erhalten (siehe „Gelöschte Konten“) und werden dann entfernt; bis dahin lässt sich das Konto wiederherstellen.
admin_user_confirm_delete_iserv = IServ-Konto und seine Desktops hier löschen? Die Person kann sich nicht mehr anmelden, bis du das Konto wiederherstellst; die Dateien bleiben noch eine Weile erhalten (siehe „Gelöschte Konten“). Danach meldet sie sich als neues Konto ohne die alten Dateien an. In IServ selbst ändert sich nichts.
admin_user_link = Mit IServ verbinden
admin_user_confirm_link = Die nächste IServ-Anmeldung mit diesem Benutzernamen übernimmt dieses lokale Konto; sein Passwort wird dabei entfernt. Nur freigeben, wenn sicher ist, dass das IServ-Konto derselben Person gehört. Fortfahren?
admin_user_link_allowed = Verbindung mit IServ freigegeben
admin_deleted_users = Gelöschte Konten
admin_deleted_users_help = Ihre Desktops sind entfernt; ihre Dateien werden zum angegebenen Zeitpunkt gelöscht. Bis dahin lässt sich jedes Konto mit seinen Dateien wiederherstellen.
admin_deleted_at = Gelöscht
admin_deleted_purge_at = Dateien werden gelöscht
admin_deleted_restore = Wiederherstellen
admin_deleted_purging = Dateien werden entfernt
admin_user_new = Neues lokales Konto
admin_user_create = Anlegen
admin_user_password_help = Leer lassen, um ein sicheres Passwort zu erzeugen (wird einmal angezeigt).
admin_password_for = Neues Passwort für
admin_password_once = Jetzt notieren oder weitergeben: Es wird nur dieses eine Mal angezeigt.
audit_when = Zeit
audit_kind = Ereignis
audit_actor = Von
audit_target = Betrifft
audit_detail = Details
audit_system = Portal
audit_none = Keine Ereignisse.
audit_all_kinds = Alle Ereignisse
audit_filter = Filtern
audit_retention = Aufbewahrung des Protokolls in Tagen
audit_pages = Seiten
audit_page = Seite
audit_newer = Neuere
audit_older = Ältere
audit_desktop_started = Desktop gestartet
audit_desktop_stopped = Desktop beendet
audit_desktop_failed = Desktop-Start fehlgeschlagen
audit_desktop_removed = Desktop entfernt
audit_type_created = Desktop-Art angelegt
audit_type_changed = Desktop-Art geändert
audit_type_deleted = Desktop-Art gelöscht
audit_sign_in = Anmeldung
audit_sign_in_failed = Anmeldung fehlgeschlagen
audit_sign_out = Abmeldung
audit_user_created = Konto angelegt
audit_user_changed = Konto geändert
audit_user_deleted = Konto gelöscht
audit_settings_changed = Einstellungen geändert
audit_admin_action = Verwaltungsaktion
branding_school_name = Name der Schule
branding_color = Hauptfarbe
branding_logo = Logo
err_admin_invalid = Die Eingabe ist nicht gültig.
err_admin_conflict = Das geht so nicht.
err_upload_too_large = Die Datei ist zu groß: höchstens 256 KiB.
err_upload_type = Nur PNG-, JPEG- oder WebP-Bilder sind erlaubt (kein SVG).

## Desktop origins
err_desktop_own_origin = Dieser Desktop läuft unter einer eigenen Adresse. Öffne ihn über die Startseite des Portals.
err_desktop_origin_required = Fremde Desktops lassen sich erst öffnen, wenn die Schule eigene Desktop-Adressen eingerichtet hat (Einstellung desktop_origin). Bis dahin kann nur die Besitzerin oder der Besitzer den Desktop öffnen: Sonst könnte eine Seite aus dem Desktop in deinem Namen handeln.
err_desktop_origin_session = Dieser Desktop läuft hier nicht, oder diese Adresse kennt dich nicht (mehr). Öffne den Desktop über das Portal.
err_desktop_ticket = Dieser Link ist abgelaufen oder wurde schon benutzt. Öffne den Desktop erneut über das Portal.
err_desktop_other_site = Anfragen von anderen Seiten an diesen Desktop werden abgewiesen. Öffne den Desktop über das Portal.
desktop_origin_portal_link = Portal
admin_open_desktop = Öffnen
admin_no_desktop_origin = Desktops teilen sich die Adresse des Portals (desktop_origin ist nicht gesetzt). Nur ihre Besitzer können sie öffnen; Administratoren und Lehrkräfte sehen fremde Desktops erst, wenn eigene Desktop-Adressen eingerichtet sind (siehe Installationsanleitung).

## Dateien
files_title = Dateien
files_spaces = Bereiche
files_home = Meine Dateien
files_shared = Tauschordner
files_path = Ordner
files_usage = Belegt
files_read_only = Du kannst diesen Ordner lesen, aber nicht ändern.
files_upload = Hochladen
files_choose = Dateien
files_upload_button = Hochladen
files_choose_folder = Ordner
files_upload_folder_button = Ordner hochladen
files_upload_limit = Größte Datei
files_over_quota = Hier liegt mehr, als dein Speicherplatz erlaubt (auch was ein Desktop gespeichert hat, zählt). Bis du etwas gelöscht hast, lässt sich nichts hochladen und kein neuer Desktop starten.
files_drop_here = Dateien hierher ziehen, um sie in diesen Ordner hochzuladen.
files_new_folder = Neuer Ordner
files_create = Anlegen
files_name = Name
files_size = Größe
files_modified = Geändert
files_empty = Dieser Ordner ist leer.
files_link = Verknüpfung, wird nicht verfolgt
files_preview = Vorschau
files_new_name = Neuer Name
files_rename = Umbenennen
files_delete = Löschen
files_trash = Papierkorb
files_trash_hint = Gelöschte Dateien lassen sich so viele Tage lang wiederherstellen
files_trash_empty = Der Papierkorb ist leer.
files_deleted = Gelöscht
files_restore = Wiederherstellen
files_done_uploaded = Hochgeladen.
files_done_created = Ordner angelegt.
files_done_renamed = Umbenannt.
files_done_deleted = In den Papierkorb verschoben. Unten lässt es sich wiederherstellen.
files_done_restored = Wiederhergestellt.
err_files_unknown_space = Diesen Dateibereich gibt es nicht. Nutze „Meine Dateien“ oder „Tauschordner“.
err_files_read_only = Dieser Ordner ist für dich schreibgeschützt.
err_files_bad_name = Dieser Name ist nicht erlaubt. Verwende einen Namen ohne „/“, Zeilenumbrüche oder Steuerzeichen, höchstens 255 Bytes lang.
err_files_exists = Hier gibt es schon etwas mit diesem Namen. Wähle einen anderen Namen.
err_files_into_itself = Ein Ordner kann nicht in sich selbst verschoben oder kopiert werden.
err_files_not_a_file = Das ist keine Datei, die sich hier öffnen lässt.
err_files_link = Das ist eine Verknüpfung. Das Portal zeigt Verknüpfungen, folgt ihnen aber nie; öffne sie in deinem Desktop.
err_files_quota = Dein Speicherplatz ist voll. Lösche Dateien (und leere den Papierkorb) oder bitte die Administration deiner Schule um mehr Platz.
err_files_too_large = Die Datei ist größer, als das Portal für einen Upload annimmt.
err_files_disk_full = Die Festplatte des Servers ist voll. Bitte sag der Administration deiner Schule Bescheid.
files_uploading = Wird hochgeladen
files_upload_done = fertig
files_upload_failed = fehlgeschlagen
files_download_zip = Diesen Ordner als ZIP herunterladen
files_class = Klasse
files_publish = Austeilen
files_publish_to = An Klasse austeilen
files_done_published = Ausgeteilt: Die Klasse sieht eine Kopie in ihrem Klassenordner (und in ihren Desktops), bis du sie dort löschst.
files_done_moved = Verschoben.
files_done_copied = Kopiert.
files_done_numbered = Erledigt. Ein Name war dort schon vergeben, deshalb hat der neue eine Nummer bekommen, etwa „Übung 1 (2).pdf“; nichts wurde überschrieben.
files_select = Auswählen
files_selected = Mit den ausgewählten Dateien und Ordnern:
files_target = Zielordner
files_move = Verschieben
files_copy = Kopieren
files_zip_selected = Als Zip herunterladen
audit_files_changed = Dateien geändert
files_handin = Abgabe
assign_title = Abgaben
assign_intro = Stelle einer deiner Gruppen eine Aufgabe: Jede Schülerin und jeder Schüler bekommt einen Abgabeordner (unter Dateien und im Desktop), der zum Abgabetermin schreibgeschützt wird.
assign_name = Titel
assign_due = Abgabe bis
assign_allow_late = Späte Abgaben erlaubt (als verspätet markiert)
assign_create = Aufgabe stellen
assign_none = Noch keine Aufgaben.
assign_closed = geschlossen
assign_delete = Mit Abgaben löschen
assign_zip = Alle Abgaben als ZIP herunterladen (ein Ordner pro Person)
assign_student = Schüler/in
assign_files = Dateien
assign_last_change = Letzte Änderung
assign_late = verspätet
assign_no_students = In dieser Gruppe sind keine Schülerinnen oder Schüler.
files_handin_tab = Abgabe
files_handin_closed = Diese Abgabe ist geschlossen: Der Termin ist vorbei. Lesen kannst du sie weiterhin.
files_handin_due = Abgabe bis

## Hand-ins: sealing, feedback, desktops
assign_sealed = Versiegelt (diese Ansicht zeigt die Abgaben, wie sie zum Termin waren): seit
assign_feedback = Rückmeldung
assign_feedback_choose = Dateien für die Rückmeldung
assign_feedback_give = Zurückgeben
assign_feedback_done = Die Rückmeldung ist gespeichert. Die Schülerin oder der Schüler sieht sie unter „Dateien“ und im Desktop unter ~/Rückmeldungen.
assign_due_new = Neuer Abgabetermin
assign_due_move = Termin verschieben
assign_due_moved = Der Abgabetermin ist verschoben. War die Abgabe schon geschlossen und liegt der neue Termin später, ist sie wieder offen; zum neuen Termin wird sie erneut geschlossen.
files_feedback = Rückmeldung
files_feedback_link = Rückmeldung deiner Lehrkraft ansehen
dashboard_handins_restart = Deine Abgaben liegen im Desktop im Ordner ~/Abgaben, Rückmeldungen unter ~/Rückmeldungen. Neue Aufgaben erscheinen dort erst nach einem Neustart des Desktops (Beenden und wieder starten). Nach dem Abgabetermin zählt nur, was bis dahin im Ordner lag.
err_too_many_file_changes = Zu viele Dateiänderungen: höchstens { $limit } pro Minute. Bitte warte { $seconds } Sekunden und versuche es dann erneut.

## Admin: disk use
admin_disk_title = Speicherplatz
admin_disk_intro = Belegter Platz je Person (Heimatordner mit Papierkorb und Abgaben) und je Klasse (Klassenordner, Abgaben und Rückmeldungen), größte zuerst.
admin_disk_computed = Berechnet am
admin_disk_users = Personen
admin_disk_classes = Klassen
admin_disk_user = Person
admin_disk_class = Klasse
admin_disk_home = Heimatordner
admin_disk_handins = Abgaben
admin_disk_total = Gesamt
admin_disk_quota = Kontingent
admin_disk_no_quota = keins
admin_disk_folder = Klassenordner
admin_disk_section = Speicherplatz
files_my_data = Meine Daten: alles als eine ZIP-Datei (Heimatordner, Abgaben, Rückmeldungen)

## Class actions on the teacher page (teacher_class.rs), groups of local accounts.

reason_teacher = Deine Lehrkraft hat ihn beendet. Deine Dateien bleiben erhalten; du kannst ihn neu starten.
err_not_your_class = Das kannst du nur für Gruppen tun, in denen du selbst bist.
audit_class_action = Unterrichtsaktion
class_title = Unterricht
class_intro = Für jede deiner Gruppen: die Stunde beenden (beendet alle Desktops ihrer Schülerinnen und Schüler; du bestätigst vorher) oder eine kurze Nachricht hinterlassen, die sie eine Stunde lang auf ihrer Startseite und der Desktop-Seite sehen.
class_running =
    { $n ->
        [one] { $n } Desktop läuft
       *[other] { $n } Desktops laufen
    }
class_end_lesson = Stunde beenden
class_end_confirm_title = Diese Desktops beenden?
class_end_confirm = Die Desktops dieser Schülerinnen und Schüler werden jetzt beendet. Ihre Dateien bleiben erhalten, aber in offenen Programmen nicht gespeicherte Arbeit geht verloren.
class_end_none = Kein Desktop der Schülerinnen und Schüler dieser Gruppe läuft.
class_end_confirm_button = Ja, Stunde beenden
class_end_cancel = Abbrechen
class_message = Nachricht für die Gruppe
class_message_send = Senden
class_message_current = Wird gerade angezeigt:
class_message_until = bis
class_message_clear = Nachricht entfernen
class_message_from = Nachricht von
class_actions_col = Aktionen
class_restart = Neu starten
admin_user_groups_help = Gruppen (Klassen) lokaler Konten: Namen durch Kommas getrennt, z. B. „5a, Mathe 7“. Lehrkräfte sehen und verwalten die Schülerinnen und Schüler ihrer Gruppen. IServ-Konten erhalten ihre Gruppen von IServ.
admin_user_groups_iserv = Wird von IServ bei jeder Anmeldung gesetzt
## Hilfe mit Zustimmung (web/help.rs)
help_ask = Hilfe anfordern
help_requested = Hilfe angefordert: Deine Lehrkräfte sehen es.
help_withdraw = Zurückziehen
help_offer_text = möchte deinen Desktop steuern.
help_allow = Zulassen
help_decline = Ablehnen
help_helping_text = hilft dir und steuert deinen Desktop
help_until = bis
help_end = Beenden
help_card_title = Hilfe von deiner Lehrkraft
help_teacher_title = Hilfeanfragen
help_teacher_intro = Schülerinnen und Schüler deiner Gruppen, die um Hilfe gebeten haben. Du kannst einen Desktop erst steuern, wenn die Schülerin oder der Schüler es zulässt; sie oder er kann es jederzeit beenden, spätestens endet es nach { $minutes } Minuten.
help_needs_origins = Die Steuerung übernehmen geht erst, wenn Desktops eigene Adressen haben (frag deine Administration); bis dahin hilf vor Ort.
help_none = Keine offenen Hilfeanfragen.
help_desktop = Desktop
help_asked = Angefragt
help_actions = Aktionen
help_stage_requested = Wartet auf eine Lehrkraft
help_stage_waiting = Wartet auf die Zustimmung
help_stage_offered_by = Angeboten von
help_stage_you_help = Du hilfst
help_stage_helping = Hilft:
help_take_control = Steuerung übernehmen
help_open = Desktop öffnen
help_dismiss = Anfrage schließen
err_help_no_request = Für diesen Desktop wurde keine Hilfe angefordert (oder die Anfrage wurde zurückgezogen). Steuern kannst du nur auf Anfrage.
err_help_taken = Eine andere Lehrkraft hat bereits Hilfe angeboten oder hilft gerade.
err_help_no_offer = Keine Lehrkraft hat Hilfe angeboten; es gibt nichts zuzulassen.
audit_help = Hilfe mit Zustimmung
## Bildschirme der Schülerinnen und Schüler für Lehrkräfte (web/screens.rs)
watch_title = Bildschirm von
watch_intro = Das Bild kommt vom Portal und ist nur zum Ansehen: Nichts, was du hier tust, erreicht den Desktop. Die Schülerin oder der Schüler sieht, dass du zuschaust.
watch_alt = Live-Bildschirm von
watch_view_only = Nur ansehen, live aktualisiert.
watch_ended = Das Zuschauen ist beendet: Der Desktop wurde gestoppt, oder dein Zugriff oder deine Sitzung ist abgelaufen. Lade die Seite neu, um es noch einmal zu versuchen.
screens_no_group = Ohne Klasse
screens_class = Klasse
screens_thumbnail_of = Bildschirm von
screens_watch = Zuschauen
err_watching_off = Das Zuschauen bei Bildschirmen ist in dieser Installation ausgeschaltet (Einstellung screens.watching).
audit_screen_watched = Bildschirm angesehen
watched_by = Deinen Bildschirm sieht gerade an:
