//! Extractors: who is asking (read once per request from the session cookie) and from where
//! (the client address behind trusted proxies).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;

use crate::auth::{CurrentUser, cookie_value};
use crate::i18n::Lang;
use crate::net::client_addr::ClientAddr;
use crate::state::AppState;
use crate::web::error::AppError;

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        <CurrentUser as OptionalFromRequestParts<AppState>>::from_request_parts(parts, state)
            .await?
            .ok_or(AppError::Unauthorized)
    }
}

impl OptionalFromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Option<Self>, Self::Rejection> {
        if let Some(cached) = parts.extensions.get::<CurrentUser>() {
            return Ok(Some(cached.clone()));
        }
        let Some(token) = cookie_value(&parts.headers, state.cookies.session) else {
            return Ok(None);
        };
        // Tokens are 43 characters; anything far longer is not ours and not worth a query.
        if token.len() > 128 {
            return Ok(None);
        }
        let found = state.store.live_session(token, state.config.session_idle()).await?;
        Ok(found.map(|(session, user)| {
            let current = CurrentUser { user, session };
            parts.extensions.insert(current.clone());
            current
        }))
    }
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // The server loop inserts the peer for every connection; a request without it (a
        // router called directly, in a test) counts as coming from nowhere in particular.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
        let ip = state.config.proxy.trusted_proxies.client_ip(peer.ip(), &parts.headers);
        Ok(ClientAddr { ip, peer })
    }
}

/// The page's language: the `lang` cookie (the switch), else `Accept-Language`, else German.
impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Lang::from_headers(&parts.headers))
    }
}
