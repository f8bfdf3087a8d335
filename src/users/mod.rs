//! User authentication built into the server: the `local` authenticator (argon2id passwords in the
//! storage backend's `UserStore`), the password hashing it uses, and the rules for new accounts.

pub mod local;
pub mod password;
pub mod rules;
pub mod seed;
pub mod upstreams;
