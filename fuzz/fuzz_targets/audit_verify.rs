#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| warden_fuzz::audit::audit_verify(data));
