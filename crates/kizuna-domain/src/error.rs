//! The error vocabulary: every refusal Kizuna gives has a stable code, the rule it
//! enforces (if any), an HTTP status, and a message and a fix in English and
//! Japanese (GEN-12). The API, the UI and the CLI all show these same words.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A sentence in both languages Kizuna speaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    pub en: String,
    pub ja: String,
}

impl Text {
    pub fn new(en: impl Into<String>, ja: impl Into<String>) -> Self {
        Text {
            en: en.into(),
            ja: ja.into(),
        }
    }
}

/// How a refusal maps onto HTTP (and onto CLI exit codes: every kind but
/// `Internal` is a refusal, exit 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BadInput,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    TooLarge,
    /// Too many attempts in a short time (failed sign-ins): wait and retry.
    RateLimited,
    /// A server Kizuna connects to for the user (CardDAV, IMAP, …) failed
    /// or refused: the fault is upstream, and the work is tried again.
    Unavailable,
    Internal,
}

impl Kind {
    pub fn status(self) -> u16 {
        match self {
            Kind::BadInput => 400,
            Kind::Unauthenticated => 401,
            Kind::Forbidden => 403,
            Kind::NotFound => 404,
            Kind::Conflict => 409,
            Kind::TooLarge => 413,
            Kind::RateLimited => 429,
            Kind::Unavailable => 502,
            Kind::Internal => 500,
        }
    }
}

/// One refusal, complete: what went wrong, why, and what to do about it.
/// Boxed, so that `Result<T, Error>` stays one pointer wide on the happy path.
#[derive(Debug, Clone, PartialEq)]
pub struct Error(Box<Refusal>);

/// What a refusal says.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub kind: Kind,
    pub code: &'static str,
    pub rule: Option<&'static str>,
    pub message: Text,
    pub fix: Text,
    pub details: Value,
}

impl std::ops::Deref for Error {
    type Target = Refusal;

    fn deref(&self) -> &Refusal {
        &self.0
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} {}", self.code, self.message.en, self.fix.en)
    }
}

impl std::error::Error for Error {}

impl Error {
    pub fn new(kind: Kind, code: &'static str, message: Text, fix: Text) -> Self {
        Error(Box::new(Refusal {
            kind,
            code,
            rule: None,
            message,
            fix,
            details: Value::Null,
        }))
    }

    pub fn with_rule(mut self, rule: &'static str) -> Self {
        self.0.rule = Some(rule);
        self
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.0.details = details;
        self
    }

    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// The JSON body every API refusal carries.
    pub fn to_json(&self) -> Value {
        json!({"error": {
            "code": self.code,
            "rule": self.rule,
            "message": self.message,
            "fix": self.fix,
            "details": self.details,
        }})
    }

    // ----- the vocabulary -------------------------------------------------------

    pub fn internal(what: impl std::fmt::Display) -> Self {
        Error::new(
            Kind::Internal,
            "internal",
            Text::new(
                format!("Kizuna could not complete the request: {what}"),
                format!("Kizuna がリクエストを完了できませんでした: {what}"),
            ),
            Text::new(
                "Try again; if it persists, run `kizuna doctor` and check the server log.",
                "もう一度お試しください。続く場合は `kizuna doctor` を実行し、サーバーログを確認してください。",
            ),
        )
    }

    pub fn unauthenticated() -> Self {
        Error::new(
            Kind::Unauthenticated,
            "unauthenticated",
            Text::new(
                "No valid API key was given.",
                "有効な API キーが指定されていません。",
            ),
            Text::new(
                "Send `Authorization: Bearer <key>` with a key from `kizuna key create`.",
                "`kizuna key create` で作成したキーを `Authorization: Bearer <key>` として送信してください。",
            ),
        )
    }

    pub fn key_revoked() -> Self {
        Error::new(
            Kind::Unauthenticated,
            "key_revoked",
            Text::new(
                "This API key was revoked.",
                "この API キーは無効化されています。",
            ),
            Text::new(
                "Create a new key with `kizuna key create`.",
                "`kizuna key create` で新しいキーを作成してください。",
            ),
        )
    }

    /// GEN-10 / DSK-2: a deactivated user's keys stop working at once.
    pub fn user_deactivated(email: &str) -> Self {
        Error::new(
            Kind::Unauthenticated,
            "user_deactivated",
            Text::new(
                format!(
                    "The user {email} who owns this API key is deactivated, so the key is invalid."
                ),
                format!(
                    "この API キーの所有者 {email} は無効化されているため、キーは使用できません。"
                ),
            ),
            Text::new(
                format!(
                    "An administrator must re-activate {email}, or use another administrator's key."
                ),
                format!("管理者が {email} を再有効化するか、別の管理者のキーを使用してください。"),
            ),
        )
        .with_rule("GEN-10")
        .with_details(json!({"user": email}))
    }

    pub fn bad_credentials() -> Self {
        Error::new(
            Kind::Unauthenticated,
            "bad_credentials",
            Text::new(
                "The e-mail address or password is wrong.",
                "メールアドレスまたはパスワードが正しくありません。",
            ),
            Text::new(
                "Check both and try again.",
                "両方を確認して、もう一度お試しください。",
            ),
        )
    }

    /// GEN-1: only administrators; the error names who they are.
    pub fn admin_required(org_name: &str, admins: &[String]) -> Self {
        let list = if admins.is_empty() {
            "-".to_string()
        } else {
            admins.join(", ")
        };
        Error::new(
            Kind::Forbidden,
            "admin_required",
            Text::new(
                format!("Only an administrator of {org_name} may do this."),
                format!("この操作は {org_name} の管理者のみが行えます。"),
            ),
            Text::new(
                format!(
                    "Ask an administrator ({list}) to do it, or to give you the administrator role."
                ),
                format!(
                    "管理者（{list}）に操作を依頼するか、管理者ロールの付与を依頼してください。"
                ),
            ),
        )
        .with_rule("GEN-1")
        .with_details(json!({"administrators": admins}))
    }

    /// 404 is also the answer for things that belong to an org the caller is not
    /// in: the caller learns nothing about other orgs.
    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        Error::new(
            Kind::NotFound,
            "not_found",
            Text::new(
                format!("{what} {id} does not exist, or you are not a member of its org."),
                format!("{what} {id} は存在しないか、あなたが所属していない組織のものです。"),
            ),
            Text::new(
                "Check the id, and that your key's user is a member of the org.",
                "ID と、キーのユーザーがその組織のメンバーであることを確認してください。",
            ),
        )
        .with_details(json!({"what": what, "id": id.to_string()}))
    }

    pub fn user_not_found(email: &str) -> Self {
        Error::new(
            Kind::NotFound,
            "user_not_found",
            Text::new(
                format!("There is no user with the e-mail address {email}."),
                format!("メールアドレス {email} のユーザーはいません。"),
            ),
            Text::new(
                format!("Check the address, or create the user first: kizuna user create --email {email} --name …"),
                format!("アドレスを確認するか、先にユーザーを作成してください: kizuna user create --email {email} --name …"),
            ),
        )
        .with_details(json!({"email": email}))
    }

    pub fn already_exists(what: &str, value: &str) -> Self {
        Error::new(
            Kind::Conflict,
            "already_exists",
            Text::new(
                format!("{what} {value} already exists."),
                format!("{what} {value} は既に存在します。"),
            ),
            Text::new(
                "Use the existing one, or choose another value.",
                "既存のものを使用するか、別の値を指定してください。",
            ),
        )
        .with_details(json!({"what": what, "value": value}))
    }

    pub fn bad_request(code: &'static str, en: impl Into<String>, ja: impl Into<String>) -> Self {
        Error::new(
            Kind::BadInput,
            code,
            Text::new(en, ja),
            Text::new(
                "Correct the request and send it again.",
                "リクエストを修正して再送信してください。",
            ),
        )
    }

    pub fn malformed_json(reason: &str) -> Self {
        Error::new(
            Kind::BadInput,
            "malformed_json",
            Text::new(
                format!("The request body is not valid JSON of the expected shape: {reason}"),
                format!("リクエスト本文が期待される形式の JSON ではありません: {reason}"),
            ),
            Text::new(
                "Send a JSON object such as {\"fields\": {\"Last_Name\": \"…\"}}.",
                "{\"fields\": {\"Last_Name\": \"…\"}} のような JSON オブジェクトを送信してください。",
            ),
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Error::new(
            Kind::TooLarge,
            "payload_too_large",
            Text::new(
                format!("The request body is larger than {limit} bytes."),
                format!("リクエスト本文が {limit} バイトを超えています。"),
            ),
            Text::new(
                "Send fewer records or smaller values per request.",
                "1 回のリクエストのレコード数や値のサイズを減らしてください。",
            ),
        )
        .with_details(json!({"limit": limit}))
    }

    pub fn unknown_module(module: &str) -> Self {
        Error::new(
            Kind::BadInput,
            "unknown_module",
            Text::new(
                format!("There is no module {module} in this org."),
                format!("この組織にモジュール {module} はありません。"),
            ),
            Text::new(
                "List the org's modules with GET /api/v1/orgs/{org}/modules and use one of their API names.",
                "GET /api/v1/orgs/{org}/modules でモジュール一覧を確認し、その API 名を使用してください。",
            ),
        )
        .with_details(json!({"module": module}))
    }

    pub fn module_disabled(module: &str) -> Self {
        Error::new(
            Kind::BadInput,
            "module_disabled",
            Text::new(
                format!("The module {module} is disabled in this org."),
                format!("モジュール {module} はこの組織で無効になっています。"),
            ),
            Text::new(
                format!("An administrator can enable it in Settings → Modules → {module}."),
                format!("管理者が 設定 → モジュール → {module} で有効にできます。"),
            ),
        )
        .with_details(json!({"module": module}))
    }

    pub fn version_conflict(id: i64, expected: i64, actual: i64) -> Self {
        Error::new(
            Kind::Conflict,
            "version_conflict",
            Text::new(
                format!("Record {id} changed meanwhile: you sent version {expected}, it is now at version {actual}."),
                format!("レコード {id} は他で更新されました: 送信されたバージョンは {expected}、現在は {actual} です。"),
            ),
            Text::new(
                "Read the record again and re-apply your change.",
                "レコードを再読み込みして、変更をもう一度適用してください。",
            ),
        )
        .with_details(json!({"id": id, "expected": expected, "actual": actual}))
    }
}
