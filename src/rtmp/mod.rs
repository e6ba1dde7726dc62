//! RTMP ingest. Everything but `server` is sans-IO: bytes in, messages and events out.

pub mod amf0;
pub mod authorise;
pub mod caps;
pub mod chunk;
pub mod client;
pub mod deadline;
pub mod handshake;
pub mod ingest;
pub mod message;
pub mod outbox;
pub mod server;
pub mod session;
#[cfg(test)]
mod tests;

pub use session::{ServerSession, SessionConfig, SessionError, SessionEvent};
