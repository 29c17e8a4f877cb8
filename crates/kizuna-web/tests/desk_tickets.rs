//! Desk tickets inside CRM records, over real HTTP: the related list on
//! Accounts, Contacts and Deals from setup on, on custom modules when an
//! administrator adds it, filtered by the caller's Desk departments, and a
//! new ticket from a CRM contact.

// Shared by the sync test binaries; each uses a part of it.
#[allow(dead_code)]
mod sync_world;

use kizuna_domain::{App, Role};
use kizuna_testkit::{Actor, Backend, code, fingerprint};
use serde_json::{Value, json};
use sync_world::*;

/// A CRM ⇄ Desk world with a synced account and contact, two Desk
/// departments, and an agent who is a member of both orgs and of Support.
struct Desk {
    w: World,
    agent: Actor,
    contact: i64,
    account: i64,
    desk_contact: i64,
    desk_account: i64,
}

async fn desk(test: &str) -> Desk {
    let w = World::linked(Backend::Sqlite, test, App::Desk, json!({}))
        .await
        .expect("SQLite");
    let agent = w.app.actor("agent@example.com").await;
    for org in [w.crm.id, w.desk().id] {
        w.app
            .store
            .add_member(org, agent.user.id, Role::Member)
            .await
            .expect("member");
    }
    for name in ["Support", "Billing"] {
        let (status, d) = w
            .app
            .post(
                &format!("/api/v1/orgs/{}/departments", w.desk().id),
                &w.admin.key,
                &json!({"name": name}),
            )
            .await;
        assert_eq!(status, 201, "{d}");
        if name == "Support" {
            let (status, body) = w
                .app
                .post(
                    &format!(
                        "/api/v1/orgs/{}/departments/{}/members",
                        w.desk().id,
                        d["id"]
                    ),
                    &w.admin.key,
                    &json!({"user_id": agent.user.id}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
    }
    let account = w
        .create(&w.crm, "Accounts", json!({"Account_Name": "Acme"}))
        .await;
    let contact = w
        .create(
            &w.crm,
            "Contacts",
            json!({"Last_Name": "Sato", "Email": "sato@acme.example", "Account": account}),
        )
        .await;
    w.sync().await;
    let id_of = |records: Vec<Value>| records[0]["id"].as_i64().expect("a twin");
    let desk_contact = id_of(w.list(w.desk(), "Contacts").await);
    let desk_account = id_of(w.list(w.desk(), "Accounts").await);
    Desk {
        w,
        agent,
        contact,
        account,
        desk_contact,
        desk_account,
    }
}

impl Desk {
    fn url(&self, module: &str, id: i64) -> String {
        format!(
            "{}/{id}/related/Desk_Tickets",
            World::records(&self.w.crm, module)
        )
    }

    async fn tickets(&self, key: &str, module: &str, id: i64) -> (u16, Value) {
        self.w.app.get(&self.url(module, id), key).await
    }

    async fn ticket_in_desk(&self, subject: &str, department: &str) -> i64 {
        self.w
            .create(
                self.w.desk(),
                "Tickets",
                json!({"Subject": subject, "Department": department, "Contact": self.desk_contact, "Account": self.desk_account}),
            )
            .await
    }
}

fn subjects(body: &Value) -> Vec<String> {
    body["records"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter_map(|r| r["fields"]["Subject"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn dsk_3_dsk_10_accounts_contacts_and_deals_list_their_desk_tickets_from_setup_on() {
    let d = desk("dsk_3_dsk_10").await;
    let key = d.w.admin.key.clone();
    // DSK-10: there from setup on, before any ticket exists.
    let (status, body) = d.tickets(&key, "Contacts", d.contact).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["records"], json!([]));

    d.ticket_in_desk("Printer on fire", "Support").await;
    let deal =
        d.w.create(
            &d.w.crm,
            "Deals",
            json!({"Deal_Name": "Renewal", "Stage": "Proposal", "Contact": d.contact}),
        )
        .await;
    for (module, id) in [
        ("Contacts", d.contact),
        ("Accounts", d.account),
        ("Deals", deal),
    ] {
        let (status, body) = d.tickets(&key, module, id).await;
        assert_eq!(status, 200, "{module}: {body}");
        assert_eq!(subjects(&body), ["Printer on fire"], "{module}: {body}");
    }
    // Other modules carry no Desk tickets until an administrator adds them.
    let lead =
        d.w.create(&d.w.crm, "Leads", json!({"Last_Name": "Lead"}))
            .await;
    let (status, body) = d.tickets(&key, "Leads", lead).await;
    assert_eq!(
        (status, code(&body)),
        (404, "desk_tickets_not_enabled"),
        "{body}"
    );
    assert_eq!(body["error"]["rule"], "DSK-6");
}

#[tokio::test]
async fn dsk_6_an_administrator_adds_desk_tickets_to_a_custom_module() {
    let d = desk("dsk_6").await;
    let key = d.w.admin.key.clone();
    let (status, module) = d
        .w
        .app
        .post(
            &format!("/api/v1/orgs/{}/modules", d.w.crm.id),
            &key,
            &json!({"api_name": "Site_Visits", "label_ja": "訪問", "fields": [
                {"api_name": "Visit_Name", "label": "Visit", "type": "text", "required": true},
                {"api_name": "Customer", "label": "Customer", "type": "lookup", "lookup_module": "Contacts"}
            ]}),
        )
        .await;
    assert_eq!(status, 201, "{module}");
    let visit =
        d.w.create(
            &d.w.crm,
            "Site_Visits",
            json!({"Visit_Name": "Kick-off", "Customer": d.contact}),
        )
        .await;
    d.ticket_in_desk("Onsite question", "Support").await;
    let (status, body) = d.tickets(&key, "Site_Visits", visit).await;
    assert_eq!((status, code(&body)), (404, "desk_tickets_not_enabled"));
    assert!(
        body["error"]["fix"]["en"]
            .as_str()
            .is_some_and(|f| f.contains("related_lists")),
        "{body}"
    );
    // A module the CRM does not have is refused, and changes nothing.
    let settings = format!("/api/v1/integrations/{}/settings", d.w.id);
    let before = fingerprint(&d.w.app.store).await;
    let (status, body) =
        d.w.app
            .patch(&settings, &key, &json!({"related_lists": ["Nope"]}))
            .await;
    assert_eq!((status, code(&body)), (400, "unknown_module"), "{body}");
    assert_eq!(fingerprint(&d.w.app.store).await, before);
    d.w.settings(json!({"related_lists": ["Site_Visits"]}))
        .await;
    let (status, body) = d.tickets(&key, "Site_Visits", visit).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(subjects(&body), ["Onsite question"]);
}

#[tokio::test]
async fn dsk_7_a_member_sees_the_tickets_of_their_departments_and_creates_only_there() {
    let d = desk("dsk_7").await;
    d.ticket_in_desk("Support case", "Support").await;
    d.ticket_in_desk("Invoice question", "Billing").await;
    let (status, body) = d.tickets(&d.agent.key, "Contacts", d.contact).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(subjects(&body), ["Support case"]);
    assert_eq!(body["hidden"], 1, "the answer says one is not shown");
    assert!(
        body["hidden_why"]["ja"]
            .as_str()
            .is_some_and(|w| w.contains("部門")),
        "{body}"
    );
    let (_, all) = d.tickets(&d.w.admin.key, "Contacts", d.contact).await;
    assert_eq!(
        subjects(&all).len(),
        2,
        "a Desk administrator sees every department"
    );

    // Creating in a department of someone else's is refused, saying which are hers.
    let before = fingerprint(&d.w.app.store).await;
    let url = d.url("Contacts", d.contact);
    let (status, refused) =
        d.w.app
            .post(
                &url,
                &d.agent.key,
                &json!({"fields": {"Subject": "Refund", "Department": "Billing"}}),
            )
            .await;
    assert_eq!(
        (status, code(&refused)),
        (403, "not_a_department_member"),
        "{refused}"
    );
    assert_eq!(refused["error"]["rule"], "DSK-7");
    assert_eq!(refused["error"]["details"]["yours"], json!(["Support"]));
    assert_eq!(fingerprint(&d.w.app.store).await, before, "nothing written");
    // A department Desk does not have: the refusal lists those it has.
    let (status, refused) =
        d.w.app
            .post(
                &url,
                &d.w.admin.key,
                &json!({"fields": {"Subject": "Lost", "Department": "Nowhere"}}),
            )
            .await;
    assert_eq!(
        (status, code(&refused)),
        (400, "unknown_department"),
        "{refused}"
    );
    assert_eq!(
        refused["error"]["details"]["departments"],
        json!(["Support", "Billing"])
    );
    assert!(
        refused["error"]["fix"]["ja"]
            .as_str()
            .is_some_and(|f| f.contains("/departments")),
        "{refused}"
    );
    // Without a department: the Tickets module's own refusal names the field.
    let (status, refused) =
        d.w.app
            .post(
                &url,
                &d.agent.key,
                &json!({"fields": {"Subject": "No dept"}}),
            )
            .await;
    assert_eq!((status, code(&refused)), (400, "required"), "{refused}");
    assert_eq!(refused["error"]["details"]["field"], "Department");
    assert_eq!(fingerprint(&d.w.app.store).await, before, "nothing written");
    let (status, made) = d
        .w
        .app
        .post(
            &url,
            &d.agent.key,
            &json!({"fields": {"Subject": "Login fails", "Department": "Support", "Priority": "High"}}),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["fields"]["Contact"], d.desk_contact);
    assert_eq!(made["fields"]["Account"], d.desk_account);
    assert_eq!(made["fields"]["Email"], "sato@acme.example");
    let (_, body) = d.tickets(&d.agent.key, "Contacts", d.contact).await;
    assert_eq!(subjects(&body), ["Support case", "Login fails"]);
}

#[tokio::test]
async fn dsk_9_a_contact_without_an_email_gets_no_new_ticket_until_it_has_one() {
    let d = desk("dsk_9").await;
    let bare =
        d.w.create(&d.w.crm, "Contacts", json!({"Last_Name": "NoMail"}))
            .await;
    d.w.sync().await;
    let url = d.url("Contacts", bare);
    let body = json!({"fields": {"Subject": "Help", "Department": "Support"}});
    let before = fingerprint(&d.w.app.store).await;
    let (status, refused) = d.w.app.post(&url, &d.agent.key, &body).await;
    assert_eq!(
        (status, code(&refused)),
        (409, "contact_without_email"),
        "{refused}"
    );
    assert_eq!(refused["error"]["rule"], "DSK-9");
    assert!(
        refused["error"]["fix"]["ja"]
            .as_str()
            .is_some_and(|f| f.contains("メールアドレス")),
        "{refused}"
    );
    assert_eq!(fingerprint(&d.w.app.store).await, before);
    d.w.edit(
        &d.w.crm,
        "Contacts",
        bare,
        json!({"Email": "nomail@acme.example"}),
    )
    .await;
    let (status, made) = d.w.app.post(&url, &d.agent.key, &body).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["fields"]["Email"], "nomail@acme.example");
}
