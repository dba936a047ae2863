//! `GET /files/my-data.zip`: everything of the signed-in user's as one zip ("my data"): her
//! home, and for a student each hand-in (as her teacher sees it) and the feedback on it, in
//! the folders her desktop shows them in (`Abgaben/<title>`, `Rückmeldungen/<title>`).

use axum::extract::State;
use axum::response::Response;
use portal_store::Role;

use crate::auth::CurrentUser;
use crate::domain::files::{SpaceKind, zip_spaces};
use crate::domain::handins::folder_name;
use crate::domain::unix_now;
use crate::state::AppState;
use crate::web::error::AppError;
use crate::web::files::zip_stream;

/// `GET /files/my-data.zip`.
pub(crate) async fn download(State(state): State<AppState>, user: CurrentUser) -> Result<Response, AppError> {
    let mut parts = vec![(state.files.open(&user.user, SpaceKind::Home).await?, "home".to_owned())];
    if user.user.role == Role::Student {
        let mut taken = std::collections::HashSet::new();
        for a in state.store.assignments_for_groups(&user.user.groups).await? {
            // Sealed first when due: the copy is what counts.
            let a = state.handins.sealed_if_due(a).await?;
            let name = folder_name(&a, &mut taken);
            parts.push((
                state.files.open_handin(&user.user, &a, unix_now()).await?,
                format!("Abgaben/{name}"),
            ));
            parts.push((
                state.files.open_feedback(&user.user, &a).await?,
                format!("Rückmeldungen/{name}"),
            ));
        }
    }
    let name = format!("{}-data", user.user.username);
    Ok(zip_stream(&name, move |writer| async move {
        zip_spaces(parts, writer).await.map(drop)
    }))
}
