//! What every page shares: the header's facts (`Chrome`), rendering a
//! template into a response, and refusals shown as a page in the reader's
//! language with their cause and fix.

use super::i18n::Lang;
use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use kizuna_domain::Error;

/// What the page header needs: the language, who is signed in (none on
/// the sign-in page), and the CSRF token its forms carry.
pub struct Chrome {
    pub l: Lang,
    pub user: Option<String>,
    pub csrf: String,
}

/// A refusal as the page shows it.
pub struct Shown {
    pub code: String,
    pub message: String,
    pub fix: String,
}

impl Shown {
    pub fn of(e: &Error, l: Lang) -> Shown {
        Shown {
            code: e.code.to_string(),
            message: l.text(&e.message),
            fix: l.text(&e.fix),
        }
    }
}

/// The status of a form page: 200, or the refusal's own when it shows one.
pub fn refusal_status(refused: Option<&Error>) -> StatusCode {
    refused.map_or(StatusCode::OK, |e| {
        StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST)
    })
}

/// A template rendered as a page with `status`.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!("a page failed to render: {e}");
            let text = "The page could not be shown. Try again; if it goes on, see the server log.\n\
                        ページを表示できませんでした。もう一度お試しください。続く場合はサーバーのログを確認してください。";
            (StatusCode::INTERNAL_SERVER_ERROR, text).into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    c: Chrome,
    e: Shown,
}

/// A refusal on its way out as a page, in the reader's language.
#[derive(Debug)]
pub struct UiError(pub Error, pub Lang);

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let UiError(e, l) = self;
        if e.kind == kizuna_domain::Kind::Internal {
            tracing::error!("{}", e.message.en);
        }
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let page = ErrorPage {
            c: Chrome {
                l,
                user: None,
                csrf: String::new(),
            },
            e: Shown::of(&e, l),
        };
        render(status, &page)
    }
}

pub type UiResult<T> = Result<T, UiError>;
