//! After login the gateway only copies bytes: no parsing, no literal buffering.

use store::Outcome;
use tokio::io::{AsyncRead, AsyncWrite};

use super::SessionEnd;

/// Per-direction copy buffer. One TLS record's worth keeps throughput at the direct rate.
const SPLICE_BUFFER: usize = 16 * 1024;

/// Copies both ways until each side has closed its half (the other half is shut down as
/// soon as one side finishes).
pub(crate) async fn splice<C, U>(client: &mut C, upstream: &mut U) -> SessionEnd
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::io::copy_bidirectional_with_sizes(client, upstream, SPLICE_BUFFER, SPLICE_BUFFER)
        .await
    {
        Ok(_) => SessionEnd {
            outcome: Outcome::Ok,
            detail: None,
        },
        // A reset after login is how many devices hang up; the session still succeeded.
        Err(e) => SessionEnd::new(Outcome::Ok, format!("connection ended: {e}")),
    }
}
