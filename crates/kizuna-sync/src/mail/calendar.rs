//! Calendar items from the mail side into the CRM: tasks into Tasks
//! (MAIL-4, deduplicated by subject + due date) and events into Events
//! (MAIL-5, deduplicated by subject, start, end and the participants'
//! addresses; participants resolved by MAIL-6 and 8 in `items`).

use super::items::{Kind, PARTICIPANTS, Parsed, Probe, participant_keys};
use kizuna_connectors::ical::{CalendarItem, Event, Task, TaskStatus, What};
use kizuna_domain::{Error, Kind as ErrorKind, Text};
use serde_json::{Map, Value, json};

fn text<'a>(fields: &'a Map<String, Value>, f: &str) -> &'a str {
    fields.get(f).and_then(Value::as_str).unwrap_or_default()
}

/// A stored or mapped date-time as UTC milliseconds, whatever its offset.
fn instant(fields: &Map<String, Value>, f: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text(fields, f))
        .ok()
        .map(|d| d.timestamp_millis())
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// CRM Tasks (MAIL-4).
pub struct Tasks;

impl Kind for Tasks {
    fn module(&self) -> &'static str {
        "Tasks"
    }

    fn data_type(&self) -> &'static str {
        "task"
    }

    fn dedup_rule(&self) -> &'static str {
        "MAIL-4"
    }

    fn keys(&self, fields: &Map<String, Value>) -> Vec<String> {
        let subject = text(fields, "Subject").trim().to_lowercase();
        if subject.is_empty() {
            return Vec::new();
        }
        vec![format!("task:{subject}|{}", text(fields, "Due_Date"))]
    }

    fn probe(&self, fields: &Map<String, Value>) -> Option<Probe> {
        let subject = text(fields, "Subject").trim().to_lowercase();
        (!subject.is_empty()).then_some(Probe::Text("Subject", subject))
    }

    fn explain(&self, key: &str) -> (String, String) {
        let (subject, due) = key
            .trim_start_matches("task:")
            .rsplit_once('|')
            .unwrap_or((key, ""));
        let due = if due.is_empty() { "-" } else { due };
        (
            format!("the subject \"{subject}\" and due date {due}"),
            format!("件名「{subject}」と期日 {due}"),
        )
    }
}

/// CRM Events (MAIL-5).
pub struct Events;

impl Kind for Events {
    fn module(&self) -> &'static str {
        "Events"
    }

    fn data_type(&self) -> &'static str {
        "event"
    }

    fn dedup_rule(&self) -> &'static str {
        "MAIL-5"
    }

    fn keys(&self, fields: &Map<String, Value>) -> Vec<String> {
        let title = text(fields, "Title").trim().to_lowercase();
        let (Some(start), Some(end)) = (
            instant(fields, "Start_DateTime"),
            instant(fields, "End_DateTime"),
        ) else {
            return Vec::new();
        };
        let people = participant_keys(text(fields, PARTICIPANTS)).join(",");
        vec![format!("event:{title}|{start}|{end}|{people}")]
    }

    fn probe(&self, fields: &Map<String, Value>) -> Option<Probe> {
        let title = text(fields, "Title").trim().to_lowercase();
        (!title.is_empty()).then_some(Probe::Text("Title", title))
    }

    fn explain(&self, key: &str) -> (String, String) {
        let parts: Vec<&str> = key.trim_start_matches("event:").split('|').collect();
        let (title, start, end, people) = match parts.as_slice() {
            [t, s, e, p] => (*t, *s, *e, *p),
            _ => (key, "", "", ""),
        };
        let at = |ms: &str| ms.parse().map(rfc3339).unwrap_or_default();
        let people = if people.is_empty() { "-" } else { people };
        (
            format!(
                "the subject \"{title}\", the times {} – {} and the participants {people}",
                at(start),
                at(end)
            ),
            format!(
                "件名「{title}」、日時 {} – {}、参加者 {people}",
                at(start),
                at(end)
            ),
        )
    }
}

/// MAIL-4's priority: iCalendar's 1 (highest) … 9 (lowest).
fn priority(p: u8) -> &'static str {
    match p {
        1 => "Highest",
        2..=4 => "High",
        5 => "Normal",
        6..=8 => "Low",
        _ => "Lowest",
    }
}

fn status(s: TaskStatus) -> &'static str {
    match s {
        TaskStatus::NeedsAction => "Not Started",
        TaskStatus::InProcess => "In Progress",
        TaskStatus::Completed => "Completed",
        TaskStatus::Cancelled => "Deferred",
    }
}

fn recurring_notice() -> Error {
    Error::new(
        ErrorKind::BadInput,
        "recurring_event",
        Text::new(
            "The event repeats; CRM events do not, so its first occurrence was synced.",
            "この予定は繰り返しますが、CRM の予定は繰り返さないため、最初の回を同期しました。",
        ),
        Text::new(
            "Nothing to do, unless later occurrences matter in the CRM: add them there as events of their own.",
            "対応は不要です。以降の回が CRM で必要な場合は、個別の予定として追加してください。",
        ),
    )
    .with_rule("MAIL-5")
}

/// A calendar item in CRM terms, with the kind it goes to.
pub fn parsed(item: &CalendarItem) -> (&'static dyn Kind, Parsed) {
    let base = Parsed {
        uid: item.uid.clone(),
        hash: item.hash.clone(),
        categories: item.categories.clone(),
        ..Parsed::default()
    };
    match &item.what {
        What::Task(t) => (&Tasks, task(base, t)),
        What::Event(e) => (&Events, event(base, e)),
    }
}

fn task(mut p: Parsed, t: &Task) -> Parsed {
    let mut v = Vec::new();
    if let Some(s) = &t.subject {
        v.push(("Subject", ("Subject", "件名"), json!(s.clone())));
    }
    if let Some(d) = &t.due {
        v.push(("Due_Date", ("Due date", "期日"), json!(d.clone())));
    }
    if let Some(n) = t.priority {
        v.push((
            "Priority",
            ("Priority", "優先度"),
            json!(priority(n).to_string()),
        ));
    }
    if let Some(s) = t.status {
        v.push(("Status", ("Status", "状況"), json!(status(s).to_string())));
    }
    if let Some(n) = &t.notes {
        v.push(("Description", ("Notes", "メモ"), json!(n.clone())));
    }
    p.values = v;
    p
}

fn event(mut p: Parsed, e: &Event) -> Parsed {
    let mut v = Vec::new();
    if let Some(s) = &e.subject {
        v.push(("Title", ("Subject", "件名"), json!(s.clone())));
    }
    v.push(("Start_DateTime", ("Start", "開始"), json!(rfc3339(e.start))));
    v.push(("End_DateTime", ("End", "終了"), json!(rfc3339(e.end))));
    if let Some(l) = &e.location {
        v.push(("Venue", ("Location", "場所"), json!(l.clone())));
    }
    if let Some(n) = &e.notes {
        v.push(("Description", ("Notes", "メモ"), json!(n.clone())));
    }
    p.values = v;
    p.attendees = e.attendees.clone();
    if e.recurring {
        p.notices.push(recurring_notice());
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_4_priorities_and_statuses_map_to_the_crm_picklists() {
        let tasks = kizuna_apps::catalog::standard_modules(kizuna_domain::App::Crm)
            .into_iter()
            .find(|m| m.api_name == "Tasks")
            .expect("CRM Tasks");
        let allowed = |f: &str| tasks.field(f).expect(f).picklist.clone();
        for n in 1..=9 {
            assert!(
                allowed("Priority").contains(&priority(n).to_string()),
                "{n}"
            );
        }
        for s in [
            TaskStatus::NeedsAction,
            TaskStatus::InProcess,
            TaskStatus::Completed,
            TaskStatus::Cancelled,
        ] {
            assert!(allowed("Status").contains(&status(s).to_string()));
        }
    }

    #[test]
    fn mail_5_an_events_key_holds_its_times_and_participants_whatever_their_order_or_offset() {
        let a = json!({"Title": "Kick-off", "Start_DateTime": "2026-04-01T01:00:00Z",
            "End_DateTime": "2026-04-01T02:00:00Z", "Participants": "b@x.jp (Contacts 2)\nA@x.jp"});
        let b = json!({"Title": " kick-off ", "Start_DateTime": "2026-04-01T10:00:00+09:00",
            "End_DateTime": "2026-04-01T11:00:00+09:00", "Participants": "a@x.jp\nb@x.jp"});
        let key = |v: &Value| Events.keys(v.as_object().expect("an object"));
        assert_eq!(key(&a), key(&b));
        let c = json!({"Title": "Kick-off", "Start_DateTime": "2026-04-01T01:00:00Z",
            "End_DateTime": "2026-04-01T02:00:00Z", "Participants": "a@x.jp"});
        assert_ne!(
            key(&a),
            key(&c),
            "another participant list is another event"
        );
    }
}
