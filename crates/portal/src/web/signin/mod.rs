//! Signing in and out: the local form ([`local`]) and IServ's OpenID Connect ([`iserv`]).

pub mod iserv;
pub mod local;
