//! The write path, which every REST write goes through, over the records it stores and
//! the access checks it asks. Bottom to top: [`change`] (what a write is), [`audit`] (the
//! log of changes, and `/auditlog`), [`persist`] (a project as durable state keeps it),
//! [`ledger`] (where a change is recorded: audit entry and journal line under one mutex),
//! [`registry`] (the API's state, one lock per project), [`commit`] (the one door:
//! role check, mutation, ledger) and [`durable`] (recovery, journaling and compaction).

pub mod audit;
pub mod change;
pub mod commit;
pub mod durable;
pub mod ledger;
pub mod persist;
pub mod registry;
