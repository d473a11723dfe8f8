//! The store's operations, written once over [`crate::sql::Conn`]: writes as methods of the writer's
//! context, reads as functions of a connection.

pub mod audit;
pub mod bindings;
pub mod checklog;
pub mod events;
pub mod holder;
pub mod jobs;
pub mod kyc;
pub mod participants;
pub mod webhooks;
