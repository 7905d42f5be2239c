#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hookhost::fuzz::manifest(data));
