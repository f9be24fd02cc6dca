//! Emulators of the outside world acd-bridge talks to, as real HTTP servers for local runs, the
//! demo and the tests:
//! - [`wfm`]: `acd-bridge wfm-sim`, the WFM API that `consume` delivers to, strict and with
//!   fault injection.
//! - [`livevox`]: `acd-bridge livevox-sim`, LiveVox's session and agent event feed API that the
//!   LiveVox connector of `produce` reads, with sessions that expire, fault injection and the
//!   ground truth of what it served.

pub mod cms;
pub mod livevox;
pub mod wfm;
