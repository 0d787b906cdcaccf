//! SQLite-only store tests.
