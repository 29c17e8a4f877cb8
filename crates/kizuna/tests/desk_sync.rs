//! CRM ⇄ Desk in the real binary: the initial sync of a large Desk org,
//! killed with SIGKILL again and again, resumes where it stopped and ends
//! with every contact once on each side (DSK-5).

// Shared by the CLI test binaries; each uses a part of it.
#[allow(dead_code)]
mod cli_support;

use cli_support::{Cli, assert_integrity, count, data_store, kill_repeatedly, serve_with_worker};
use kizuna_store::{Origin, Store};
use kizuna_testkit::CrmDesk;
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

/// Desk contacts in the crash test.
const CONTACTS: usize = 200_000;
/// Times the server is killed during the initial sync.
const CYCLES: usize = 10;

/// The CRM already holds the e-mail of every tenth-but-seven of them, in
/// another spelling.
fn known(n: usize) -> bool {
    n % 10 < 3
}

fn rows(list: impl Iterator<Item = Value>) -> Vec<Map<String, Value>> {
    list.map(|v| v.as_object().cloned().expect("an object"))
        .collect()
}

async fn links(store: &Store, integration: i64) -> i64 {
    count(
        store,
        "SELECT COUNT(*) AS n FROM sync_links WHERE integration_id = $1 AND data_type = 'contact'",
        &kizuna_store::args![integration],
    )
    .await
}

async fn live(store: &Store, org: i64) -> i64 {
    count(
        store,
        "SELECT COUNT(*) AS n FROM records WHERE org_id = $1 AND module = 'Contacts' AND deleted_at IS NULL",
        &kizuna_store::args![org],
    )
    .await
}

#[tokio::test]
async fn dsk_5_sigkill_during_the_initial_sync_of_200k_contacts_resumes_with_no_duplicate_and_no_loss()
 {
    let cli = Cli::sqlite();
    cli.create_user("admin@example.com", "Admin").await;
    let store = data_store(&cli).await;
    let admin = store
        .require_user_by_email("admin@example.com")
        .await
        .expect("admin");
    let CrmDesk {
        crm,
        desk,
        integration,
    } = CrmDesk::create(&store, &admin).await;
    let desk_contacts = store.module(desk.id, "Contacts").await.expect("Contacts");
    let crm_contacts = store.module(crm.id, "Contacts").await.expect("Contacts");
    for start in (0..CONTACTS).step_by(1000) {
        let range = start..(start + 1000).min(CONTACTS);
        let list = rows(range.clone().map(|n| {
            json!({"Email": format!("d{n}@example.com"), "Last_Name": format!("D{n}"), "Phone": format!("03-{n}")})
        }));
        store
            .create_records(desk.id, &desk_contacts, list, Origin::System)
            .await
            .expect("Desk contacts");
        let existing = rows(range.filter(|n| known(*n)).map(
            |n| json!({"Email": format!("D{n}@Example.com"), "Last_Name": format!("Known {n}")}),
        ));
        store
            .create_records(crm.id, &crm_contacts, existing, Origin::System)
            .await
            .expect("CRM contacts");
    }
    let expected_known = (0..CONTACTS).filter(|n| known(*n)).count() as i64;

    kill_repeatedly(&cli, CYCLES, CONTACTS as i64, || links(&store, integration)).await;
    let server = serve_with_worker(&cli).await;
    let started = Instant::now();
    while links(&store, integration).await < CONTACTS as i64 {
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "not synced: {} of {CONTACTS} linked\n--- server log ---\n{}",
            links(&store, integration).await,
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The CRM stream's turn: the contacts it already held are linked, so
    // nothing goes to Desk; wait until the worker has read it to the end.
    let started = Instant::now();
    while kizuna_sync::engine::pending(
        &store,
        &store
            .integration(integration)
            .await
            .expect("read")
            .expect("integration"),
    )
    .await
    .expect("pending")
    {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop();

    assert_eq!(links(&store, integration).await, CONTACTS as i64);
    assert_eq!(
        live(&store, crm.id).await,
        CONTACTS as i64,
        "the known ones tied, the others created once"
    );
    assert_eq!(
        live(&store, desk.id).await,
        CONTACTS as i64,
        "nothing came back to Desk"
    );
    for org in [crm.id, desk.id] {
        let twice = count(
            &store,
            "SELECT COUNT(*) AS n FROM (SELECT email_key FROM records WHERE org_id = $1 AND module = 'Contacts' \
             AND deleted_at IS NULL GROUP BY email_key HAVING COUNT(*) > 1) d",
            &kizuna_store::args![org],
        )
        .await;
        assert_eq!(twice, 0, "no e-mail twice in org {org}");
    }
    let total = |column: &str| {
        let store = &store;
        let sql = format!(
            "SELECT COALESCE(SUM({column}), 0) AS n FROM sync_runs WHERE integration_id = $1 AND data_type = 'contacts'"
        );
        async move { count(store, &sql, &kizuna_store::args![integration]).await }
    };
    assert_eq!(
        total("added").await,
        CONTACTS as i64 - expected_known,
        "the history adds up: added"
    );
    assert_eq!(
        total("linked").await,
        expected_known,
        "the history adds up: linked"
    );
    assert_eq!(total("failed").await, 0);
    // Each link joins a live contact of each side.
    let orphans = count(
        &store,
        "SELECT COUNT(*) AS n FROM sync_links l WHERE l.integration_id = $1 AND l.data_type = 'contact' \
         AND (NOT EXISTS (SELECT 1 FROM records r WHERE r.id = l.crm_id AND r.org_id = $2 AND r.deleted_at IS NULL) \
           OR NOT EXISTS (SELECT 1 FROM records r WHERE r.id = l.other_id AND r.org_id = $3 AND r.deleted_at IS NULL))",
        &kizuna_store::args![integration, crm.id, desk.id],
    )
    .await;
    assert_eq!(orphans, 0);
    assert_integrity(&store).await;
}
