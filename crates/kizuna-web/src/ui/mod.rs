//! The web UI: pages rendered on the server (askama) in Japanese and
//! English, for the people who work in a browser rather than with the API.
//! Pages call the same apps and store as the API; no rule lives here.
//!
//! Security: sessions in cookies that are HttpOnly, SameSite=Lax and Secure
//! behind TLS, a new session id at every sign-in, a CSRF token in every form
//! (a POST without it is refused), failed sign-ins limited per account, and
//! a content security policy that allows no inline script or style.

mod admin;
mod conflicts;
mod forms;
mod i18n;
mod integrations;
mod mail;
mod mapping;
mod page;
mod pages;
mod preferences;
mod session;
mod settings;

use crate::http::AppState;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use pages::{MAX_SIGN_IN_FAILURES, SIGN_IN_WINDOW_MS};

/// Everything a page may load comes from this server; no inline script or
/// style, no framing, forms post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The pages, each answered with the security headers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::root))
        .route("/sign-in", get(pages::sign_in_form).post(pages::sign_in))
        .route("/sign-out", post(pages::sign_out))
        .route("/settings/language", post(preferences::set_language))
        .route("/settings/me", get(preferences::page))
        .route("/settings/time-zone", post(preferences::set_time_zone))
        .route("/home", get(pages::home))
        .route("/orgs/{org}", get(pages::org_page))
        .route("/orgs/{org}/modules/{module}", get(pages::records_page))
        .route("/orgs/{org}/bin", get(pages::bin_page))
        .route("/orgs/{org}/mail", get(mail::page).post(mail::save))
        .route(
            "/orgs/{org}/modules/{module}/new",
            get(forms::new_form).post(forms::create),
        )
        .route("/orgs/{org}/modules/{module}/{id}", get(pages::record_page))
        .route(
            "/orgs/{org}/modules/{module}/{id}/edit",
            get(forms::edit_form).post(forms::update),
        )
        .route(
            "/orgs/{org}/modules/{module}/{id}/delete",
            post(forms::delete),
        )
        .route(
            "/orgs/{org}/modules/{module}/{id}/desk-tickets",
            post(forms::open_ticket),
        )
        .route(
            "/orgs/{org}/modules/{module}/{id}/restore",
            post(forms::restore),
        )
        .route("/orgs/{org}/settings", get(admin::settings))
        .route("/orgs/{org}/settings/plan", post(admin::set_plan))
        .route("/orgs/{org}/settings/members", post(admin::add_member))
        .route("/orgs/{org}/settings/members/{user}", post(admin::set_role))
        .route(
            "/orgs/{org}/settings/departments",
            post(admin::add_department),
        )
        .route(
            "/orgs/{org}/settings/departments/{department}/members",
            post(admin::add_department_member),
        )
        .route("/orgs/{org}/settings/modules/{module}", get(admin::fields))
        .route(
            "/orgs/{org}/settings/modules/{module}/enabled",
            post(admin::set_module_enabled),
        )
        .route(
            "/orgs/{org}/settings/modules/{module}/fields",
            post(admin::add_field),
        )
        .route(
            "/orgs/{org}/settings/modules/{module}/fields/{field}/{change}",
            post(admin::change_field),
        )
        .route(
            "/orgs/{org}/settings/marketplace",
            get(integrations::marketplace),
        )
        .route(
            "/orgs/{org}/settings/marketplace/{kind}/new",
            get(integrations::setup_form).post(integrations::set_up),
        )
        .route("/integrations/{id}", get(integrations::integration_page))
        .route("/integrations/{id}/act", post(integrations::act))
        .route("/integrations/{id}/conflicts", get(conflicts::page))
        .route(
            "/integrations/{id}/conflicts/{conflict}",
            post(conflicts::decide),
        )
        .route(
            "/integrations/{id}/settings",
            get(settings::page).post(settings::save),
        )
        .route(
            "/integrations/{id}/mapping",
            get(mapping::page).post(mapping::save),
        )
        .route("/integrations/{id}/sync", post(integrations::sync_now))
        .route("/integrations/{id}/preview", get(integrations::preview))
        .route(
            "/integrations/{id}/delete",
            get(integrations::delete_form).post(integrations::delete),
        )
        .route(
            "/integrations/{id}/runs/{run}/retry",
            post(integrations::retry),
        )
        .route("/static/kizuna.css", get(stylesheet))
        .layer(axum::middleware::map_response(security_headers))
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../static/kizuna.css"),
    )
        .into_response()
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Pages hold a member's data: not kept by shared caches or the back button.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
