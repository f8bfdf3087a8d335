//! User authentication built into the server: the `local` authenticator (argon2id passwords in the
//! storage backend's `UserStore`) and the password hashing it uses.

pub mod local;
pub mod password;
pub mod seed;
