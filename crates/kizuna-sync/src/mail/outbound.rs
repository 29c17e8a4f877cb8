//! MAIL-7: the connection owner's CRM events to their calendar, with the
//! participants as attendees, when the connection's `directions` include
//! `crm-events-to-calendar`.
//!
//! The CRM's change log is read after a cursor of the connection's own; each
//! event goes to a resource named after its record (`kizuna-<id>.ics`),
//! created only where there is none and replaced only while it has the etag
//! this sync left, so a write whose answer was lost (a crash, a timeout) is
//! found again on the next run and replaced, never made twice. The calendar
//! writes happen outside any database transaction; the cursor and the items'
//! rows then commit together with a compare-and-set of the cursor. Events
//! that came from the calendar are its own and are not sent back, and what
//! this sends is not imported back (`dav.rs` leaves these resources out).

use super::{OUT_OF_CRM, items::participant_keys};
use crate::engine::Outcome;
use kizuna_connectors::dav::{Dav, Put};
use kizuna_connectors::ical::{OutgoingEvent, write_event};
use kizuna_domain::{Error, Kind, Result, Text};
use kizuna_store::{Integration, MailItemState, Org, Record, Store};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The setting that turns it on.
pub const DIRECTION: &str = "crm-events-to-calendar";
/// Events per step.
const STEP: usize = 100;

/// The cursor's stream name for one calendar.
fn stream(calendar: &str) -> String {
    format!("crm:Events>{calendar}")
}

/// The source of the items this writes (`mail_items`).
pub fn source(calendar: &str) -> String {
    format!("caldav-out:{calendar}")
}

/// The resource an event goes to.
pub fn href(calendar: &str, id: i64) -> String {
    format!("{calendar}kizuna-{id}.ics")
}

/// Whether `href` is a resource this writes (not to be imported back).
pub fn is_ours(href: &str) -> bool {
    href.rsplit('/')
        .next()
        .is_some_and(|name| name.starts_with("kizuna-") && name.ends_with(".ics"))
}

fn instant(r: &Record, f: &str) -> Option<i64> {
    r.fields
        .get(f)
        .and_then(Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.timestamp_millis())
}

fn text(r: &Record, f: &str) -> Option<String> {
    r.fields
        .get(f)
        .and_then(Value::as_str)
        .map(str::to_string)
        .filter(|s| !s.is_empty())
}

/// An event as the calendar gets it.
fn outgoing(org: &Org, r: &Record) -> Option<OutgoingEvent> {
    Some(OutgoingEvent {
        uid: format!("kizuna-event-{}@org-{}", r.id, org.id),
        subject: text(r, "Title").unwrap_or_default(),
        start: instant(r, "Start_DateTime")?,
        end: instant(r, "End_DateTime")?,
        location: text(r, "Venue"),
        notes: text(r, "Description"),
        attendees: participant_keys(&text(r, "Participants").unwrap_or_default()),
    })
}

fn changed_in_calendar(id: i64) -> Error {
    Error::new(
        Kind::Conflict,
        "calendar_copy_replaced",
        Text::new(
            format!("The calendar's copy of Events record {id} had been changed in the calendar; the CRM's event replaced it (CRM events are the CRM's)."),
            format!("予定のレコード {id} のカレンダー側のコピーはカレンダーで変更されていましたが、CRM の予定で置き換えました（CRM の予定は CRM 側が正です）。"),
        ),
        Text::new(
            "Change the event in the CRM to change it in the calendar.",
            "カレンダーの予定を変えるには、CRM で予定を変更してください。",
        ),
    )
    .with_rule("MAIL-7")
}

/// A resource written: its href, its new etag, the event and its version.
type Written = (String, Option<String>, Option<(i64, i64)>);

/// Sends the owner's changed CRM events to `calendar`, recording what it did
/// in run `run`.
pub async fn push(
    store: &Store,
    i: &Integration,
    org: &Org,
    dav: &Dav,
    calendar: &str,
    run: i64,
) -> Result<()> {
    let name = stream(calendar);
    let src = source(calendar);
    loop {
        // Read a step of changes, holding no transaction over the network.
        let mut tx = store.begin().await?;
        let from = store.cursor_in(&mut tx, i.id, &name).await?;
        let changes = store
            .stream_changes_in(&mut tx, org.id, "Events", from, STEP)
            .await?;
        let Some(last) = changes.last() else {
            return Ok(());
        };
        let to = last.pos();
        let mut ids: Vec<i64> = changes.iter().map(|c| c.record_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let records: HashMap<i64, Record> = store
            .records_in(&mut tx, org.id, "Events", &ids)
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        let creators: HashMap<i64, Option<i64>> = store
            .record_creators_in(&mut tx, org.id, &ids)
            .await?
            .into_iter()
            .collect();
        let keys: Vec<String> = ids.iter().map(|id| href(calendar, *id)).collect();
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let known: HashMap<String, kizuna_store::MailItem> = store
            .mail_items_in(&mut tx, i.id, &src, &key_refs)
            .await?
            .into_iter()
            .map(|m| (m.item_key.clone(), m))
            .collect();
        drop(tx);
        let mut out = Outcome::default();
        let mut rows: Vec<Written> = Vec::new();
        let mut gone: Vec<i64> = Vec::new();
        for id in ids {
            // The owner's own events only; those the calendar sent are its own.
            if creators.get(&id).copied().flatten() != Some(i.created_by) {
                continue;
            }
            let Some(r) = records.get(&id) else { continue };
            let at = href(calendar, id);
            let known = known.get(&at);
            if r.deleted_at.is_some() {
                if let Some(m) = known {
                    dav.delete(&at).await?;
                    gone.push(m.id);
                    out.counts.deleted += 1;
                }
                continue;
            }
            let Some(event) = outgoing(org, r) else {
                continue;
            };
            let ics = write_event(&event, "-//Kizuna//CRM events//EN");
            let mut etag = known.and_then(|m| m.etag.clone());
            let mut written = None;
            // A create that finds it there, or a replace that finds it
            // changed, reads its etag and tries again (a few times: the
            // calendar may be written by others meanwhile).
            for _ in 0..3 {
                match dav.put(&at, &ics, etag.as_deref()).await? {
                    Put::Done(e) => {
                        written = Some(e);
                        break;
                    }
                    // Written before, its answer lost: replace it.
                    Put::Exists => etag = dav.etag(&at).await?,
                    Put::Changed => {
                        out.notice(&changed_in_calendar(id), ("Events", id), None);
                        etag = dav.etag(&at).await?;
                    }
                }
            }
            let Some(written) = written else {
                return Err(kizuna_connectors::dav::dav_error(
                    "CalDAV",
                    &at,
                    "a write",
                    "the resource kept changing while it was written",
                ));
            };
            match known {
                Some(_) => out.counts.updated += 1,
                None => out.counts.added += 1,
            }
            rows.push((at, written, Some((id, r.version))));
        }
        let mut tx = store.begin().await?;
        if !store
            .advance_cursor_in(&mut tx, i.id, &name, from, to)
            .await?
        {
            // Another run moved the cursor: it wrote the same; read again.
            continue;
        }
        let states: Vec<MailItemState> = rows
            .iter()
            .map(|(key, etag, crm)| MailItemState {
                source: &src,
                item_key: key,
                data_type: "event",
                etag: etag.as_deref(),
                content_hash: "",
                crm: crm.map(|(id, v)| ("Events", id, v)),
                how: Some("created"),
                uid: None,
            })
            .collect();
        store.save_mail_items_in(&mut tx, i.id, &states).await?;
        store.remove_mail_items_in(&mut tx, &gone).await?;
        for item in &mut out.items {
            item.details.0["direction"] = json!(OUT_OF_CRM);
        }
        store
            .record_progress_in(&mut tx, run, out.counts, &out.items)
            .await?;
        tx.commit().await?;
    }
}
