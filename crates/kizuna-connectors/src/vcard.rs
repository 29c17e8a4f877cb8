//! vCard (RFC 6350, and the 2.1/3.0 forms mail clients still export): a
//! card read into the fields of a mail client's contact form, and `.vcf`
//! files read a card at a time, so a file of any size is read in flat
//! memory. Parsing is calcard's; this module only chooses which property is
//! which form field.

use crate::content::{CappedLines, content_hash};
use calcard::vcard::{VCard, VCardEntry, VCardParameterName, VCardProperty, VCardType, VCardValue};
use calcard::{Entry, Parser};
use std::collections::BTreeMap;
use std::io::BufRead;

/// The fields of a mail client's contact form (`spec/mail.md`, MAIL-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContactField {
    FirstName,
    LastName,
    Email,
    JobTitle,
    Company,
    Department,
    BusinessPhone,
    HomePhone,
    OtherPhone,
    BusinessFax,
    MobilePhone,
    AssistantName,
    AssistantPhone,
    ManagerName,
    BusinessStreet,
    BusinessCity,
    BusinessState,
    BusinessPostalCode,
    BusinessCountry,
    OtherStreet,
    OtherCity,
    OtherState,
    OtherPostalCode,
    OtherCountry,
    Notes,
    /// `YYYY-MM-DD`.
    Birthday,
}

/// A contact as the mail side holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    /// The card's `UID`, when it has one.
    pub uid: Option<String>,
    pub fields: BTreeMap<ContactField, String>,
    /// `CATEGORIES` (MAIL-12).
    pub categories: Vec<String>,
    /// A hash of the card's content without the properties that change on
    /// every save (`PRODID`, `REV`): two copies of one card hash the same.
    pub hash: String,
}

impl Contact {
    pub fn get(&self, f: ContactField) -> Option<&str> {
        self.fields.get(&f).map(String::as_str)
    }
}

/// Why a card could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardError(pub String);

/// The most bytes one card may have: a contact with a large photo is a few
/// hundred kilobytes; more than this is not a contact.
pub const MAX_CARD_BYTES: usize = 4 * 1024 * 1024;

/// Reads one vCard (the text of one `BEGIN:VCARD … END:VCARD`).
pub fn parse_card(text: &str) -> Result<Contact, CardError> {
    if text.len() > MAX_CARD_BYTES {
        return Err(CardError(format!(
            "the card is {} bytes; at most {MAX_CARD_BYTES} are read",
            text.len()
        )));
    }
    let mut parser = Parser::new(text);
    let card = match parser.entry() {
        Entry::VCard(card) => card,
        Entry::Eof => return Err(CardError("there is no card".into())),
        Entry::InvalidLine(line) => {
            return Err(CardError(format!(
                "the line \"{}\" is not vCard",
                line.chars().take(80).collect::<String>()
            )));
        }
        Entry::UnterminatedComponent(what) => {
            return Err(CardError(format!("the card ends without END:{what}")));
        }
        Entry::ICalendar(_) => {
            return Err(CardError("this is iCalendar, not a vCard".into()));
        }
        other => return Err(CardError(format!("not a vCard ({other:?})"))),
    };
    Ok(read_card(&card, content_hash(text, &["PRODID", "REV"])))
}

fn text_of(v: &VCardValue) -> Option<String> {
    match v {
        VCardValue::Text(t) => Some(t.clone()),
        VCardValue::Component(parts) => Some(parts.join(",")),
        VCardValue::Integer(i) => Some(i.to_string()),
        VCardValue::Binary(b) => b.to_unwrapped_string().into(),
        _ => None,
    }
}

/// The `n`-th component of a structured value (`N`, `ADR`, `ORG`), trimmed.
fn component(e: &VCardEntry, n: usize) -> Option<String> {
    e.values
        .get(n)
        .and_then(text_of)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The whole value of a simple property, trimmed.
fn whole(e: &VCardEntry) -> Option<String> {
    let parts: Vec<String> = e.values.iter().filter_map(text_of).collect();
    Some(parts.join(",").trim().to_string()).filter(|s| !s.is_empty())
}

/// The `TYPE` parameters of a property, in lower case (`work`, `cell`, …,
/// and the `X-` types clients add).
fn types(e: &VCardEntry) -> Vec<String> {
    let mut out = Vec::new();
    for p in &e.params {
        if p.name != VCardParameterName::Type {
            continue;
        }
        let s = match &p.value {
            calcard::vcard::VCardParameterValue::Type(t) => known_type(t).to_string(),
            calcard::vcard::VCardParameterValue::Text(t) => t.to_ascii_lowercase(),
            _ => continue,
        };
        out.extend(s.split(',').map(|t| t.trim().to_string()));
    }
    out
}

fn known_type(t: &VCardType) -> &'static str {
    match t {
        VCardType::Work => "work",
        VCardType::Home => "home",
        VCardType::Cell => "cell",
        VCardType::Fax => "fax",
        VCardType::Voice => "voice",
        VCardType::Pager => "pager",
        _ => "other",
    }
}

/// The name of an `X-` property, or of any property calcard does not know.
fn other_name(e: &VCardEntry) -> Option<String> {
    match &e.name {
        VCardProperty::Other(n) => Some(n.to_ascii_uppercase()),
        _ => None,
    }
}

/// The form field a telephone number fills, by its types.
fn phone_field(types: &[String]) -> ContactField {
    let has = |t: &str| types.iter().any(|x| x == t);
    if has("x-assistant") || has("assistant") {
        ContactField::AssistantPhone
    } else if has("fax") {
        if has("home") {
            ContactField::OtherPhone
        } else {
            ContactField::BusinessFax
        }
    } else if has("cell") || has("mobile") || has("iphone") {
        ContactField::MobilePhone
    } else if has("home") {
        ContactField::HomePhone
    } else if has("work") || types.is_empty() || types.iter().all(|t| t == "voice" || t == "pref") {
        ContactField::BusinessPhone
    } else {
        ContactField::OtherPhone
    }
}

fn read_card(card: &VCard, hash: String) -> Contact {
    use ContactField as F;
    let mut c = Contact {
        hash,
        ..Contact::default()
    };
    let mut formatted_name = None;
    let set = |c: &mut Contact, f: ContactField, v: Option<String>| {
        if let Some(v) = v {
            c.fields.entry(f).or_insert(v);
        }
    };
    let mut business_address_taken = false;
    for e in &card.entries {
        match &e.name {
            VCardProperty::Uid => c.uid = whole(e),
            VCardProperty::Fn => formatted_name = whole(e),
            VCardProperty::N => {
                set(&mut c, F::LastName, component(e, 0));
                set(&mut c, F::FirstName, component(e, 1));
            }
            VCardProperty::Email => set(&mut c, F::Email, whole(e)),
            VCardProperty::Title => set(&mut c, F::JobTitle, whole(e)),
            VCardProperty::Org => {
                set(&mut c, F::Company, component(e, 0));
                set(&mut c, F::Department, component(e, 1));
            }
            VCardProperty::Tel => {
                let field = phone_field(&types(e));
                set(&mut c, field, whole(e));
            }
            VCardProperty::Adr => {
                let t = types(e);
                // The first work address (or the first address of a card
                // that types none) is the business address; any other is
                // the "other" address.
                let business = !business_address_taken
                    && (t.iter().any(|x| x == "work") || !t.iter().any(|x| x == "home"));
                let parts = if business {
                    business_address_taken = true;
                    [
                        F::BusinessStreet,
                        F::BusinessCity,
                        F::BusinessState,
                        F::BusinessPostalCode,
                        F::BusinessCountry,
                    ]
                } else {
                    [
                        F::OtherStreet,
                        F::OtherCity,
                        F::OtherState,
                        F::OtherPostalCode,
                        F::OtherCountry,
                    ]
                };
                for (i, f) in parts.into_iter().enumerate() {
                    set(&mut c, f, component(e, i + 2));
                }
            }
            VCardProperty::Note => set(&mut c, F::Notes, whole(e)),
            VCardProperty::Bday => set(&mut c, F::Birthday, birthday(e)),
            VCardProperty::Categories => {
                for v in &e.values {
                    let parts: Vec<String> = match v {
                        VCardValue::Component(p) => p.clone(),
                        other => text_of(other).into_iter().collect(),
                    };
                    for p in parts {
                        for one in p.split(',') {
                            let one = one.trim();
                            if !one.is_empty() {
                                c.categories.push(one.to_string());
                            }
                        }
                    }
                }
            }
            _ => match other_name(e).as_deref() {
                Some("X-ASSISTANT" | "X-MS-ASSISTANT" | "X-EVOLUTION-ASSISTANT") => {
                    set(&mut c, F::AssistantName, whole(e))
                }
                Some("X-MANAGER" | "X-MS-MANAGER" | "X-EVOLUTION-MANAGER") => {
                    set(&mut c, F::ManagerName, whole(e))
                }
                _ => {}
            },
        }
    }
    // A card with no structured name still has a formatted one (required
    // since vCard 3.0): it stands for the last name.
    if !c.fields.contains_key(&F::LastName)
        && !c.fields.contains_key(&F::FirstName)
        && let Some(n) = formatted_name
    {
        c.fields.insert(F::LastName, n);
    }
    c
}

/// A birthday as `YYYY-MM-DD`, when the card gives a whole date.
fn birthday(e: &VCardEntry) -> Option<String> {
    for v in &e.values {
        match v {
            VCardValue::PartialDateTime(d) => {
                if let (Some(y), Some(m), Some(day)) = (d.year, d.month, d.day) {
                    return Some(format!("{y:04}-{m:02}-{day:02}"));
                }
            }
            VCardValue::Text(t) => {
                let digits: String = t.chars().filter(char::is_ascii_digit).collect();
                if digits.len() == 8 {
                    return Some(format!(
                        "{}-{}-{}",
                        &digits[0..4],
                        &digits[4..6],
                        &digits[6..8]
                    ));
                }
            }
            _ => {}
        }
    }
    None
}

/// One card of a `.vcf` file: its text and the line it starts on, or why it
/// could not be read.
#[derive(Debug)]
pub struct FileCard {
    pub line: u64,
    pub card: Result<Contact, CardError>,
}

/// Reads a `.vcf` file a card at a time: memory stays at one card whatever
/// the file's size. Text outside `BEGIN:VCARD … END:VCARD` is ignored; a
/// card that does not parse, or is larger than `MAX_CARD_BYTES`, is returned
/// as an error and the next card is read.
pub struct VcfReader<R> {
    lines: CappedLines<R>,
}

impl<R: BufRead> VcfReader<R> {
    pub fn new(input: R) -> Self {
        VcfReader {
            lines: CappedLines::new(input, MAX_CARD_BYTES),
        }
    }

    /// Bytes read so far (for a progress bar).
    pub fn position(&self) -> u64 {
        self.lines.position()
    }
}

impl<R: BufRead> Iterator for VcfReader<R> {
    type Item = std::io::Result<FileCard>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut card = String::new();
        let mut start = 0;
        let mut depth = 0usize;
        let mut oversized = false;
        loop {
            let line = match self.lines.next_line() {
                Ok(Some(l)) => l,
                Ok(None) if depth == 0 => return None,
                Ok(None) => {
                    return Some(Ok(FileCard {
                        line: start,
                        card: Err(CardError("the file ends inside a card".into())),
                    }));
                }
                Err(e) => return Some(Err(e)),
            };
            let upper = line.text.trim_end().to_ascii_uppercase();
            let upper = upper.trim_start_matches('\u{feff}');
            if upper == "BEGIN:VCARD" {
                if depth == 0 {
                    start = line.number;
                    card.clear();
                    oversized = false;
                }
                depth += 1;
            }
            if depth == 0 {
                continue;
            }
            oversized |= line.cut;
            if !oversized && card.len() + line.text.len() <= MAX_CARD_BYTES {
                card.push_str(&line.text);
                card.push('\n');
            } else {
                oversized = true;
            }
            if upper == "END:VCARD" {
                depth -= 1;
                if depth == 0 {
                    let parsed = if oversized {
                        Err(CardError(format!(
                            "the card is larger than {MAX_CARD_BYTES} bytes"
                        )))
                    } else {
                        parse_card(&card)
                    };
                    return Some(Ok(FileCard {
                        line: start,
                        card: parsed,
                    }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ContactField as F;

    const CARD: &str = "BEGIN:VCARD\r\nVERSION:3.0\r\nPRODID:-//Mail//EN\r\nUID:abc-1\r\n\
        N:Yamada;Taro;;;\r\nFN:Taro Yamada\r\nEMAIL;TYPE=INTERNET,WORK:taro@example.jp\r\n\
        TITLE:Sales lead\r\nORG:Kizuna KK;Sales\r\nTEL;TYPE=WORK,VOICE:03-1234-5678\r\n\
        TEL;TYPE=HOME:03-0000-0000\r\nTEL;TYPE=CELL:090-1111-2222\r\nTEL;TYPE=WORK,FAX:03-9999-9999\r\n\
        ADR;TYPE=WORK:;;1-2-3 Marunouchi;Chiyoda;Tokyo;100-0005;Japan\r\n\
        ADR;TYPE=HOME:;;9 Home St;Yokohama;Kanagawa;220-0001;Japan\r\n\
        NOTE:Met at the fair\r\nBDAY:1980-04-01\r\nCATEGORIES:CRM,Friends\r\n\
        X-MS-ASSISTANT:Hanako\r\nX-MS-MANAGER:Boss\r\nREV:2026-01-01T00:00:00Z\r\nEND:VCARD\r\n";

    #[test]
    fn mail_2_a_card_fills_the_contact_form() {
        let c = parse_card(CARD).expect("a card");
        assert_eq!(c.uid.as_deref(), Some("abc-1"));
        let want = [
            (F::LastName, "Yamada"),
            (F::FirstName, "Taro"),
            (F::Email, "taro@example.jp"),
            (F::JobTitle, "Sales lead"),
            (F::Company, "Kizuna KK"),
            (F::Department, "Sales"),
            (F::BusinessPhone, "03-1234-5678"),
            (F::HomePhone, "03-0000-0000"),
            (F::MobilePhone, "090-1111-2222"),
            (F::BusinessFax, "03-9999-9999"),
            (F::BusinessStreet, "1-2-3 Marunouchi"),
            (F::BusinessCity, "Chiyoda"),
            (F::BusinessState, "Tokyo"),
            (F::BusinessPostalCode, "100-0005"),
            (F::BusinessCountry, "Japan"),
            (F::OtherStreet, "9 Home St"),
            (F::OtherCity, "Yokohama"),
            (F::Notes, "Met at the fair"),
            (F::Birthday, "1980-04-01"),
            (F::AssistantName, "Hanako"),
            (F::ManagerName, "Boss"),
        ];
        for (f, v) in want {
            assert_eq!(c.get(f), Some(v), "{f:?}");
        }
        assert_eq!(c.categories, ["CRM", "Friends"]);
    }

    #[test]
    fn the_hash_ignores_prodid_and_rev_but_not_content() {
        let a = parse_card(CARD).expect("a card");
        let b = parse_card(
            &CARD
                .replace("PRODID:-//Mail//EN", "PRODID:-//Other//EN")
                .replace("REV:2026-01-01T00:00:00Z", "REV:2026-02-02T00:00:00Z"),
        )
        .expect("a card");
        assert_eq!(a.hash, b.hash);
        let c = parse_card(&CARD.replace("Sales lead", "Director")).expect("a card");
        assert_ne!(a.hash, c.hash);
    }

    #[test]
    fn a_card_without_n_takes_its_formatted_name_as_last_name() {
        let c =
            parse_card("BEGIN:VCARD\nVERSION:4.0\nFN:株式会社 絆\nEND:VCARD\n").expect("a card");
        assert_eq!(c.get(F::LastName), Some("株式会社 絆"));
        assert_eq!(c.get(F::FirstName), None);
    }

    #[test]
    fn a_file_is_read_a_card_at_a_time_and_a_bad_card_does_not_stop_the_rest() {
        let file = format!(
            "{CARD}garbage between cards\nBEGIN:VCARD\nVERSION:4.0\nN:Two;Card\nEND:VCARD\n\
             BEGIN:VCARD\nVERSION:4.0\nN:Three;Card\nEND:VCARD\nBEGIN:VCARD\nVERSION:4.0\nN:Cut"
        );
        let cards: Vec<FileCard> = VcfReader::new(file.as_bytes())
            .collect::<std::io::Result<_>>()
            .expect("read");
        assert_eq!(cards.len(), 4);
        assert_eq!(cards[0].line, 1);
        assert_eq!(
            cards[1].card.as_ref().expect("two").get(F::LastName),
            Some("Two")
        );
        assert_eq!(
            cards[2].card.as_ref().expect("three").get(F::FirstName),
            Some("Card")
        );
        assert!(cards[3].card.is_err());
    }

    #[test]
    fn an_oversized_card_is_refused_alone() {
        let big = "x".repeat(MAX_CARD_BYTES + 10);
        let file = format!(
            "BEGIN:VCARD\nVERSION:4.0\nN:Big\nNOTE:{big}\nEND:VCARD\nBEGIN:VCARD\nVERSION:4.0\nN:Small\nEND:VCARD\n"
        );
        let cards: Vec<FileCard> = VcfReader::new(file.as_bytes())
            .collect::<std::io::Result<_>>()
            .expect("read");
        assert_eq!(cards.len(), 2);
        assert!(
            cards[0]
                .card
                .as_ref()
                .is_err_and(|e| e.0.contains("larger"))
        );
        assert_eq!(
            cards[1].card.as_ref().expect("small").get(F::LastName),
            Some("Small")
        );
    }
}
