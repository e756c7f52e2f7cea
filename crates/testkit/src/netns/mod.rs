//! A fleet across hosts on one machine: each service in a Linux network namespace of its own
//! ([`hosts`]), started as real processes ([`fleet`]), with faults injected between them and the
//! design's promises checked ([`scenarios`]). Needs root (or CAP_NET_ADMIN), `ip` and `nft`.

pub mod fleet;
pub mod hosts;
pub mod relay;
pub mod scenarios;

pub use fleet::{Fleet, FleetOptions};
pub use scenarios::Report;
