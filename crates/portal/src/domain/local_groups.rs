//! The groups of local accounts, which administrators set (admin page, command line): IServ
//! accounts get theirs from IServ at every sign-in, so a school without IServ, or a local
//! teacher account, gets its classes here. One function with its audit entry for both ways.

use portal_store::{AuditEvent, AuditKind, Store, StoreError, User};

/// Group names from form fields or command-line values: each may hold several, separated by
/// commas; blanks are dropped (the store checks and normalises the rest).
pub fn parse_list<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Sets the groups of the local account `user`, audited as done by administrator `by`
/// (`None`: the command line on the server). `Conflict` for an IServ account, `Invalid` for a
/// bad name (nothing changes then).
pub async fn set(store: &Store, user: &User, groups: &[String], by: Option<&str>) -> Result<Vec<String>, StoreError> {
    let set = store.set_local_groups(&user.id, groups).await?;
    let list = |g: &[String]| if g.is_empty() { "none".to_owned() } else { g.join(", ") };
    let how = if by.is_some() { "" } else { " (command line)" };
    let detail = format!("groups {} → {}{how}", list(&user.groups), list(&set));
    tracing::info!(username = %user.username, by = by.unwrap_or("command line"), groups = %list(&set), "groups of a local account set");
    let mut event = AuditEvent::new(AuditKind::UserChanged, detail).user(&user.username);
    if let Some(by) = by {
        event = event.actor(by);
    }
    super::audit::record(store, event).await;
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_on_commas_and_drop_blanks() {
        assert_eq!(parse_list(["5a, 6b", " ", "Mathe 7"]), ["5a", "6b", "Mathe 7"]);
        assert!(parse_list([""]).is_empty());
    }
}
