//! What the text formats of the mail side (vCard, iCalendar) share: reading
//! a file a line at a time with a cap on what one line may hold, and a hash
//! of an item's content that ignores the properties a client rewrites on
//! every save.

use blake2::{Blake2b, Digest, digest::consts::U16};
use std::io::BufRead;

/// A hash of a vCard or iCalendar item's content lines, without the
/// properties named in `ignore` (`PRODID`, `DTSTAMP`, `LAST-MODIFIED`, `REV`):
/// line endings and folding do not count, so two copies of one item saved by
/// different clients hash the same, and a real edit changes the hash.
pub fn content_hash(text: &str, ignore: &[&str]) -> String {
    let mut hasher = Blake2b::<U16>::new();
    let mut line = String::new();
    let mut flush = |line: &mut String| {
        if !line.is_empty() {
            let name_end = line.find([':', ';']).unwrap_or(line.len());
            let name = line[..name_end].rsplit('.').next().unwrap_or_default();
            if !ignore.iter().any(|i| name.eq_ignore_ascii_case(i)) {
                hasher.update(line.as_bytes());
                hasher.update(b"\n");
            }
            line.clear();
        }
    };
    for raw in text.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(rest) = raw.strip_prefix([' ', '\t']) {
            line.push_str(rest);
        } else {
            flush(&mut line);
            line.push_str(raw);
        }
    }
    flush(&mut line);
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A line of a file, with its number (from 1) and whether it was longer
/// than the cap (then only the cap's worth of it is kept).
#[derive(Debug)]
pub struct Line {
    pub number: u64,
    pub text: String,
    pub cut: bool,
}

/// Lines of a reader, each at most `cap` bytes kept: a hostile file with a
/// line of a gigabyte costs `cap` of memory, not the line. Invalid UTF-8 is
/// replaced, not fatal.
pub struct CappedLines<R> {
    input: R,
    cap: usize,
    number: u64,
    position: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> CappedLines<R> {
    pub fn new(input: R, cap: usize) -> Self {
        CappedLines {
            input,
            cap,
            number: 0,
            position: 0,
            buf: Vec::new(),
        }
    }

    /// Bytes read so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    pub fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        self.buf.clear();
        let mut cut = false;
        let mut any = false;
        loop {
            let chunk = self.input.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            any = true;
            let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            let room = self.cap.saturating_sub(self.buf.len());
            let keep = take.min(room);
            cut |= keep < take && !(done && keep + 1 == take);
            self.buf.extend_from_slice(&chunk[..keep]);
            self.input.consume(take);
            self.position += take as u64;
            if done {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        self.number += 1;
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        Ok(Some(Line {
            number: self.number,
            text: String::from_utf8_lossy(&self.buf).into_owned(),
            cut,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_and_line_endings_do_not_change_the_hash() {
        let a = content_hash("BEGIN:VCARD\r\nNOTE:one two\r\nEND:VCARD\r\n", &[]);
        let b = content_hash("BEGIN:VCARD\nNOTE:one\n  two\nEND:VCARD\n", &[]);
        assert_eq!(a, b);
        assert_ne!(
            a,
            content_hash("BEGIN:VCARD\nNOTE:one three\nEND:VCARD\n", &[])
        );
    }

    #[test]
    fn ignored_properties_do_not_count_whatever_their_parameters_or_group() {
        let a = content_hash(
            "BEGIN:VEVENT\nSUMMARY:x\nDTSTAMP:20260101T000000Z\nEND:VEVENT",
            &["DTSTAMP", "LAST-MODIFIED"],
        );
        let b = content_hash(
            "BEGIN:VEVENT\nSUMMARY:x\nDTSTAMP;X=1:20270101T000000Z\nLAST-MODIFIED:20270101T000000Z\nEND:VEVENT",
            &["DTSTAMP", "LAST-MODIFIED"],
        );
        assert_eq!(a, b);
    }

    #[test]
    fn a_line_longer_than_the_cap_is_cut_and_says_so() {
        let text = format!("short\n{}\nafter\n", "y".repeat(100));
        let mut lines = CappedLines::new(text.as_bytes(), 10);
        let first = lines.next_line().expect("io").expect("a line");
        assert_eq!(
            (first.number, first.text.as_str(), first.cut),
            (1, "short", false)
        );
        let long = lines.next_line().expect("io").expect("a line");
        assert_eq!((long.text.len(), long.cut), (10, true));
        let after = lines.next_line().expect("io").expect("a line");
        assert_eq!((after.number, after.text.as_str()), (3, "after"));
        assert!(lines.next_line().expect("io").is_none());
        assert_eq!(lines.position(), text.len() as u64);
    }
}
