//! Loopback ports for servers started by tests.

/// A TCP port on 127.0.0.1 that was free a moment ago (the OS picked it). Another process may
/// take it before the caller binds it; tests that start the real binary retry on that.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral loopback port")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_port_can_be_bound() {
        let port = super::free_port();
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
    }
}
