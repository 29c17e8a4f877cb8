//! Kizuna's outside world: the protocols it speaks to servers a business
//! already runs. Each connector turns the peer's failures into words a person
//! can act on; none of them knows the store.

pub mod contacts_csv;
pub mod content;
pub mod dav;
pub mod email;
pub mod ical;
pub mod imap;
pub mod net;
pub mod smtp;
pub mod vcard;
