//! Test doubles that are real servers, so tests exercise real sockets, TLS and protocols.

pub mod hostile;
pub mod kasm;
pub mod oidc;

pub use hostile::HostileSetup;
pub use kasm::{
    Behaviour, FakeKasm, FakeKasmConfig, Outcome, RecordedRequest, TlsHandshakes, run_fake_kasm_until_signal,
};
pub use oidc::{ClientAuth, Endpoints, Fault, Layout, OidcProvider, ProviderConfig, TestUser, TokenRequest};
