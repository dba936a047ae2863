//! Helping with consent: a student asks for help with one of her running desktops, one of her
//! teachers offers to take control, and only once she accepts does that teacher get a
//! time-limited grant to use the desktop — on the desktop's own origin, never the portal's.
//! She (or the teacher) can end it at any moment; ending it, declining, the desktop stopping
//! or the time limit revoke the grant and close the teacher's open connections to the desktop.
//!
//! Cases live in memory only: a restart of the portal ends every help session, which fails
//! closed (no grant outlives the process that checks it). Grants (not requests or offers) are
//! told to the other portal replicas, which honour them while they last (`help_peers.rs`).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use desktop_proxy::{RouteTable, Target};
use portal_store::{AuditEvent, AuditKind, DesktopState, Store, StoreError, User};
use tokio::sync::broadcast;

use super::access::{may_use_desktop, owns_desktop, teaches};
use super::events::DesktopChange;
use super::help_peers::{GrantNotice, HELP_CHANNEL, PeerGrants, ToClose};
use super::{audit, unix_now};

/// How long a teacher may control a desktop after the student accepted (then it ends; she can
/// ask again).
pub const HELP_TIME_LIMIT: Duration = Duration::from_secs(30 * 60);
/// How often the time limit and vanished desktops are checked.
const TICK: Duration = Duration::from_secs(1);
/// Changes kept for slow subscribers (they reload the whole picture after a lag).
const CAPACITY: usize = 256;

/// Where a case stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The student asked; no teacher has offered yet.
    Requested,
    /// A teacher offered to take control; the student has not answered.
    Offered,
    /// The student accepted: the teacher may use the desktop until the case ends.
    Helping,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Requested => "requested",
            Stage::Offered => "offered",
            Stage::Helping => "helping",
        }
    }
}

/// One request for help with one desktop.
#[derive(Clone, Debug)]
pub struct Case {
    pub desktop_id: String,
    pub student: User,
    /// Unix seconds.
    pub requested_at: i64,
    pub stage: Stage,
    /// Who offered, or helps.
    pub helper: Option<User>,
    /// When the student accepted (unix seconds).
    pub accepted_at: Option<i64>,
    /// When the grant ends by itself (unix seconds).
    pub until: Option<i64>,
    expires: Option<Instant>,
    /// The helper's portal sessions that entered the desktop under this grant: their
    /// desktop-origin cookies and relays are closed when the case ends.
    sessions: BTreeSet<String>,
}

impl Case {
    /// Whether `user` is this case's student, one of her teachers, or an administrator.
    pub fn concerns(&self, user: &User) -> bool {
        self.student.id == user.id || teaches(user, &self.student)
    }

    fn helping(&self, user_id: &str) -> bool {
        self.stage == Stage::Helping
            && self.helper.as_ref().is_some_and(|h| h.id == user_id)
            && self.expires.is_some_and(|e| Instant::now() < e)
    }
}

/// Why a help action was refused.
#[derive(Debug, thiserror::Error)]
pub enum HelpError {
    /// No such running desktop, not hers, or not a student of this teacher: answered like a
    /// missing desktop.
    #[error("no such desktop")]
    NotFound,
    #[error("the student has not asked for help with this desktop (or has withdrawn it)")]
    NoRequest,
    #[error("another teacher has already offered to help or is helping")]
    Taken,
    #[error("no teacher has offered to help; nothing to accept")]
    NoOffer,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a case ended (for the audit log).
#[derive(Clone, Debug)]
enum Ending {
    /// The student or a teacher closed it (their username).
    By(String),
    TimeLimit,
    DesktopStopped,
}

/// A case changed: who should hear of it.
#[derive(Clone, Debug)]
pub struct HelpChange {
    pub desktop_id: String,
    pub student: User,
    /// The helper before or after the change, if any.
    pub helper_id: Option<String>,
}

impl HelpChange {
    /// Whether `user` should see this change: the student, her teachers and administrators.
    pub fn concerns(&self, user: &User) -> bool {
        self.student.id == user.id
            || self.helper_id.as_deref() == Some(user.id.as_str())
            || teaches(user, &self.student)
    }
}

/// Closes what a helper's sessions hold open on a desktop: `(desktop id, session ids)`.
pub type CloseSessions = Box<dyn Fn(&str, &[String]) + Send + Sync>;

/// Every open case, by desktop id.
pub struct Help {
    store: Store,
    routes: Arc<RouteTable>,
    limit: Duration,
    cases: Mutex<HashMap<String, Case>>,
    tx: broadcast::Sender<HelpChange>,
    close_sessions: CloseSessions,
    /// The grants other replicas gave.
    peers: PeerGrants,
    /// Random per process: tells this replica's grant notices from the others'.
    origin: String,
}

impl Help {
    /// `close_sessions` ends a helper's desktop-origin cookies and relays (the sessions layer
    /// lies above this one, so it is handed in).
    pub fn new(store: Store, routes: Arc<RouteTable>, limit: Duration, close_sessions: CloseSessions) -> Self {
        Help {
            store,
            routes,
            limit,
            cases: Mutex::default(),
            tx: broadcast::channel(CAPACITY).0,
            close_sessions,
            peers: PeerGrants::default(),
            origin: portal_store::random_secret::<9>(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Case>> {
        self.cases.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<HelpChange> {
        self.tx.subscribe()
    }

    fn publish(&self, case: &Case, helper_id: Option<String>) {
        let _ = self.tx.send(HelpChange {
            desktop_id: case.desktop_id.clone(),
            student: case.student.clone(),
            helper_id,
        });
    }

    /// The running desktop `id` if it is `student`'s own.
    fn own_running(&self, student: &User, id: &str) -> Result<Arc<Target>, HelpError> {
        self.routes
            .get(id)
            .filter(|t| owns_desktop(student, t))
            .ok_or(HelpError::NotFound)
    }

    /// `student` asks for help with her running desktop `id`. Asking again changes nothing.
    pub async fn request(&self, student: &User, id: &str) -> Result<Case, HelpError> {
        self.own_running(student, id)?;
        let (case, new) = {
            let mut cases = self.lock();
            match cases.get(id) {
                // Asked already (by her, or by another user of a shared lab machine, who then
                // answers the offer).
                Some(c) => (c.clone(), false),
                None => {
                    let c = Case {
                        desktop_id: id.to_owned(),
                        student: student.clone(),
                        requested_at: unix_now(),
                        stage: Stage::Requested,
                        helper: None,
                        accepted_at: None,
                        until: None,
                        expires: None,
                        sessions: BTreeSet::new(),
                    };
                    cases.insert(id.to_owned(), c.clone());
                    (c, true)
                }
            }
        };
        if new {
            self.audit(student, &case, "asked for help").await;
            self.publish(&case, None);
        }
        Ok(case)
    }

    /// `teacher` offers to take control of desktop `id`, whose student asked for help.
    pub async fn offer(&self, teacher: &User, id: &str) -> Result<Case, HelpError> {
        let case = match self.mark_offered(teacher, id) {
            Ok(Some(case)) => case,
            // Offered or helping already: nothing new.
            Ok(None) => return self.lock().get(id).cloned().ok_or(HelpError::NoRequest),
            // Without a case, say so only to a teacher of the desktop's owner.
            Err(HelpError::NoRequest) => return Err(self.no_case(teacher, id).await),
            Err(e) => return Err(e),
        };
        self.audit(teacher, &case, "offered to take control of the desktop")
            .await;
        self.publish(&case, Some(teacher.id.clone()));
        Ok(case)
    }

    /// The offer itself, under the lock: `Some` when it is new, `None` when this teacher had
    /// already offered or helps.
    fn mark_offered(&self, teacher: &User, id: &str) -> Result<Option<Case>, HelpError> {
        let mut cases = self.lock();
        let c = cases.get_mut(id).ok_or(HelpError::NoRequest)?;
        if !teaches(teacher, &c.student) {
            return Err(HelpError::NotFound);
        }
        match (&c.stage, &c.helper) {
            (Stage::Requested, _) => {
                c.stage = Stage::Offered;
                c.helper = Some(teacher.clone());
                Ok(Some(c.clone()))
            }
            (_, Some(h)) if h.id == teacher.id => Ok(None),
            _ => Err(HelpError::Taken),
        }
    }

    /// Without a case: `NoRequest` for a teacher of the desktop's owner, else `NotFound`.
    async fn no_case(&self, teacher: &User, id: &str) -> HelpError {
        // A started desktop's owner, or the people a shared machine is configured for.
        let mut owners = Vec::new();
        if let Ok(Some(d)) = self.store.desktop(id).await {
            owners.extend(self.store.user_by_id(&d.user_id).await.ok().flatten());
        } else if let Some(t) = self.routes.get(id) {
            for name in &t.usernames {
                owners.extend(self.store.user_by_username(name).await.ok().flatten());
            }
        }
        if owners.iter().any(|owner| teaches(teacher, owner)) {
            HelpError::NoRequest
        } else {
            HelpError::NotFound
        }
    }

    /// `student` accepts the offer on her desktop `id`: its teacher may use it until the
    /// time limit or until someone ends it.
    pub async fn accept(&self, student: &User, id: &str) -> Result<Case, HelpError> {
        self.own_running(student, id)?;
        let case = {
            let mut cases = self.lock();
            let c = cases
                .get_mut(id)
                .filter(|c| c.stage == Stage::Offered && c.student.id == student.id)
                .ok_or(HelpError::NoOffer)?;
            let now = unix_now();
            c.stage = Stage::Helping;
            c.accepted_at = Some(now);
            c.until = Some(now + i64::try_from(self.limit.as_secs()).unwrap_or(i64::MAX / 2));
            c.expires = Some(Instant::now() + self.limit);
            c.clone()
        };
        let helper = case.helper.as_ref().map(|h| h.username.as_str()).unwrap_or_default();
        let until = case.until.map(stamp).unwrap_or_default();
        self.audit(
            student,
            &case,
            &format!("accepted {helper}'s offer: {helper} may control the desktop until {until}"),
        )
        .await;
        self.publish(&case, case.helper.as_ref().map(|h| h.id.clone()));
        self.tell_peers(&case, false).await;
        Ok(case)
    }

    /// Tells the other replicas that `case`'s grant began or `ended`.
    async fn tell_peers(&self, case: &Case, ended: bool) {
        let Some(helper) = &case.helper else { return };
        let notice = GrantNotice {
            from: self.origin.clone(),
            desktop_id: case.desktop_id.clone(),
            helper_id: helper.id.clone(),
            until: case.until.unwrap_or_default(),
            ended,
        };
        match serde_json::to_string(&notice) {
            Ok(payload) => self.store.notify(HELP_CHANNEL, &payload).await,
            Err(e) => tracing::warn!(error = %e, "a help grant could not be told to the other portals"),
        }
    }

    /// Applies another replica's grant notice (a notification payload).
    pub fn apply_peer_notice(&self, payload: &str) {
        let notice: GrantNotice = match serde_json::from_str(payload) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "a help notification could not be read");
                return;
            }
        };
        if notice.from == self.origin {
            return;
        }
        if let Some(close) = self.peers.apply(&notice, unix_now()) {
            self.close_helpers(vec![close]);
        }
    }

    /// Forgets every other replica's grant (their notices may have been missed): fails closed.
    pub fn forget_peer_grants(&self) {
        let ended = self.peers.end_if(|_, _| true);
        self.close_helpers(ended);
    }

    /// Closes what helpers' sessions hold open on each desktop.
    fn close_helpers(&self, what: Vec<ToClose>) {
        for (desktop, sessions) in what {
            if !sessions.is_empty() {
                (self.close_sessions)(&desktop, &sessions);
            }
        }
    }

    /// Ends the case of desktop `id`: by its student (withdraw, decline or end, by its
    /// stage), by the helper, or by another teacher of hers or an administrator. Nothing to
    /// end is fine for those; anyone else gets `NotFound`.
    pub async fn close(&self, by: &User, id: &str) -> Result<(), HelpError> {
        let may = |c: &Case| c.concerns(by) || c.helper.as_ref().is_some_and(|h| h.id == by.id);
        let case = {
            let mut cases = self.lock();
            match cases.get(id) {
                Some(c) if may(c) => cases.remove(id),
                Some(_) => return Err(HelpError::NotFound),
                None => None,
            }
        };
        match case {
            Some(case) => {
                self.finish(case, Ending::By(by.username.clone())).await;
                Ok(())
            }
            // Nothing open: fine for the desktop's owner, refused for everyone else.
            None => self.own_running(by, id).map(|_| ()),
        }
    }

    /// After a case left the map: closes the helper's connections, writes the audit entry,
    /// tells the pages.
    async fn finish(&self, case: Case, why: Ending) {
        self.close_helpers(vec![(case.desktop_id.clone(), case.sessions.iter().cloned().collect())]);
        if case.stage == Stage::Helping {
            self.tell_peers(&case, true).await;
        }
        let helper = case.helper.as_ref().map(|h| h.username.clone()).unwrap_or_default();
        let what = match case.stage {
            Stage::Requested => "the request for help was closed".to_owned(),
            Stage::Offered => format!("{helper}'s offer to help was declined or withdrawn"),
            Stage::Helping => format!(
                "{helper}'s help ended; {helper} controlled the desktop from {} to {}",
                case.accepted_at.map(stamp).unwrap_or_default(),
                stamp(unix_now())
            ),
        };
        let (actor, detail) = match &why {
            Ending::By(who) => (Some(who.clone()), what),
            Ending::TimeLimit => (None, format!("{what} (time limit)")),
            Ending::DesktopStopped => (None, format!("{what} (the desktop stopped)")),
        };
        let mut event = AuditEvent::new(AuditKind::Help, detail)
            .user(case.student.username.clone())
            .target(case.desktop_id.clone());
        event.actor = actor;
        audit::record(&self.store, event).await;
        tracing::info!(desktop = %case.desktop_id, student = %case.student.username, stage = case.stage.as_str(), ?why, "help case ended");
        self.publish(&case, case.helper.as_ref().map(|h| h.id.clone()));
    }

    async fn audit(&self, actor: &User, case: &Case, detail: &str) {
        let event = AuditEvent::new(AuditKind::Help, detail)
            .actor(actor.username.clone())
            .user(case.student.username.clone())
            .target(case.desktop_id.clone());
        audit::record(&self.store, event).await;
    }

    /// Whether `user` may use `target` now: by the access rules, or as the helper the
    /// student accepted. A helper's session is noted, so ending the case closes what it opened;
    /// both happen under one lock, so a session is either noted before the case ends or
    /// refused after.
    pub fn admit(&self, user: &User, session_id: &str, target: &Target) -> bool {
        if may_use_desktop(user, target) {
            return true;
        }
        let mut cases = self.lock();
        match cases.get_mut(&target.desktop_id) {
            Some(c) if c.helping(&user.id) => {
                c.sessions.insert(session_id.to_owned());
                true
            }
            _ => self.peers.admit(&user.id, &target.desktop_id, Some(session_id)),
        }
    }

    /// [`Help::admit`] without noting a session (the periodic check of open bindings).
    pub fn may_use(&self, user: &User, target: &Target) -> bool {
        may_use_desktop(user, target) || self.is_helping(user, &target.desktop_id)
    }

    /// Whether `user` is the accepted helper of desktop `id` right now.
    pub fn is_helping(&self, user: &User, id: &str) -> bool {
        self.lock().get(id).is_some_and(|c| c.helping(&user.id)) || self.peers.admit(&user.id, id, None)
    }

    /// The open cases `user` may see (her own; her students'; all for administrators), oldest
    /// request first.
    pub fn cases_for(&self, user: &User) -> Vec<Case> {
        let mut cases: Vec<Case> = self.lock().values().filter(|c| c.concerns(user)).cloned().collect();
        cases.sort_by(|a, b| (a.requested_at, &a.desktop_id).cmp(&(b.requested_at, &b.desktop_id)));
        cases
    }

    /// The case of desktop `id`, if `user` may see it.
    pub fn case_of(&self, user: &User, id: &str) -> Option<Case> {
        self.lock().get(id).filter(|c| c.concerns(user)).cloned()
    }

    /// Ends cases whose desktop stopped and grants past their time limit: on every state
    /// change of a desktop, and every second. Runs forever.
    pub async fn run(self: Arc<Self>, mut changes: broadcast::Receiver<DesktopChange>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut open = true;
        loop {
            tokio::select! {
                change = changes.recv(), if open => match change {
                    Ok(c) if c.state != Some(DesktopState::Running) => {
                        self.end_if(|case| case.desktop_id == c.desktop_id, Ending::DesktopStopped).await;
                        let ended = self.peers.end_if(|id, _| id == c.desktop_id);
                        self.close_helpers(ended);
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    // No lifecycle any more (shutting down): the tick still runs.
                    Err(broadcast::error::RecvError::Closed) => open = false,
                },
                _ = tick.tick() => {
                    let routes = self.routes.clone();
                    self.end_if(|case| routes.get(&case.desktop_id).is_none(), Ending::DesktopStopped).await;
                    let now = Instant::now();
                    self.end_if(|case| case.expires.is_some_and(|e| e <= now), Ending::TimeLimit).await;
                    let ended = self.peers.end_if(|id, expired| expired || routes.get(id).is_none());
                    self.close_helpers(ended);
                }
            }
        }
    }

    async fn end_if(&self, ends: impl Fn(&Case) -> bool, why: Ending) {
        let ended: Vec<Case> = {
            let mut cases = self.lock();
            let ids: Vec<String> = cases
                .values()
                .filter(|c| ends(c))
                .map(|c| c.desktop_id.clone())
                .collect();
            ids.iter().filter_map(|id| cases.remove(id)).collect()
        };
        for case in ended {
            self.finish(case, why.clone()).await;
        }
    }
}

/// Unix seconds as an RFC 3339 time in UTC, for the audit log.
fn stamp(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| secs.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use desktop_proxy::Scheme;
    use portal_store::{AuditFilter, Role};
    use secrecy::SecretString;

    use super::*;

    /// What the sessions layer was asked to close.
    type Closed = Arc<Mutex<Vec<(String, Vec<String>)>>>;

    async fn user(store: &Store, name: &str, role: Role) -> User {
        let mut u = store
            .create_local_user(name, name, role, &SecretString::from("a long password".to_owned()))
            .await
            .unwrap();
        u.groups = vec!["5a".into()];
        u
    }

    fn target(id: &str, owner: &User) -> Target {
        Target {
            desktop_id: id.into(),
            name: String::new(),
            scheme: Scheme::Https,
            host: "127.0.0.1".into(),
            port: 1,
            verify_tls: false,
            basic_auth: None,
            owner_ids: vec![owner.id.clone()],
            usernames: vec![],
            groups: vec![],
        }
    }

    async fn help_details(store: &Store) -> Vec<String> {
        let filter = AuditFilter {
            kind: Some(AuditKind::Help),
            limit: 100,
            ..Default::default()
        };
        store
            .audit_page(&filter)
            .await
            .unwrap()
            .0
            .into_iter()
            .map(|e| e.detail)
            .collect()
    }

    /// Waits up to 5 s for `check`.
    async fn soon(mut check: impl FnMut() -> bool) -> bool {
        for _ in 0..50 {
            if check() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    #[tokio::test]
    async fn the_grant_ends_at_its_time_limit_and_when_the_desktop_stops_closing_the_helpers_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
            .await
            .unwrap();
        let (sam, tina) = (
            user(&store, "sam", Role::Student).await,
            user(&store, "tina", Role::Teacher).await,
        );
        let routes = Arc::new(RouteTable::new());
        let desk = target("sam-x", &sam);
        routes.insert(desk.clone());
        let closed: Closed = Arc::default();
        let record = closed.clone();
        let help = Arc::new(Help::new(
            store.clone(),
            routes.clone(),
            Duration::from_millis(300),
            Box::new(move |id, sessions| record.lock().unwrap().push((id.to_owned(), sessions.to_vec()))),
        ));
        let (tx, rx) = broadcast::channel(8);
        tokio::spawn(help.clone().run(rx));

        // Not before she allows it.
        help.request(&sam, "sam-x").await.unwrap();
        help.offer(&tina, "sam-x").await.unwrap();
        assert!(!help.admit(&tina, "s1", &desk));
        help.accept(&sam, "sam-x").await.unwrap();
        assert!(help.admit(&tina, "s1", &desk) && help.may_use(&tina, &desk));
        assert!(help.admit(&sam, "own", &desk), "the owner as ever");

        // The time limit: revoked, and the session that used it closed.
        assert!(
            soon(|| help.case_of(&sam, "sam-x").is_none()).await,
            "ended at the limit"
        );
        assert!(!help.admit(&tina, "s1", &desk) && !help.may_use(&tina, &desk));
        assert_eq!(*closed.lock().unwrap(), [("sam-x".to_owned(), vec!["s1".to_owned()])]);

        // The desktop stops: the same.
        help.request(&sam, "sam-x").await.unwrap();
        help.offer(&tina, "sam-x").await.unwrap();
        help.accept(&sam, "sam-x").await.unwrap();
        assert!(help.admit(&tina, "s2", &desk));
        tx.send(DesktopChange {
            user_id: sam.id.clone(),
            desktop_id: "sam-x".into(),
            type_key: "x".into(),
            state: Some(DesktopState::Stopping),
            reason: None,
            last_used: None,
        })
        .unwrap();
        assert!(
            soon(|| help.case_of(&sam, "sam-x").is_none()).await,
            "ended with the desktop"
        );
        assert!(!help.admit(&tina, "s2", &desk));
        assert_eq!(closed.lock().unwrap().len(), 2);
        let details = help_details(&store).await;
        assert!(details.iter().any(|d| d.ends_with("(time limit)")), "{details:#?}");
        assert!(
            details.iter().any(|d| d.ends_with("(the desktop stopped)")),
            "{details:#?}"
        );
    }

    #[test]
    fn teachers_teach_students_of_their_groups_and_admins_everyone() {
        let person = |role, groups: &[&str]| User {
            id: format!("{role:?}{groups:?}"),
            username: "x".into(),
            display_name: "x".into(),
            email: None,
            role,
            external_subject: None,
            home_name: "x".into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            language: None,
            has_password: false,
            link_allowed_by: None,
            created_at: 0,
        };
        let sam = person(Role::Student, &["5a"]);
        assert!(teaches(&person(Role::Teacher, &["5a", "lehrer"]), &sam));
        assert!(!teaches(&person(Role::Teacher, &["6b"]), &sam));
        assert!(!teaches(&person(Role::Student, &["5a"]), &sam), "a classmate");
        assert!(!teaches(
            &person(Role::Teacher, &["5a"]),
            &person(Role::Teacher, &["5a"])
        ));
        assert!(teaches(&person(Role::Admin, &[]), &sam));
    }
}
