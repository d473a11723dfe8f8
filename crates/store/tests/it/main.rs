//! The store conformance suite: every test runs on SQLite and on PostgreSQL, each in a fresh database.

mod conformance;
mod index;
