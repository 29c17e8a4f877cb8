//! vCard: one card, and a `.vcf` file read a card at a time.
#![no_main]

use kizuna_connectors::vcard::{VcfReader, parse_card};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_card(text);
    }
    for card in VcfReader::new(data).flatten() {
        let _ = card.card;
    }
});
