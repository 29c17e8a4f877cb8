//! iCalendar (RFC 5545): the events (`VEVENT`) and tasks (`VTODO`) of a
//! calendar object or an `.ics` file, read into the fields a mail client's
//! calendar and task forms have. Parsing and time zones are calcard's.
//!
//! A recurring event is read as its first occurrence (its `DTSTART`): CRM
//! events do not repeat, and nothing is expanded, so a hostile `RRULE`
//! costs nothing. Overrides of single occurrences (`RECURRENCE-ID`) are
//! left out for the same reason; the caller is told how many.

use crate::content::content_hash;
use crate::vcard::CardError;
use calcard::common::PartialDateTime;
use calcard::common::timezone::Tz;
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarDuration, ICalendarEntry,
    ICalendarParameterName, ICalendarProperty, ICalendarStatus, ICalendarValue,
};
use calcard::{Entry, Parser};

/// The most bytes one calendar object may have.
pub const MAX_CALENDAR_BYTES: usize = 16 * 1024 * 1024;
/// The most events and tasks one calendar may hold.
pub const MAX_COMPONENTS: usize = 100_000;

/// An event as a mail client's calendar holds it (MAIL-5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub subject: Option<String>,
    /// UTC milliseconds.
    pub start: i64,
    pub end: i64,
    pub all_day: bool,
    pub location: Option<String>,
    pub notes: Option<String>,
    /// The attendees' e-mail addresses, trimmed, in their order.
    pub attendees: Vec<String>,
    pub recurring: bool,
}

/// A task as a mail client holds it (MAIL-4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub subject: Option<String>,
    /// `YYYY-MM-DD`.
    pub due: Option<String>,
    /// iCalendar's 1 (highest) … 9 (lowest); 0 or absent: undefined.
    pub priority: Option<u8>,
    pub status: Option<TaskStatus>,
    pub notes: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    NeedsAction,
    InProcess,
    Completed,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    Event(Event),
    Task(Task),
}

/// One event or task of a calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarItem {
    pub uid: Option<String>,
    pub what: What,
    pub categories: Vec<String>,
    /// A hash of the component without `DTSTAMP`, `LAST-MODIFIED` and the
    /// calendar's `PRODID`.
    pub hash: String,
}

/// What a calendar holds: its events and tasks, and how many overrides of
/// single occurrences were left out.
#[derive(Debug, Default)]
pub struct Calendar {
    pub items: Vec<Result<CalendarItem, CardError>>,
    pub overrides_left_out: usize,
}

/// Reads a calendar object (or a whole `.ics` file).
pub fn parse_calendar(text: &str) -> Result<Calendar, CardError> {
    if text.len() > MAX_CALENDAR_BYTES {
        return Err(CardError(format!(
            "the calendar is {} bytes; at most {MAX_CALENDAR_BYTES} are read",
            text.len()
        )));
    }
    let ical = match Parser::new(text).entry() {
        Entry::ICalendar(c) => c,
        Entry::VCard(_) => return Err(CardError("this is a vCard, not iCalendar".into())),
        Entry::Eof => return Err(CardError("there is no calendar".into())),
        Entry::InvalidLine(l) => {
            return Err(CardError(format!(
                "the line \"{}\" is not iCalendar",
                l.chars().take(80).collect::<String>()
            )));
        }
        other => return Err(CardError(format!("not iCalendar ({other:?})"))),
    };
    let items: Vec<&ICalendarComponent> = ical
        .components
        .iter()
        .filter(|c| {
            matches!(
                c.component_type,
                ICalendarComponentType::VEvent | ICalendarComponentType::VTodo
            )
        })
        .collect();
    if items.len() > MAX_COMPONENTS {
        return Err(CardError(format!(
            "the calendar has {} events and tasks; at most {MAX_COMPONENTS} are read",
            items.len()
        )));
    }
    let mut out = Calendar::default();
    for c in items {
        if c.property(&ICalendarProperty::RecurrenceId).is_some() {
            out.overrides_left_out += 1;
            continue;
        }
        out.items.push(read_component(&ical, c));
    }
    Ok(out)
}

fn text(c: &ICalendarComponent, p: &ICalendarProperty) -> Option<String> {
    c.property(p)
        .and_then(|e| e.values.first())
        .and_then(ICalendarValue::as_text)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn date_of(e: &ICalendarEntry) -> Option<&PartialDateTime> {
    e.values
        .first()
        .and_then(ICalendarValue::as_partial_date_time)
}

fn tzid(e: &ICalendarEntry) -> Option<&str> {
    e.parameters(&ICalendarParameterName::Tzid)
        .next()
        .and_then(|v| v.as_text())
}

/// A date or date-time as UTC milliseconds, in its own time zone (a
/// `TZID` of the calendar, an offset, UTC, or floating: read as UTC).
fn instant(ical: &ICalendar, e: &ICalendarEntry) -> Option<(i64, bool)> {
    let d = date_of(e)?;
    let all_day = d.hour.is_none();
    let tz = ical
        .build_tz_resolver()
        .with_default(Tz::UTC)
        .resolve_or_default(tzid(e));
    let dt = d.to_date_time_with_tz(tz)?;
    Some((dt.timestamp_millis(), all_day))
}

fn duration_ms(d: &ICalendarDuration) -> i64 {
    let secs = i64::from(d.weeks) * 7 * 86_400
        + i64::from(d.days) * 86_400
        + i64::from(d.hours) * 3_600
        + i64::from(d.minutes) * 60
        + i64::from(d.seconds);
    if d.neg { -secs * 1000 } else { secs * 1000 }
}

fn read_component(ical: &ICalendar, c: &ICalendarComponent) -> Result<CalendarItem, CardError> {
    let mut categories = Vec::new();
    for e in c.properties(&ICalendarProperty::Categories) {
        for v in &e.values {
            if let Some(t) = v.as_text() {
                categories.extend(
                    t.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                );
            }
        }
    }
    let hash = content_hash(
        &component_text(c),
        &["DTSTAMP", "LAST-MODIFIED", "PRODID", "SEQUENCE"],
    );
    let what = match c.component_type {
        ICalendarComponentType::VEvent => What::Event(read_event(ical, c)?),
        _ => What::Task(read_task(ical, c)),
    };
    Ok(CalendarItem {
        uid: c.uid().map(str::to_string),
        what,
        categories,
        hash,
    })
}

/// The component's own lines, for its hash.
fn component_text(c: &ICalendarComponent) -> String {
    let mut lines = Vec::new();
    for e in &c.entries {
        let values: Vec<String> = e
            .values
            .iter()
            .map(|v| match v {
                ICalendarValue::Text(t) => t.clone(),
                other => format!("{other:?}"),
            })
            .collect();
        let params: Vec<String> = e.params.iter().map(|p| format!("{p:?}")).collect();
        lines.push(format!(
            "{};{}:{}",
            e.name.as_str(),
            params.join(";"),
            values.join(",")
        ));
    }
    lines.join("\n")
}

fn read_event(ical: &ICalendar, c: &ICalendarComponent) -> Result<Event, CardError> {
    let start = c
        .property(&ICalendarProperty::Dtstart)
        .and_then(|e| instant(ical, e))
        .ok_or_else(|| CardError("the event has no readable DTSTART".into()))?;
    let (start_ms, all_day) = start;
    let end_ms = if let Some(end) = c
        .property(&ICalendarProperty::Dtend)
        .and_then(|e| instant(ical, e))
    {
        end.0
    } else if let Some(d) = c
        .property(&ICalendarProperty::Duration)
        .and_then(|e| e.values.first())
        .and_then(|v| match v {
            ICalendarValue::Duration(d) => Some(d),
            _ => None,
        })
    {
        start_ms + duration_ms(d)
    } else if all_day {
        start_ms + 86_400_000
    } else {
        start_ms
    };
    if end_ms < start_ms {
        return Err(CardError("the event ends before it starts".into()));
    }
    let attendees = c
        .properties(&ICalendarProperty::Attendee)
        .filter_map(|e| e.calendar_address())
        .map(|a| {
            calcard::icalendar::utils::strip_mailto_scheme(a)
                .trim()
                .to_string()
        })
        .filter(|a| !a.is_empty())
        .collect();
    Ok(Event {
        subject: text(c, &ICalendarProperty::Summary),
        start: start_ms,
        end: end_ms,
        all_day,
        location: text(c, &ICalendarProperty::Location),
        notes: text(c, &ICalendarProperty::Description),
        attendees,
        recurring: c.is_recurrent(),
    })
}

fn read_task(ical: &ICalendar, c: &ICalendarComponent) -> Task {
    let due = c.property(&ICalendarProperty::Due).and_then(|e| {
        let d = date_of(e)?;
        match d.hour {
            // A due date-time is a day in its own time zone.
            Some(_) => {
                let tz = ical
                    .build_tz_resolver()
                    .with_default(Tz::UTC)
                    .resolve_or_default(tzid(e));
                d.to_date_time_with_tz(tz)
                    .map(|dt| dt.format("%Y-%m-%d").to_string())
            }
            None => Some(format!("{:04}-{:02}-{:02}", d.year?, d.month?, d.day?)),
        }
    });
    let priority = c
        .property(&ICalendarProperty::Priority)
        .and_then(|e| e.values.first())
        .and_then(ICalendarValue::as_integer)
        .and_then(|p| u8::try_from(p).ok())
        .filter(|p| (1..=9).contains(p));
    let status = c.status().and_then(|s| match s {
        ICalendarStatus::NeedsAction => Some(TaskStatus::NeedsAction),
        ICalendarStatus::InProcess => Some(TaskStatus::InProcess),
        ICalendarStatus::Completed => Some(TaskStatus::Completed),
        ICalendarStatus::Cancelled => Some(TaskStatus::Cancelled),
        _ => None,
    });
    Task {
        subject: text(c, &ICalendarProperty::Summary),
        due,
        priority,
        status,
        notes: text(c, &ICalendarProperty::Description),
    }
}

/// An event to write to a calendar (MAIL-7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEvent {
    pub uid: String,
    pub subject: String,
    /// UTC milliseconds.
    pub start: i64,
    pub end: i64,
    pub location: Option<String>,
    pub notes: Option<String>,
    /// The participants' e-mail addresses, as attendees.
    pub attendees: Vec<String>,
}

fn utc(ms: i64) -> PartialDateTime {
    use chrono::{Datelike, Timelike};
    let d = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms).unwrap_or_default();
    PartialDateTime {
        year: Some(d.year() as u16),
        month: Some(d.month() as u8),
        day: Some(d.day() as u8),
        hour: Some(d.hour() as u8),
        minute: Some(d.minute() as u8),
        second: Some(d.second() as u8),
        tz_hour: Some(0),
        tz_minute: Some(0),
        tz_minus: false,
    }
}

/// A calendar object holding one event, written by calcard (escaping and
/// line folding are its).
pub fn write_event(e: &OutgoingEvent, prodid: &str) -> String {
    let mut root = ICalendarComponent::new(ICalendarComponentType::VCalendar);
    root.add_property(ICalendarProperty::Version, "2.0".to_string());
    root.add_property(ICalendarProperty::Prodid, prodid.to_string());
    root.component_ids = vec![1];
    let mut ev = ICalendarComponent::new(ICalendarComponentType::VEvent);
    ev.add_uid(&e.uid);
    ev.add_dtstamp(utc(chrono::Utc::now().timestamp_millis()));
    ev.add_property(ICalendarProperty::Summary, e.subject.clone());
    ev.add_property(ICalendarProperty::Dtstart, utc(e.start));
    ev.add_property(ICalendarProperty::Dtend, utc(e.end));
    if let Some(l) = &e.location {
        ev.add_property(ICalendarProperty::Location, l.clone());
    }
    if let Some(n) = &e.notes {
        ev.add_property(ICalendarProperty::Description, n.clone());
    }
    for a in &e.attendees {
        ev.add_property(ICalendarProperty::Attendee, format!("mailto:{a}"));
    }
    ICalendar {
        components: vec![root, ev],
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\n\
        BEGIN:VTIMEZONE\r\nTZID:Asia/Tokyo\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n\
        TZOFFSETFROM:+0900\r\nTZOFFSETTO:+0900\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n\
        BEGIN:VEVENT\r\nUID:ev-1\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Kick-off\r\n\
        DTSTART;TZID=Asia/Tokyo:20260401T100000\r\nDTEND;TZID=Asia/Tokyo:20260401T113000\r\n\
        LOCATION:Room 3\r\nDESCRIPTION:Agenda\r\nATTENDEE;CN=Taro:mailto:taro@example.jp\r\n\
        ATTENDEE:MAILTO:hanako@example.jp\r\nCATEGORIES:CRM\r\nRRULE:FREQ=DAILY;COUNT=100000000\r\n\
        END:VEVENT\r\nBEGIN:VEVENT\r\nUID:ev-1\r\nRECURRENCE-ID;TZID=Asia/Tokyo:20260402T100000\r\n\
        DTSTART;TZID=Asia/Tokyo:20260402T120000\r\nDURATION:PT1H\r\nSUMMARY:Moved\r\nEND:VEVENT\r\n\
        BEGIN:VTODO\r\nUID:t-1\r\nSUMMARY:Send the quote\r\nDUE;VALUE=DATE:20260410\r\n\
        PRIORITY:1\r\nSTATUS:IN-PROCESS\r\nDESCRIPTION:By mail\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";

    #[test]
    fn mail_5_an_event_is_read_in_its_time_zone_as_its_first_occurrence() {
        let cal = parse_calendar(EVENT).expect("a calendar");
        assert_eq!(cal.overrides_left_out, 1);
        let items: Vec<CalendarItem> = cal.items.into_iter().map(|i| i.expect("an item")).collect();
        assert_eq!(items.len(), 2);
        let What::Event(e) = &items[0].what else {
            panic!("an event first")
        };
        // 10:00 in Tokyo is 01:00 UTC.
        assert_eq!(e.start, 1_775_005_200_000);
        assert_eq!(e.end - e.start, 90 * 60 * 1000);
        assert!(e.recurring && !e.all_day);
        assert_eq!(e.subject.as_deref(), Some("Kick-off"));
        assert_eq!(e.location.as_deref(), Some("Room 3"));
        assert_eq!(e.attendees, ["taro@example.jp", "hanako@example.jp"]);
        assert_eq!(items[0].categories, ["CRM"]);
        assert_eq!(items[0].uid.as_deref(), Some("ev-1"));
    }

    #[test]
    fn mail_4_a_task_has_its_due_date_priority_and_status() {
        let cal = parse_calendar(EVENT).expect("a calendar");
        let What::Task(t) = &cal.items[1].as_ref().expect("the task").what else {
            panic!("a task")
        };
        assert_eq!(t.subject.as_deref(), Some("Send the quote"));
        assert_eq!(t.due.as_deref(), Some("2026-04-10"));
        assert_eq!(t.priority, Some(1));
        assert_eq!(t.status, Some(TaskStatus::InProcess));
    }

    #[test]
    fn the_hash_ignores_dtstamp_but_not_the_time() {
        let a = parse_calendar(EVENT)
            .expect("a")
            .items
            .remove(0)
            .expect("e");
        let b =
            parse_calendar(&EVENT.replace("DTSTAMP:20260101T000000Z", "DTSTAMP:20270101T000000Z"))
                .expect("b")
                .items
                .remove(0)
                .expect("e");
        assert_eq!(a.hash, b.hash);
        let c = parse_calendar(&EVENT.replace("T113000", "T120000"))
            .expect("c")
            .items
            .remove(0)
            .expect("e");
        assert_ne!(a.hash, c.hash);
    }

    #[test]
    fn mail_7_an_event_written_reads_back_the_same() {
        let out = OutgoingEvent {
            uid: "kizuna-event-7@org-1".into(),
            subject: "Kick-off; phase 1, \"A\"".into(),
            start: 1_775_005_200_000,
            end: 1_775_010_600_000,
            location: Some("Room 3, Tokyo".into()),
            notes: Some("Agenda:\n1. scope".into()),
            attendees: vec!["taro@example.jp".into(), "hanako@example.jp".into()],
        };
        let text = write_event(&out, "-//Kizuna//EN");
        let mut cal = parse_calendar(&text).expect("it parses");
        let item = cal.items.remove(0).expect("an item");
        assert_eq!(item.uid.as_deref(), Some("kizuna-event-7@org-1"));
        let What::Event(e) = item.what else {
            panic!("an event")
        };
        assert_eq!((e.start, e.end), (out.start, out.end));
        assert_eq!(e.subject.as_deref(), Some(out.subject.as_str()));
        assert_eq!(e.location, out.location);
        assert_eq!(e.notes, out.notes);
        assert_eq!(e.attendees, out.attendees);
    }

    #[test]
    fn an_all_day_event_lasts_its_day_and_bad_events_fail_alone() {
        let text = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:a\nSUMMARY:Holiday\nDTSTART;VALUE=DATE:20260505\nEND:VEVENT\n\
            BEGIN:VEVENT\nUID:b\nSUMMARY:No start\nEND:VEVENT\nEND:VCALENDAR\n";
        let cal = parse_calendar(text).expect("a calendar");
        let What::Event(e) = &cal.items[0].as_ref().expect("the holiday").what else {
            panic!("an event")
        };
        assert!(e.all_day);
        assert_eq!(e.end - e.start, 86_400_000);
        assert!(cal.items[1].is_err());
    }
}
