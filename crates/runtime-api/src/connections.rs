//! How many Runtime API connections an environment may hold at once. Each is a descriptor of
//! Kindling's own process (the functions' own limits do not bound the sum), and Kindling sizes
//! how many environments it runs from its open-file limit at a few descriptors each. So an
//! environment holds at most [`GUARANTEED`] connections of its own (a runtime keeps one, an
//! extension one or two), and more only from a [`ConnectionBudget`] shared by every
//! environment of the process, sized by the server from what its open-file limit leaves;
//! never more than [`MAX_CONNECTIONS`]. A connection refused is closed at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Connections an environment may hold at once, however large the shared budget.
pub const MAX_CONNECTIONS: usize = 64;
/// Connections an environment always may hold, whatever the others take of the shared
/// budget (within the descriptors Kindling counts per environment).
pub const GUARANTEED: usize = 4;

/// The connections beyond [`GUARANTEED`] that the environments of a process hold together.
#[derive(Debug)]
pub struct ConnectionBudget {
    capacity: usize,
    used: AtomicUsize,
}

impl ConnectionBudget {
    /// [`GUARANTEED`], for users of the budget that do not name this crate.
    pub const GUARANTEED: usize = GUARANTEED;
    /// [`MAX_CONNECTIONS`], likewise.
    pub const MAX_PER_ENVIRONMENT: usize = MAX_CONNECTIONS;

    /// A budget of `capacity` connections beyond the guaranteed ones, for all environments.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            used: AtomicUsize::new(0),
        }
    }

    /// No shared bound: each environment holds up to [`MAX_CONNECTIONS`].
    pub fn unlimited() -> Self {
        Self::new(usize::MAX)
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Connections beyond the guaranteed ones held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    fn take(&self) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .is_ok()
    }

    fn give_back(&self) {
        self.used.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Default for ConnectionBudget {
    fn default() -> Self {
        Self::unlimited()
    }
}

/// One environment's connections: its guaranteed places and what it holds of the budget.
#[derive(Debug)]
pub(crate) struct Places {
    budget: Arc<ConnectionBudget>,
    /// Connections held (all kinds).
    held: AtomicUsize,
    /// Of which guaranteed ones.
    own: AtomicUsize,
}

/// A connection's place, given back when dropped.
#[derive(Debug)]
pub(crate) struct Place {
    places: Arc<Places>,
    shared: bool,
}

impl Places {
    pub(crate) fn new(budget: Arc<ConnectionBudget>) -> Arc<Self> {
        Arc::new(Self {
            budget,
            held: AtomicUsize::new(0),
            own: AtomicUsize::new(0),
        })
    }

    /// A place for one more connection: a guaranteed one while there is one, else one of the
    /// shared budget; `None` at [`MAX_CONNECTIONS`] or when the budget is spent.
    pub(crate) fn take(self: &Arc<Self>) -> Option<Place> {
        let under_cap = |n: usize| (n < MAX_CONNECTIONS).then_some(n + 1);
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, under_cap)
            .ok()?;
        let own = self
            .own
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < GUARANTEED).then_some(n + 1)
            })
            .is_ok();
        if !own && !self.budget.take() {
            self.held.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Place {
            places: Arc::clone(self),
            shared: !own,
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if self.shared {
            self.places.budget.give_back();
        } else {
            self.places.own.fetch_sub(1, Ordering::AcqRel);
        }
        self.places.held.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_environment_keeps_its_guaranteed_places_and_shares_the_rest() {
        let budget = Arc::new(ConnectionBudget::new(10));
        let (a, b) = (
            Places::new(Arc::clone(&budget)),
            Places::new(Arc::clone(&budget)),
        );
        // A takes its own places and the whole budget.
        let held_a: Vec<Place> = std::iter::from_fn(|| a.take()).take(100).collect();
        assert_eq!(held_a.len(), GUARANTEED + 10);
        assert_eq!(budget.used(), 10);
        // B still has its guaranteed places, and no more.
        let held_b: Vec<Place> = std::iter::from_fn(|| b.take()).take(100).collect();
        assert_eq!(held_b.len(), GUARANTEED);
        assert!(b.take().is_none());
        // A place of the budget given back goes to whoever asks next.
        drop(held_a);
        assert_eq!(budget.used(), 0);
        let more_b: Vec<Place> = std::iter::from_fn(|| b.take()).take(100).collect();
        assert_eq!(more_b.len(), 10);
        // A guaranteed place given back is the environment's again, not the budget's.
        let mut held_b = held_b;
        held_b.pop();
        assert!(b.take().is_some_and(|p| !p.shared));
        assert_eq!(budget.used(), 10);
    }

    #[test]
    fn no_environment_holds_more_than_the_cap() {
        let budget = Arc::new(ConnectionBudget::unlimited());
        let a = Places::new(Arc::clone(&budget));
        let held: Vec<Place> = std::iter::from_fn(|| a.take()).take(1000).collect();
        assert_eq!(held.len(), MAX_CONNECTIONS);
        assert_eq!(budget.used(), MAX_CONNECTIONS - GUARANTEED);
        drop(held);
        assert_eq!(budget.used(), 0);
        assert_eq!(a.held.load(Ordering::Acquire), 0);
        // A budget smaller than the guaranteed places: those still hold.
        let none = Places::new(Arc::new(ConnectionBudget::new(0)));
        let held: Vec<Place> = std::iter::from_fn(|| none.take()).take(100).collect();
        assert_eq!(held.len(), GUARANTEED);
    }
}
