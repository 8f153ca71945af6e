//! Fuzzes the MPSC and broadcast layouts: bytes scribbled over a valid object, then
//! validated, described and read as the receivers would.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shmkit::channel::fuzz_multi::check_mpsc_bytes(data);
    shmkit::channel::fuzz_multi::check_broadcast_bytes(data);
});
