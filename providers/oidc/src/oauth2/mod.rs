//! Plain OAuth 2 upstreams with a userinfo API (RFC 6749 §4.1 with PKCE, RFC 7636): `[upstreams.<name>]
//! kind = "oauth2"` for any such provider, `kind = "github"` for GitHub with its org/team
//! allow-list.
//!
//! - [`settings`]: the table, its defaults (GitHub's), its checks; the client secret.
//! - [`upstream`]: the flow (authorization URL, code redemption, userinfo).
//! - [`userinfo`]: the userinfo answer → the user (JSON paths, allow-lists, groups → scopes).
//! - [`github`]: the user's GitHub orgs and teams.
//! - [`factory`]: `OAuth2UpstreamFactory` (`oauth2`) and `GitHubUpstreamFactory` (`github`).

pub mod factory;
pub mod github;
pub mod settings;
pub mod upstream;
pub mod userinfo;

pub use factory::{GitHubUpstreamFactory, OAuth2UpstreamFactory};
pub use upstream::OAuth2Upstream;
