## The English texts of IServ Remote Desktop. The names on the left are the keys the code and the
## templates use (`lang.t("…")`); the code fills in `{ $n }` etc.

# The language's own name, shown in the language switch.
language_name = English

## Sign-in, dashboard, admin overview, states.

app_name = IServ Remote Desktop
sign_in = Sign in
sign_out = Sign out
username = Username
password = Password
sign_in_intro = Sign in with your school account to open your Linux desktop in the browser.
your_desktops = Your desktops
no_desktops = No desktop is available to you yet. Please ask your teacher or the school's IT admin.
open = Open
start = Start
admin_title = Administration
admin_runtime_ok = The container service is reachable
admin_running = desktops running
admin_stop_all = Stop all
admin_confirm_stop_all = Really stop every running desktop? Unsaved work is lost.
admin_cleanup = Clean up stopped
admin_remove = Remove
admin_desktop = Desktop
admin_owner = User
admin_state = State
admin_started = Started
admin_last_input = Last input
admin_none = No desktops yet.
stop = Stop
idle_stopped = Your desktop was stopped because it was idle. Your files are kept; you can start it again from the start page.
state_none = Not started yet
state_starting = Starting …
state_running = Running
state_stopping = Stopping …
state_stopped = Stopped
state_failed = Failed
step_pulling = Downloading image
step_creating = Creating desktop
step_starting = Starting desktop
start_progress = Start progress
step_waiting = Waiting for the desktop
step_queued = Waiting for its turn: { $n } of { $m }

## Dashboard, desktop view, teacher page, language switch (live states and actions).

step_ready = Ready – opening …
step_requested = Start requested …
last_used = Last used
never_used = Never used
ago_now = just now
ago_minutes =
    { $n ->
        [one] { $n } minute ago
       *[other] { $n } minutes ago
    }
ago_hours =
    { $n ->
        [one] { $n } hour ago
       *[other] { $n } hours ago
    }
ago_days =
    { $n ->
        [one] { $n } day ago
       *[other] { $n } days ago
    }
remove = Remove …
remove_confirm_text = Your desktop's container is deleted; your files stay.
remove_confirm = Yes, remove
stop_confirm_text = Stop the desktop? Unsaved work in open programs is lost; your files stay.
start_again = Start again
fullscreen = Full screen
reconnect = Reconnect
view_stopped = Your desktop has stopped.
view_starting = Your desktop is starting …
view_disconnected = The connection to the portal was lost. Check your network; it reconnects by itself.
view_reconnect_hint = The connection is back. Reconnect the desktop if it no longer responds.
live_offline = Live updates interrupted – reconnecting …
err_network = No connection to the portal. Check your network and try again.
noscript = Without JavaScript, start, stop and remove work, but states do not update live: reload the page to see them.
reason_user = You stopped it. Your files are kept.
reason_admin = An administrator stopped it. Your files are kept; you can start it again.
reason_idle = Stopped because it was idle. Your files are kept; you can start it again.
reason_max_age = Stopped after the longest allowed running time. You can start it again.
reason_oom = It ran out of memory and was stopped. Start it again and open fewer programs at once.
reason_crashed = It stopped unexpectedly. Start it again; if this keeps happening, tell the school's IT admin.
reason_start_timeout = It did not answer in time while starting. Try again; if it fails again, tell the school's IT admin.
reason_image = The desktop image could not be loaded. Please tell the school's IT admin.
reason_failed = The start did not work. Try again; if it fails again, tell the school's IT admin.
details = Technical details
skip_to_content = Skip to content
teacher_saved_hint = The change applies at once.
teacher_title = My classes
teacher_intro = Enable desktops for your groups and see which of your students' desktops run.
teacher_assign_title = Desktops for your groups
teacher_group = Group
teacher_type = Desktop
teacher_assign = Enable
teacher_revoke = Disable
teacher_granted_by = Enabled by
teacher_no_grants = Nothing enabled yet.
teacher_no_groups = You are not in any group. Groups come from IServ, for local accounts from the school's IT admin; ask them.
teacher_no_types = There are no desktops you can enable.
teacher_students_title = Your students' desktops
teacher_student = Student
teacher_groups_col = Groups
teacher_no_students = Nobody in your groups has a desktop right now.
teacher_saved = Saved.
lesson_title = Prepare the lesson
lesson_intro = Starts a desktop for every student of a group ahead of the lesson, just as if they had pressed Start themselves. The starts wait for their turn one after another.
lesson_type_for = Desktop for
lesson_start = Start desktops
lesson_status_title = Prepared lessons
lesson_by = Started by
lesson_queued = Waiting
lesson_starting = Starting
lesson_running = Running
lesson_failed = Failed
lesson_stopped = Stopped
lesson_skipped = Not started
lesson_skip_not_allowed = may not use this desktop
lesson_skip_limit = already runs as many desktops as allowed
lesson_skip_other_start = is starting another desktop
lesson_skip_full = the server is at its limit right now
lesson_skip_home_full = has more saved than the quota allows; must delete files first
lesson_skip_failed = the start failed
err_teacher_only = This page is for teachers and administrators only.
err_not_your_group = You can only enable desktops for groups you are in yourself.
err_type_not_grantable = You cannot enable this desktop: it is switched off or not enabled for you yourself.
signed_in_as = Signed in as
role_admin = Administrator
role_teacher = Teacher
role_student = Student
language = Language
back_to_start = Back to the start page
error_title = Something went wrong

## Errors: what happened and what to do.

err_bad_credentials = The username or password is wrong.
err_too_many_attempts = Too many failed sign-in attempts. Please wait 15 minutes, then try again.
err_unauthorized = Please sign in first.
err_foreign_origin = The connection was refused because it did not come from the portal itself.
err_csrf = The form has expired. Please reload the page and try again.
err_not_found = This page does not exist.
err_desktop_not_found = This desktop does not exist or is not running. Start it from the start page.
err_no_desktop_selected = No desktop is selected. Open a desktop from the start page.
err_bad_request = The request is invalid.
err_bad_upgrade = The WebSocket request is invalid.
err_too_large = The request is too large.
err_desktop_unreachable = The desktop cannot be reached right now. It may still be starting – try again in a few seconds.
err_desktop_timeout = The desktop did not answer in time. Try again in a moment; if that does not help, restart it.
err_desktop_bad_response = The desktop sent an invalid answer. Please restart it; if this keeps happening, tell the school's IT admin.
err_unavailable = The service is unavailable right now. Please try again in a minute.
err_internal = An internal error occurred. Please try again; if it keeps happening, tell the school's IT admin.
err_admin_only = Only administrators may do this.
err_unknown_type = This kind of desktop does not exist. Pick one on the start page.
err_type_disabled = This kind of desktop is switched off right now. Please pick another or ask the school's IT admin.
err_type_not_allowed = This kind of desktop is not enabled for your group. Ask your teacher.
err_limit_user = You already run as many desktops as allowed. Stop one before you start another.
err_home_over_quota = Your folder holds { $used_mib } MiB, more than the { $quota_mib } MiB you may keep (what a desktop saves there counts too). Delete something under “My files”, then start the desktop again.
err_limit_total = The server runs as many desktops as it can right now. Please try again in a few minutes.
err_start_queue_full = So many desktops are waiting to start that the queue is full. Please try again in a minute.
err_unsupported = This portal offers only pre-configured desktops; they cannot be started or stopped here.
err_runtime_unavailable = Desktops cannot be started right now because the container service is unreachable. Please tell the school's IT admin.
err_runtime_error = The container service reported an error. Try again; if it keeps happening, tell the school's IT admin.

## Sign-in with IServ and local sign-in (oidc/, login.rs).

sign_in_iserv = Sign in with IServ
sign_in_local_hint = Without an IServ account (only for set-up local accounts):
login_wait_minutes = Too many failed sign-in attempts. Please wait { $minutes } minute(s), then try again.
login_wait_seconds = Too many failed sign-in attempts for this account. Please wait { $seconds } second(s), then try again.
login_busy = Very many people are signing in at the same moment. Please try again in a few seconds.
err_body_timeout = The request arrived too slowly and was cut off. Please check your connection and try again.
err_too_many_connections = Too many connections to the portal are open from your address. Please close some tabs and try again in a few seconds.
err_too_many_connections_total = The portal has too many open connections right now. Please try again in a few seconds.
err_too_many_streams = You have too many portal windows or tabs open at once. Please close some and reload the page.
err_too_many_websockets = You have too many desktop connections open at once. Please close desktop tabs you do not need and reload.
err_start_in_flight = One of your desktops is starting right now. Please wait until it runs before you start another.
err_local_login_off = Signing in with a username and password is switched off. Please sign in with IServ.
err_oidc_config = Sign-in with IServ is set up wrongly. Please tell the school's IT admin.
err_oidc_unavailable = IServ sign-in is currently unavailable. Please try again in a minute.
err_oidc_state = This sign-in has expired, was already used or was started in another browser. Please sign in again.
err_oidc_denied = You declined the sign-in at IServ. To use the portal, sign in again and allow the access.
err_oidc_code_used = IServ's sign-in code has expired or was already used. Please sign in again.
err_oidc_provider_error = IServ reported an error during sign-in. Please try again in a minute; if it keeps happening, tell the school's IT admin.
err_oidc_token_invalid = IServ's answer could not be verified, so you were not signed in. Please try again; if it keeps happening, tell the school's IT admin.
err_oidc_token_expired = IServ's sign-in had already expired when it arrived. Please try again; if it keeps happening, the school's IT admin must check the servers' clocks.
err_oidc_no_username = IServ did not tell us your username. The school's IT admin must allow the portal the scope "profile" in IServ.
err_oidc_not_allowed = Your IServ account is not allowed to use this portal. If you should be able to, ask your teacher or the school's IT admin.
err_oidc_bad_username = Your IServ username cannot be used here. Please tell the school's IT admin.
err_oidc_username_taken = Your username already belongs to another IServ account here (e.g. after a rename). Please tell the school's IT admin.
err_oidc_link_needs_admin = There is already a local account with your username here. So that nobody takes over someone else's account, the portal links it to your IServ account only once the school's IT admin allows it. Please ask the IT admin (Administration → Users → "Link to IServ") and sign in again afterwards.
err_oidc_account_deleted = Your account on this portal was deleted by the school's IT admin. Your files are kept for a while: please ask the IT admin to restore the account (Administration → Users → "Deleted accounts") and sign in again afterwards.

## Admin pages (desktops, types, users, audit log, branding).

admin_section_desktops = Desktops
admin_section_types = Desktop types
admin_section_users = Users
admin_section_audit = Audit log
admin_section_branding = Branding
admin_confirm_cleanup = Remove all stopped desktops? The users' files are kept.
admin_confirm_stop = Stop the desktop? Unsaved work in open programs is lost.
admin_confirm_remove = Remove the desktop? Running programs end; the files in the home folder are kept.
admin_select_all = Select all
admin_selected = Selected:
admin_type = Type
admin_cpu = CPU
admin_memory = Memory
admin_recent_events = Recent events
admin_all_events = Whole audit log
admin_save = Save
admin_back = Back
admin_upload = Upload
admin_upload_help = PNG, JPEG or WebP image, at most
admin_image_remove = Remove image
admin_types_new = New desktop type
admin_types_config_note = Desktop types from the configuration file are taken from the file when their entry there is new or changes; changes made here are kept until then.
admin_types_everyone = everyone signed in
admin_type_key = Key
admin_type_key_help = a–z, 0–9 and -, at most 32 characters; part of desktop addresses, cannot be changed later.
admin_type_name = Name
admin_type_description = Description
admin_type_emoji = Symbol (emoji, when there is no image)
admin_type_icon = Icon
admin_type_image = Container image
admin_type_port = Port in the container
admin_type_protocol = Protocol
admin_type_memory = Memory in MiB (empty = unlimited)
admin_type_cpus = CPUs (empty = unlimited)
admin_type_shm = /dev/shm in MiB
admin_type_idle = Stop after minutes without input (0 = never)
admin_type_max_age = Maximum run time in hours (0 = unlimited)
admin_type_groups = Allowed groups
admin_type_users = Allowed users
admin_type_who = Who may use it
admin_type_who_help = Separated by commas or lines. Both lists empty: everyone signed in.
admin_type_env = Environment (NAME=value per line)
admin_type_sort = Order
admin_type_enabled = Enabled
admin_type_no_internet = No internet (exam mode): desktops of this type reach nothing outside, only the portal reaches them
admin_type_disabled = Disabled
admin_type_enable = Enable
admin_type_disable = Disable
admin_type_delete = Delete
admin_type_confirm_delete = Delete the desktop type? This only works when no desktops of the type exist.
admin_type_pull = Pull image
admin_pull_done = Image pulled.
admin_pull_failed = Pull failed:
admin_user_name = Username
admin_user_display = Display name
admin_user_role = Role
admin_user_groups = Groups
admin_user_source = Source
admin_user_local = Local
admin_user_last_sign_in = Last sign-in
admin_user_end_sessions = End sessions
admin_user_confirm_end_sessions = End all sessions of this user? They have to sign in again.
admin_sessions_ended = Sessions ended.
admin_user_reset = New password
admin_user_confirm_reset = Generate a new password? The old one stops working.
admin_user_delete = Delete account
admin_user_confirm_delete = Delete the account and its desktops? Its files are kept for a while (see "Deleted accounts") and removed then; until then the account can be restored.
admin_user_confirm_delete_iserv = Delete this IServ account and its desktops here? The person cannot sign in until you restore the account; the files are kept for a while (see "Deleted accounts"). After that they sign in as a new account without the old files. Nothing changes in IServ itself.
admin_user_link = Link to IServ
admin_user_confirm_link = The next IServ sign-in with this username takes over this local account; its password is removed. Only allow this if you are sure the IServ account belongs to the same person. Continue?
admin_user_link_allowed = Link to IServ allowed
admin_deleted_users = Deleted accounts
admin_deleted_users_help = Their desktops are removed; their files are removed at the time shown. Until then each account can be restored with its files.
admin_deleted_at = Deleted
admin_deleted_purge_at = Files removed
admin_deleted_restore = Restore
admin_deleted_purging = Files are being removed
admin_user_new = New local account
admin_user_create = Create
admin_user_password_help = Leave empty to generate a strong password (shown once).
admin_password_for = New password for
admin_password_once = Write it down or pass it on now: it is shown only this once.
audit_when = When
audit_kind = Event
audit_actor = By
audit_target = Concerns
audit_detail = Details
audit_system = Portal
audit_none = No events.
audit_all_kinds = All events
audit_filter = Filter
audit_retention = Audit log kept for days
audit_pages = Pages
audit_page = Page
audit_newer = Newer
audit_older = Older
audit_desktop_started = Desktop started
audit_desktop_stopped = Desktop stopped
audit_desktop_failed = Desktop start failed
audit_desktop_removed = Desktop removed
audit_type_created = Desktop type created
audit_type_changed = Desktop type changed
audit_type_deleted = Desktop type deleted
audit_sign_in = Sign-in
audit_sign_in_failed = Failed sign-in
audit_sign_out = Sign-out
audit_user_created = Account created
audit_user_changed = Account changed
audit_user_deleted = Account deleted
audit_settings_changed = Settings changed
audit_admin_action = Admin action
branding_school_name = School name
branding_color = Primary colour
branding_logo = Logo
err_admin_invalid = The input is not valid.
err_admin_conflict = This cannot be done.
err_upload_too_large = The file is too large: at most 256 KiB.
err_upload_type = Only PNG, JPEG or WebP images are allowed (no SVG).

## Desktop origins
err_desktop_own_origin = This desktop is served at an address of its own. Open it from the portal's start page.
err_desktop_origin_required = Other people's desktops can be opened only once the school has set up desktop addresses of their own (setting desktop_origin). Until then only the desktop's owner may open it: otherwise a page inside the desktop could act in your name.
err_desktop_origin_session = This desktop does not run here, or this address does not know you (any more). Open the desktop from the portal.
err_desktop_ticket = This link has expired or was already used. Open the desktop again from the portal.
err_desktop_other_site = Requests from other sites to this desktop are refused. Open the desktop from the portal.
desktop_origin_portal_link = Portal
admin_open_desktop = Open
admin_no_desktop_origin = Desktops share the portal's address (desktop_origin is not set). Only their owners can open them; administrators and teachers can open other people's desktops only once desktops have addresses of their own (see the deployment guide).

## Files
files_title = Files
files_spaces = Spaces
files_home = My files
files_shared = Shared folder
files_path = Folder
files_usage = Used
files_read_only = You can read this folder but not change it.
files_upload = Upload
files_choose = Files
files_upload_button = Upload
files_choose_folder = Folder
files_upload_folder_button = Upload folder
files_upload_limit = Largest file
files_over_quota = More is kept here than your quota allows (what a desktop saved counts too). Until you delete something, nothing can be uploaded and no new desktop starts.
files_drop_here = Drop files here to upload them into this folder.
files_new_folder = New folder
files_create = Create
files_name = Name
files_size = Size
files_modified = Changed
files_empty = This folder is empty.
files_link = link, not followed
files_preview = preview
files_new_name = New name
files_rename = Rename
files_delete = Delete
files_trash = Trash
files_trash_hint = Deleted files can be restored for this many days
files_trash_empty = The trash is empty.
files_deleted = Deleted
files_restore = Restore
files_done_uploaded = Uploaded.
files_done_created = Folder created.
files_done_renamed = Renamed.
files_done_deleted = Moved to the trash. You can restore it below.
files_done_restored = Restored.
err_files_unknown_space = There is no such file area. Use "My files" or "Shared folder".
err_files_read_only = This folder is read-only for you.
err_files_bad_name = This name is not allowed. Use a name without "/", line breaks or control characters, of at most 255 bytes.
err_files_exists = Something with this name already exists here. Choose another name.
err_files_into_itself = A folder cannot be moved or copied into itself.
err_files_not_a_file = This is not a file that can be opened here.
err_files_link = This is a link. The portal shows links but never follows them; open it inside your desktop.
err_files_quota = Your storage is full. Delete files (and empty them from the trash) or ask your school's administrator for more space.
err_files_too_large = The file is larger than the portal accepts for one upload.
err_files_disk_full = The server's disk is full. Tell your school's administrator.
files_uploading = Uploading
files_upload_done = done
files_upload_failed = failed
files_download_zip = Download this folder as a zip
files_class = Class
files_publish = Hand out
files_publish_to = Hand out to class
files_done_published = Handed out: the class sees a copy in its class folder (and in its desktops) until you delete it there.
files_done_moved = Moved.
files_done_copied = Copied.
files_done_numbered = Done. A name was taken there, so the new one got a number, like "Übung 1 (2).pdf"; nothing was overwritten.
files_select = Select
files_selected = With the selected files and folders:
files_target = Target folder
files_move = Move
files_copy = Copy
files_zip_selected = Download as zip
audit_files_changed = Files changed
files_handin = Hand-in
assign_title = Hand-ins
assign_intro = Set an assignment for one of your groups: each student gets a hand-in folder (in Files and in their desktops), which becomes read-only at the due time.
assign_name = Title
assign_due = Due
assign_allow_late = Late hand-ins allowed (marked late)
assign_create = Set assignment
assign_none = No assignments yet.
assign_closed = closed
assign_delete = Delete with hand-ins
assign_zip = Download all hand-ins as one zip (a folder per student)
assign_student = Student
assign_files = Files
assign_last_change = Last change
assign_late = late
assign_no_students = No students in this group.
files_handin_tab = Hand-in
files_handin_closed = This hand-in is closed: the due time has passed. You can still read it.
files_handin_due = Due

## Hand-ins: sealing, feedback, desktops
assign_sealed = Sealed (this view shows the hand-ins as they were at the due time): since
assign_feedback = Feedback
assign_feedback_choose = Files to give back
assign_feedback_give = Give back
assign_feedback_done = The feedback is saved. The student sees it under "Files" and in the desktop under ~/Rückmeldungen.
assign_due_new = New due time
assign_due_move = Move the due time
assign_due_moved = The due time has moved. If the hand-in had closed and the new time is later, it is open again; it closes again at the new time.
files_feedback = Feedback
files_feedback_link = See your teacher's feedback
dashboard_handins_restart = Your hand-ins are in the desktop's folder ~/Abgaben, feedback in ~/Rückmeldungen. New assignments appear there only after the desktop is restarted (stop and start it). After the due time only what was in the folder by then counts.
err_too_many_file_changes = Too many file changes: at most { $limit } per minute. Please wait { $seconds } seconds, then try again.

## Admin: disk use
admin_disk_title = Disk use
admin_disk_intro = Space used per person (home with its trash, and hand-ins) and per class (class folder, hand-ins and feedback), largest first.
admin_disk_computed = Computed at
admin_disk_users = People
admin_disk_classes = Classes
admin_disk_user = Person
admin_disk_class = Class
admin_disk_home = Home
admin_disk_handins = Hand-ins
admin_disk_total = Total
admin_disk_quota = Quota
admin_disk_no_quota = none
admin_disk_folder = Class folder
admin_disk_section = Disk use
files_my_data = My data: everything as one zip (home, hand-ins, feedback)

## Class actions on the teacher page (teacher_class.rs), groups of local accounts.

reason_teacher = Your teacher stopped it. Your files are kept; you can start it again.
err_not_your_class = You can only do this for groups you are in yourself.
audit_class_action = Class action
class_title = Lesson
class_intro = For each of your groups: end the lesson (stops every desktop of its students; you confirm first) or leave a short message that its students see on their start page and desktop page for one hour.
class_running =
    { $n ->
        [one] { $n } desktop running
       *[other] { $n } desktops running
    }
class_end_lesson = End the lesson
class_end_confirm_title = Stop these desktops?
class_end_confirm = The desktops of these students stop now. Their files are kept, but work not yet saved in open programs is lost.
class_end_none = No desktop of this group's students is running.
class_end_confirm_button = Yes, end the lesson
class_end_cancel = Cancel
class_message = Message to the group
class_message_send = Send
class_message_current = Shown now:
class_message_until = until
class_message_clear = Remove message
class_message_from = Message from
class_actions_col = Actions
class_restart = Restart
admin_user_groups_help = Groups (classes) of local accounts: names separated by commas, e.g. "5a, Mathe 7". Teachers see and manage the students of their groups. IServ accounts get their groups from IServ.
admin_user_groups_iserv = Set by IServ at every sign-in
## Helping with consent (web/help.rs)
help_ask = Ask for help
help_requested = Help requested: your teachers see it.
help_withdraw = Withdraw
help_offer_text = wants to control your desktop.
help_allow = Allow
help_decline = Decline
help_helping_text = is helping you and controls your desktop
help_until = until
help_end = End
help_card_title = Help from your teacher
help_teacher_title = Requests for help
help_teacher_intro = Students of your groups who asked for help. You can take control of a desktop only after the student allows it; the student can end it at any time, and it ends by itself after { $minutes } minutes.
help_needs_origins = Taking control needs desktops on addresses of their own (ask your administrator); until then, help in person.
help_none = No open requests for help.
help_desktop = Desktop
help_asked = Asked
help_actions = Actions
help_stage_requested = Waiting for a teacher
help_stage_waiting = Waiting for the student to allow it
help_stage_offered_by = Offered by
help_stage_you_help = You are helping
help_stage_helping = Helping:
help_take_control = Take control
help_open = Open desktop
help_dismiss = Close request
err_help_no_request = The student has not asked for help with this desktop (or has withdrawn the request). You can take control only when asked.
err_help_taken = Another teacher has already offered help or is helping.
err_help_no_offer = No teacher has offered to help, so there is nothing to allow.
audit_help = Help with consent
## Teachers' views of students' screens (web/screens.rs)
watch_title = Screen of
watch_intro = The picture comes from the portal and is view-only: nothing you do here reaches the student's desktop. The student sees that you are watching.
watch_alt = Live screen of
watch_view_only = View only, updated live.
watch_ended = Watching has ended: the desktop stopped, or your access or session ended. Reload the page to try again.
screens_no_group = Without a class
screens_class = Class
screens_thumbnail_of = Screen of
screens_watch = Watch
err_watching_off = Watching students' screens is switched off on this installation (setting screens.watching).
audit_screen_watched = Screen watched
watched_by = Your screen is being watched by:
