//! A delivery's answer (what storing did, or why it could not), handed back to the thread that
//! waits for it a batch at a time.
//!
//! Each delivery waits for its commit on a oneshot, on its HTTP worker's thread (actix runs a
//! current-thread runtime on each). Completed from another thread (the SQLite writer's sync
//! thread, a PostgreSQL writer task), a oneshot schedules the waiting task from outside its
//! runtime, and tokio then wakes that runtime's driver with a write to its eventfd: one system
//! call per delivery, and a wake-up of the worker's thread whenever it was asleep. At 4 000
//! events/s that was 10 970 `write`s in 3 s on the sync thread alone, and a sixth of a core.
//!
//! So a delivery waiting on a current-thread runtime names that runtime's relay: a task on the
//! same runtime, started by the first delivery there, that receives the answers of a batch for
//! its runtime in one message (one wake from outside) and completes them from inside, where
//! completing a oneshot only queues the waiting task. A delivery from a multi-thread runtime
//! (or none) is answered directly, as before, and so is every delivery of a relay that is gone
//! (its runtime shut down).

use std::cell::RefCell;

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::{mpsc, oneshot};

use sea_orm::DbErr;

/// What storing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    Inserted,
    /// The (company, event id) was already in the inbox.
    Duplicate,
}

/// The inbox could not take the event (the database is unreachable, full, …).
#[derive(Debug, thiserror::Error)]
#[error("the inbox could not store the event")]
pub struct InboxError(#[source] pub Option<DbErr>);

/// What a delivery is told.
pub(crate) type Outcome = Result<InsertOutcome, InboxError>;

type Answer = (oneshot::Sender<Outcome>, Outcome);

/// The relay of one current-thread runtime.
#[derive(Clone)]
struct Relay {
    runtime: tokio::runtime::Id,
    tx: mpsc::UnboundedSender<Vec<Answer>>,
}

thread_local! {
    /// The relay of the runtime this thread last waited on (a thread runs one current-thread
    /// runtime at a time; another runtime on the same thread starts a relay of its own).
    static RELAY: RefCell<Option<Relay>> = const { RefCell::new(None) };
}

impl Relay {
    /// The relay of the current-thread runtime this is called on, started if it has none yet
    /// (or its runtime changed or shut down); `None` on a multi-thread runtime or outside one.
    fn here() -> Option<Self> {
        let handle = Handle::try_current().ok()?;
        if handle.runtime_flavor() != RuntimeFlavor::CurrentThread {
            return None;
        }
        let runtime = handle.id();
        RELAY.with(|relay| {
            let mut relay = relay.borrow_mut();
            if let Some(r) = relay.as_ref()
                && r.runtime == runtime
                && !r.tx.is_closed()
            {
                return Some(r.clone());
            }
            let (tx, mut rx) = mpsc::unbounded_channel::<Vec<Answer>>();
            // On a current-thread runtime, spawned from its own thread: the task runs here,
            // where the deliveries it answers wait.
            handle.spawn(async move {
                while let Some(answers) = rx.recv().await {
                    for (tx, outcome) in answers {
                        let _ = tx.send(outcome);
                    }
                }
            });
            Some(relay.insert(Self { runtime, tx }).clone())
        })
    }
}

/// Where a delivery's answer goes: its oneshot, through its runtime's relay if it has one.
pub(crate) struct Reply {
    tx: oneshot::Sender<Outcome>,
    relay: Option<Relay>,
}

impl Reply {
    /// A reply for a delivery waiting on this thread, and what it waits on.
    pub(crate) fn channel() -> (Self, oneshot::Receiver<Outcome>) {
        let (tx, rx) = oneshot::channel();
        (
            Self {
                tx,
                relay: Relay::here(),
            },
            rx,
        )
    }

    /// Answers this one delivery at once (directly: a relay saves nothing for one).
    pub(crate) fn send(self, outcome: Outcome) {
        let _ = self.tx.send(outcome);
    }
}

/// The answers of a batch, gathered by relay and sent together ([`Self::send`]).
#[derive(Default)]
pub(crate) struct Replies {
    direct: Vec<Answer>,
    /// One entry per relay (a handful: one per HTTP worker).
    relayed: Vec<(Relay, Vec<Answer>)>,
}

impl Replies {
    pub(crate) fn push(&mut self, reply: Reply, outcome: Outcome) {
        let Some(relay) = reply.relay else {
            self.direct.push((reply.tx, outcome));
            return;
        };
        match self
            .relayed
            .iter_mut()
            .find(|(r, _)| r.tx.same_channel(&relay.tx))
        {
            Some((_, answers)) => answers.push((reply.tx, outcome)),
            None => self.relayed.push((relay, vec![(reply.tx, outcome)])),
        }
    }

    /// Answers everyone: one message to each relay, the rest directly.
    pub(crate) fn send(self) {
        for (relay, answers) in self.relayed {
            if let Err(mpsc::error::SendError(answers)) = relay.tx.send(answers) {
                // The relay's runtime shut down: nobody waits there any more, but answering
                // costs nothing.
                for (tx, outcome) in answers {
                    let _ = tx.send(outcome);
                }
            }
        }
        for (tx, outcome) in self.direct {
            let _ = tx.send(outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    fn current_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Deliveries waiting on two current-thread runtimes (two threads) and on a multi-thread
    /// runtime, answered together from another thread: each gets its own answer.
    #[test]
    fn every_delivery_gets_its_own_answer_wherever_it_waits() {
        let (to_answer, answers) = std::sync::mpsc::channel::<(Reply, usize)>();
        let waiting = |rt: tokio::runtime::Runtime, first: usize| {
            let to_answer = to_answer.clone();
            std::thread::spawn(move || {
                rt.block_on(async move {
                    let mut rxs = Vec::new();
                    for i in first..first + 50 {
                        let (reply, rx) = Reply::channel();
                        to_answer.send((reply, i)).unwrap();
                        rxs.push((i, rx));
                    }
                    drop(to_answer);
                    for (i, rx) in rxs {
                        let outcome = rx.await.unwrap();
                        let expected = match i % 2 {
                            0 => InsertOutcome::Inserted,
                            _ => InsertOutcome::Duplicate,
                        };
                        assert_eq!(outcome.unwrap(), expected, "delivery {i}");
                    }
                });
            })
        };
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let threads = [
            waiting(current_thread(), 0),
            waiting(current_thread(), 100),
            waiting(multi, 200),
        ];
        drop(to_answer);
        let mut all: Vec<(Reply, usize)> = answers.iter().collect();
        assert_eq!(all.len(), 150);
        let relayed = all.iter().filter(|(r, _)| r.relay.is_some()).count();
        assert_eq!(
            relayed, 100,
            "the current-thread runtimes' deliveries go by relay"
        );
        all.reverse();
        let mut replies = Replies::default();
        for (reply, i) in all {
            let outcome = match i % 2 {
                0 => InsertOutcome::Inserted,
                _ => InsertOutcome::Duplicate,
            };
            replies.push(reply, Ok(outcome));
        }
        assert_eq!(replies.relayed.len(), 2, "one message per relay");
        replies.send();
        for t in threads {
            t.join().unwrap();
        }
    }

    /// A runtime shut down with its relay: a delivery on the next runtime of the same thread
    /// gets a relay of its own, and answers for the gone one are dropped without harm.
    #[test]
    fn a_new_runtime_on_the_same_thread_starts_its_own_relay() {
        let first = current_thread();
        let (old, old_rx) = first.block_on(async { Reply::channel() });
        drop(first);
        let second = current_thread();
        second.block_on(async move {
            let (reply, rx) = Reply::channel();
            let (a, b) = (old.relay.as_ref().unwrap(), reply.relay.as_ref().unwrap());
            assert_ne!(a.runtime, b.runtime);
            assert!(!a.tx.same_channel(&b.tx));
            let mut replies = Replies::default();
            replies.push(old, Ok(InsertOutcome::Inserted));
            replies.push(reply, Ok(InsertOutcome::Duplicate));
            replies.send();
            assert_eq!(rx.await.unwrap().unwrap(), InsertOutcome::Duplicate);
        });
        // The old delivery's receiver was never dropped: it got its answer directly.
        assert_eq!(
            old_rx.blocking_recv().unwrap().unwrap(),
            InsertOutcome::Inserted
        );
    }
}
