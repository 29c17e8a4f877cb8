//! Who is at the browser: the session cookie (HttpOnly, SameSite=Lax,
//! Secure behind TLS), the CSRF token every form carries, the language.

use super::i18n::Lang;
use super::page::UiError;
use crate::http::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use kizuna_domain::time::{self, Tz};
use kizuna_domain::{Error, Kind, Text};
use kizuna_store::Session;

/// The cookie that names a signed-in session.
pub const SESSION_COOKIE: &str = "kizuna_session";
/// The sign-in form's CSRF token, before there is a session: the form's
/// hidden field must equal this cookie (double submit).
pub const SIGN_IN_COOKIE: &str = "kizuna_sign_in";

/// A request as the UI sees it before knowing who sent it.
pub struct Visit {
    pub lang: Lang,
    /// Served over TLS (by a proxy that says so): cookies are `Secure`.
    pub secure: bool,
    cookies: Vec<(String, String)>,
}

impl Visit {
    pub fn of(headers: &HeaderMap) -> Visit {
        let header = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let cookies = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| Cookie::split_parse(v.to_string()).filter_map(Result::ok))
            .map(|c| (c.name().to_string(), c.value().to_string()))
            .collect();
        Visit {
            lang: Lang::from_accept_language(header(header::ACCEPT_LANGUAGE)),
            secure: header(header::HeaderName::from_static("x-forwarded-proto"))
                .is_some_and(|p| p.eq_ignore_ascii_case("https")),
            cookies,
        }
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A `Set-Cookie` value for `name`: HttpOnly, SameSite=Lax, Secure over
    /// TLS; removed when `value` is `None`.
    pub fn set_cookie(&self, name: &str, value: Option<&str>) -> HeaderValue {
        let mut c = Cookie::build((name.to_string(), value.unwrap_or_default().to_string()))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .build();
        if value.is_none() {
            c.make_removal();
        }
        HeaderValue::from_str(&c.to_string()).unwrap_or(HeaderValue::from_static(""))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Visit {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Visit::of(&parts.headers))
    }
}

/// Path parameters for a page. One that does not parse (`/orgs/abc`) is a
/// page that is not found, as in the API, shown in the reader's language —
/// not the framework's plain-text refusal.
pub struct UiPath<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for UiPath<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(t)) => Ok(UiPath(t)),
            Err(_) => {
                let e = Error::not_found("Page", parts.uri.path());
                Err(UiError(e, Visit::of(&parts.headers).lang).into_response())
            }
        }
    }
}

/// A signed-in visitor: their session, the language they read (their own
/// choice, else their browser's) and the time zone they read date-times in.
pub struct Viewer {
    pub session: Session,
    pub lang: Lang,
    pub tz: Tz,
    pub visit: Visit,
}

impl Viewer {
    /// Refuses a form that does not carry this session's CSRF token.
    pub fn check_csrf(&self, token: Option<&str>) -> Result<(), UiError> {
        check_token(self.session.csrf.as_str(), token).map_err(|e| UiError(e, self.lang))
    }
}

/// The value of `key` in a form's fields.
pub fn form_value<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

impl Viewer {
    /// Refuses a form whose `csrf` field is not this session's token.
    pub fn check_form(&self, form: &[(String, String)]) -> Result<(), UiError> {
        self.check_csrf(form_value(form, "csrf"))
    }
}

/// Compares a form's CSRF token with the expected one in constant time.
pub fn check_token(expected: &str, given: Option<&str>) -> Result<(), Error> {
    let given = given.unwrap_or_default();
    let same = expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same && !expected.is_empty() {
        Ok(())
    } else {
        Err(Error::new(
            Kind::Forbidden,
            "csrf_token_invalid",
            Text::new(
                "This form was refused: it did not carry this page's security token (CSRF).",
                "このフォームは受け付けられませんでした。ページのセキュリティトークン（CSRF）が含まれていません。",
            ),
            Text::new(
                "Reload the page and send the form again from it.",
                "ページを再読み込みし、そのページからもう一度送信してください。",
            ),
        ))
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let visit = Visit::of(&parts.headers);
        let session = match visit.cookie(SESSION_COOKIE) {
            Some(token) => state
                .store
                .session(token)
                .await
                .map_err(|e| UiError(e, visit.lang).into_response())?,
            None => None,
        };
        let Some(session) = session else {
            // Not signed in (or no longer): to the sign-in page, and back
            // here afterwards.
            let here = parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            return Err(Redirect::to(&format!("/sign-in?next={}", encode(&here))).into_response());
        };
        let lang = session
            .language
            .as_deref()
            .and_then(Lang::parse)
            .unwrap_or(visit.lang);
        let tz = session
            .time_zone
            .as_deref()
            .and_then(|z| time::zone(z).ok())
            .unwrap_or(time::DEFAULT_ZONE);
        Ok(Viewer {
            session,
            lang,
            tz,
            visit,
        })
    }
}

/// Percent-encodes a path for a query parameter.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where to go after signing in: a path of this site only (never another
/// host: `//evil.example` or `https://…` fall back to the home page).
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_string(),
        _ => "/home".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_passes() {
        assert!(check_token("abc123", Some("abc123")).is_ok());
        assert!(check_token("abc123", Some("abc124")).is_err());
        assert!(check_token("abc123", Some("abc12")).is_err());
        assert!(check_token("abc123", None).is_err());
        assert!(check_token("", Some("")).is_err());
    }

    #[test]
    fn the_page_after_sign_in_is_on_this_site() {
        assert_eq!(local_path(Some("/orgs/3")), "/orgs/3");
        assert_eq!(local_path(Some("//evil.example/x")), "/home");
        assert_eq!(local_path(Some("https://evil.example")), "/home");
        assert_eq!(local_path(Some("/\\evil.example")), "/home");
        assert_eq!(local_path(None), "/home");
    }
}
