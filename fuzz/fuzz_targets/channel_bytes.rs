//! Any bytes as a channel object: validation, description, receiving and sending must
//! never panic, hang or misbehave. The body is `shmkit::channel::fuzz::check_bytes`,
//! which a normal test also runs on seed inputs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shmkit::channel::fuzz::check_bytes(data);
});
