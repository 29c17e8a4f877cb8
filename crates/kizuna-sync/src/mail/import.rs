//! Files a mail client exports, imported through a user's mail connection by
//! the same rules and into the same history as a sync: `kizuna import` and
//! the API's upload. A file is read an item at a time (memory stays flat
//! whatever its size) and written a batch per transaction with the items'
//! rows, so an import killed part-way and run again adds nothing twice: the
//! items it had written are found by their UID (or content hash) and are
//! unchanged.

use super::contacts::{self, Incoming, Target};
use super::{INTO_CRM, crm_org, settings};
use crate::engine::{STALE_RUN_MS, Trigger, check_runnable};
use kizuna_connectors::vcard::VcfReader;
use kizuna_domain::{Error, Result};
use kizuna_store::{Integration, Run, Store};
use serde_json::json;
use std::io::BufRead;

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
}

impl FileKind {
    /// The kind of a file by its name, or the refusal that lists the kinds.
    pub fn of(name: &str) -> Result<FileKind> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".vcf") || lower.ends_with(".vcard") {
            return Ok(FileKind::Vcard);
        }
        Err(Error::bad_request(
            "unsupported_file",
            format!("{name}: this version imports vCard files (.vcf, .vcard); iCalendar, e-mail, mbox and CSV files are not imported yet."),
            format!("{name}: このバージョンで取り込めるのは vCard ファイル（.vcf、.vcard）です。iCalendar・メール・mbox・CSV ファイルはまだ取り込めません。"),
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
        return Err(Error::bad_request(
            "not_a_mail_connection",
            format!(
                "Integration {} is a {} integration; files are imported into a mail connection (crm-mail).",
                i.id, i.kind
            ),
            format!(
                "連携 {} は {} 連携です。ファイルはメール連携（crm-mail）に取り込みます。",
                i.id, i.kind
            ),
        ));
    }
    match FileKind::of(name)? {
        FileKind::Vcard => {
            let input = std::io::BufReader::with_capacity(256 * 1024, file);
            import_vcards(store, i, name, input, progress).await
        }
    }
}

/// Imports one vCard file through connection `i`; returns its run (counts
/// and history). `progress` is told the bytes read after each batch.
async fn import_vcards<R: BufRead>(
    store: &Store,
    i: &Integration,
    file_name: &str,
    input: R,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<Run> {
    check_runnable(store, i).await?;
    let org = crm_org(store, i).await?;
    let module = kizuna_apps::records::enabled_module(store, &org, contacts::MODULE).await?;
    let mail_settings = settings::read(&i.settings.0);
    // Runs left running by a killed process are marked as interrupted.
    store
        .interrupt_stale_runs(i.id, kizuna_store::now_ms() - STALE_RUN_MS)
        .await?;
    let run = store
        .start_run(
            i.id,
            Trigger::Import.as_str(),
            INTO_CRM,
            contacts::DATA_TYPE,
        )
        .await?;
    let target = Target {
        store,
        org: &org,
        module,
        integration: i.id,
        source: FILE_SOURCE,
        settings: &mail_settings,
        run: run.id,
    };
    let mut cards = VcfReader::new(input);
    let result: Result<()> = async {
        loop {
            let mut batch = Vec::with_capacity(BATCH);
            for next in cards.by_ref() {
                let card = next.map_err(|e| {
                    Error::bad_request(
                        "file_unreadable",
                        format!("{file_name} could not be read: {e}"),
                        format!("{file_name} を読み取れませんでした: {e}"),
                    )
                })?;
                let key = match &card.card {
                    Ok(c) => match &c.uid {
                        Some(uid) => format!("uid:{uid}"),
                        None => format!("hash:{}", c.hash),
                    },
                    Err(_) => format!("unreadable:{file_name}:{}", card.line),
                };
                batch.push(Incoming {
                    key,
                    etag: None,
                    card: card.card,
                    at: json!({"file": file_name, "line": card.line}),
                });
                if batch.len() == BATCH {
                    break;
                }
            }
            if batch.is_empty() {
                return Ok(());
            }
            contacts::apply(&target, batch).await?;
            progress(cards.position());
        }
    }
    .await;
    let error = result.as_ref().err().map(|e| e.to_json()["error"].clone());
    let run = store.finish_run(run.id, error.as_ref()).await?;
    crate::attention::after_run(store, i, &run).await?;
    result.map(|()| run)
}
