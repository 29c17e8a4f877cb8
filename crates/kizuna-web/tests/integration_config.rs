//! An integration's configuration over the API: field mapping (GEN-5,
//! EVT-13), settings (EVT-8), copy settings (GEN-11, EVT-10), doctor (GEN-12).

use common::{link, path, setup};
use kizuna_domain::App;
use kizuna_testkit::code;
use serde_json::{Value, json};

#[allow(dead_code)]
mod common;

#[tokio::test]
async fn gen_11_evt_10_copy_settings_needs_the_same_plan_and_disabled_integrations() {
    let s = setup("standard").await;
    let admin = &s.crm_admin;
    let base = format!("/api/v1/orgs/{}", s.crm.id);
    // The source's configuration.
    let (status, _) = s
        .app
        .post(
            &format!("{base}/modules/Contacts/fields"),
            &admin.key,
            &json!({"api_name": "Shoe_Size", "label": "Shoe size", "type": "text", "sortable": true}),
        )
        .await;
    assert_eq!(status, 201);
    s.app
        .patch(
            &format!("{base}/modules/Cases"),
            &admin.key,
            &json!({"enabled": false}),
        )
        .await;
    s.app
        .patch(
            &format!("{base}/modules/Contacts/fields/Fax"),
            &admin.key,
            &json!({"in_use": false}),
        )
        .await;
    s.app
        .patch(
            &format!("{base}/modules/Contacts/fields/First_Name"),
            &admin.key,
            &json!({"sortable": true}),
        )
        .await;
    let (_, l) = link(&s).await;
    let mapping = json!([{"source": "Company", "target": "Account_Name"}]);
    s.app
        .store
        .set_integration_config(
            l["id"].as_i64().expect("id"),
            &json!({"target_module": "Leads"}),
            &mapping,
        )
        .await
        .expect("mapping");

    // A sandbox of the same app, with its own (pending) link to take the mapping.
    let sandbox = s.app.org(App::Crm, "free", admin).await;
    let sandbox_events = s.app.org(App::Events, "standard", admin).await;
    let copy = format!("{base}/copy-settings");
    let body = json!({"to_org": sandbox.id});

    // The integration is pending (not disabled): refused, and nothing copied.
    let before = kizuna_testkit::fingerprint(&s.app.store).await;
    let (status, refused) = s.app.post(&copy, &admin.key, &body).await;
    assert_eq!(
        (status, code(&refused)),
        (409, "copy_settings_integration_active"),
        "{refused}"
    );
    assert_eq!(refused["error"]["rule"], "EVT-10");
    assert!(
        refused["error"]["fix"]["en"]
            .as_str()
            .unwrap_or("")
            .contains("Do not delete"),
        "{refused}"
    );
    assert_eq!(kizuna_testkit::fingerprint(&s.app.store).await, before);

    s.app
        .call("POST", &path(&l["id"], "disable"), Some(&admin.key), None)
        .await;
    // Different plans: refused, naming both.
    let (status, refused) = s.app.post(&copy, &admin.key, &body).await;
    assert_eq!(
        (status, code(&refused)),
        (409, "copy_settings_plan"),
        "{refused}"
    );
    assert_eq!(refused["error"]["rule"], "GEN-11");
    let en = refused["error"]["message"]["en"].as_str().unwrap_or("");
    assert!(
        en.contains("\"standard\"") && en.contains("\"free\""),
        "{en}"
    );

    s.app
        .patch(
            &format!("/api/v1/orgs/{}", sandbox.id),
            &admin.key,
            &json!({"plan": "standard"}),
        )
        .await;
    let (status, sandbox_link) = s
        .app
        .post(
            "/api/v1/integrations",
            &admin.key,
            &json!({"kind": "crm-events", "from_org": sandbox.id, "to_org": sandbox_events.id}),
        )
        .await;
    assert_eq!(status, 201, "{sandbox_link}");
    let (status, copied) = s.app.post(&copy, &admin.key, &body).await;
    assert_eq!(status, 200, "{copied}");
    assert_eq!(copied["fields_added"], json!(["Contacts.Shoe_Size"]));
    assert_eq!(copied["modules_switched"], json!(["Cases"]));
    assert_eq!(
        copied["fields_marked"],
        json!(["Contacts.First_Name", "Contacts.Fax"]),
        "in-use and sortable marks"
    );
    assert_eq!(copied["mappings"], json!(["crm-events"]));
    let (_, fields) = s
        .app
        .get(
            &format!("/api/v1/orgs/{}/modules/Contacts/fields", sandbox.id),
            &admin.key,
        )
        .await;
    assert!(
        fields["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .any(|f| f["api_name"] == "Shoe_Size" && f["custom"] == true && f["sortable"] == true)
    );
    let sortable = fields["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .any(|f| f["api_name"] == "First_Name" && f["sortable"] == true);
    assert!(sortable, "the sortable mark came along");
    let (_, target) = s
        .app
        .get(
            &format!("/api/v1/integrations/{}", sandbox_link["id"]),
            &admin.key,
        )
        .await;
    assert_eq!(target["mapping"], mapping, "the mapping came along");

    // Across apps: refused.
    let (status, refused) = s
        .app
        .post(&copy, &admin.key, &json!({"to_org": sandbox_events.id}))
        .await;
    assert_eq!(
        (status, code(&refused)),
        (400, "copy_settings_app"),
        "{refused}"
    );
}

#[tokio::test]
async fn gen_5_evt_13_mapped_fields_hold_the_same_kind_of_data_and_reset_is_always_possible() {
    let s = setup("standard").await;
    let (_, l) = link(&s).await;
    let url = format!("/api/v1/integrations/{}/mapping", l["id"]);
    let (status, m) = s.app.get(&url, &s.crm_admin.key).await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["mapping"], m["defaults"], "it starts with the defaults");
    assert!(
        m["mapping"]
            .as_array()
            .expect("pairs")
            .iter()
            .any(|p| p["source"] == "Company" && p["target"] == "Company")
    );
    assert_eq!(m["source"]["module"], "Attendees");
    assert_eq!(m["target"]["module"], "Leads");

    // Custom fields on both sides.
    let add = |org: i64, module: &str, def: Value| {
        let (app, key) = (
            &s.app,
            if org == s.crm.id {
                &s.crm_admin.key
            } else {
                &s.events_admin.key
            },
        );
        let path = format!("/api/v1/orgs/{org}/modules/{module}/fields");
        async move {
            let (status, body) = app.post(&path, key, &def).await;
            assert_eq!(status, 201, "{body}");
        }
    };
    // An attendee field of the purchase form (EVT-12): a dropdown.
    let (status, body) = s
        .app
        .post(
            &format!("/api/v1/orgs/{}/modules/Ticket_Form_Fields/records", s.events.id),
            &s.events_admin.key,
            &json!({"fields": {"Label": "Shirt size", "Type": "dropdown", "Section": "buyer", "Options": "S\nM\nL", "Field_Name": "Shirt_Size"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    add(
        s.events.id,
        "Attendees",
        json!({"api_name": "Seats", "label": "Seats", "type": "integer"}),
    )
    .await;
    add(
        s.crm.id,
        "Leads",
        json!({"api_name": "Shirt_Note", "label": "Shirt note", "type": "text"}),
    )
    .await;
    add(s.crm.id, "Leads", json!({"api_name": "Shirt_Size", "label": "Shirt size", "type": "picklist", "picklist": ["S", "M", "L"]})).await;
    add(
        s.crm.id,
        "Leads",
        json!({"api_name": "Seats", "label": "Seats", "type": "integer"}),
    )
    .await;

    let put = |pairs: Value| {
        let (app, key, url) = (&s.app, &s.crm_admin.key, &url);
        async move {
            app.call("PUT", url, Some(key), Some(&json!({"mapping": pairs})))
                .await
        }
    };
    // Picklist into text: refused, naming both fields and both types.
    let (status, body) = put(json!([{"source": "Shirt_Size", "target": "Shirt_Note"}])).await;
    assert_eq!(
        (status, code(&body)),
        (400, "mapping_incompatible"),
        "{body}"
    );
    assert_eq!(body["error"]["rule"], "GEN-5");
    for needle in ["Shirt_Size", "picklist", "Shirt_Note", "text"] {
        assert!(
            body["error"]["message"]["en"]
                .as_str()
                .unwrap_or("")
                .contains(needle),
            "{needle}: {body}"
        );
        assert!(
            body["error"]["message"]["ja"]
                .as_str()
                .unwrap_or("")
                .contains(needle),
            "{needle}: {body}"
        );
    }
    // Integer: Events cannot provide it (EVT-13).
    let (status, body) = put(json!([{"source": "Seats", "target": "Seats"}])).await;
    assert_eq!(
        (status, code(&body)),
        (400, "mapping_incompatible"),
        "{body}"
    );
    assert_eq!(body["error"]["rule"], "EVT-13");
    let (status, body) = put(json!([{"source": "Nope", "target": "Last_Name"}])).await;
    assert_eq!(
        (status, code(&body)),
        (400, "mapping_unknown_field"),
        "{body}"
    );
    let (_, unchanged) = s.app.get(&url, &s.crm_admin.key).await;
    assert_eq!(
        unchanged["mapping"], m["defaults"],
        "refusals changed nothing"
    );

    // Picklist into picklist (the Events dropdown): accepted.
    let mine = json!([{"source": "Email", "target": "Email"}, {"source": "Shirt_Size", "target": "Shirt_Size"}]);
    let (status, body) = put(mine.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["mapping"], mine);

    // Members may not change it; administrators may always reset it.
    let member = s.app.actor("member@example.com").await;
    s.app
        .store
        .add_member(s.crm.id, member.user.id, kizuna_domain::Role::Member)
        .await
        .expect("member");
    let (status, body) = s
        .app
        .call(
            "PUT",
            &url,
            Some(&member.key),
            Some(&json!({"mapping": []})),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "admin_required"), "{body}");
    let (status, body) = s
        .app
        .call(
            "POST",
            &format!("{url}/reset"),
            Some(&s.events_admin.key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["mapping"], m["defaults"]);
}

#[tokio::test]
async fn evt_8_settings_choose_leads_or_contacts_and_the_mapping_follows() {
    let s = setup("standard").await;
    let (_, l) = link(&s).await;
    let url = format!("/api/v1/integrations/{}/settings", l["id"]);
    let (status, body) = s
        .app
        .patch(&url, &s.crm_admin.key, &json!({"target_module": "Deals"}))
        .await;
    assert_eq!((status, code(&body)), (400, "invalid_setting"), "{body}");
    let (status, body) = s
        .app
        .patch(&url, &s.crm_admin.key, &json!({"colour": "red"}))
        .await;
    assert_eq!((status, code(&body)), (400, "unknown_setting"), "{body}");
    let (status, moved) = s
        .app
        .patch(
            &url,
            &s.crm_admin.key,
            &json!({"target_module": "Contacts", "trigger_status": "confirmed"}),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["settings"]["target_module"], "Contacts");
    assert_eq!(moved["settings"]["trigger_status"], "confirmed");
    // Leads' Company has no place in Contacts: the mapping follows the module.
    let company = moved["mapping"]
        .as_array()
        .expect("pairs")
        .iter()
        .find(|p| p["source"] == "Company")
        .cloned();
    assert_eq!(
        company.expect("Company is mapped")["target"],
        "Account_Name",
        "{moved}"
    );
}

#[tokio::test]
async fn gen_12_doctor_names_each_situation_with_its_rule_and_fix() {
    let s = setup("standard").await;
    let doctor = format!("/api/v1/orgs/{}/doctor", s.crm.id);
    let (status, healthy) = s.app.get(&doctor, &s.crm_admin.key).await;
    assert_eq!((status, &healthy["ok"]), (200, &json!(true)), "{healthy}");

    let (_, l) = link(&s).await;
    let rules = |report: &Value| -> Vec<String> {
        report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter_map(|f| f["rule"].as_str().map(str::to_string))
            .collect()
    };
    let (_, report) = s.app.get(&doctor, &s.crm_admin.key).await;
    assert_eq!(rules(&report), ["GEN-4"], "pending: {report}");
    s.app
        .call(
            "POST",
            &path(&l["id"], "enable"),
            Some(&s.events_admin.key),
            None,
        )
        .await;
    let (_, report) = s.app.get(&doctor, &s.crm_admin.key).await;
    assert_eq!(report["ok"], true, "{report}");

    // A downgrade and a deactivated setup user: both found, each with its fix.
    s.app
        .patch(
            &format!("/api/v1/orgs/{}", s.crm.id),
            &s.crm_admin.key,
            &json!({"plan": "free"}),
        )
        .await;
    s.app
        .store
        .set_user_active(&s.crm_admin.user.email, false)
        .await
        .expect("deactivate");
    let (_, report) = s
        .app
        .get(
            &format!("/api/v1/orgs/{}/doctor", s.events.id),
            &s.events_admin.key,
        )
        .await;
    assert_eq!(rules(&report), ["EVT-2", "GEN-10"], "{report}");
    for f in report["findings"].as_array().expect("findings") {
        for lang in ["en", "ja"] {
            assert!(!f["message"][lang].as_str().unwrap_or("").is_empty(), "{f}");
            assert!(!f["fix"][lang].as_str().unwrap_or("").is_empty(), "{f}");
        }
        assert_eq!(f["integration"], l["id"]);
    }
}
