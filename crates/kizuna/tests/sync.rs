//! The sync engine in the real binary: `kizuna sync run`, the background
//! worker inside `kizuna serve`, and crash safety — the server killed with
//! SIGKILL again and again in the middle of a large sync.

// Shared by the CLI test binaries; each uses a part of it.
#[allow(dead_code)]
mod cli_support;

use cli_support::{
    Cli, Server, assert_integrity, count, data_store, kill_repeatedly, serve_with_worker,
};
use kizuna_store::{Org, Origin, Store};
use kizuna_sync::lifecycle;
use kizuna_testkit::CrmEvents;
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

/// An active CRM ⇄ Events integration on a CLI data directory, with one
/// event, `attendees` registered attendees `p<n>@example.com`, and the
/// e-mails of those with `n % 10 < 3` already in the CRM as Contacts.
struct Seeded {
    store: Store,
    integration: i64,
    crm: Org,
    event: i64,
    events: Org,
}

fn rows(list: impl Iterator<Item = Value>) -> Vec<Map<String, Value>> {
    list.map(|v| v.as_object().cloned().expect("an object"))
        .collect()
}

fn existing(n: usize) -> bool {
    n % 10 < 3
}

async fn seed(cli: &Cli, attendees: usize) -> Seeded {
    cli.create_user("admin@example.com", "Admin").await;
    let store = data_store(cli).await;
    let admin = store
        .require_user_by_email("admin@example.com")
        .await
        .expect("admin");
    let CrmEvents {
        crm,
        events,
        integration,
        event,
    } = CrmEvents::create(&store, &admin).await;
    let attendees_module = store
        .module(events.id, "Attendees")
        .await
        .expect("Attendees");
    let contacts = store.module(crm.id, "Contacts").await.expect("Contacts");
    for start in (0..attendees).step_by(1000) {
        let range = start..(start + 1000).min(attendees);
        let list = rows(range.clone().map(|n| {
            json!({"Email": format!("p{n}@example.com"), "Last_Name": format!("P{n}"), "Event": event, "Status": "registered"})
        }));
        store
            .create_records(events.id, &attendees_module, list, Origin::System)
            .await
            .expect("attendees");
        let known = rows(range.filter(|n| existing(*n)).map(
            |n| json!({"Email": format!("P{n}@Example.com"), "Last_Name": format!("Known {n}")}),
        ));
        store
            .create_records(crm.id, &contacts, known, Origin::System)
            .await
            .expect("contacts");
    }
    Seeded {
        store,
        integration,
        crm,
        event,
        events,
    }
}

impl Seeded {
    async fn count(&self, sql: &str, args: &[kizuna_store::db::Arg]) -> i64 {
        count(&self.store, sql, args).await
    }

    async fn leads(&self) -> i64 {
        self.count(
            "SELECT COUNT(*) AS n FROM records WHERE org_id = $1 AND module = 'Leads' AND deleted_at IS NULL",
            &kizuna_store::args![self.crm.id],
        )
        .await
    }

    async fn attendee_links(&self) -> i64 {
        self.count(
            "SELECT COUNT(*) AS n FROM sync_links WHERE integration_id = $1 AND data_type = 'attendee'",
            &kizuna_store::args![self.integration],
        )
        .await
    }

    /// The tickets sold that the event's Campaign shows (EVT-14; SQLite).
    async fn campaign_tickets_sold(&self) -> i64 {
        self.count(
            "SELECT COALESCE(CAST(json_extract(r.fields, '$.Tickets_Sold') AS INTEGER), -1) AS n \
             FROM sync_links l JOIN records r ON r.id = l.crm_id \
             WHERE l.integration_id = $1 AND l.data_type = 'event' AND l.other_id = $2",
            &kizuna_store::args![self.integration, self.event],
        )
        .await
    }

    /// Sum of a count over every attendee run in the history.
    async fn history_total(&self, column: &str) -> i64 {
        self.count(
            &format!("SELECT COALESCE(SUM({column}), 0) AS n FROM sync_runs WHERE integration_id = $1 AND data_type = 'attendees'"),
            &kizuna_store::args![self.integration],
        )
        .await
    }

    /// Waits until every attendee is linked; panics with the server log after
    /// `limit`.
    async fn wait_synced(&self, attendees: i64, server: &Server, limit: Duration) {
        let started = Instant::now();
        while self.attendee_links().await < attendees {
            assert!(
                started.elapsed() < limit,
                "not synced after {limit:?}: {} of {attendees} linked\n--- server log ---\n{}",
                self.attendee_links().await,
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn serve(cli: &Cli) -> Server {
    serve_with_worker(cli).await
}

#[tokio::test]
async fn sync_run_from_the_command_line_reports_each_run_and_exits_1_when_records_failed() {
    let cli = Cli::sqlite();
    let s = seed(&cli, 20).await;
    let out = cli
        .run(
            &["sync", "run", "--integration", &s.integration.to_string()],
            None,
        )
        .await
        .success();
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("events-to-crm attendees"))
        .unwrap_or_else(|| panic!("an attendees run line:\n{out}"));
    // Updated: the event's Campaign, with its tickets sold (EVT-14).
    assert!(
        line.contains("added 14, updated 1, linked 6, deleted 0, skipped 0, failed 0"),
        "{line}"
    );
    assert_eq!(s.leads().await, 14);

    // A record the CRM cannot take fails alone; the exit code says so:
    // Company (200 characters) mapped into City (30).
    let admin = s
        .store
        .require_user_by_email("admin@example.com")
        .await
        .expect("admin");
    let mapping = json!([
        {"source": "Last_Name", "target": "Last_Name"},
        {"source": "Email", "target": "Email"},
        {"source": "Company", "target": "City"}
    ]);
    lifecycle::set_mapping(&s.store, &admin, s.integration, Some(&mapping))
        .await
        .expect("mapping");
    let attendees = s
        .store
        .module(s.events.id, "Attendees")
        .await
        .expect("Attendees");
    s.store
        .create_records(
            s.events.id,
            &attendees,
            rows([json!({"Email": "x@example.com", "Company": "K".repeat(40), "Last_Name": "X", "Event": s.event, "Status": "registered"})].into_iter()),
            Origin::System,
        )
        .await
        .expect("attendee");
    let out = cli
        .run(
            &["sync", "run", "--integration", &s.integration.to_string()],
            None,
        )
        .await
        .exit(1);
    assert!(out.stdout.contains("failed 1"), "{out}");
    assert!(out.stderr.contains("history"), "{out}");
}

#[tokio::test]
async fn the_background_worker_brings_new_attendees_without_anyone_pressing_sync() {
    let cli = Cli::sqlite();
    let s = seed(&cli, 5).await;
    let server = serve(&cli).await;
    s.wait_synced(5, &server, Duration::from_secs(30)).await;
    let attendees = s
        .store
        .module(s.events.id, "Attendees")
        .await
        .expect("Attendees");
    s.store
        .create_records(
            s.events.id,
            &attendees,
            rows([json!({"Email": "late@example.com", "Last_Name": "Late", "Event": s.event, "Status": "registered"})].into_iter()),
            Origin::System,
        )
        .await
        .expect("attendee");
    s.wait_synced(6, &server, Duration::from_secs(10)).await;
    assert_eq!(
        s.leads().await,
        3,
        "p0, p1 and p2 of the first five are Contacts already; p3, p4 and the late one are Leads"
    );
    // EVT-14: the worker counts the Campaign's figures beside its syncs.
    let started = Instant::now();
    while s.campaign_tickets_sold().await != 6 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the Campaign shows {} tickets sold, not 6\n--- server log ---\n{}",
            s.campaign_tickets_sold().await,
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop();
}

/// Attendees in the crash test.
const CRASH_ATTENDEES: usize = 100_000;
/// Times the server is killed during the sync.
const CRASH_CYCLES: usize = 20;

#[tokio::test]
async fn crash_safety_sigkill_during_a_sync_of_100k_attendees_loses_and_doubles_nothing() {
    let cli = Cli::sqlite();
    let s = seed(&cli, CRASH_ATTENDEES).await;
    kill_repeatedly(&cli, CRASH_CYCLES, CRASH_ATTENDEES as i64, || {
        s.attendee_links()
    })
    .await;
    let server = serve(&cli).await;
    s.wait_synced(CRASH_ATTENDEES as i64, &server, Duration::from_secs(900))
        .await;
    server.stop();

    let expected_known = (0..CRASH_ATTENDEES).filter(|n| existing(*n)).count() as i64;
    let expected_new = CRASH_ATTENDEES as i64 - expected_known;
    assert_eq!(
        s.leads().await,
        expected_new,
        "every new attendee once, none twice"
    );
    let duplicates = s
        .count(
            "SELECT COUNT(*) AS n FROM (SELECT email_key FROM records WHERE org_id = $1 AND deleted_at IS NULL \
             AND module IN ('Leads', 'Contacts') GROUP BY email_key HAVING COUNT(*) > 1) d",
            &kizuna_store::args![s.crm.id],
        )
        .await;
    assert_eq!(duplicates, 0, "no e-mail twice in the CRM");
    assert_eq!(
        s.history_total("added").await,
        expected_new,
        "the history adds up: added"
    );
    assert_eq!(
        s.history_total("linked").await,
        expected_known,
        "the history adds up: linked"
    );
    assert_eq!(s.history_total("failed").await, 0);
    let campaign_members = s
        .count(
            "SELECT COUNT(*) AS n FROM record_refs WHERE org_id = $1 AND field = 'Campaigns<>Leads' \
             AND to_id IN (SELECT id FROM records WHERE org_id = $1 AND module = 'Campaigns')",
            &kizuna_store::args![s.crm.id],
        )
        .await;
    assert_eq!(
        campaign_members, expected_new,
        "each new Lead associated with the Campaign once"
    );

    assert_integrity(&s.store).await;
}
