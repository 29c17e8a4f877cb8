//! E-mail: one message, and an mbox read a message at a time.
#![no_main]

use kizuna_connectors::email::{MboxReader, parse_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_message(data);
    for m in MboxReader::new(data).flatten() {
        let _ = m.message;
    }
});
