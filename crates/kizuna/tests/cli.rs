//! The `kizuna` binary as a process: the administration commands, their exit
//! codes and bilingual refusals, and `serve` / `demo` answering the API on the
//! same data while the commands keep working (SQLite always, PostgreSQL when
//! `KIZUNA_TEST_POSTGRES_URL` is set).

// Shared by the CLI test binaries; each uses a part of it.
#[allow(dead_code)]
mod cli_support;

use cli_support::{Cli, Server, path_str};
use kizuna_testkit::{Backend, TestDb};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@example.com";

/// The orgs of `/api/v1/me`.
fn orgs(me: &Value) -> &Vec<Value> {
    me["orgs"].as_array().expect("/me has a list of orgs")
}

/// The org with `id` in `/api/v1/me`, if listed.
fn org_in(me: &Value, id: i64) -> Option<&Value> {
    orgs(me).iter().find(|o| o["id"].as_i64() == Some(id))
}

/// The API names of an org's modules.
async fn module_names(server: &Server, key: &str, org: i64) -> Vec<String> {
    let body = server
        .get_ok(key, &format!("/api/v1/orgs/{org}/modules"))
        .await;
    body["modules"]
        .as_array()
        .expect("a list of modules")
        .iter()
        .map(|m| {
            m["api_name"]
                .as_str()
                .expect("a module has an api_name")
                .to_string()
        })
        .collect()
}

/// The role of the member with `email` in the org, from the members list.
async fn member_role(server: &Server, key: &str, org: i64, email: &str) -> Option<String> {
    let body = server
        .get_ok(key, &format!("/api/v1/orgs/{org}/members"))
        .await;
    body["members"]
        .as_array()
        .expect("a list of members")
        .iter()
        .find(|m| m["email"] == email)
        .map(|m| m["role"].as_str().expect("a member has a role").to_string())
}

// ----- the whole flow ------------------------------------------------------------

#[tokio::test]
async fn commands_set_up_a_user_key_and_org_that_the_server_serves() {
    let cli = Cli::sqlite();
    let alice_id = cli.create_user(ALICE, "Alice").await;
    let key = cli.create_key(ALICE).await;
    let org = cli.create_org("crm", "Acme", "standard", ALICE).await;
    let bob_id = cli.create_user(BOB, "Bob").await;
    assert_ne!(alice_id, bob_id, "two users, two ids");
    cli.add_member(org, BOB, "member").await;

    let server = cli.serve().await;
    let me = server.get_ok(&key, "/api/v1/me").await;
    assert_eq!(me["user"]["email"], ALICE, "{me}");
    assert_eq!(me["user"]["id"].as_i64(), Some(alice_id), "{me}");
    assert_eq!(orgs(&me).len(), 1, "{me}");
    let listed = org_in(&me, org).unwrap_or_else(|| panic!("/me lists org {org}: {me}"));
    assert_eq!(listed["role"], "administrator", "{me}");
    assert_eq!(listed["app"], "crm", "{me}");
    assert_eq!(listed["name"], "Acme", "{me}");
    assert_eq!(listed["plan"], "standard", "{me}");

    let modules = module_names(&server, &key, org).await;
    for crm in ["Leads", "Contacts", "Accounts", "Deals"] {
        assert!(
            modules.iter().any(|m| m == crm),
            "the CRM org has {crm}: {modules:?}"
        );
    }
    assert_eq!(
        member_role(&server, &key, org, BOB).await.as_deref(),
        Some("member")
    );
    assert_eq!(
        member_role(&server, &key, org, ALICE).await.as_deref(),
        Some("administrator")
    );

    // The key is what lets one in.
    let (status, body) = server.get(None, "/api/v1/me").await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = server.get(Some("kz_not-a-key"), "/api/v1/me").await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test]
async fn commands_work_while_the_server_runs_on_the_same_sqlite_data() {
    let cli = Cli::sqlite();
    cli.create_user(ALICE, "Alice").await;
    let key = cli.create_key(ALICE).await;
    let org = cli.create_org("desk", "Support", "free", ALICE).await;
    let server = cli.serve().await;
    assert_eq!(member_role(&server, &key, org, CAROL).await, None);

    // While it serves (and right after it answered), the CLI writes.
    cli.create_user(CAROL, "Carol").await;
    cli.add_member(org, CAROL, "administrator").await;
    assert_eq!(
        member_role(&server, &key, org, CAROL).await.as_deref(),
        Some("administrator"),
        "the server sees the member the CLI added"
    );
    let carol_key = cli.create_key(CAROL).await;
    let me = server.get_ok(&carol_key, "/api/v1/me").await;
    assert_eq!(me["user"]["email"], CAROL, "{me}");
    assert_eq!(
        org_in(&me, org).map(|o| o["role"].clone()),
        Some(Value::from("administrator")),
        "{me}"
    );

    let second = cli
        .create_org("projects", "Roadmap", "premium", ALICE)
        .await;
    let me = server.get_ok(&key, "/api/v1/me").await;
    assert_eq!(orgs(&me).len(), 2, "{me}");
    assert_eq!(
        org_in(&me, second).map(|o| o["app"].clone()),
        Some(Value::from("projects")),
        "{me}"
    );
}

// ----- GEN-10 ---------------------------------------------------------------------

#[tokio::test]
async fn gen_10_deactivated_user_key_refused_at_once() {
    let cli = Cli::sqlite();
    cli.create_user(ALICE, "Alice").await;
    cli.create_user(BOB, "Bob").await;
    let alice = cli.create_key(ALICE).await;
    let bob = cli.create_key(BOB).await;
    let org = cli.create_org("crm", "Acme", "free", ALICE).await;
    cli.add_member(org, BOB, "administrator").await;
    let server = cli.serve().await;
    server.get_ok(&alice, "/api/v1/me").await;

    let out = cli
        .run(&["user", "deactivate", "--email", ALICE], None)
        .await
        .success();
    // The very next call with the key is refused, naming the rule.
    let (status, body) = server.get(Some(&alice), "/api/v1/me").await;
    assert_eq!(status, 401, "after {out}\n{body}");
    let error = &body["error"];
    assert_eq!(error["code"], "user_deactivated", "{body}");
    assert_eq!(error["rule"], "GEN-10", "{body}");
    for text in ["message", "fix"] {
        for lang in ["en", "ja"] {
            assert!(
                error[text][lang]
                    .as_str()
                    .is_some_and(|s| !s.trim().is_empty()),
                "{text}.{lang} is given: {body}"
            );
        }
    }
    assert!(
        error["message"]["ja"]
            .as_str()
            .is_some_and(|s| s.chars().any(cli_support::is_japanese)),
        "{body}"
    );
    // Every route, not only /me.
    let (status, body) = server
        .get(Some(&alice), &format!("/api/v1/orgs/{org}/members"))
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "user_deactivated", "{body}");
    // Another user's key is not affected, and sees Alice as inactive.
    let members = server
        .get_ok(&bob, &format!("/api/v1/orgs/{org}/members"))
        .await;
    let alice_row = members["members"]
        .as_array()
        .expect("a list of members")
        .iter()
        .find(|m| m["email"] == ALICE)
        .cloned()
        .unwrap_or_else(|| panic!("Alice is still a member: {members}"));
    assert_eq!(alice_row["active"], false, "{members}");

    cli.run(&["user", "activate", "--email", ALICE], None)
        .await
        .success();
    let me = server.get_ok(&alice, "/api/v1/me").await;
    assert_eq!(me["user"]["email"], ALICE, "{me}");
    assert_eq!(me["user"]["active"], true, "{me}");
}

// ----- exit codes and refusals ------------------------------------------------------

#[tokio::test]
async fn a_refused_command_exits_1_and_explains_in_english_and_japanese() {
    let cli = Cli::sqlite();
    cli.create_user(ALICE, "Alice").await;

    // Duplicate user (also with another spelling of the same address).
    for email in [ALICE, "Alice@Example.com"] {
        cli.run(
            &["user", "create", "--email", email, "--name", "Again"],
            Some("another password\n"),
        )
        .await
        .refusal("already_exists");
    }
    // The password comes from standard input, and is checked.
    cli.run(
        &["user", "create", "--email", BOB, "--name", "Bob"],
        Some("short\n"),
    )
    .await
    .refusal("weak_password");
    cli.run(
        &["user", "create", "--email", "not-an-address", "--name", "X"],
        Some("long enough password\n"),
    )
    .await
    .refusal("invalid_email");

    // Unknown plan: names the plans there are, and creates nothing.
    let out = cli
        .run(
            &[
                "org", "create", "--app", "crm", "--name", "Acme", "--plan", "gold", "--admin",
                ALICE,
            ],
            None,
        )
        .await
        .refusal("unknown_plan");
    assert!(
        out.stderr
            .contains("free, standard, professional, enterprise"),
        "the valid plans are named:\n{out}"
    );
    cli.run(
        &[
            "org",
            "add-member",
            "--org",
            "1",
            "--email",
            ALICE,
            "--role",
            "member",
        ],
        None,
    )
    .await
    .refusal("not_found");
    cli.run(
        &[
            "org", "create", "--app", "erp", "--name", "Acme", "--plan", "free", "--admin", ALICE,
        ],
        None,
    )
    .await
    .refusal("unknown_app");
    cli.run(
        &[
            "org", "create", "--app", "crm", "--name", "Acme", "--plan", "free", "--admin", BOB,
        ],
        None,
    )
    .await
    .refusal("user_not_found");

    // Unknown users.
    cli.run(&["key", "create", "--email", BOB], None)
        .await
        .refusal("user_not_found");
    cli.run(&["user", "deactivate", "--email", BOB], None)
        .await
        .refusal("user_not_found");

    // A member twice.
    let org = cli.create_org("crm", "Acme", "free", ALICE).await;
    cli.create_user(BOB, "Bob").await;
    cli.add_member(org, BOB, "member").await;
    cli.run(
        &[
            "org",
            "add-member",
            "--org",
            &org.to_string(),
            "--email",
            BOB,
            "--role",
            "administrator",
        ],
        None,
    )
    .await
    .refusal("already_exists");
}

#[tokio::test]
async fn a_usage_error_exits_2() {
    let cli = Cli::sqlite();
    let cases: [&[&str]; 7] = [
        &["user", "create", "--name", "No Email"],
        &["key", "create"],
        &[
            "org", "create", "--app", "crm", "--name", "Acme", "--plan", "free",
        ],
        &["frobnicate"],
        &["user", "promote", "--email", ALICE],
        &[
            "org",
            "add-member",
            "--org",
            "1",
            "--email",
            ALICE,
            "--role",
            "owner",
        ],
        &[
            "org",
            "add-member",
            "--org",
            "one",
            "--email",
            ALICE,
            "--role",
            "member",
        ],
    ];
    for args in cases {
        let out = cli.run(args, Some("long enough password\n")).await.exit(2);
        assert!(!out.stderr.trim().is_empty(), "usage is explained:\n{out}");
    }
    let out = cli
        .run(
            &[
                "org",
                "add-member",
                "--org",
                "1",
                "--email",
                ALICE,
                "--role",
                "owner",
            ],
            None,
        )
        .await
        .exit(2);
    assert!(
        out.stderr.contains("administrator") && out.stderr.contains("member"),
        "the valid roles are named:\n{out}"
    );
    // Nothing above got as far as opening the data.
    assert!(
        !cli.tmp.path().join("data").exists(),
        "a usage error touches no data"
    );
    assert!(
        !cli.tmp.path().join("kizuna-data").exists(),
        "a usage error touches no data"
    );
}

// ----- the demo ---------------------------------------------------------------------

/// Starts `kizuna demo` on `dir`; the server and the key it printed.
async fn start_demo(cli: &Cli, dir: &str) -> (Server, String) {
    let args = [
        "demo".to_string(),
        "--data-dir".to_string(),
        dir.to_string(),
    ];
    let server = Server::start(cli.tmp.path(), &args).await;
    let key = server.stdout_line("API key:").await;
    assert!(
        !key.is_empty() && !key.contains(char::is_whitespace),
        "a key after \"API key:\": {:?}",
        server.stdout_lines()
    );
    (server, key)
}

/// Org id → module → number of records (up to 1000), checking on the way
/// that the demo has the five apps and something in every module.
async fn demo_contents(server: &Server, key: &str) -> BTreeMap<i64, BTreeMap<String, usize>> {
    let me = server.get_ok(key, "/api/v1/me").await;
    let apps: BTreeSet<&str> = orgs(&me)
        .iter()
        .map(|o| o["app"].as_str().expect("an org has an app"))
        .collect();
    assert_eq!(orgs(&me).len(), 5, "one org of each app: {me}");
    assert_eq!(
        apps,
        BTreeSet::from(["crm", "desk", "projects", "events", "inventory"]),
        "{me}"
    );
    let mut contents = BTreeMap::new();
    for org in orgs(&me) {
        let id = org["id"].as_i64().expect("an org has an id");
        assert_eq!(
            org["role"], "administrator",
            "the key is the administrator's: {me}"
        );
        let modules = module_names(server, key, id).await;
        assert!(!modules.is_empty(), "org {id} has modules");
        let mut counts = BTreeMap::new();
        for module in modules {
            let one = server
                .get_ok(
                    key,
                    &format!("/api/v1/orgs/{id}/modules/{module}/records?limit=1"),
                )
                .await;
            let records = one["records"].as_array().expect("a list of records");
            assert_eq!(
                records.len(),
                1,
                "{} org {id}: module {module} has a sample record: {one}",
                org["app"]
            );
            let all = server
                .get_ok(
                    key,
                    &format!("/api/v1/orgs/{id}/modules/{module}/records?limit=1000"),
                )
                .await;
            let n = all["records"].as_array().expect("a list of records").len();
            counts.insert(module, n);
        }
        contents.insert(id, counts);
    }
    contents
}

#[tokio::test]
async fn demo_creates_its_data_dir_fills_every_module_and_runs_twice_without_duplicates() {
    let cli = Cli::sqlite();
    let dir = cli.tmp.path().join("new-dir");
    assert!(!dir.exists());
    let dir = path_str(&dir);

    let (server, first_key) = start_demo(&cli, &dir).await;
    assert!(
        server
            .stdout_lines()
            .iter()
            .any(|l| l.contains(&server.base)),
        "the demo prints its URL: {:?}",
        server.stdout_lines()
    );
    let first = demo_contents(&server, &first_key).await;
    server.stop();
    assert!(
        cli.tmp.path().join("new-dir").join("kizuna.db").exists(),
        "the demo keeps its data in the directory it created"
    );

    let (server, second_key) = start_demo(&cli, &dir).await;
    assert_ne!(first_key, second_key, "the second run prints a new key");
    let second = demo_contents(&server, &second_key).await;
    assert_eq!(
        first, second,
        "the second run keeps the first run's data and adds none"
    );
}

// ----- PostgreSQL -------------------------------------------------------------------

#[tokio::test]
async fn commands_and_serve_work_on_postgres() {
    const TEST: &str = "commands_and_serve_work_on_postgres";
    // The database is dropped when `db` goes, whether the test passed or not.
    let Some(db) = TestDb::create(Backend::Postgres, TEST).await else {
        return;
    };
    let url = db.url.clone();

    let outcome = tokio::spawn(async move {
        let cli = Cli::postgres(&url);
        let alice_id = cli.create_user(ALICE, "Alice").await;
        let key = cli.create_key(ALICE).await;
        let org = cli
            .create_org("inventory", "Warehouse", "standard", ALICE)
            .await;
        cli.run(
            &["user", "create", "--email", ALICE, "--name", "Again"],
            Some("another password\n"),
        )
        .await
        .refusal("already_exists");
        let server = cli.serve().await;
        let me = server.get_ok(&key, "/api/v1/me").await;
        assert_eq!(me["user"]["id"].as_i64(), Some(alice_id), "{me}");
        let listed = org_in(&me, org).unwrap_or_else(|| panic!("/me lists org {org}: {me}"));
        assert_eq!(listed["role"], "administrator", "{me}");
        assert_eq!(listed["app"], "inventory", "{me}");
        // And the commands keep working while it serves, GEN-10 included.
        cli.create_user(BOB, "Bob").await;
        cli.add_member(org, BOB, "member").await;
        assert_eq!(
            member_role(&server, &key, org, BOB).await.as_deref(),
            Some("member")
        );
        cli.run(&["user", "deactivate", "--email", ALICE], None)
            .await
            .success();
        let (status, body) = server.get(Some(&key), "/api/v1/me").await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["rule"], "GEN-10", "{body}");
        // No SQLite database was made in the data directory's place.
        assert!(!cli.tmp.path().join("kizuna-data").exists());
    })
    .await;

    drop(db);
    if let Err(join) = outcome {
        match join.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(e) => panic!("{TEST} did not finish: {e}"),
        }
    }
}

#[tokio::test]
async fn key_revoke_refuses_that_key_at_once_and_keeps_the_others() {
    let cli = Cli::sqlite();
    cli.create_user(ALICE, "Alice").await;
    let first = cli.create_key(ALICE).await;
    let second = cli.create_key(ALICE).await;
    let server = cli.serve().await;
    server.get_ok(&first, "/api/v1/me").await;

    let listed = cli
        .run(&["key", "list", "--email", ALICE], None)
        .await
        .success();
    let ids: Vec<String> = listed
        .stdout
        .lines()
        .filter_map(|l| l.split('\t').next().map(str::to_string))
        .collect();
    assert_eq!(ids.len(), 2, "{listed}");
    assert!(
        !listed.stdout.contains(&first),
        "a key is never printed again"
    );
    // Newest first: the first key is the last line.
    let first_id = ids[1].clone();
    cli.run(
        &["key", "revoke", "--email", ALICE, "--id", &first_id],
        None,
    )
    .await
    .success();
    let (status, body) = server.get(Some(&first), "/api/v1/me").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "key_revoked", "{body}");
    server.get_ok(&second, "/api/v1/me").await;
    cli.run(
        &["key", "revoke", "--email", ALICE, "--id", &first_id],
        None,
    )
    .await
    .refusal("not_found");
}

#[tokio::test]
async fn gen_12_doctor_explains_a_pending_integration_and_exits_1() {
    let cli = Cli::sqlite();
    cli.create_user(ALICE, "Alice").await;
    let key = cli.create_key(ALICE).await;
    let crm = cli.create_org("crm", "Acme", "standard", ALICE).await;
    let events = cli
        .create_org("events", "Acme Events", "standard", ALICE)
        .await;
    let org = crm.to_string();
    let healthy = cli.run(&["doctor", "--org", &org], None).await.success();
    assert!(healthy.stdout.contains("no problem found"), "{healthy}");

    let server = cli.serve().await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/integrations", server.base))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"kind": "crm-events", "from_org": {crm}, "to_org": {events}}}"#
        ))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status().as_u16(), 201);

    let out = cli.run(&["doctor", "--org", &org], None).await.exit(1);
    assert!(out.stdout.contains("[GEN-4] integration_pending"), "{out}");
    assert!(
        out.stdout.contains("fix:") && out.stdout.contains("Acme Events"),
        "{out}"
    );
    assert!(out.stdout.chars().any(cli_support::is_japanese), "{out}");
}

#[tokio::test]
async fn a_busy_port_is_refused_in_both_languages_with_its_fix() {
    let cli = Cli::sqlite();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("its address").to_string();
    let out = cli
        .run(&["serve", "--bind", &addr], None)
        .await
        .refusal("cannot_listen");
    assert!(out.stderr.contains("--bind"), "{out}");
}
