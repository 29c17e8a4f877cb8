//! The mail client's contacts export (CSV, UTF-8 or Shift_JIS).
#![no_main]

use kizuna_connectors::contacts_csv::CsvReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rows) = CsvReader::new(std::io::Cursor::new(data.to_vec())) {
        for row in rows {
            let _ = row.contact;
        }
    }
});
