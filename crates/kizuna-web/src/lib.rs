//! Kizuna's HTTP face: the REST API under `/api/v1`, described by OpenAPI at
//! `/api/openapi.json`, and the web UI (`ui`) at `/`. Handlers only translate HTTP to calls of the apps and
//! the store; no rule lives here.

pub mod http;
pub mod integrations;
pub mod orgs;
pub mod records;
pub mod ui;

use axum::Json;
use axum::extract::DefaultBodyLimit;
pub use http::Options;
use http::{ApiError, AppState, BODY_LIMIT};
use kizuna_domain::{Error, Kind, Text};
use kizuna_store::Store;
use utoipa::OpenApi;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Kizuna API", description = "Kizuna: CRM, Desk, Projects, Events and Inventory on one record store."),
    tags(
        (name = "identity", description = "The caller"),
        (name = "orgs", description = "Orgs, members, plans, departments"),
        (name = "modules", description = "Modules and fields as data"),
        (name = "records", description = "Records, related lists, recycle bin, change log"),
        (name = "integrations", description = "Integrations between orgs of two apps"),
    )
)]
struct ApiDoc;

/// Every route of the API with its OpenAPI description, built from one list so
/// that a route cannot exist undocumented.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(openapi_json))
        .routes(routes!(orgs::me))
        .routes(routes!(orgs::list_keys))
        .routes(routes!(orgs::revoke_key))
        .routes(routes!(orgs::list_orgs, orgs::create_org))
        .routes(routes!(orgs::get_org, orgs::patch_org))
        .routes(routes!(orgs::list_members, orgs::add_member))
        .routes(routes!(orgs::patch_member))
        .routes(routes!(orgs::list_departments, orgs::create_department))
        .routes(routes!(orgs::add_department_member))
        .routes(routes!(orgs::outbox))
        .routes(routes!(records::list_modules, records::add_module))
        .routes(routes!(records::patch_module))
        .routes(routes!(records::list_fields, records::add_field))
        .routes(routes!(records::patch_field))
        .routes(routes!(records::list_records, records::create_record))
        .routes(routes!(
            records::get_record,
            records::patch_record,
            records::delete_record
        ))
        .routes(routes!(records::restore_record))
        .routes(routes!(records::related, records::create_related))
        .routes(routes!(records::associate, records::dissociate))
        .routes(routes!(records::recycle_bin))
        .routes(routes!(records::changes))
        .routes(routes!(integrations::create))
        .routes(routes!(integrations::get, integrations::delete))
        .routes(routes!(integrations::list_for_org))
        .routes(routes!(integrations::enable))
        .routes(routes!(integrations::pause))
        .routes(routes!(integrations::resume))
        .routes(routes!(integrations::disable))
        .routes(routes!(integrations::take_over))
        .routes(routes!(integrations::copy_settings))
        .routes(routes!(
            integrations::get_mapping,
            integrations::put_mapping
        ))
        .routes(routes!(integrations::reset_mapping))
        .routes(routes!(integrations::import_file))
        .routes(routes!(integrations::add_email))
        .routes(routes!(integrations::send_email))
        .routes(routes!(integrations::patch_settings))
        .routes(routes!(integrations::doctor))
        .routes(routes!(integrations::sync))
        .routes(routes!(integrations::preview))
        .routes(routes!(integrations::invite))
        .routes(routes!(integrations::history))
        .routes(routes!(integrations::run_items))
        .routes(routes!(integrations::retry))
        .routes(routes!(integrations::conflicts))
        .routes(routes!(integrations::decide))
}

/// Liveness: answers while the server runs.
#[utoipa::path(get, path = "/healthz", tag = "identity",
    responses((status = 200, description = "ok")))]
async fn healthz() -> &'static str {
    "ok"
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "identity",
    responses((status = 200, description = "The OpenAPI 3.1 document of every route")))]
async fn openapi_json() -> Json<OpenApiDoc> {
    Json(openapi())
}

/// The OpenAPI 3.1 document of every route, built once.
pub fn openapi() -> OpenApiDoc {
    static DOC: std::sync::OnceLock<OpenApiDoc> = std::sync::OnceLock::new();
    DOC.get_or_init(|| api_routes().split_for_parts().1).clone()
}

/// The whole HTTP application.
pub fn app(store: Store, options: Options) -> axum::Router {
    let (router, _) = api_routes().split_for_parts();
    router
        .merge(ui::routes())
        .fallback(|| async {
            ApiError(Error::new(
                Kind::NotFound,
                "no_such_route",
                Text::new(
                    "There is no such API route.",
                    "そのような API ルートはありません。",
                ),
                Text::new(
                    "See /api/openapi.json for every route.",
                    "すべてのルートは /api/openapi.json を参照してください。",
                ),
            ))
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(AppState { store, options })
}

/// Serves the application on a bound listener until `shutdown` resolves.
pub async fn serve(
    store: Store,
    options: Options,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(store, options))
        .with_graceful_shutdown(shutdown)
        .await
}
