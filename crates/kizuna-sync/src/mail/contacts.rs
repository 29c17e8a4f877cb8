//! Contacts from the mail side into CRM Contacts: the field map of MAIL-2,
//! dedup by e-mail, else by last + first name (MAIL-3). The rules every
//! kind of item shares are in `items`.

use super::items::{Kind, Parsed, Probe};
use kizuna_connectors::vcard::{Contact, ContactField};
use kizuna_domain::validate::email_key;
use serde_json::{Map, Value, json};

pub const MODULE: &str = "Contacts";
pub const DATA_TYPE: &str = "contact";

/// MAIL-2: the mail client's contact field, the CRM Contacts field it fills,
/// and its name for the history (English, Japanese). The limits are the CRM
/// field's own (`kizuna-apps` catalog).
pub const CONTACT_MAP: &[(ContactField, &str, (&str, &str))] = {
    use ContactField as F;
    &[
        (F::FirstName, "First_Name", ("First name", "名")),
        (F::LastName, "Last_Name", ("Last name", "姓")),
        (F::Email, "Email", ("E-mail 1", "電子メール 1")),
        (F::JobTitle, "Title", ("Job title", "役職")),
        (F::Company, "Account_Name", ("Company", "会社名")),
        (F::Department, "Department", ("Department", "部署")),
        (F::BusinessPhone, "Phone", ("Business phone", "会社電話")),
        (F::HomePhone, "Home_Phone", ("Home phone", "自宅電話")),
        (
            F::OtherPhone,
            "Other_Phone",
            ("Other phone", "その他の電話"),
        ),
        (F::BusinessFax, "Fax", ("Business fax", "会社 FAX")),
        (F::MobilePhone, "Mobile", ("Mobile phone", "携帯電話")),
        (
            F::AssistantName,
            "Assistant",
            ("Assistant's name", "秘書の名前"),
        ),
        (
            F::AssistantPhone,
            "Asst_Phone",
            ("Assistant's phone", "秘書の電話"),
        ),
        (
            F::ManagerName,
            "Reports_To",
            ("Manager's name", "上司の名前"),
        ),
        (
            F::BusinessStreet,
            "Mailing_Street",
            ("Business street", "勤務先 番地"),
        ),
        (
            F::BusinessCity,
            "Mailing_City",
            ("Business city", "勤務先 市区町村"),
        ),
        (
            F::BusinessState,
            "Mailing_State",
            ("Business state", "勤務先 都道府県"),
        ),
        (
            F::BusinessPostalCode,
            "Mailing_Zip",
            ("Business postal code", "勤務先 郵便番号"),
        ),
        (
            F::BusinessCountry,
            "Mailing_Country",
            ("Business country", "勤務先 国"),
        ),
        (
            F::OtherStreet,
            "Other_Street",
            ("Other street", "その他 番地"),
        ),
        (
            F::OtherCity,
            "Other_City",
            ("Other city", "その他 市区町村"),
        ),
        (
            F::OtherState,
            "Other_State",
            ("Other state", "その他 都道府県"),
        ),
        (
            F::OtherPostalCode,
            "Other_Zip",
            ("Other postal code", "その他 郵便番号"),
        ),
        (
            F::OtherCountry,
            "Other_Country",
            ("Other country", "その他 国"),
        ),
        (F::Notes, "Description", ("Notes", "メモ")),
        (F::Birthday, "Date_of_Birth", ("Birthday", "誕生日")),
    ]
};

/// CRM Contacts (MAIL-2, MAIL-3).
pub struct Contacts;

fn text<'a>(fields: &'a Map<String, Value>, f: &str) -> &'a str {
    fields.get(f).and_then(Value::as_str).unwrap_or_default()
}

impl Kind for Contacts {
    fn module(&self) -> &'static str {
        MODULE
    }

    fn data_type(&self) -> &'static str {
        DATA_TYPE
    }

    fn dedup_rule(&self) -> &'static str {
        "MAIL-3"
    }

    /// By e-mail; a contact without one by last + first name.
    fn keys(&self, fields: &Map<String, Value>) -> Vec<String> {
        let email = email_key(text(fields, "Email"));
        if !email.is_empty() {
            return vec![format!("email:{email}")];
        }
        let last = text(fields, "Last_Name").trim().to_lowercase();
        if last.is_empty() {
            return Vec::new();
        }
        let first = text(fields, "First_Name").trim().to_lowercase();
        vec![format!("name:{last}|{first}")]
    }

    fn probe(&self, fields: &Map<String, Value>) -> Option<Probe> {
        let email = email_key(text(fields, "Email"));
        if !email.is_empty() {
            return Some(Probe::Email(email));
        }
        let last = text(fields, "Last_Name").trim().to_lowercase();
        (!last.is_empty()).then_some(Probe::Text("Last_Name", last))
    }

    fn explain(&self, key: &str) -> (String, String) {
        match key.split_once(':') {
            Some(("email", e)) => (
                format!("the e-mail address {e}"),
                format!("メールアドレス「{e}」"),
            ),
            Some((_, name)) => {
                let name = name.replace('|', ", ");
                (format!("the name {name}"), format!("氏名「{name}」"))
            }
            None => (key.to_string(), key.to_string()),
        }
    }
}

/// A contact in CRM terms (MAIL-2).
pub fn parsed(c: &Contact) -> Parsed {
    Parsed {
        uid: c.uid.clone(),
        hash: c.hash.clone(),
        categories: c.categories.clone(),
        values: CONTACT_MAP
            .iter()
            .filter_map(|(f, crm, label)| c.get(*f).map(|v| (*crm, *label, json!(v))))
            .collect(),
        attendees: Vec::new(),
        notices: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::items::crm_values;

    #[test]
    fn mail_2_every_mapped_crm_field_is_a_crm_contact_field_with_the_spec_limit() {
        let module = kizuna_apps::catalog::standard_modules(kizuna_domain::App::Crm)
            .into_iter()
            .find(|m| m.api_name == MODULE)
            .expect("CRM Contacts");
        let spec: &[(&str, Option<u32>)] = &[
            ("First_Name", Some(40)),
            ("Last_Name", Some(80)),
            ("Title", Some(100)),
            ("Account_Name", Some(200)),
            ("Department", Some(50)),
            ("Phone", Some(50)),
            ("Home_Phone", Some(30)),
            ("Other_Phone", Some(30)),
            ("Fax", Some(30)),
            ("Mobile", Some(30)),
            ("Assistant", Some(50)),
            ("Asst_Phone", Some(30)),
            ("Reports_To", Some(50)),
            ("Mailing_Street", Some(250)),
            ("Mailing_City", Some(30)),
            ("Mailing_State", Some(30)),
            ("Mailing_Zip", Some(30)),
            ("Mailing_Country", Some(30)),
            ("Other_Street", Some(250)),
            ("Other_City", Some(30)),
            ("Other_State", Some(30)),
            ("Other_Zip", Some(30)),
            ("Other_Country", Some(30)),
            ("Description", Some(32000)),
        ];
        for (name, limit) in spec {
            let f = module.field(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(f.max_length, *limit, "{name}");
            assert!(CONTACT_MAP.iter().any(|(_, crm, _)| crm == name), "{name}");
        }
        assert_eq!(CONTACT_MAP.len(), 26);
        for (_, crm, _) in CONTACT_MAP {
            assert!(module.field(crm).is_some(), "{crm}");
        }
    }

    #[test]
    fn mail_2_a_long_value_fails_naming_field_limit_and_length_or_is_cut_when_asked() {
        let module = kizuna_apps::catalog::standard_modules(kizuna_domain::App::Crm)
            .into_iter()
            .find(|m| m.api_name == MODULE)
            .expect("CRM Contacts");
        let mut c = Contact::default();
        c.fields.insert(ContactField::LastName, "山".repeat(81));
        let c = parsed(&c);
        let e = crm_values(&module, &c, false, &mut Vec::new()).expect_err("too long");
        assert_eq!(e.rule, Some("MAIL-2"));
        assert_eq!(e.details["field"], "Last_Name");
        assert_eq!(e.details["limit"], 80);
        assert_eq!(e.details["length"], 81);
        assert!(e.message.ja.contains("81") && e.message.ja.contains("80"));
        let mut notices = Vec::new();
        let v = crm_values(&module, &c, true, &mut notices).expect("cut");
        assert_eq!(v["Last_Name"].as_str().map(|s| s.chars().count()), Some(80));
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].code, "value_truncated");
    }
}
