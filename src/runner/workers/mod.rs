//! The Python and Node SDKs in the loop: `run --sdk python|node` drives the load through
//! worker processes that use the real SDK and AI SDK of that language, over the
//! coordinator–worker protocol of `docs/worker-protocol.md`.
//!
//! [`install`] says where the workers are and installs them; [`process`] is one worker
//! process; [`protocol`] types the messages; [`feed`] makes the requests they pull;
//! [`pool`] drives them through a run; [`merge`] adds what they measured to the run's
//! metrics.

pub mod feed;
pub mod install;
pub mod merge;
pub mod pool;
pub mod process;
pub mod protocol;
