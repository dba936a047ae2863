//! End-to-end tests: the real portal on a random port, real fake-Kasm desktops over HTTPS,
//! real HTTP and WebSocket clients. One test binary, modules by feature.

#![allow(clippy::unwrap_used, unreachable_pub)]

mod a11y;
mod abuse;
mod admin_pages;
mod browser;
mod browser_admin;
mod browser_real;
mod class_actions;
mod cli;
mod container_image;
mod containment;
mod csrf;
mod desktop_origins;
mod docker;
mod docker_admin;
mod docker_pull;
mod fair_starts;
mod files;
mod files_browser;
mod handins;
mod help;
mod helpers;
mod homes_in_desktops;
mod hostile_desktop;
mod identities;
mod import_flask;
mod login;
mod metrics;
mod oidc;
mod openapi;
mod proxy_http;
mod proxy_ws;
mod replicas;
mod reverse_proxy;
mod screens;
mod sessions;
mod teacher_lesson;
mod ui_assets;
mod ui_browser;
mod ui_class;
mod ui_events;
mod ui_headers;
mod ui_language;
mod ui_teacher;
