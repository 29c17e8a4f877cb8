//! iCalendar: a calendar object or an `.ics` file, with its time zones.
#![no_main]

use kizuna_connectors::ical::parse_calendar;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_calendar(text);
    }
});
