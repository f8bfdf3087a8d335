//! End-to-end tests of the whole server over real sockets on 127.0.0.1 (one test binary; each test
//! starts its own server on an ephemeral port with its own in-memory storage).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attack_cimd;
mod attack_client_auth_method;
mod attack_consent;
mod attack_expired_token;
mod attack_file_permissions;
mod attack_grants;
mod attack_introspection;
mod attack_ldap_plaintext;
mod attack_rate_limits;
mod attack_redirect;
mod attack_redirect_uris;
mod attack_registration;
mod attack_sign_in;
mod attack_slow_clients;
mod authorize_errors;
mod cimd;
mod cli;
mod client;
mod concurrency;
mod crash;
mod demo_mcp;
mod durable;
mod flow;
mod ldap;
mod mcp;
mod pages;
mod plugins;
mod processes;
mod register;
mod resource;
mod revoke_introspect;
mod support;
mod token_errors;
