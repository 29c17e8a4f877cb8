//! Files a mail client exports, imported through a user's mail connection by
//! the same rules and into the same history as a sync: `kizuna import` and
//! the API's upload. A file is read an item at a time (memory stays flat
//! whatever its size) and written a batch per transaction with the items'
//! rows, so an import killed part-way and run again adds nothing twice: the
//! items it had written are found by their UID (or content hash) and are
//! unchanged.

use super::items::{Destinations, Incoming, Kind, Target, apply};
use super::{INTO_CRM, calendar, contacts, crm_org, emails, settings};
use crate::engine::{STALE_RUN_MS, Trigger, as_run, check_runnable};
use kizuna_connectors::contacts_csv::CsvReader;
use kizuna_connectors::email::{MAX_MESSAGE_BYTES, MboxReader};
use kizuna_connectors::ical::{MAX_CALENDAR_BYTES, parse_calendar};
use kizuna_connectors::vcard::VcfReader;
use kizuna_domain::{Error, Result};
use kizuna_store::{Integration, Run, Store};
use serde_json::json;
use std::io::{BufRead, Read};

/// Items per transaction.
const BATCH: usize = 500;

/// The source name of every imported file: a card imported from two files
/// (or twice) is one item, found by its UID.
pub const FILE_SOURCE: &str = "file";

/// The kinds of file an import takes, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// vCard: `.vcf`, `.vcard`.
    Vcard,
    /// iCalendar: `.ics`, `.ical`.
    Icalendar,
    /// One e-mail: `.eml`.
    Email,
    /// A mailbox of e-mails: `.mbox`, `.mbx`.
    Mbox,
    /// The desktop mail client's contacts export: `.csv`.
    ContactsCsv,
}

impl FileKind {
    /// The kind of a file by its name, or the refusal that lists the kinds.
    pub fn of(name: &str) -> Result<FileKind> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".vcf") || lower.ends_with(".vcard") {
            return Ok(FileKind::Vcard);
        }
        if lower.ends_with(".ics") || lower.ends_with(".ical") {
            return Ok(FileKind::Icalendar);
        }
        if lower.ends_with(".eml") {
            return Ok(FileKind::Email);
        }
        if lower.ends_with(".mbox") || lower.ends_with(".mbx") {
            return Ok(FileKind::Mbox);
        }
        if lower.ends_with(".csv") {
            return Ok(FileKind::ContactsCsv);
        }
        Err(Error::bad_request(
            "unsupported_file",
            format!("{name}: the files imported are vCard (.vcf, .vcard), iCalendar (.ics), e-mail (.eml), mbox (.mbox) and the mail client's contacts export (.csv)."),
            format!("{name}: 取り込めるファイルは vCard（.vcf、.vcard）、iCalendar（.ics）、メール（.eml）、mbox（.mbox）、メールソフトの連絡先エクスポート（.csv）です。"),
        )
        .with_details(json!({"file": name})))
    }
}

/// Imports one exported file through mail connection `i`, by its kind
/// (from its name); returns its run. `progress` is told the bytes read.
pub async fn import_file(
    store: &Store,
    i: &Integration,
    name: &str,
    file: std::fs::File,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<Run> {
    if !super::is_mail(i) {
        return Err(not_a_mail_connection(i));
    }
    let kind = FileKind::of(name)?;
    let input = std::io::BufReader::with_capacity(256 * 1024, file);
    if matches!(kind, FileKind::Email | FileKind::Mbox) {
        return import_emails(store, i, kind, name, input, progress).await;
    }
    check_runnable(store, i).await?;
    let org = crm_org(store, i).await?;
    let options = settings::read(&i.settings.0);
    let kinds: &[&'static dyn Kind] = match kind {
        FileKind::Vcard | FileKind::ContactsCsv => &[&contacts::Contacts],
        _ => &[&calendar::Events, &calendar::Tasks],
    };
    let destinations = Destinations::of(store, &org, i.id, &options, kinds).await?;
    // Runs left running by a killed process are marked as interrupted.
    store
        .interrupt_stale_runs(i.id, kizuna_store::now_ms() - STALE_RUN_MS)
        .await?;
    let data_type = match kind {
        FileKind::Vcard | FileKind::ContactsCsv => contacts::DATA_TYPE,
        _ => "calendar",
    };
    let (run, result) = as_run(
        store,
        i,
        Trigger::Import,
        (INTO_CRM, data_type),
        async |run| {
            let targets = destinations.targets(FILE_SOURCE, run);
            match kind {
                FileKind::Vcard => import_vcards(&targets[0], name, input, progress).await,
                FileKind::ContactsCsv => import_csv(&targets[0], name, input).await,
                _ => import_calendar(&targets, name, input, progress).await,
            }
        },
    )
    .await?;
    result.map(|()| run)
}

/// Files and e-mails go into a mail connection only.
pub fn not_a_mail_connection(i: &Integration) -> Error {
    Error::bad_request(
        "not_a_mail_connection",
        format!(
            "Integration {} is a {} integration; files and e-mails go into a mail connection (crm-mail).",
            i.id, i.kind
        ),
        format!(
            "連携 {} は {} 連携です。ファイルやメールはメール連携（crm-mail）に取り込みます。",
            i.id, i.kind
        ),
    )
}

fn unreadable_file(file_name: &str, e: &dyn std::fmt::Display) -> Error {
    Error::bad_request(
        "file_unreadable",
        format!("{file_name} could not be read: {e}"),
        format!("{file_name} を読み取れませんでした: {e}"),
    )
}

/// The key a file's item is found by again: its UID, else its content.
fn file_key(uid: Option<&str>, hash: &str) -> String {
    match uid {
        Some(uid) => format!("uid:{uid}"),
        None => format!("hash:{hash}"),
    }
}

/// A vCard file, a batch of cards per transaction.
async fn import_vcards<R: BufRead>(
    target: &Target<'_>,
    file_name: &str,
    input: R,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<()> {
    let mut cards = VcfReader::new(input);
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        for next in cards.by_ref() {
            let card = next.map_err(|e| unreadable_file(file_name, &e))?;
            let key = match &card.card {
                Ok(c) => file_key(c.uid.as_deref(), &c.hash),
                Err(_) => format!("unreadable:{file_name}:{}", card.line),
            };
            batch.push(Incoming {
                key,
                etag: None,
                item: card
                    .card
                    .map(|c| contacts::parsed(&c))
                    .map_err(|e| e.0.into()),
                at: json!({"file": file_name, "line": card.line}),
            });
            if batch.len() == BATCH {
                break;
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        apply(target, batch).await?;
        progress(cards.position());
    }
}

/// The mail client's contacts export, a batch of rows per transaction
/// (decoded as it is read, so no byte position for a progress bar).
async fn import_csv<R: BufRead + Send + 'static>(
    target: &Target<'_>,
    file_name: &str,
    input: R,
) -> Result<()> {
    let mut rows = CsvReader::new(input).map_err(|e| unreadable_file(file_name, &e.0))?;
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        for row in rows.by_ref() {
            let key = match &row.contact {
                Ok(c) => file_key(None, &c.hash),
                Err(_) => format!("unreadable:{file_name}:{}", row.row),
            };
            batch.push(Incoming {
                key,
                etag: None,
                item: row
                    .contact
                    .map(|c| contacts::parsed(&c))
                    .map_err(|e| e.0.into()),
                at: json!({"file": file_name, "row": row.row}),
            });
            if batch.len() == BATCH {
                break;
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        apply(target, batch).await?;
    }
}

/// An iCalendar file: its events and tasks (`targets`: Events, Tasks). A
/// calendar is one document, so it is read whole, up to its cap.
async fn import_calendar<R: BufRead>(
    targets: &[Target<'_>],
    file_name: &str,
    input: R,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<()> {
    let mut text = String::new();
    let read = input
        .take(MAX_CALENDAR_BYTES as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| unreadable_file(file_name, &e))?;
    if read > MAX_CALENDAR_BYTES {
        return Err(Error::payload_too_large(MAX_CALENDAR_BYTES));
    }
    let cal = parse_calendar(&text).map_err(|e| unreadable_file(file_name, &e.0))?;
    let mut batches: Vec<Vec<Incoming>> = vec![Vec::new(), Vec::new()];
    for (n, item) in cal.items.into_iter().enumerate() {
        let (target, key, parsed) = match item {
            Ok(item) => {
                let (kind, p) = calendar::parsed(&item);
                let key = file_key(item.uid.as_deref(), &item.hash);
                (usize::from(kind.module() == "Tasks"), key, Ok(p))
            }
            Err(e) => (0, format!("unreadable:{file_name}:{n}"), Err(e.0.into())),
        };
        batches[target].push(Incoming {
            key,
            etag: None,
            item: parsed,
            at: json!({"file": file_name, "item": n + 1}),
        });
    }
    for (t, mut batch) in targets.iter().zip(batches) {
        while !batch.is_empty() {
            let rest = batch.split_off(batch.len().min(BATCH));
            apply(t, batch).await?;
            batch = rest;
        }
    }
    progress(read as u64);
    Ok(())
}

/// An `.eml` (one e-mail, read whole up to its cap) or an mbox (read a
/// message at a time): each e-mail goes where its correspondent is (MAIL-11).
async fn import_emails<R: BufRead + Send>(
    store: &Store,
    i: &Integration,
    kind: FileKind,
    name: &str,
    mut input: R,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<Run> {
    let to = emails::Destination::Correspondent;
    if kind == FileKind::Email {
        let mut raw = Vec::new();
        (&mut input)
            .take(MAX_MESSAGE_BYTES as u64 + 1)
            .read_to_end(&mut raw)
            .map_err(|e| unreadable_file(name, &e))?;
        return emails::add_message(store, i, Trigger::Import, &to, &raw, json!({"file": name}))
            .await;
    }
    let mut failed_read = None;
    let mut messages = MboxReader::new(input).map_while(|m| match m {
        Ok(m) => Some((
            m.message.map_err(|e| e.0),
            json!({"file": name, "message": m.number}),
        )),
        Err(e) => {
            failed_read = Some(e);
            None
        }
    });
    let run = emails::add(store, i, Trigger::Import, &to, &mut messages, progress).await?;
    drop(messages);
    match failed_read {
        Some(e) => Err(unreadable_file(name, &e)),
        None => Ok(run),
    }
}
