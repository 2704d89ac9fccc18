//! Access: who is calling and what they may do. The bottom layer of the API, below the
//! write path that asks it: [`auth`] turns the access token into a [`auth::Caller`],
//! [`roles`] gives each token (`--api-token`, `--roles`) its policy, and [`policy`] matches
//! statements against actions and resource specifiers.

pub mod auth;
pub mod policy;
pub mod roles;
