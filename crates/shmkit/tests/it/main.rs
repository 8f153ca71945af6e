//! The one integration-test binary. Modules mirror `src/`; `support` holds what every
//! module needs: unique object names, child processes, C peers, deadlines.
#![allow(unsafe_code, clippy::disallowed_methods, missing_docs)]

mod channel;
mod channel_multi;
mod channel_sysv;
mod inspect;
mod posix;
mod rpc;
mod shared_cpu;
mod support;
mod sync;
mod sysv;
