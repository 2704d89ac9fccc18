//! One module per LaunchDarkly resource: its routes, request bodies and JSON answers. The
//! top layer under the router: each handler locks what it changes, describes the write
//! and runs it through the write path below; what it stores is typed in `records/`.
//! [`ai_flag`] (an AI Config as the flag SDKs evaluate) is shared by the AI Config
//! modules, environments and model configs.

pub mod ai_configs;
pub mod ai_flag;
pub mod environments;
pub mod flag_status;
pub mod flags;
pub mod model_configs;
pub mod projects;
pub mod seeded;
pub mod segments;
pub mod targeting;
pub mod variations;
