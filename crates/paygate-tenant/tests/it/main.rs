//! Integration tests of tenant configuration, through the real app over HTTP on port 0 (the test kit), on
//! SQLite and PostgreSQL.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod sealing;
mod tenant;
