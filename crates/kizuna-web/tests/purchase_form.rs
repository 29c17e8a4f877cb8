//! The ticket purchase form and the org settings an integration depends on:
//! only the form's custom fields flow (EVT-12) and only to fields of the same
//! kind (EVT-13); a mapping that stops fitting stops the sync with words that
//! say how to mend it (EVT-5); a setting of either org that would stop every
//! sync is named when the integration is switched on (EVT-4).

// Shared by the sync test binaries; each uses a part of it.
#[allow(dead_code)]
mod sync_world;

use kizuna_testkit::{code, fingerprint};
use serde_json::{Value, json};
use sync_world::*;

impl World {
    fn form(&self) -> String {
        World::records(&self.other, "Ticket_Form_Fields")
    }

    async fn form_field(&self, fields: Value) -> Value {
        let (status, body) = self
            .app
            .post(&self.form(), &self.admin.key, &json!({"fields": fields}))
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    async fn add_field(&self, org: i64, module: &str, def: Value) {
        let (status, body) = self
            .app
            .post(
                &format!("/api/v1/orgs/{org}/modules/{module}/fields"),
                &self.admin.key,
                &def,
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    async fn put_mapping(&self, pairs: Value) -> (u16, Value) {
        self.app
            .call(
                "PUT",
                &format!("/api/v1/integrations/{}/mapping", self.id),
                Some(&self.admin.key),
                Some(&json!({"mapping": pairs})),
            )
            .await
    }

    async fn post(&self, path: &str) -> (u16, Value) {
        self.app
            .call("POST", path, Some(&self.admin.key), None)
            .await
    }

    async fn doctor_codes(&self) -> Vec<(String, String)> {
        let (_, d) = self
            .app
            .get(
                &format!("/api/v1/orgs/{}/doctor", self.crm.id),
                &self.admin.key,
            )
            .await;
        d["findings"]
            .as_array()
            .map(|fs| {
                fs.iter()
                    .map(|f| {
                        (
                            f["code"].as_str().unwrap_or_default().to_string(),
                            f["rule"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn defaults_and(extra: Value) -> Value {
    let mut pairs = vec![
        json!({"source": "First_Name", "target": "First_Name"}),
        json!({"source": "Last_Name", "target": "Last_Name"}),
        json!({"source": "Email", "target": "Email"}),
    ];
    pairs.extend(extra.as_array().cloned().unwrap_or_default());
    json!(pairs)
}

#[tokio::test]
async fn evt_12_evt_13_only_the_purchase_forms_custom_fields_flow_and_only_into_fields_of_their_kind()
 {
    let w = world("evt_12").await;
    // A field added to the form is an attendee field, named from its label
    // (or as given), of the form's type.
    let diet = w
        .form_field(json!({"Label": "Dietary needs", "Type": "text", "Section": "buyer"}))
        .await;
    assert_eq!(diet["fields"]["Field_Name"], "Form_Dietary_Needs", "{diet}");
    let shirt = w
        .form_field(json!({"Label": "T シャツのサイズ", "Type": "dropdown", "Section": "ticket", "Options": "S\nM\nL\n"}))
        .await;
    let shirt_field = shirt["fields"]["Field_Name"].as_str().expect("a name");
    let (_, fields) = w
        .app
        .get(
            &format!("/api/v1/orgs/{}/modules/Attendees/fields", w.events().id),
            &w.admin.key,
        )
        .await;
    let of = |name: &str| {
        fields["fields"]
            .as_array()
            .and_then(|fs| fs.iter().find(|f| f["api_name"] == name).cloned())
            .unwrap_or_else(|| panic!("Attendees.{name} exists: {fields}"))
    };
    assert_eq!(of("Form_Dietary_Needs")["type"], "text");
    assert_eq!(of(shirt_field)["type"], "picklist");
    assert_eq!(of(shirt_field)["picklist"], json!(["S", "M", "L"]));

    // Bad input writes nothing: the batch's good field is not made either.
    let before = fingerprint(&w.app.store).await;
    let (status, body) = w
        .app
        .post(
            &w.form(),
            &w.admin.key,
            &json!({"records": [
                {"fields": {"Label": "Company size", "Type": "text", "Section": "buyer"}},
                {"fields": {"Label": "Bad", "Type": "text", "Section": "buyer", "Field_Name": "1bad"}}
            ]}),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid_api_name"), "{body}");
    let (status, body) = w
        .app
        .post(
            &w.form(),
            &w.admin.key,
            &json!({"fields": {"Label": "Seats", "Type": "number", "Section": "ticket"}}),
        )
        .await;
    assert_eq!(
        status, 400,
        "Events offers no number fields (EVT-13): {body}"
    );
    assert_eq!(
        fingerprint(&w.app.store).await,
        before,
        "nothing was written"
    );
    // What defines the attendee field cannot change under it.
    let (status, body) = w
        .app
        .patch(
            &format!("{}/{}", w.form(), diet["id"]),
            &w.admin.key,
            &json!({"fields": {"Type": "dropdown"}}),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "form_field_fixed"), "{body}");
    assert_eq!(body["error"]["rule"], "EVT-12");

    // A custom attendee field made any other way is not the form's.
    w.add_field(
        w.events().id,
        "Attendees",
        json!({"api_name": "Internal_Note", "label": "Internal note", "type": "text"}),
    )
    .await;
    w.add_field(
        w.crm.id,
        "Leads",
        json!({"api_name": "Diet", "label": "Diet", "type": "text"}),
    )
    .await;
    w.add_field(w.crm.id, "Leads", json!({"api_name": "Size", "label": "Size", "type": "picklist", "picklist": ["S", "M", "L", "XL"]}))
        .await;
    w.add_field(w.crm.id, "Leads", json!({"api_name": "Small_Size", "label": "Small size", "type": "picklist", "picklist": ["S", "M"]}))
        .await;
    let (status, body) = w
        .put_mapping(defaults_and(
            json!([{"source": "Internal_Note", "target": "Diet"}]),
        ))
        .await;
    assert_eq!(
        (status, code(&body)),
        (400, "mapping_not_a_form_field"),
        "{body}"
    );
    assert_eq!(body["error"]["rule"], "EVT-12");
    assert!(
        body["error"]["fix"]["en"]
            .as_str()
            .is_some_and(|f| f.contains("Ticket_Form_Fields")),
        "{body}"
    );
    // A dropdown into a picklist that lacks some of its values: refused,
    // naming them.
    let (status, body) = w
        .put_mapping(defaults_and(
            json!([{"source": shirt_field, "target": "Small_Size"}]),
        ))
        .await;
    assert_eq!(
        (status, code(&body)),
        (400, "mapping_picklist_values"),
        "{body}"
    );
    assert_eq!(body["error"]["details"]["missing"], json!(["L"]));
    // Text into text, dropdown into picklist: accepted, and the values flow.
    let mapping = defaults_and(json!([
        {"source": "Form_Dietary_Needs", "target": "Diet"},
        {"source": shirt_field, "target": "Size"}
    ]));
    let (status, body) = w.put_mapping(mapping).await;
    assert_eq!(status, 200, "{body}");
    let expo = w.event("Sendai Fair").await;
    w.create(
        w.events(),
        "Attendees",
        json!({"Email": "mei@example.com", "Last_Name": "Mori", "Event": expo, "Status": "registered",
               "Form_Dietary_Needs": "vegetarian", shirt_field: "L", "Internal_Note": "VIP"}),
    )
    .await;
    w.sync().await;
    let lead = &w.list(&w.crm, "Leads").await[0]["fields"];
    assert_eq!(lead["Diet"], "vegetarian", "{lead}");
    assert_eq!(lead["Size"], "L", "{lead}");
    assert!(
        !lead
            .as_object()
            .is_some_and(|f| f.values().any(|v| v == "VIP")),
        "a field off the form does not flow: {lead}"
    );
}

#[tokio::test]
async fn evt_5_a_mapping_that_stops_fitting_stops_the_sync_with_its_fix_and_a_reset_mends_it() {
    let w = world("evt_5").await;
    let diet = w
        .form_field(json!({"Label": "Dietary needs", "Type": "text", "Section": "buyer"}))
        .await;
    w.add_field(
        w.crm.id,
        "Leads",
        json!({"api_name": "Diet", "label": "Diet", "type": "text"}),
    )
    .await;
    let (status, body) = w
        .put_mapping(defaults_and(
            json!([{"source": "Form_Dietary_Needs", "target": "Diet"}]),
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let expo = w.event("Kobe Expo").await;
    w.attendee(expo, "ren@example.com", "Abe", "registered")
        .await;
    w.sync().await;
    assert_eq!(w.list(&w.crm, "Leads").await.len(), 1);

    // The field leaves the purchase form: the Events side still shows the
    // integration active, and the CRM side says what broke and how to mend it.
    let (status, body) = w
        .app
        .delete(&format!("{}/{}", w.form(), diet["id"]), &w.admin.key)
        .await;
    assert_eq!(status, 200, "{body}");
    w.attendee(expo, "sora@example.com", "Kato", "registered")
        .await;
    let (_, i) = w
        .app
        .get(&format!("/api/v1/integrations/{}", w.id), &w.admin.key)
        .await;
    assert_eq!(i["state"], "active");
    let sync = format!("/api/v1/integrations/{}/sync", w.id);
    let (status, body) = w.post(&sync).await;
    assert_eq!((status, code(&body)), (409, "mapping_broken"), "{body}");
    assert_eq!(body["error"]["rule"], "EVT-5");
    assert!(
        body["error"]["message"]["en"]
            .as_str()
            .is_some_and(|m| m.contains("Form_Dietary_Needs")),
        "{body}"
    );
    assert!(
        body["error"]["fix"]["ja"]
            .as_str()
            .is_some_and(|f| f.contains("mapping/reset")),
        "{body}"
    );
    assert!(
        w.doctor_codes()
            .await
            .contains(&("mapping_broken".to_string(), "EVT-5".to_string()))
    );
    assert_eq!(w.list(&w.crm, "Leads").await.len(), 1, "nothing synced");

    // Resetting the mapping mends it.
    let (status, body) = w
        .post(&format!("/api/v1/integrations/{}/mapping/reset", w.id))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = w.post(&sync).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(w.list(&w.crm, "Leads").await.len(), 2);
    assert!(w.doctor_codes().await.is_empty());

    // A mapping that leaves a required CRM field empty would fail every
    // attendee: it is named before the integration runs again.
    let (status, body) = w
        .put_mapping(json!([{"source": "Email", "target": "Email"}]))
        .await;
    assert_eq!(status, 200, "{body}");
    w.post(&format!("/api/v1/integrations/{}/pause", w.id))
        .await;
    let (status, body) = w
        .post(&format!("/api/v1/integrations/{}/resume", w.id))
        .await;
    assert_eq!(
        (status, code(&body)),
        (409, "required_field_not_mapped"),
        "{body}"
    );
    assert_eq!(body["error"]["details"]["field"], "Last_Name");
}

#[tokio::test]
async fn evt_4_an_org_setting_that_stops_the_integration_is_named_when_it_is_switched_on() {
    let w = world("evt_4").await;
    w.post(&format!("/api/v1/integrations/{}/pause", w.id))
        .await;
    let campaigns = format!("/api/v1/orgs/{}/modules/Campaigns", w.crm.id);
    let (status, body) = w
        .app
        .patch(&campaigns, &w.admin.key, &json!({"enabled": false}))
        .await;
    assert_eq!(status, 200, "{body}");

    let resume = format!("/api/v1/integrations/{}/resume", w.id);
    let (status, body) = w.post(&resume).await;
    assert_eq!(
        (status, code(&body)),
        (409, "org_setting_module_disabled"),
        "{body}"
    );
    assert_eq!(body["error"]["rule"], "EVT-4");
    assert_eq!(
        body["error"]["details"]["setting"],
        "modules.Campaigns.enabled"
    );
    assert_eq!(body["error"]["details"]["org"], w.crm.id);
    for lang in ["en", "ja"] {
        assert!(
            body["error"]["message"][lang]
                .as_str()
                .is_some_and(|m| m.contains("Campaigns") && m.contains(&w.crm.id.to_string())),
            "{lang}: {body}"
        );
    }
    assert!(
        body["error"]["fix"]["en"]
            .as_str()
            .is_some_and(|f| f.contains(&campaigns)),
        "{body}"
    );
    let (_, i) = w
        .app
        .get(&format!("/api/v1/integrations/{}", w.id), &w.admin.key)
        .await;
    assert_eq!(i["state"], "paused", "the refusal changed nothing");
    assert!(w.doctor_codes().await.contains(&(
        "org_setting_module_disabled".to_string(),
        "EVT-4".to_string()
    )));

    let (status, _) = w
        .app
        .patch(&campaigns, &w.admin.key, &json!({"enabled": true}))
        .await;
    assert_eq!(status, 200);
    let (status, body) = w.post(&resume).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "active");
}
