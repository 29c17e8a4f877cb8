//! A mail & calendar connection's settings: checked whole before anything is
//! saved, passwords sealed before they reach the database and never shown.

use super::secret::SecretKey;
use kizuna_domain::{Error, Result};
use serde_json::{Map, Value, json};

/// The server parts that read collections (CardDAV, CalDAV).
const PARTS: &[&str] = &["carddav", "caldav"];
/// The directions a connection may add to mail → CRM (MAIL-7).
const DIRECTIONS: &[&str] = &[super::outbound::DIRECTION];

/// The shortest and longest automatic sync interval (MAIL-9).
pub const MIN_AUTO_SYNC_MINUTES: i64 = 5;
pub const MAX_AUTO_SYNC_MINUTES: i64 = 24 * 60;

/// A server part of the settings, with its password opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The address books (CardDAV) or calendars (CalDAV) to read; every one
    /// of the account's when empty.
    pub collections: Vec<String>,
}

/// The settings every item of a connection is synced by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailSettings {
    /// MAIL-12: only items of this category sync (compared without case).
    pub category: Option<String>,
    /// MAIL-2: cut values longer than the CRM field instead of failing the
    /// record (the history says so).
    pub truncate: bool,
    /// MAIL-9: minutes between automatic syncs; `None`: on demand only.
    pub auto_sync_minutes: Option<i64>,
}

fn invalid(name: &str, what_en: &str, what_ja: &str) -> Error {
    Error::bad_request(
        "invalid_setting",
        format!("{name}: {what_en}"),
        format!("{name}: {what_ja}"),
    )
    .with_details(json!({"setting": name}))
}

fn text(part: &Map<String, Value>, prefix: &str, name: &str, max: usize) -> Result<Option<String>> {
    let full = format!("{prefix}.{name}");
    match part.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(invalid(
            &full,
            &format!("at most {max} characters."),
            &format!("{max} 文字以内で指定してください。"),
        )),
        Some(_) => Err(invalid(
            &full,
            "must be text.",
            "文字列で指定してください。",
        )),
    }
}

/// A part's new password, sealed; a password left out keeps the stored one
/// (`null` removes it).
fn seal_password(
    name: &str,
    part: &Map<String, Value>,
    current: Option<&Value>,
    key: &SecretKey,
    out: &mut Map<String, Value>,
) -> Result<()> {
    match text(part, name, "password", 1000)? {
        Some(p) => {
            out.insert("password".into(), json!(key.seal(&p)));
        }
        None => {
            if !part.contains_key("password")
                && let Some(kept) = current.and_then(|c| c.get("password"))
            {
                out.insert("password".into(), kept.clone());
            }
        }
    }
    Ok(())
}

/// A part of the settings (`carddav`, `smtp`, …) as an object holding only
/// the keys it takes.
fn part_object<'a>(
    name: &str,
    value: &'a Value,
    allowed: &[&str],
) -> Result<&'a Map<String, Value>> {
    let list = allowed.join(", ");
    let Some(part) = value.as_object() else {
        return Err(invalid(
            name,
            &format!("must be an object with the settings {list}."),
            &format!("設定 {list} を持つオブジェクトで指定してください。"),
        ));
    };
    if let Some(unknown) = part.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(invalid(
            &format!("{name}.{unknown}"),
            &format!("is not a setting; the settings are {list}."),
            &format!("という設定はありません。設定は {list} です。"),
        ));
    }
    Ok(part)
}

/// A part's server host name, required.
fn host(part: &Map<String, Value>, name: &str, server: &str) -> Result<String> {
    text(part, name, "host", 255)?
        .filter(|h| !h.trim().is_empty() && !h.contains(char::is_whitespace))
        .ok_or_else(|| {
            invalid(
                &format!("{name}.host"),
                &format!("the {server} server's host name is required."),
                &format!("{server} サーバーのホスト名が必要です。"),
            )
        })
}

/// A part's port, `default` when left out.
fn port(part: &Map<String, Value>, name: &str, default: u64) -> Result<u64> {
    match part.get("port") {
        None | Some(Value::Null) => Ok(default),
        Some(p) => p
            .as_u64()
            .filter(|p| (1..=65535).contains(p))
            .ok_or_else(|| {
                invalid(
                    &format!("{name}.port"),
                    "a port number, 1 to 65535.",
                    "1〜65535 のポート番号を指定してください。",
                )
            }),
    }
}

/// Checks a server part (`carddav`, …) and seals its password; a password
/// left out keeps the one already stored.
fn server_part(
    name: &str,
    value: &Value,
    current: Option<&Value>,
    key: &SecretKey,
) -> Result<Value> {
    // Which collections: one address book, or a list of calendars.
    let collections = if name == "caldav" {
        "calendars"
    } else {
        "address_book"
    };
    let part = part_object(name, value, &["url", "username", "password", collections])?;
    let url = text(part, name, "url", 2000)?.ok_or_else(|| {
        invalid(
            &format!("{name}.url"),
            "the server's address is required (https://…).",
            "サーバーのアドレス（https://…）が必要です。",
        )
    })?;
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .and_then(|rest| rest.split(['/', '?', '#']).next())
        .filter(|h| !h.is_empty() && !h.contains(char::is_whitespace));
    if host.is_none() {
        return Err(invalid(
            &format!("{name}.url"),
            &format!("\"{url}\" is not an http:// or https:// address."),
            &format!("「{url}」は http:// または https:// のアドレスではありません。"),
        ));
    }
    let mut out = Map::new();
    out.insert("url".into(), json!(url));
    if let Some(u) = text(part, name, "username", 320)? {
        out.insert("username".into(), json!(u));
    }
    match part.get(collections) {
        None | Some(Value::Null) => {}
        Some(Value::String(b)) if name == "carddav" && b.len() <= 2000 => {
            out.insert(collections.into(), json!(b));
        }
        Some(Value::Array(list))
            if name == "caldav"
                && list.len() <= 50
                && list
                    .iter()
                    .all(|c| c.as_str().is_some_and(|c| !c.is_empty() && c.len() <= 2000)) =>
        {
            out.insert(collections.into(), json!(list));
        }
        Some(_) => {
            let what = if name == "caldav" {
                (
                    "a list of calendar paths (at most 50).",
                    "カレンダーのパスのリスト（50 件まで）で指定してください。",
                )
            } else {
                (
                    "the address book's path.",
                    "アドレス帳のパスを指定してください。",
                )
            };
            return Err(invalid(&format!("{name}.{collections}"), what.0, what.1));
        }
    }
    seal_password(name, part, current, key, &mut out)?;
    Ok(Value::Object(out))
}

/// Checks the `smtp` part (the user's own server for sending, MAIL-11) and
/// seals its password; a password left out keeps the stored one.
fn smtp_part(value: &Value, current: Option<&Value>, key: &SecretKey) -> Result<Value> {
    let part = part_object(
        "smtp",
        value,
        &["host", "port", "security", "username", "password", "from"],
    )?;
    let host = host(part, "smtp", "SMTP")?;
    let port = port(part, "smtp", 587)?;
    let security = match part.get("security").and_then(Value::as_str) {
        None => "starttls",
        Some(s @ ("starttls" | "tls" | "none")) => s,
        Some(_) => {
            return Err(invalid(
                "smtp.security",
                "\"starttls\" (port 587), \"tls\" (port 465) or \"none\".",
                "\"starttls\"（ポート 587）、\"tls\"（ポート 465）、\"none\" のいずれかを指定してください。",
            ));
        }
    };
    let mut out = Map::new();
    out.insert("host".into(), json!(host));
    out.insert("port".into(), json!(port));
    out.insert("security".into(), json!(security));
    for name in ["username", "from"] {
        if let Some(v) = text(part, "smtp", name, 320)? {
            out.insert(name.into(), json!(v));
        }
    }
    seal_password("smtp", part, current, key, &mut out)?;
    Ok(Value::Object(out))
}

/// Checks the `imap` part (the user's mailbox: its sent folder added to the
/// CRM automatically, and messages picked from any folder, MAIL-11).
fn imap_part(value: &Value, current: Option<&Value>, key: &SecretKey) -> Result<Value> {
    let part = part_object(
        "imap",
        value,
        &["host", "port", "tls", "username", "password", "sent_folder"],
    )?;
    let host = host(part, "imap", "IMAP")?;
    let username = text(part, "imap", "username", 320)?.ok_or_else(|| {
        invalid(
            "imap.username",
            "the user name is required.",
            "ユーザー名が必要です。",
        )
    })?;
    let port = port(part, "imap", 993)?;
    let tls = match part.get("tls") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(invalid(
                "imap.tls",
                "true or false.",
                "true または false を指定してください。",
            ));
        }
    };
    let mut out = Map::new();
    out.insert("host".into(), json!(host));
    out.insert("port".into(), json!(port));
    out.insert("tls".into(), json!(tls));
    out.insert("username".into(), json!(username));
    if let Some(f) = text(part, "imap", "sent_folder", 255)? {
        out.insert("sent_folder".into(), json!(f));
    }
    seal_password("imap", part, current, key, &mut out)?;
    Ok(Value::Object(out))
}

/// The user's IMAP account, password opened, and the sent folder to add.
pub fn imap_account(
    settings: &Value,
    key: &SecretKey,
) -> Result<Option<(kizuna_connectors::imap::Account, Option<String>)>> {
    let Some(p) = settings.get("imap").filter(|v| v.is_object()) else {
        return Ok(None);
    };
    let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(Some((
        kizuna_connectors::imap::Account {
            host: s("host").unwrap_or_default(),
            port: p.get("port").and_then(Value::as_u64).unwrap_or(993) as u16,
            tls: p.get("tls").and_then(Value::as_bool) != Some(false),
            username: s("username").unwrap_or_default(),
            password: s("password")
                .map(|p| key.open(&p))
                .transpose()?
                .unwrap_or_default(),
        },
        s("sent_folder"),
    )))
}

/// The user's SMTP account, password opened; the sender is `from`, else
/// the connection owner's address.
pub fn smtp_account(
    settings: &Value,
    key: &SecretKey,
    owner: &str,
) -> Result<Option<kizuna_connectors::smtp::Account>> {
    use kizuna_connectors::smtp::{Account, Security};
    let Some(p) = settings.get("smtp").filter(|v| v.is_object()) else {
        return Ok(None);
    };
    let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(Some(Account {
        host: s("host").unwrap_or_default(),
        port: p.get("port").and_then(Value::as_u64).unwrap_or(587) as u16,
        security: match s("security").as_deref() {
            Some("tls") => Security::Tls,
            Some("none") => Security::None,
            _ => Security::StartTls,
        },
        username: s("username"),
        password: s("password").map(|p| key.open(&p)).transpose()?,
        from: s("from").unwrap_or_else(|| owner.to_string()),
    }))
}

/// Merges `changes` into the stored settings `current` after checking every
/// entry (bad input changes nothing), with new passwords sealed.
pub fn merge(current: &Value, changes: &Value, key: &SecretKey) -> Result<Value> {
    let Some(changes) = changes.as_object() else {
        return Err(Error::malformed_json("\"settings\" must be an object"));
    };
    let mut out = current.as_object().cloned().unwrap_or_default();
    for (name, value) in changes {
        let name = name.as_str();
        let checked = match name {
            "smtp" => match value {
                Value::Null => Value::Null,
                v => smtp_part(v, current.get("smtp"), key)?,
            },
            "imap" => match value {
                Value::Null => Value::Null,
                v => imap_part(v, current.get("imap"), key)?,
            },
            part if PARTS.contains(&part) => match value {
                Value::Null => Value::Null,
                v => server_part(part, v, current.get(part), key)?,
            },
            "category" => match value {
                Value::Null => Value::Null,
                Value::String(s) if !s.trim().is_empty() && s.chars().count() <= 100 => {
                    json!(s.trim())
                }
                _ => {
                    return Err(invalid(
                        "category",
                        "a category name of 1 to 100 characters, or null for every item.",
                        "1〜100 文字のカテゴリ名、またはすべての項目を対象にする null を指定してください。",
                    ));
                }
            },
            "directions" => match value {
                Value::Array(list)
                    if list
                        .iter()
                        .all(|d| d.as_str().is_some_and(|d| DIRECTIONS.contains(&d))) =>
                {
                    value.clone()
                }
                _ => {
                    return Err(invalid(
                        "directions",
                        &format!(
                            "a list of the directions to add: {}.",
                            DIRECTIONS.join(", ")
                        ),
                        &format!(
                            "追加する方向のリストを指定してください: {}。",
                            DIRECTIONS.join(", ")
                        ),
                    ));
                }
            },
            "unmatched_email" => match value.as_str() {
                Some("lead" | "skip") => value.clone(),
                _ => {
                    return Err(invalid(
                        "unmatched_email",
                        "where an e-mail goes when no Contact has its correspondent's address: \"lead\" (the Lead with it, or a new Lead) or \"skip\".",
                        "相手のアドレスを持つ連絡先がないメールの扱い: \"lead\"（そのアドレスの見込み客、なければ新しい見込み客）または \"skip\" を指定してください。",
                    ));
                }
            },
            "truncate" => match value {
                Value::Bool(_) => value.clone(),
                _ => {
                    return Err(invalid(
                        "truncate",
                        "true or false.",
                        "true または false を指定してください。",
                    ));
                }
            },
            "auto_sync_minutes" => match value {
                Value::Null => Value::Null,
                Value::Number(n)
                    if n.as_i64().is_some_and(|m| {
                        m == 0 || (MIN_AUTO_SYNC_MINUTES..=MAX_AUTO_SYNC_MINUTES).contains(&m)
                    }) =>
                {
                    value.clone()
                }
                _ => {
                    return Err(invalid(
                        "auto_sync_minutes",
                        &format!(
                            "minutes between automatic syncs, {MIN_AUTO_SYNC_MINUTES} to {MAX_AUTO_SYNC_MINUTES}, or 0 or null to sync on demand only."
                        ),
                        &format!(
                            "自動同期の間隔（分）を {MIN_AUTO_SYNC_MINUTES}〜{MAX_AUTO_SYNC_MINUTES} で指定するか、手動のみなら 0 または null を指定してください。"
                        ),
                    ));
                }
            },
            other => {
                let all: Vec<&str> = PARTS
                    .iter()
                    .chain(&["smtp", "imap"])
                    .chain(&[
                        "category",
                        "truncate",
                        "auto_sync_minutes",
                        "unmatched_email",
                    ])
                    .copied()
                    .collect();
                return Err(invalid(
                    other,
                    &format!(
                        "is not a setting of a mail connection; its settings are {}.",
                        all.join(", ")
                    ),
                    &format!(
                        "はメール連携の設定にありません。設定は {} です。",
                        all.join(", ")
                    ),
                ));
            }
        };
        if checked.is_null() {
            out.remove(name);
        } else {
            out.insert(name.to_string(), checked);
        }
    }
    Ok(Value::Object(out))
}

/// The settings as the API shows them: every password replaced by
/// `"password_set": true`.
pub fn redacted(settings: &Value) -> Value {
    let mut out = settings.clone();
    if let Some(map) = out.as_object_mut() {
        for part in map.values_mut() {
            if let Some(p) = part.as_object_mut()
                && p.remove("password").is_some()
            {
                p.insert("password_set".into(), json!(true));
            }
        }
    }
    out
}

/// The stored settings every item is synced by.
pub fn read(settings: &Value) -> MailSettings {
    MailSettings {
        category: settings
            .get("category")
            .and_then(Value::as_str)
            .map(str::to_string),
        truncate: settings.get("truncate").and_then(Value::as_bool) == Some(true),
        auto_sync_minutes: settings
            .get("auto_sync_minutes")
            .and_then(Value::as_i64)
            .filter(|m| *m > 0),
    }
}

/// Whether a direction (MAIL-7) is on.
pub fn direction_on(settings: &Value, direction: &str) -> bool {
    settings["directions"]
        .as_array()
        .is_some_and(|l| l.iter().any(|d| d.as_str() == Some(direction)))
}

/// MAIL-11: where an e-mail goes when no Contact matches (`lead`, `skip`).
pub fn unmatched_email(settings: &Value) -> &str {
    settings
        .get("unmatched_email")
        .and_then(Value::as_str)
        .unwrap_or("lead")
}

/// A server part of the stored settings (`carddav`, …), its password opened.
pub fn server(settings: &Value, part: &str, key: &SecretKey) -> Result<Option<Server>> {
    let Some(p) = settings.get(part).filter(|v| v.is_object()) else {
        return Ok(None);
    };
    let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(Some(Server {
        url: s("url").unwrap_or_default(),
        username: s("username"),
        password: s("password").map(|p| key.open(&p)).transpose()?,
        collections: match p.get("calendars").and_then(Value::as_array) {
            Some(list) => list
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            None => s("address_book").into_iter().collect(),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> (tempfile::TempDir, SecretKey) {
        let dir = tempfile::tempdir().expect("a directory");
        let key = SecretKey::load_or_create(&dir.path().join("k")).expect("a key");
        (dir, key)
    }

    #[test]
    fn a_password_is_sealed_kept_when_left_out_and_never_shown() {
        let (_d, key) = key();
        let first = merge(
            &json!({}),
            &json!({"carddav": {"url": "https://dav.example.jp/", "username": "u", "password": "s3cret"}}),
            &key,
        )
        .expect("valid");
        let stored = first["carddav"]["password"].as_str().expect("sealed");
        assert!(SecretKey::is_sealed(stored));
        let shown = redacted(&first);
        assert!(!shown.to_string().contains("s3cret"));
        assert!(!shown.to_string().contains("sealed:"));
        assert_eq!(shown["carddav"]["password_set"], true);
        // A change of the address book alone keeps the password.
        let second = merge(
            &first,
            &json!({"carddav": {"url": "https://dav.example.jp/", "username": "u", "address_book": "/u/book/"}}),
            &key,
        )
        .expect("valid");
        let dav = server(&second, "carddav", &key)
            .expect("opens")
            .expect("carddav");
        assert_eq!(dav.password.as_deref(), Some("s3cret"));
        assert_eq!(dav.collections, ["/u/book/"]);
    }

    #[test]
    fn an_smtp_password_is_sealed_and_the_account_reads_it_back() {
        let (_d, key) = key();
        let stored = merge(
            &json!({}),
            &json!({"smtp": {"host": "smtp.example.jp", "username": "taro", "password": "pw 1"}}),
            &key,
        )
        .expect("valid");
        assert!(!stored.to_string().contains("pw 1"));
        assert_eq!(redacted(&stored)["smtp"]["password_set"], true);
        let a = smtp_account(&stored, &key, "taro@example.jp")
            .expect("opens")
            .expect("an account");
        assert_eq!((a.port, a.password.as_deref()), (587, Some("pw 1")));
        assert_eq!(a.from, "taro@example.jp", "the owner's address by default");
        for bad in [
            json!({"port": 25}),
            json!({"host": "x", "security": "ssl"}),
            json!({"host": "x", "port": 0}),
        ] {
            assert_eq!(
                merge(&json!({}), &json!({"smtp": bad}), &key)
                    .expect_err("refused")
                    .code,
                "invalid_setting"
            );
        }
    }

    #[test]
    fn mail_9_the_interval_is_checked_and_zero_means_on_demand() {
        let (_d, key) = key();
        let on = merge(&json!({}), &json!({"auto_sync_minutes": 15}), &key).expect("valid");
        assert_eq!(read(&on).auto_sync_minutes, Some(15));
        let off = merge(&on, &json!({"auto_sync_minutes": 0}), &key).expect("valid");
        assert_eq!(read(&off).auto_sync_minutes, None);
        for bad in [json!(1), json!(100_000), json!("15"), json!(-5)] {
            let e = merge(&on, &json!({"auto_sync_minutes": bad}), &key).expect_err("refused");
            assert_eq!(e.code, "invalid_setting");
        }
    }

    #[test]
    fn bad_settings_are_refused_with_the_setting_named() {
        let (_d, key) = key();
        let cases = [
            (json!({"carddav": {"url": "ftp://x"}}), "carddav.url"),
            (json!({"carddav": {"username": "u"}}), "carddav.url"),
            (
                json!({"carddav": {"url": "https://x", "port": 1}}),
                "carddav.port",
            ),
            (json!({"category": ""}), "category"),
            (json!({"colour": "red"}), "colour"),
            (json!({"imap": {"host": "x"}}), "imap.username"),
            (
                json!({"caldav": {"url": "https://x", "calendars": "/one/"}}),
                "caldav.calendars",
            ),
        ];
        for (body, named) in cases {
            let e = merge(&json!({}), &body, &key).expect_err("refused");
            assert_eq!(e.details["setting"], named, "{body}");
            assert!(!e.message.ja.is_empty());
        }
    }
}
