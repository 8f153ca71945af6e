//! Any bytes as a request-reply channel object: validation, description and decoding
//! the slot as client and server must never panic or hang. The body is
//! `shmkit::channel::fuzz_rpc::check_bytes`, which a normal test also runs on seed
//! inputs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shmkit::channel::fuzz_rpc::check_bytes(data);
});
