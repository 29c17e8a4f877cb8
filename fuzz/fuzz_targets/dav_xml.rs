//! DAV XML as the CardDAV/CalDAV client reads a server's answers: a
//! sync-collection report, a listing, a multiget (the DOCTYPE refusal and
//! every other check are the parser's).
#![no_main]

use libdav::carddav::GetAddressBookResources;
use libdav::dav::{ListResources, SyncCollection};
use libdav::requests::DavRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(response) = http::Response::builder().status(207).body(()) else {
        return;
    };
    let (parts, ()) = response.into_parts();
    let _ = SyncCollection::new("/sales/book/").parse_response(&parts, data);
    let _ = ListResources::new("/sales/book/").parse_response(&parts, data);
    let _ = GetAddressBookResources::new("/sales/book/")
        .with_hrefs(["/sales/book/a.vcf"])
        .parse_response(&parts, data);
});
