//! A fault injector, not a mail server: an upstream that accepts TCP connections and never
//! says a word, to prove the gateway's upstream time limit. Nothing else in the harness stands
//! in for Dovecot.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Fault injector, not a mail server: accepts TCP connections and never sends a byte, like an
/// upstream whose mail service hangs after the kernel accepted the connection.
pub struct SilentUpstream {
    pub port: u16,
    /// Connections accepted so far.
    pub accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentUpstream {
    /// Listens on an ephemeral loopback port.
    pub fn start() -> SilentUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the silent upstream");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("address").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (accepted, stop) = (accepted.clone(), stop.clone());
            thread::spawn(move || {
                let mut held = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((socket, _)) => {
                            held.push(socket);
                            accepted.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(_) => thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        SilentUpstream {
            port,
            accepted,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SilentUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
