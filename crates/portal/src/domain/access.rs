//! Who may use which desktop type: the admin's rules, widened by teachers' grants to their groups.

use desktop_proxy::Target;
use portal_store::{DesktopType, Role, Store, StoreError, TypeGrant, User};

/// Whether `user` may use desktop type `t` at all (admins may use every type).
pub fn may_use_type(user: &User, t: &DesktopType) -> bool {
    user.role == Role::Admin || t.allows(&user.username, &user.groups)
}

/// Whether `user` may use the running desktop `target`: its owners, its groups (static
/// desktops), and administrators. Where desktops share the portal's origin, loading one's
/// content is further limited to [`owns_desktop`].
pub fn may_use_desktop(user: &User, target: &Target) -> bool {
    user.role == Role::Admin || owns_desktop(user, target)
}

/// Whether `target` is `user`'s own (or shared with her group, for static desktops): the
/// only people whose browser may run its page on the portal's origin.
pub fn owns_desktop(user: &User, target: &Target) -> bool {
    target.allows(&user.id, &user.username, &user.groups)
}

/// Whether `user` teaches `student`: an administrator every student, a teacher the students
/// who share a group with her. The one rule behind `/teacher`'s list, its class actions and
/// helping with consent.
pub fn teaches(user: &User, student: &User) -> bool {
    student.role == Role::Student
        && match user.role {
            Role::Admin => true,
            Role::Teacher => student.groups.iter().any(|g| user.groups.contains(g)),
            Role::Student => false,
        }
}

/// `t` as its users see it: a restricted type is also open to the groups teachers enabled
/// it for.
pub fn with_grants(mut t: DesktopType, grants: &[TypeGrant]) -> DesktopType {
    let restricted = !t.allowed_groups.is_empty() || !t.allowed_users.is_empty();
    if restricted {
        for g in grants.iter().filter(|g| g.type_key == t.key) {
            if !t.allowed_groups.contains(&g.group_name) {
                t.allowed_groups.push(g.group_name.clone());
            }
        }
    }
    t
}

/// [`with_grants`] with the grants read from the store.
pub async fn effective_type(store: &Store, t: DesktopType) -> Result<DesktopType, StoreError> {
    Ok(with_grants(t, &store.type_grants().await?))
}

/// The enabled types `user` may use, teachers' grants included, in listing order.
pub async fn usable_types(store: &Store, user: &User) -> Result<Vec<DesktopType>, StoreError> {
    let grants = store.type_grants().await?;
    Ok(store
        .list_desktop_types()
        .await?
        .into_iter()
        .map(|t| with_grants(t, &grants))
        .filter(|t| t.enabled && may_use_type(user, t))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(key: &str, group: &str) -> TypeGrant {
        TypeGrant {
            type_key: key.into(),
            group_name: group.into(),
            granted_by: None,
            created_at: 0,
        }
    }

    #[test]
    fn grants_open_restricted_types_only() {
        let restricted = DesktopType {
            key: "code".into(),
            allowed_groups: vec!["lehrer".into()],
            ..DesktopType::default()
        };
        let grants = [grant("code", "5a"), grant("other", "5b")];
        let t = with_grants(restricted, &grants);
        assert_eq!(t.allowed_groups, ["lehrer", "5a"]);
        assert!(t.allows("x", &["5a".into()]));
        assert!(!t.allows("x", &["5b".into()]));
        // Open to everyone stays open; a grant must not narrow it to one group.
        let open = with_grants(
            DesktopType {
                key: "code".into(),
                ..DesktopType::default()
            },
            &grants,
        );
        assert!(open.allowed_groups.is_empty());
        assert!(open.allows("x", &[]));
    }
}
