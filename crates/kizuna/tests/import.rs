//! `kizuna import` and `kizuna sync run` of a mail connection as processes:
//! vCard files into the CRM through the user's mail connection by the rules
//! of a sync (MAIL-2, MAIL-3), the closing line and exit codes, and crash
//! safety — the import killed with SIGKILL again and again in the middle of
//! a 100,000-contact file, and the sync in the middle of a 10,000-contact
//! CardDAV address book (a real Radicale), then run to their end: every
//! contact once.

// Shared by the CLI test binaries; each uses a part of it.
#[allow(dead_code)]
mod cli_support;

use cli_support::{Cli, KIZUNA, assert_integrity, count, data_store, path_str};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// A user who is a member of a CRM org; the org's id.
async fn crm_with_user(cli: &Cli) -> i64 {
    cli.create_user("admin@example.jp", "Admin").await;
    cli.create_user("rep@example.jp", "Rep").await;
    let org = cli
        .create_org("crm", "Acme", "enterprise", "admin@example.jp")
        .await;
    cli.add_member(org, "rep@example.jp", "member").await;
    org
}

fn card(uid: &str, last: &str, first: &str, email: Option<&str>, extra: &str) -> String {
    let email = email.map_or(String::new(), |e| format!("EMAIL:{e}\r\n"));
    format!(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nN:{last};{first};;;\r\nFN:{first} {last}\r\n{email}{extra}END:VCARD\r\n"
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the file");
    path_str(&path)
}

#[tokio::test]
async fn mail_import_of_a_vcf_file_ends_with_its_counts_and_says_by_its_exit_code_whether_records_failed()
 {
    let cli = Cli::sqlite();
    let org = crm_with_user(&cli).await.to_string();
    let file = write(
        cli.tmp.path(),
        "contacts.vcf",
        &[
            card(
                "1",
                "Yamada",
                "Taro",
                Some("taro@example.jp"),
                "TITLE:Sales\r\n",
            ),
            // MAIL-3: the same address in another case is the same contact.
            card(
                "2",
                "Yamada",
                "Taro",
                Some("TARO@example.jp"),
                "TITLE:Director\r\n",
            ),
            card("3", "Sato", "Jiro", None, ""),
            // MAIL-2: 101 characters for a 100-character field.
            card(
                "4",
                "Kato",
                "Ken",
                None,
                &format!("TITLE:{}\r\n", "x".repeat(101)),
            ),
        ]
        .concat(),
    );
    let first = cli
        .run(
            &["import", "--org", &org, "--user", "rep@example.jp", &file],
            None,
        )
        .await
        .exit(1);
    assert_eq!(
        first.last_line(),
        "added 2, updated 1, skipped 0, failed 1",
        "{first}"
    );
    assert!(first.stderr.contains("failed"), "{first}");
    // Run again: nothing twice; the failed card is tried again.
    let again = cli
        .run(
            &["import", "--org", &org, "--user", "rep@example.jp", &file],
            None,
        )
        .await
        .exit(1);
    assert_eq!(
        again.last_line(),
        "added 0, updated 0, skipped 3, failed 1",
        "{again}"
    );
    let store = data_store(&cli).await;
    let contacts = count(
        &store,
        "SELECT COUNT(*) AS n FROM records WHERE module = 'Contacts' AND deleted_at IS NULL",
        &[],
    )
    .await;
    assert_eq!(contacts, 2);
    let failed = count(
        &store,
        "SELECT COUNT(*) AS n FROM sync_items WHERE code = 'value_too_long' AND rule = 'MAIL-2' \
         AND details LIKE '%\"limit\":100%' AND details LIKE '%\"length\":101%'",
        &[],
    )
    .await;
    assert_eq!(
        failed, 2,
        "each run's history names field, limit and length"
    );

    // A file with nothing wrong: exit 0.
    let good = write(
        cli.tmp.path(),
        "good.vcf",
        &card("5", "Mori", "Aya", Some("aya@example.jp"), ""),
    );
    let ok = cli
        .run(
            &["import", "--org", &org, "--user", "rep@example.jp", &good],
            None,
        )
        .await
        .success();
    assert_eq!(ok.last_line(), "added 1, updated 0, skipped 0, failed 0");

    // Usage and connection errors: exit 2, nothing imported.
    let ics = write(
        cli.tmp.path(),
        "notes.txt",
        "not a mail client's export\r\n",
    );
    let refused = cli
        .run(
            &[
                "import",
                "--org",
                &org,
                "--user",
                "rep@example.jp",
                &good,
                &ics,
            ],
            None,
        )
        .await
        .exit(2);
    assert!(refused.stderr.contains("[unsupported_file]"), "{refused}");
    let missing = path_str(&cli.tmp.path().join("absent.vcf"));
    cli.run(
        &[
            "import",
            "--org",
            &org,
            "--user",
            "rep@example.jp",
            &missing,
        ],
        None,
    )
    .await
    .exit(2);
    cli.run(
        &[
            "import",
            "--org",
            &org,
            "--user",
            "nobody@example.jp",
            &good,
        ],
        None,
    )
    .await
    .exit(2);
    cli.run(
        &["import", "--org", "999", "--user", "rep@example.jp", &good],
        None,
    )
    .await
    .exit(2);
    cli.run(&["import", "--org", &org, "--user", "rep@example.jp"], None)
        .await
        .exit(2);
    let after = count(
        &store,
        "SELECT COUNT(*) AS n FROM records WHERE module = 'Contacts' AND deleted_at IS NULL",
        &[],
    )
    .await;
    assert_eq!(after, 3);
}

/// Contacts in the 100,000-card file.
const CARDS: usize = 100_000;

#[tokio::test]
async fn mail_import_killed_with_sigkill_during_a_100k_contact_vcf_resumes_with_no_duplicate_and_no_loss()
 {
    let cli = Cli::sqlite();
    let org = crm_with_user(&cli).await.to_string();
    let path = cli.tmp.path().join("big.vcf");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        for n in 0..CARDS {
            // Every tenth card has no UID: it is found again by its content.
            let uid = if n % 10 == 0 {
                String::new()
            } else {
                format!("UID:c{n}\r\n")
            };
            write!(
                f,
                "BEGIN:VCARD\r\nVERSION:3.0\r\n{uid}N:Last{n};First{n};;;\r\nFN:First{n} Last{n}\r\nEMAIL:p{n}@example.jp\r\nTITLE:Title {n}\r\nEND:VCARD\r\n"
            )
            .expect("write");
        }
    }
    let file = path_str(&path);
    let store = data_store(&cli).await;
    let import = ["import", "--org", &org, "--user", "rep@example.jp", &file];
    let seen = kill_during_progress(&cli, &import, CARDS as i64).await;
    let last = cli.run(&import, None).await.success();
    let added_now: i64 = last
        .last_line()
        .strip_prefix("added ")
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .expect("the closing line");
    assert_eq!(
        added_now + seen.last().copied().unwrap_or_default(),
        CARDS as i64,
        "the last run added exactly what the killed ones had not: {}",
        last.last_line()
    );
    assert_each_contact_once(&store, CARDS as i64).await;
}

/// Contacts in the address book of the CardDAV crash test.
const DAV_CARDS: usize = 10_000;

#[tokio::test]
async fn mail_1_sigkill_during_a_10k_contact_carddav_sync_resumes_with_no_duplicate_and_no_loss() {
    let Some(dav) = kizuna_testkit::radicale::Radicale::start("mail_1_carddav_crash") else {
        return;
    };
    let book = dav.make_address_book("big").await;
    for n in 0..DAV_CARDS {
        // Written into Radicale's storage: 10,000 PUTs would take minutes.
        dav.put_file_directly(
            &book,
            &format!("c{n}.vcf"),
            &kizuna_testkit::radicale::vcard(
                &format!("u{n}"),
                &format!("Last{n}"),
                "First",
                Some(&format!("p{n}@example.jp")),
                &[],
            ),
        );
    }
    dav.warm(&book).await;
    let cli = Cli::sqlite();
    let org = crm_with_user(&cli).await;
    let store = data_store(&cli).await;
    // The connection, its password sealed with the data directory's key, as
    // the server would.
    let user = store
        .user_by_email("rep@example.jp")
        .await
        .expect("read")
        .expect("the rep");
    let ctx =
        kizuna_sync::mail::MailContext::new(cli.tmp.path().join("data").join("secret.key"), true);
    let connection = kizuna_sync::mail::connect(
        &store,
        &ctx,
        &user,
        org,
        &serde_json::json!({"carddav": {"url": dav.url(), "username": kizuna_testkit::radicale::USER,
            "password": kizuna_testkit::radicale::PASSWORD, "address_book": book}}),
    )
    .await
    .expect("connected");
    let id = connection.id.to_string();
    let sync = [
        "sync",
        "run",
        "--integration",
        &id,
        "--allow-private-addresses",
    ];
    kill_during_progress(&cli, &sync, DAV_CARDS as i64).await;
    cli.run(&sync, None).await.success();
    assert_each_contact_once(&store, DAV_CARDS as i64).await;
    // A sync right after writes nothing.
    let before = count(&store, "SELECT COUNT(*) AS n FROM changes", &[]).await;
    cli.run(&sync, None).await.success();
    assert_eq!(
        count(&store, "SELECT COUNT(*) AS n FROM changes", &[]).await,
        before
    );
}

/// Contacts in the data directory's database.
async fn contacts(store: &kizuna_store::Store) -> i64 {
    count(
        store,
        "SELECT COUNT(*) AS n FROM records WHERE module = 'Contacts'",
        &[],
    )
    .await
}

/// Starts `kizuna <args>` up to five times and kills it with SIGKILL each
/// time at a random moment once it has added contacts, until all `total`
/// are there; returns the contacts after each kill, having checked that
/// every kill landed after progress.
async fn kill_during_progress(cli: &Cli, args: &[&str], total: i64) -> Vec<i64> {
    use std::hash::BuildHasher;
    let store = data_store(cli).await;
    let random = std::collections::hash_map::RandomState::new();
    let mut seen = vec![0];
    for cycle in 0..5u64 {
        let mut child = std::process::Command::new(KIZUNA)
            .args(args)
            .args(cli.data_args())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("it starts");
        let before = *seen.last().unwrap_or(&0);
        let started = Instant::now();
        while contacts(&store).await == before && started.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(random.hash_one(cycle) % 250)).await;
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        seen.push(contacts(&store).await);
        if seen.last() == Some(&total) {
            break;
        }
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]) && seen.len() > 3,
        "the kills landed during the work, after progress: {seen:?}"
    );
    seen
}

/// Every one of `total` contacts is there once, with its item row; the
/// history's added adds up; the database is sound.
async fn assert_each_contact_once(store: &kizuna_store::Store, total: i64) {
    assert_eq!(contacts(store).await, total, "none lost, none twice");
    let distinct = count(
        store,
        "SELECT COUNT(DISTINCT email_key) AS n FROM records WHERE module = 'Contacts'",
        &[],
    )
    .await;
    assert_eq!(distinct, total);
    let items = count(
        store,
        "SELECT COUNT(*) AS n FROM mail_items WHERE crm_id IS NOT NULL",
        &[],
    )
    .await;
    assert_eq!(items, total, "every item has its row");
    let added = count(
        store,
        "SELECT COALESCE(SUM(added), 0) AS n FROM sync_runs",
        &[],
    )
    .await;
    assert_eq!(added, total, "the history adds up");
    assert_integrity(store).await;
}
