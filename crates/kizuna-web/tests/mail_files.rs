//! Files a mail client exports, uploaded to a mail connection: a `.vcf` by
//! the rules and into the history of a sync, and the contacts CSV in
//! Japanese and Shift_JIS by the contact map (MAIL-2).

// Shared by the mail test binaries; each uses a part of it.
#[allow(dead_code)]
mod mail_world;

use kizuna_domain::App;
use kizuna_testkit::radicale::vcard;
use kizuna_testkit::{Backend, TestApp, code};
use mail_world::*;
use serde_json::{Value, json};

#[tokio::test]
async fn mail_import_through_the_api_takes_a_vcf_upload_by_the_same_rules_and_history() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "mail_import_api").await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let crm = app.org(App::Crm, "enterprise", &admin).await.id;
    let (status, body) = app
        .post(
            "/api/v1/integrations",
            &admin.key,
            &json!({"kind": "crm-mail", "from_org": crm, "settings": {"category": "crm"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().expect("id");
    let file = [
        vcard(
            "1",
            "Ono",
            "Yoko",
            Some("yoko@example.jp"),
            &["CATEGORIES:CRM"],
        ),
        vcard("2", "Oda", "Nobu", None, &["CATEGORIES:Private"]),
        "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Broken".to_string(),
    ]
    .concat();
    let upload = |name: &'static str, text: String| {
        let app = &app;
        let key = admin.key.clone();
        async move {
            let r = app
                .http
                .post(app.url(&format!("/api/v1/integrations/{id}/import?name={name}")))
                .bearer_auth(key)
                .header("content-type", "text/vcard")
                .body(text)
                .send()
                .await
                .expect("answers");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.expect("JSON"))
        }
    };
    let (status, body) = upload("contacts.vcf", file.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts(&body["run"]), [1, 0, 0, 0, 1, 1], "{body}");
    assert_eq!(body["run"]["trigger"], "import");
    let (status, body) = upload("contacts.vcf", file).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["run"]["added"], 0, "nothing twice: {body}");
    let (status, body) = upload("notes.txt", "not an export".into()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(code(&body), "unsupported_file");
}

#[tokio::test]
async fn mail_2_the_mail_clients_csv_export_in_japanese_and_shift_jis_imports_by_the_contact_map() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "mail_csv").await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let crm = app.org(App::Crm, "enterprise", &admin).await.id;
    let (status, body) = app
        .post(
            "/api/v1/integrations",
            &admin.key,
            &json!({"kind": "crm-mail", "from_org": crm, "settings": {}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().expect("id");
    let text = format!(
        "姓,名,電子メール アドレス,会社名,部署,役職,携帯電話,誕生日\r\n\
         山田,太郎,taro@example.jp,株式会社絆,営業部,部長,090-1111-2222,1980/4/1\r\n\
         佐藤,花子,hanako@example.jp,株式会社絆,総務部,{},,\r\n",
        "長".repeat(101)
    );
    let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(&text);
    assert!(!unmappable);
    let upload = |bytes: Vec<u8>| {
        let app = &app;
        let key = admin.key.clone();
        async move {
            let r = app
                .http
                .post(app.url(&format!(
                    "/api/v1/integrations/{id}/import?name=contacts.csv"
                )))
                .bearer_auth(key)
                .body(bytes)
                .send()
                .await
                .expect("answers");
            (r.status().as_u16(), r.json::<Value>().await.expect("JSON"))
        }
    };
    let (status, body) = upload(bytes.to_vec()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts(&body["run"]), [1, 0, 0, 0, 0, 1], "{body}");
    let (_, list) = app
        .get(
            &format!("/api/v1/orgs/{crm}/modules/Contacts/records"),
            &admin.key,
        )
        .await;
    let taro = &list["records"][0];
    assert_eq!(field(taro, "Last_Name"), "山田");
    assert_eq!(field(taro, "First_Name"), "太郎");
    assert_eq!(field(taro, "Account_Name"), "株式会社絆");
    assert_eq!(field(taro, "Department"), "営業部");
    assert_eq!(field(taro, "Mobile"), "090-1111-2222");
    assert_eq!(field(taro, "Date_of_Birth"), "1980-04-01");
    // Hanako's 101-character title failed alone, naming the field (MAIL-2).
    let (_, items) = app
        .get(
            &format!(
                "/api/v1/integrations/{id}/history/{}/items",
                body["run"]["id"]
            ),
            &admin.key,
        )
        .await;
    assert_eq!(items["items"][0]["details"]["cause"]["field"], "Title");
    assert_eq!(items["items"][0]["details"]["item"]["row"], 3);
    // Again: nothing twice.
    let (_, body) = upload(bytes.to_vec()).await;
    assert_eq!(body["run"]["added"], 0, "{body}");
}
