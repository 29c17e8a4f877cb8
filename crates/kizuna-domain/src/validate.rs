//! Validation of record values against the module's field metadata. Bad input is
//! refused whole: either every value is valid and normalised, or nothing is.

use crate::error::{Error, Kind, Text};
use crate::field::{FieldDef, FieldType, ModuleDef};
use serde_json::{Map, Value, json};

/// A problem with one field's value.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: Text,
}

impl FieldError {
    fn new(field: &str, code: &'static str, en: String, ja: String) -> Self {
        FieldError {
            field: field.to_string(),
            code,
            message: Text::new(en, ja),
        }
    }
}

/// Turns a list of field problems into one refusal naming every field.
pub fn invalid_fields(errors: Vec<FieldError>) -> Error {
    let first = errors
        .first()
        .cloned()
        .unwrap_or_else(|| FieldError::new("", "invalid_field", String::new(), String::new()));
    let (en, ja) = if errors.len() == 1 {
        (first.message.en.clone(), first.message.ja.clone())
    } else {
        (
            format!(
                "{} (and {} more field errors)",
                first.message.en,
                errors.len() - 1
            ),
            format!(
                "{}（ほか {} 件の項目エラー）",
                first.message.ja,
                errors.len() - 1
            ),
        )
    };
    let list: Vec<Value> = errors
        .iter()
        .map(|e| json!({"field": e.field, "code": e.code, "message": e.message}))
        .collect();
    Error::new(
        Kind::BadInput,
        first.code,
        Text::new(en, ja),
        Text::new(
            "Correct the fields listed in details.errors; nothing was saved.",
            "details.errors に示された項目を修正してください。何も保存されていません。",
        ),
    )
    .with_details(json!({"field": first.field, "errors": list}))
}

/// Whether the values are for a new record (required fields must be present) or
/// change an existing one (only the given fields are checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
}

/// Checks every given value against its field and returns them normalised
/// (trimmed e-mails, UTC date-times, integer lookup ids).
pub fn validate_fields(
    module: &ModuleDef,
    values: &Map<String, Value>,
    mode: Mode,
) -> Result<Map<String, Value>, Error> {
    let mut errors = Vec::new();
    let mut out = Map::new();
    for (name, value) in values {
        let Some(field) = module.field(name) else {
            errors.push(FieldError::new(
                name,
                "unknown_field",
                format!("{} has no field {name}.", module.api_name),
                format!("{} に項目 {name} はありません。", module.label_ja),
            ));
            continue;
        };
        if !field.in_use {
            errors.push(FieldError::new(
                name,
                "field_unused",
                format!("The field {name} is marked unused in this org and takes no values."),
                format!("項目 {name} はこの組織で未使用に設定されているため、値を保存できません。"),
            ));
            continue;
        }
        match validate_value(field, value) {
            Ok(v) => {
                if v.is_null() && field.required {
                    errors.push(required_error(field));
                } else if v.is_null() && mode == Mode::Create {
                    // No value: a new record simply lacks the field (an
                    // update's null clears it).
                } else {
                    out.insert(name.clone(), v);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if mode == Mode::Create {
        for field in module.fields.iter().filter(|f| f.required && f.in_use) {
            if !values.contains_key(&field.api_name) {
                errors.push(required_error(field));
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(invalid_fields(errors))
    }
}

fn required_error(field: &FieldDef) -> FieldError {
    FieldError::new(
        &field.api_name,
        "required",
        format!("{} is required.", field.api_name),
        format!("{} は必須項目です。", field.api_name),
    )
}

fn wrong_type(field: &FieldDef, expected_en: &str, expected_ja: &str) -> FieldError {
    FieldError::new(
        &field.api_name,
        "wrong_type",
        format!(
            "{} is a {} field and takes {expected_en}.",
            field.api_name,
            field.field_type.as_str()
        ),
        format!(
            "{} は {} 型の項目で、{expected_ja}を指定します。",
            field.api_name,
            field.field_type.as_str()
        ),
    )
}

/// Normalises one value or says what is wrong with it. `null` clears a field.
pub fn validate_value(field: &FieldDef, value: &Value) -> Result<Value, FieldError> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let name = field.api_name.as_str();
    let t = field.field_type;
    let normalised = match t {
        _ if t.is_textual() => {
            let Some(s) = value.as_str() else {
                return Err(wrong_type(field, "a string", "文字列"));
            };
            let s = if matches!(t, FieldType::Email | FieldType::Url | FieldType::Phone) {
                s.trim()
            } else {
                s
            };
            check_length(field, s)?;
            match t {
                FieldType::Email if !is_email(s) => {
                    return Err(FieldError::new(
                        name,
                        "invalid_email",
                        format!("{name}: \"{s}\" is not an e-mail address."),
                        format!("{name}: 「{s}」はメールアドレスの形式ではありません。"),
                    ));
                }
                FieldType::Phone if !is_phone(s) => {
                    return Err(FieldError::new(
                        name,
                        "invalid_phone",
                        format!(
                            "{name}: \"{s}\" is not a phone number (digits, spaces, + - ( ) . allowed)."
                        ),
                        format!(
                            "{name}: 「{s}」は電話番号の形式ではありません（数字・空白・+ - ( ) . が使えます）。"
                        ),
                    ));
                }
                FieldType::Url if !is_url(s) => {
                    return Err(FieldError::new(
                        name,
                        "invalid_url",
                        format!("{name}: \"{s}\" is not an http(s) URL."),
                        format!("{name}: 「{s}」は http(s) の URL ではありません。"),
                    ));
                }
                FieldType::Picklist => check_picklist(field, s)?,
                _ => {}
            }
            Value::String(s.to_string())
        }
        FieldType::Multiselect => {
            let Some(items) = value.as_array() else {
                return Err(wrong_type(field, "an array of strings", "文字列の配列"));
            };
            let mut seen = Vec::new();
            for item in items {
                let Some(s) = item.as_str() else {
                    return Err(wrong_type(field, "an array of strings", "文字列の配列"));
                };
                check_picklist(field, s)?;
                if !seen.contains(&s) {
                    seen.push(s);
                }
            }
            json!(seen)
        }
        FieldType::Date => {
            let parsed = value
                .as_str()
                .and_then(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok());
            let Some(d) = parsed else {
                return Err(FieldError::new(
                    name,
                    "invalid_date",
                    format!("{name} takes a date written YYYY-MM-DD."),
                    format!("{name} には YYYY-MM-DD 形式の日付を指定してください。"),
                ));
            };
            json!(d.format("%Y-%m-%d").to_string())
        }
        FieldType::Datetime => {
            let parsed = value
                .as_str()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
            let Some(dt) = parsed else {
                return Err(FieldError::new(
                    name,
                    "invalid_datetime",
                    format!(
                        "{name} takes a date-time that exists: in RFC 3339 form, e.g. 2026-04-01T09:30:00+09:00, or on a form a local time that no clock change skips."
                    ),
                    format!(
                        "{name} には実在する日時を指定してください（RFC 3339 形式、例: 2026-04-01T09:30:00+09:00。フォームでは、時計の切り替えで飛ばされない現地時刻）。"
                    ),
                ));
            };
            json!(
                dt.with_timezone(&chrono::Utc)
                    .format("%Y-%m-%dT%H:%M:%SZ")
                    .to_string()
            )
        }
        FieldType::Integer => match value.as_i64() {
            Some(n) => json!(n),
            None => return Err(wrong_type(field, "a whole number", "整数")),
        },
        FieldType::Decimal | FieldType::Percent => match value.as_f64() {
            Some(n) if n.is_finite() => json!(n),
            _ => return Err(wrong_type(field, "a number", "数値")),
        },
        FieldType::Currency => validate_money(field, value)?,
        FieldType::Boolean => match value.as_bool() {
            Some(b) => json!(b),
            None => return Err(wrong_type(field, "true or false", "true または false")),
        },
        FieldType::Lookup => match value.as_i64() {
            Some(id) if id > 0 => json!(id),
            _ => {
                return Err(wrong_type(
                    field,
                    "the id of a record (a positive whole number)",
                    "レコードの ID（正の整数）",
                ));
            }
        },
        _ => return Err(wrong_type(field, "a value", "値")),
    };
    Ok(normalised)
}

/// Money is integer minor units plus an ISO 4217 code, never a float.
fn validate_money(field: &FieldDef, value: &Value) -> Result<Value, FieldError> {
    let minor = value.get("amount_minor").and_then(Value::as_i64);
    let code = value.get("currency").and_then(Value::as_str);
    match (minor, code) {
        (Some(m), Some(c)) if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_uppercase()) => {
            Ok(json!({"amount_minor": m, "currency": c}))
        }
        _ => Err(FieldError::new(
            &field.api_name,
            "invalid_currency",
            format!(
                "{} takes {{\"amount_minor\": <whole number>, \"currency\": \"<ISO 4217 code>\"}}, e.g. {{\"amount_minor\": 1500, \"currency\": \"JPY\"}}.",
                field.api_name
            ),
            format!(
                "{} には {{\"amount_minor\": 整数, \"currency\": \"ISO 4217 コード\"}}（例: {{\"amount_minor\": 1500, \"currency\": \"JPY\"}}）を指定してください。",
                field.api_name
            ),
        )),
    }
}

fn check_length(field: &FieldDef, s: &str) -> Result<(), FieldError> {
    let Some(max) = field.effective_max_length() else {
        return Ok(());
    };
    let len = s.chars().count();
    if len > max as usize {
        let name = &field.api_name;
        return Err(FieldError::new(
            name,
            "too_long",
            format!("{name} is {len} characters long; its limit is {max}."),
            format!("{name} は {len} 文字です。上限は {max} 文字です。"),
        ));
    }
    Ok(())
}

fn check_picklist(field: &FieldDef, s: &str) -> Result<(), FieldError> {
    if field.picklist.is_empty() || field.picklist.iter().any(|v| v == s) {
        return Ok(());
    }
    let name = &field.api_name;
    let allowed = field.picklist.join(", ");
    Err(FieldError::new(
        name,
        "not_in_picklist",
        format!("{name}: \"{s}\" is not one of its values ({allowed})."),
        format!("{name}: 「{s}」は選択肢（{allowed}）にありません。"),
    ))
}

pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && s.len() <= 254
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && !local.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

fn is_phone(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    digits >= 3
        && s.chars()
            .all(|c| c.is_ascii_digit() || " +-().x#/".contains(c))
}

fn is_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(r) => {
            let host = r.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

/// The key e-mail addresses are compared by (dedup, filters): trimmed and
/// case-folded.
pub fn email_key(s: &str) -> String {
    s.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::FieldDef;
    use proptest::prelude::*;

    proptest! {
        /// A text value is accepted exactly when it has at most `max`
        /// characters (characters, not bytes: Japanese text counts right), and
        /// a refusal names the limit and the actual length (MAIL-2, GEN-5).
        #[test]
        fn length_limits_count_characters(s in "\\PC{0,60}", max in 1u32..50) {
            let field = FieldDef::new("Name", FieldType::Text).max(max);
            let len = s.chars().count();
            match validate_value(&field, &Value::String(s.clone())) {
                Ok(v) => {
                    prop_assert!(len <= max as usize);
                    prop_assert_eq!(v, Value::String(s));
                }
                Err(e) => {
                    prop_assert!(len > max as usize);
                    prop_assert_eq!(e.code, "too_long");
                    prop_assert!(e.message.en.contains(&len.to_string()));
                    prop_assert!(e.message.en.contains(&max.to_string()));
                }
            }
        }

        /// Normalising is idempotent: a stored value validates to itself, so
        /// re-saving a record never changes it (and a sync sees no change).
        #[test]
        fn normalised_values_are_fixed_points(
            user in "[a-z]{1,10}", domain in "[a-z]{1,10}", pad in " {0,3}",
            secs in 0i64..4_000_000_000, offset_h in -12i32..14,
        ) {
            let email = FieldDef::new("Email", FieldType::Email);
            let once = validate_value(&email, &json!(format!("{pad}{user}@{domain}.example{pad}")))
                .expect("a valid address");
            prop_assert_eq!(validate_value(&email, &once).expect("still valid"), once.clone());

            let dt = FieldDef::new("At", FieldType::Datetime);
            let tz = chrono::FixedOffset::east_opt(offset_h * 3600).expect("offset");
            let local = chrono::DateTime::from_timestamp(secs, 0).expect("instant").with_timezone(&tz);
            let once = validate_value(&dt, &json!(local.to_rfc3339())).expect("valid");
            prop_assert_eq!(validate_value(&dt, &once).expect("still valid"), once.clone());
            prop_assert!(once.as_str().expect("text").ends_with('Z'));
        }
    }

    #[test]
    fn email_forms() {
        for good in ["a@b.example", "山田@例え.jp", "x.y+z@sub.example.com"] {
            assert!(is_email(good), "{good}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "@b.example",
            "a@.example",
            "a b@c.example",
            "a@b..example",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn a_null_is_no_value_on_a_create_and_clears_on_an_update() {
        let m = ModuleDef {
            api_name: "Contacts".into(),
            label: "Contacts".into(),
            label_ja: "連絡先".into(),
            enabled: true,
            fields: vec![
                FieldDef::new("Last_Name", FieldType::Text).required(),
                FieldDef::new("Phone", FieldType::Phone),
            ],
        };
        let given: Map<String, Value> = [
            ("Last_Name".to_string(), json!("Sato")),
            ("Phone".to_string(), Value::Null),
        ]
        .into_iter()
        .collect();
        let created = validate_fields(&m, &given, Mode::Create).expect("valid");
        assert_eq!(created.get("Phone"), None, "a new record lacks it");
        let updated = validate_fields(&m, &given, Mode::Update).expect("valid");
        assert_eq!(
            updated.get("Phone"),
            Some(&Value::Null),
            "an update clears it"
        );
    }
}
