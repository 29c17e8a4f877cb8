//! The HTTP edge: refusals as JSON, the caller from their API key, request
//! bodies that fail precisely, and ids that never leak another org.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kizuna_domain::Error;
use kizuna_domain::Role;
use kizuna_store::{Org, Origin, Principal, Record, Store, Stored};
use serde::Serialize;
use serde_json::{Value, json};

/// The most bytes a request body may have.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// A refusal on its way out as `{"error": {…}}` with its status.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self.0.to_json())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub options: Options,
}

/// What the server was started with that the API reports or uses.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Where administrator mail goes (`--smtp-url`, without its password);
    /// `None`: it is kept in the outbox and not sent.
    pub smtp: Option<String>,
    /// What mail connections need: the key their passwords are sealed with,
    /// and whether they may reach private addresses. `None`: mail
    /// connections are refused (a server embedded without a data directory).
    pub mail: Option<kizuna_sync::mail::MailContext>,
}

impl Options {
    /// The mail context, or the refusal that says the server has none.
    pub fn mail(&self) -> Result<&kizuna_sync::mail::MailContext, Error> {
        self.mail.as_ref().ok_or_else(|| {
            Error::internal("this server was started without a secret key for mail connections")
        })
    }
}

/// The authenticated caller (from `Authorization: Bearer <key>`).
pub struct Caller(pub Principal);

impl Caller {
    pub fn user_id(&self) -> i64 {
        self.0.user.id
    }

    /// What the change log records as the author of this caller's writes.
    pub fn origin(&self) -> Origin {
        match self.0.key_id {
            Some(key) => Origin::Key {
                key,
                user: self.0.user.id,
            },
            None => Origin::User(self.0.user.id),
        }
    }
}

/// The key of `Authorization: Bearer <key>`, or 401.
fn bearer(parts: &Parts) -> Result<&str, Error> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(Error::unauthenticated)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Caller(state.store.authenticate_key(bearer(parts)?).await?))
    }
}

/// The key of `Authorization: Bearer <key>`, not yet looked up (401 when
/// there is none): for a handler that looks it up with what it reads.
pub struct BearerKey(pub String);

impl FromRequestParts<AppState> for BearerKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        Ok(BearerKey(bearer(parts)?.to_string()))
    }
}

/// The caller as a member of the org named by the `{org}` path parameter:
/// absent orgs and orgs the caller is not in are both 404.
pub struct OrgMember {
    pub caller: Caller,
    pub org: Org,
    pub role: Role,
}

/// The caller as an administrator of the `{org}` of the path; a member who is
/// not one is refused with the administrators named (GEN-1).
pub struct OrgAdmin {
    pub caller: Caller,
    pub org: Org,
}

async fn path_org(parts: &mut Parts, state: &AppState) -> Result<i64, ApiError> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|e| Error::internal(format!("path parameters: {e}")))?;
    let raw = params
        .iter()
        .find(|(name, _)| *name == "org")
        .map(|(_, value)| value.to_string())
        .ok_or_else(|| Error::internal("route without an {org} parameter"))?;
    Ok(id("Org", &raw)?)
}

impl FromRequestParts<AppState> for OrgMember {
    type Rejection = ApiError;

    /// One query for the key and the membership: every org-scoped request
    /// starts here.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = bearer(parts)?.to_string();
        let org_id = path_org(parts, state).await?;
        let (principal, org) = state.store.authenticate_key_for_org(&key, org_id).await?;
        let (org, role) = org.ok_or_else(|| Error::not_found("Org", org_id))?;
        Ok(OrgMember {
            caller: Caller(principal),
            org,
            role,
        })
    }
}

impl FromRequestParts<AppState> for OrgAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let org_id = path_org(parts, state).await?;
        let org = state.store.org_for_admin(org_id, caller.user_id()).await?;
        Ok(OrgAdmin { caller, org })
    }
}

/// A JSON request body. Malformed JSON is 400 `malformed_json`, a body over
/// the limit 413 `payload_too_large`, each in the error vocabulary.
pub struct Body(pub Value);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Error::payload_too_large(BODY_LIMIT)
            } else {
                Error::malformed_json(&rejection.body_text())
            }
        })?;
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|e| Error::malformed_json(&e.to_string()))?;
        if !value.is_object() {
            return Err(Error::malformed_json("the body must be a JSON object").into());
        }
        Ok(Body(value))
    }
}

impl Body {
    fn member<'a, T>(
        &'a self,
        name: &str,
        kind: &str,
        get: impl Fn(&'a Value) -> Option<T>,
    ) -> Result<T, Error> {
        self.0
            .get(name)
            .and_then(get)
            .ok_or_else(|| Error::malformed_json(&format!("the body needs {kind} \"{name}\"")))
    }

    /// A required string member of the body.
    pub fn str(&self, name: &str) -> Result<&str, Error> {
        self.member(name, "a string", Value::as_str)
    }

    /// A required boolean member of the body.
    pub fn bool(&self, name: &str) -> Result<bool, Error> {
        self.member(name, "a boolean", Value::as_bool)
    }

    /// A required whole-number member of the body.
    pub fn i64(&self, name: &str) -> Result<i64, Error> {
        self.member(name, "a whole number", Value::as_i64)
    }
}

/// A query parameter's text, `None` when absent.
pub fn query_text<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A query parameter the request lacks, with what it holds.
pub fn query_needs(name: &str, what_en: &str, what_ja: &str) -> Error {
    Error::new(
        kizuna_domain::Kind::BadInput,
        "query_parameter_missing",
        kizuna_domain::Text::new(
            format!("The request lacks the query parameter {name}: {what_en}."),
            format!("リクエストにクエリパラメーター {name} がありません: {what_ja}。"),
        ),
        kizuna_domain::Text::new(
            format!("Add {name} to the query and send the request again; nothing was changed."),
            format!("クエリに {name} を加えて再送信してください。何も変更されていません。"),
        ),
    )
    .with_details(json!({"parameter": name}))
}

/// A whole-number query parameter within `range`, `None` when absent; any
/// other text is refused (400), never silently replaced by a default.
pub fn query_number(
    params: &[(String, String)],
    name: &str,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<i64>, Error> {
    let Some(raw) = query_text(params, name) else {
        return Ok(None);
    };
    match raw.parse::<i64>() {
        Ok(n) if range.contains(&n) => Ok(Some(n)),
        _ => Err(Error::bad_request(
            "invalid_parameter",
            format!(
                "{name} must be a whole number from {} to {}, not \"{raw}\".",
                range.start(),
                range.end()
            ),
            format!(
                "{name} には {}〜{} の整数を指定してください（「{raw}」は不可）。",
                range.start(),
                range.end()
            ),
        )
        .with_details(serde_json::json!({"parameter": name}))),
    }
}

/// Parses an id from a path: anything that is not an id is simply absent (404).
pub fn id(what: &str, raw: &str) -> Result<i64, Error> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::not_found(what, raw))
}

/// Instants go out as RFC 3339 UTC with milliseconds.
pub fn instant(ms: i64) -> Value {
    json!(kizuna_domain::time::rfc3339(ms))
}

/// A record as the API shows it: `{"id", "module", "version", "created_at",
/// "updated_at", "deleted_at"?, "fields"}`, whatever form its fields are in
/// (a stored record's JSON goes out as it is).
#[derive(Serialize)]
pub struct RecordView<'a, F: Serialize> {
    id: i64,
    module: &'a str,
    version: i64,
    created_at: String,
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted_at: Option<String>,
    fields: &'a F,
}

impl<'a, F: Serialize> RecordView<'a, F> {
    pub fn of(r: &'a Stored<F>) -> Self {
        let at = kizuna_domain::time::rfc3339;
        RecordView {
            id: r.id,
            module: &r.module,
            version: r.version,
            created_at: at(r.created_at),
            updated_at: at(r.updated_at),
            deleted_at: r.deleted_at.map(at),
            fields: &r.fields,
        }
    }
}

/// A record as the API shows it.
pub fn record_json(r: &Record) -> Value {
    serde_json::to_value(RecordView::of(r)).unwrap_or(Value::Null)
}
