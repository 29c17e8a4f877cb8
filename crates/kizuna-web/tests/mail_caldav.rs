//! The mail connector's calendars over CalDAV, against a real Radicale that
//! the tests start on 127.0.0.1: events into CRM Events with their
//! participants resolved to Contacts, Leads and users (MAIL-5, 6, 8), tasks
//! into CRM Tasks (MAIL-4), dedup by the rules' keys, and `.ics` files
//! through the same rules.

// Shared by the mail test binaries; each uses a part of it.
#[allow(dead_code)]
mod mail_world;

use kizuna_domain::{App, Role};
use kizuna_testkit::radicale::{PASSWORD, Radicale, USER};
use kizuna_testkit::{Actor, Backend, TestApp};
use mail_world::*;
use serde_json::{Value, json};

struct World {
    app: TestApp,
    crm: i64,
    admin: Actor,
    dav: Radicale,
    calendar: String,
}

async fn world(test: &str) -> Option<World> {
    let dav = Radicale::start(test)?;
    let app = TestApp::spawn(Backend::Sqlite, test).await?;
    let admin = app.actor("admin@example.jp").await;
    let crm = app.org(App::Crm, "enterprise", &admin).await.id;
    let calendar = dav.make_calendar("work").await;
    Some(World {
        app,
        crm,
        admin,
        dav,
        calendar,
    })
}

impl World {
    async fn create(&self, module: &str, fields: Value) -> i64 {
        create(&self.app, self.crm, &self.admin.key, module, fields).await
    }

    async fn records(&self, module: &str) -> Vec<Value> {
        records(&self.app, self.crm, &self.admin.key, module).await
    }

    async fn connect(&self) -> i64 {
        let (status, body) = self
            .app
            .post(
                "/api/v1/integrations",
                &self.admin.key,
                &json!({"kind": "crm-mail", "from_org": self.crm, "settings": {"caldav": {
                    "url": self.dav.url(), "username": USER, "password": PASSWORD, "calendars": [self.calendar]
                }}}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_i64().expect("id")
    }

    async fn sync(&self, id: i64) -> Value {
        let (status, body) = self
            .app
            .post(
                &format!("/api/v1/integrations/{id}/sync"),
                &self.admin.key,
                &json!({}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["runs"][0].clone()
    }
}

fn ics(body: &str) -> String {
    format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\n{body}END:VCALENDAR\r\n")
}

const TOKYO: &str = "BEGIN:VTIMEZONE\r\nTZID:Asia/Tokyo\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n\
    TZOFFSETFROM:+0900\r\nTZOFFSETTO:+0900\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n";

#[tokio::test]
async fn mail_5_6_8_an_event_comes_in_with_its_participants_as_contacts_leads_users_or_addresses() {
    let Some(w) = world("mail_5_caldav_events").await else {
        return;
    };
    // Two Contacts share an address: the earliest created is the one (MAIL-8);
    // an address that is a Lead and a Contact is the Contact; a Lead alone is
    // the Lead; a member of the org is a user; a stranger an address alone.
    let first = w
        .create(
            "Contacts",
            json!({"Last_Name": "First", "Email": "shared@example.jp"}),
        )
        .await;
    w.create(
        "Contacts",
        json!({"Last_Name": "Second", "Email": "shared@example.jp"}),
    )
    .await;
    let both_contact = w
        .create(
            "Contacts",
            json!({"Last_Name": "Both", "Email": "both@example.jp"}),
        )
        .await;
    w.create(
        "Leads",
        json!({"Last_Name": "Both", "Email": "both@example.jp"}),
    )
    .await;
    let lead = w
        .create(
            "Leads",
            json!({"Last_Name": "Lead", "Email": "lead@example.jp"}),
        )
        .await;
    let colleague = w.app.actor("colleague@example.jp").await;
    w.app
        .store
        .add_member(w.crm, colleague.user.id, Role::Member)
        .await
        .expect("member");
    let event = format!(
        "{TOKYO}BEGIN:VEVENT\r\nUID:kickoff\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Kick-off\r\n\
         DTSTART;TZID=Asia/Tokyo:20260401T100000\r\nDTEND;TZID=Asia/Tokyo:20260401T113000\r\n\
         LOCATION:Room 3\r\nDESCRIPTION:Agenda\r\n\
         ATTENDEE:mailto:Shared@example.jp\r\nATTENDEE:mailto:both@example.jp\r\n\
         ATTENDEE:mailto:lead@example.jp\r\nATTENDEE:mailto:colleague@example.jp\r\n\
         ATTENDEE:mailto:stranger@example.jp\r\nEND:VEVENT\r\n"
    );
    w.dav
        .put_calendar_item(&w.calendar, "kickoff.ics", &ics(&event))
        .await;
    let id = w.connect().await;
    let run = w.sync(id).await;
    assert_eq!(counts(&run), [1, 0, 0, 0, 0, 0], "{run}");
    assert_eq!(run["data_type"], "calendar");
    let events = w.records("Events").await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    // MAIL-5: the fields, the times in UTC.
    assert_eq!(field(e, "Title"), "Kick-off");
    assert_eq!(field(e, "Start_DateTime"), "2026-04-01T01:00:00Z");
    assert_eq!(field(e, "End_DateTime"), "2026-04-01T02:30:00Z");
    assert_eq!(field(e, "Venue"), "Room 3");
    assert_eq!(field(e, "Description"), "Agenda");
    let participants = field(e, "Participants");
    assert!(
        participants.contains(&format!("Shared@example.jp (Contacts {first})")),
        "{participants}"
    );
    assert!(
        participants.contains(&format!("both@example.jp (Contacts {both_contact})")),
        "{participants}"
    );
    assert!(
        participants.contains(&format!("lead@example.jp (Leads {lead})")),
        "{participants}"
    );
    assert!(
        participants.contains("colleague@example.jp (user)"),
        "{participants}"
    );
    assert!(
        participants.lines().any(|l| l == "stranger@example.jp"),
        "{participants}"
    );
    // MAIL-6: associated with the Contacts and the Lead.
    let related = |list: &'static str| {
        let (app, crm, key, event) = (&w.app, w.crm, w.admin.key.clone(), e["id"].clone());
        async move {
            let (status, body) = app
                .get(
                    &format!("/api/v1/orgs/{crm}/modules/Events/records/{event}/related/{list}"),
                    &key,
                )
                .await;
            assert_eq!(status, 200, "{body}");
            let mut ids: Vec<i64> = body["records"]
                .as_array()
                .expect("records")
                .iter()
                .filter_map(|r| r["id"].as_i64())
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(related("Contacts").await, vec![first, both_contact]);
    assert_eq!(related("Leads").await, vec![lead]);
    // Nothing twice.
    assert_eq!(counts(&w.sync(id).await), [0; 6]);
    // Deleted in the calendar: the event it created goes to the recycle bin.
    w.dav.delete(&format!("{}kickoff.ics", w.calendar)).await;
    assert_eq!(counts(&w.sync(id).await)[3], 1);
    assert!(w.records("Events").await.is_empty());
}

#[tokio::test]
async fn mail_4_tasks_come_in_with_due_date_priority_and_status_and_are_deduplicated_by_subject_and_due_date()
 {
    let Some(w) = world("mail_4_caldav_tasks").await else {
        return;
    };
    let existing = w
        .create(
            "Tasks",
            json!({"Subject": "Send the quote", "Due_Date": "2026-04-10"}),
        )
        .await;
    let todo = |uid: &str, subject: &str, due: &str, extra: &str| {
        ics(&format!(
            "BEGIN:VTODO\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:{subject}\r\nDUE;VALUE=DATE:{due}\r\n{extra}END:VTODO\r\n"
        ))
    };
    w.dav
        .put_calendar_item(
            &w.calendar,
            "a.ics",
            &todo(
                "a",
                "send the QUOTE",
                "20260410",
                "PRIORITY:1\r\nSTATUS:IN-PROCESS\r\n",
            ),
        )
        .await;
    w.dav
        .put_calendar_item(
            &w.calendar,
            "b.ics",
            &todo(
                "b",
                "Send the quote",
                "20260411",
                "DESCRIPTION:Follow up\r\n",
            ),
        )
        .await;
    let id = w.connect().await;
    let run = w.sync(id).await;
    assert_eq!(
        counts(&run),
        [1, 0, 1, 0, 0, 0],
        "one matched by subject and due date, one new: {run}"
    );
    let tasks = w.records("Tasks").await;
    assert_eq!(tasks.len(), 2);
    let matched = tasks
        .iter()
        .find(|t| t["id"] == existing)
        .expect("the existing task");
    assert_eq!(field(matched, "Priority"), "Highest");
    assert_eq!(field(matched, "Status"), "In Progress");
    let new = tasks
        .iter()
        .find(|t| t["id"] != existing)
        .expect("the new task");
    assert_eq!(field(new, "Due_Date"), "2026-04-11");
    assert_eq!(field(new, "Description"), "Follow up");
    let (_, items) = w
        .app
        .get(
            &format!("/api/v1/integrations/{id}/history/{}/items", run["id"]),
            &w.admin.key,
        )
        .await;
    let linked = &items["items"][0];
    assert_eq!(linked["rule"], "MAIL-4", "{items}");
    assert_eq!(linked["target_id"], existing);
}

#[tokio::test]
async fn mail_5_an_ics_file_imports_events_and_tasks_and_an_event_that_exists_is_matched() {
    let Some(w) = world("mail_5_ics_import").await else {
        return;
    };
    let existing = w
        .create(
            "Events",
            json!({"Title": "Review", "Start_DateTime": "2026-05-01T09:00:00+09:00",
                   "End_DateTime": "2026-05-01T10:00:00+09:00", "Participants": "a@example.jp"}),
        )
        .await;
    let file = ics(&format!(
        "{TOKYO}BEGIN:VEVENT\r\nUID:r\r\nSUMMARY:Review\r\nDTSTART;TZID=Asia/Tokyo:20260501T090000\r\n\
         DTEND;TZID=Asia/Tokyo:20260501T100000\r\nATTENDEE:mailto:A@example.jp\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:weekly\r\nSUMMARY:Stand-up\r\nDTSTART:20260504T000000Z\r\nDURATION:PT15M\r\n\
         RRULE:FREQ=WEEKLY\r\nEND:VEVENT\r\n\
         BEGIN:VTODO\r\nUID:t\r\nSUMMARY:Book the room\r\nEND:VTODO\r\n"
    ));
    let id = w.connect().await;
    let r = w
        .app
        .http
        .post(
            w.app
                .url(&format!("/api/v1/integrations/{id}/import?name=work.ics")),
        )
        .bearer_auth(&w.admin.key)
        .header("content-type", "text/calendar")
        .body(file)
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.expect("JSON");
    assert_eq!(counts(&body["run"]), [2, 0, 1, 0, 0, 0], "{body}");
    let events = w.records("Events").await;
    assert_eq!(events.len(), 2, "the existing review was matched (MAIL-5)");
    let standup = events
        .iter()
        .find(|e| field(e, "Title") == "Stand-up")
        .expect("the stand-up");
    assert_eq!(field(standup, "End_DateTime"), "2026-05-04T00:15:00Z");
    let (_, items) = w
        .app
        .get(
            &format!(
                "/api/v1/integrations/{id}/history/{}/items",
                body["run"]["id"]
            ),
            &w.admin.key,
        )
        .await;
    let codes: Vec<&str> = items["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["code"].as_str())
        .collect();
    assert!(codes.contains(&"recurring_event"), "{items}");
    assert!(codes.contains(&"matched_existing_record"), "{items}");
    assert!(events.iter().any(|e| e["id"] == existing));
    assert_eq!(w.records("Tasks").await.len(), 1);
}

#[tokio::test]
async fn mail_7_the_owners_crm_events_go_to_the_calendar_with_their_participants_and_do_not_come_back()
 {
    let Some(w) = world("mail_7_events_out").await else {
        return;
    };
    let (status, body) = w
        .app
        .post(
            "/api/v1/integrations",
            &w.admin.key,
            &json!({"kind": "crm-mail", "from_org": w.crm, "settings": {
                "caldav": {"url": w.dav.url(), "username": USER, "password": PASSWORD, "calendars": [w.calendar]},
                "directions": ["crm-events-to-calendar"]}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().expect("id");
    let event = w
        .create(
            "Events",
            json!({"Title": "Visit Acme", "Start_DateTime": "2026-06-01T10:00:00+09:00",
                   "End_DateTime": "2026-06-01T11:00:00+09:00", "Venue": "Acme HQ",
                   "Participants": "taro@example.jp (Contacts 1)\nhanako@example.jp"}),
        )
        .await;
    // Someone else's event stays in the CRM.
    let other = w.app.actor("other@example.jp").await;
    w.app
        .store
        .add_member(w.crm, other.user.id, Role::Administrator)
        .await
        .expect("member");
    let (status, _) = w
        .app
        .post(
            &format!("/api/v1/orgs/{}/modules/Events/records", w.crm),
            &other.key,
            &json!({"fields": {"Title": "Not mine", "Start_DateTime": "2026-06-02T10:00:00Z", "End_DateTime": "2026-06-02T11:00:00Z"}}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = w
        .app
        .post(
            &format!("/api/v1/integrations/{id}/sync"),
            &w.admin.key,
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let out = body["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .find(|r| r["direction"] == "crm-to-mail")
        .expect("the run out")
        .clone();
    assert_eq!(counts(&out), [1, 0, 0, 0, 0, 0], "{body}");
    let path = format!("{}kizuna-{event}.ics", w.calendar);
    let ics = w.dav.get(&path).await.expect("in the calendar");
    assert!(ics.contains("SUMMARY:Visit Acme"), "{ics}");
    assert!(ics.contains("DTSTART:20260601T010000Z"), "{ics}");
    assert!(
        ics.to_lowercase().contains("mailto:taro@example.jp"),
        "{ics}"
    );
    assert!(
        ics.to_lowercase().contains("mailto:hanako@example.jp"),
        "{ics}"
    );
    // Nothing comes back, nothing is sent twice.
    let (_, again) = w
        .app
        .post(
            &format!("/api/v1/integrations/{id}/sync"),
            &w.admin.key,
            &json!({}),
        )
        .await;
    for r in again["runs"].as_array().expect("runs") {
        assert_eq!(counts(r), [0; 6], "{again}");
    }
    assert_eq!(w.records("Events").await.len(), 2);
    // A change follows; a delete removes the calendar's copy.
    let (status, _) = w
        .app
        .patch(
            &format!("/api/v1/orgs/{}/modules/Events/records/{event}", w.crm),
            &w.admin.key,
            &json!({"fields": {"Title": "Visit Acme (moved)"}}),
        )
        .await;
    assert_eq!(status, 200);
    w.app
        .post(
            &format!("/api/v1/integrations/{id}/sync"),
            &w.admin.key,
            &json!({}),
        )
        .await;
    let ics = w.dav.get(&path).await.expect("still there");
    assert!(ics.contains("Visit Acme (moved)"), "{ics}");
    let (status, _) = w
        .app
        .delete(
            &format!("/api/v1/orgs/{}/modules/Events/records/{event}", w.crm),
            &w.admin.key,
        )
        .await;
    assert_eq!(status, 200);
    let (_, body) = w
        .app
        .post(
            &format!("/api/v1/integrations/{id}/sync"),
            &w.admin.key,
            &json!({}),
        )
        .await;
    let out = body["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .find(|r| r["direction"] == "crm-to-mail")
        .expect("the run out")
        .clone();
    assert_eq!(out["deleted"], 1, "{body}");
    assert!(w.dav.get(&path).await.is_none(), "gone from the calendar");
}
