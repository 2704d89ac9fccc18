//! What the API keeps of each resource, one module per resource: the types the registry
//! holds and durable state writes, below the write path that stores them and the resource
//! handlers that change them; and each resource's answer (`…Rep`), typed once with every
//! field LaunchDarkly's OpenAPI document requires. They import nothing of the layers above.

pub mod ai_config;
pub mod clause;
pub mod environment;
pub mod flag;
pub mod model_config;
pub mod project;
pub mod segment;
pub mod targeting;
pub mod variation;
