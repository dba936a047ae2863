//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the folders at compile
//! time, and on stable Rust cargo only notices edits to files it already embedded.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
