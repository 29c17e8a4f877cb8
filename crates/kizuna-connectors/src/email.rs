//! E-mail messages (RFC 5322, MIME) as the CRM keeps them: who wrote to
//! whom, when, about what, and the text. Parsing is mail-parser's; this
//! module caps what a hostile message may cost and picks the readable body.
//! mbox files are read a message at a time.

use mail_parser::{Address, MessageParser};
use std::io::BufRead;

/// The most bytes one message may have (attachments included).
pub const MAX_MESSAGE_BYTES: usize = 25 * 1024 * 1024;
/// The most MIME parts one message may have. mail-parser walks multipart
/// nesting with a stack of its own and decodes nested messages three levels
/// deep at most, so depth costs no recursion; the part count is what grows.
pub const MAX_PARTS: usize = 1000;

/// A message in CRM terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// `Message-ID`, without its angle brackets.
    pub message_id: Option<String>,
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub subject: Option<String>,
    /// UTC milliseconds, from `Date`.
    pub date: Option<i64>,
    /// The text of the message: its text part, else its HTML as text.
    pub body: String,
}

/// An address and the name that goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub address: String,
    pub name: Option<String>,
}

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageError(pub String);

fn mailboxes(a: Option<&Address<'_>>) -> Vec<Mailbox> {
    a.map(|a| {
        a.iter()
            .filter_map(|m| {
                Some(Mailbox {
                    address: m.address()?.trim().to_string(),
                    name: m
                        .name()
                        .map(|n| n.trim().to_string())
                        .filter(|n| !n.is_empty()),
                })
            })
            .filter(|m| !m.address.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

/// Reads one message.
pub fn parse_message(raw: &[u8]) -> Result<Email, MessageError> {
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(MessageError(format!(
            "the message is {} bytes; at most {MAX_MESSAGE_BYTES} are read",
            raw.len()
        )));
    }
    let m = MessageParser::default()
        .parse(raw)
        .ok_or_else(|| MessageError("it is not an e-mail message".into()))?;
    if m.parts.len() > MAX_PARTS {
        return Err(MessageError(format!(
            "the message has {} MIME parts; at most {MAX_PARTS} are read",
            m.parts.len()
        )));
    }
    if m.from().is_none() && m.subject().is_none() && m.message_id().is_none() {
        return Err(MessageError(
            "it has no From, Subject or Message-ID header".into(),
        ));
    }
    let body = m
        .body_text(0)
        .map(|t| t.into_owned())
        .unwrap_or_default()
        .trim()
        .to_string();
    Ok(Email {
        message_id: m
            .message_id()
            .map(|id| id.trim_matches(['<', '>', ' ']).to_string()),
        from: mailboxes(m.from()).into_iter().next(),
        to: mailboxes(m.to()),
        cc: mailboxes(m.cc()),
        subject: m.subject().map(|s| s.trim().to_string()),
        date: m.date().map(|d| d.to_timestamp() * 1000),
        body,
    })
}

/// One message of an mbox file, by its place in the file (from 1).
#[derive(Debug)]
pub struct MboxMessage {
    pub number: u64,
    pub message: Result<Email, MessageError>,
    /// Its raw bytes' length (for progress).
    pub bytes: u64,
}

/// Reads an mbox file a message at a time.
pub struct MboxReader<R> {
    inner: mail_parser::mailbox::mbox::MessageIterator<R>,
    number: u64,
}

impl<R: BufRead> MboxReader<R> {
    pub fn new(input: R) -> Self {
        MboxReader {
            inner: mail_parser::mailbox::mbox::MessageIterator::new(input),
            number: 0,
        }
    }
}

impl<R: BufRead> Iterator for MboxReader<R> {
    type Item = std::io::Result<MboxMessage>;

    fn next(&mut self) -> Option<Self::Item> {
        let m = match self.inner.next()? {
            Ok(m) => m,
            Err(e) => return Some(Err(e)),
        };
        self.number += 1;
        let contents = m.contents();
        Some(Ok(MboxMessage {
            number: self.number,
            bytes: contents.len() as u64,
            message: parse_message(contents),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL: &str = "From: =?UTF-8?B?5bGx55Sw5aSq6YOO?= <Taro@Example.jp>\r\n\
        To: Sales <sales@kizuna.example>, hanako@example.jp\r\nCc: boss@kizuna.example\r\n\
        Subject: =?UTF-8?B?6KaL56mN44KC44KK44Gu5L6d6aC8?=\r\nDate: Wed, 01 Apr 2026 10:00:00 +0900\r\n\
        Message-ID: <abc-123@example.jp>\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\r\nお見積もりをお願いします。\r\n--b\r\n\
        Content-Type: text/html; charset=utf-8\r\n\r\n<p>お見積もりをお願いします。</p>\r\n--b--\r\n";

    #[test]
    fn a_message_gives_its_people_subject_date_and_text() {
        let e = parse_message(MAIL.as_bytes()).expect("a message");
        assert_eq!(e.message_id.as_deref(), Some("abc-123@example.jp"));
        let from = e.from.expect("a sender");
        assert_eq!(from.address, "Taro@Example.jp");
        assert_eq!(from.name.as_deref(), Some("山田太郎"));
        assert_eq!(e.to.len(), 2);
        assert_eq!(e.cc[0].address, "boss@kizuna.example");
        assert_eq!(e.subject.as_deref(), Some("見積もりの依頼"));
        assert_eq!(e.date, Some(1_775_005_200_000));
        assert_eq!(e.body, "お見積もりをお願いします。");
    }

    #[test]
    fn too_many_parts_or_no_message_at_all_is_refused() {
        let mut many = String::from(
            "From: a@example.jp\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n",
        );
        for _ in 0..=MAX_PARTS {
            many.push_str("--z\r\nContent-Type: text/plain\r\n\r\nx\r\n");
        }
        many.push_str("--z--\r\n");
        let e = parse_message(many.as_bytes()).expect_err("refused");
        assert!(e.0.contains("MIME parts"), "{e:?}");
        assert!(parse_message(b"just some text\r\n").is_err());
    }

    #[test]
    fn an_mbox_is_read_a_message_at_a_time() {
        let mbox = format!(
            "From a@example.jp Wed Apr  1 10:00:00 2026\r\n{MAIL}\r\nFrom b@example.jp Wed Apr  1 11:00:00 2026\r\n\
             From: b@example.jp\r\nSubject: second\r\n\r\nhello\r\n"
        );
        let all: Vec<MboxMessage> = MboxReader::new(mbox.as_bytes())
            .collect::<std::io::Result<_>>()
            .expect("read");
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[1].message.as_ref().expect("second").subject.as_deref(),
            Some("second")
        );
    }
}
