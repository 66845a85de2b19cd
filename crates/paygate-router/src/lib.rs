#![doc = include_str!("../README.md")]

pub mod failures;
pub mod fulfillment;
pub mod handlers;
pub mod inbox;
mod inbox_job;
mod inbox_sqlite;
pub mod intake;
pub mod lifecycle;
pub mod outbox;
pub mod reconcile;
pub mod worker;

pub use paygate_wire::{envelope, signature};

pub use failures::FailureRecorder;
pub use inbox::{InboxWriter, NewInboxEvent};
pub use intake::IntakeState;

/// Statement shapes (rows per multi-row `INSERT`): a batch is cut into chunks of these sizes
/// (its binary decomposition) so that only a few distinct statements exist, each prepared once
/// per connection and reused. (Every batch size having its own statement filled the statement
/// caches with large prepared statements: memory grew with every run.)
const CHUNKS: [usize; 8] = [128, 64, 32, 16, 8, 4, 2, 1];

/// `rows` cut into chunks of the sizes in [`CHUNKS`] (largest first), one statement each.
pub(crate) fn chunked<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = CHUNKS
            .iter()
            .copied()
            .find(|c| *c <= rest.len())
            .unwrap_or(1);
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        Some(chunk)
    })
}
