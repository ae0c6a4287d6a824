//! Placeholder until the auth crate lands.
