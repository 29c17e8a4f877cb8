//! CardDAV (RFC 6352) and CalDAV (RFC 4791) as a mail connection reads them,
//! over libdav: the account's address books or calendars, what changed in
//! one since a sync token (RFC 6578) or, when the server offers no token or
//! refuses the one it gave, the whole listing of hrefs and etags, and the
//! items themselves in batches.
//!
//! Every connection goes through the address guard (`net`), every response
//! body is capped, and every request has a deadline: the server at the other
//! end is a user's input, not ours. DAV XML is parsed by roxmltree, which
//! refuses a document with a DOCTYPE (no entity expansion).

use crate::net::{GuardedResolver, Refused, check_literal};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::header::{AUTHORIZATION, HeaderValue};
use http::{Request, Response, Uri};
use http_body_util::Limited;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kizuna_domain::{Error, Kind, Text};
use libdav::caldav::{FindCalendarHomeSet, FindCalendars, GetCalendarResources};
use libdav::carddav::{FindAddressBookHomeSet, FindAddressBooks, GetAddressBookResources};
use libdav::dav::{
    Delete, GetEtag, ListResources, PutResource, SyncCollection, WebDavClient, WebDavError,
};
use serde_json::json;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The most bytes one response may have (a multiget of a batch of cards
/// with photos is a few megabytes).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(60);
/// Cards asked for per multiget.
pub const FETCH_BATCH: usize = 100;

/// Where a connection's server is and who it logs in as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// Why a request did not get an answer.
#[derive(Debug)]
pub enum HttpError {
    Refused(Refused),
    Timeout,
    Client(hyper_util::client::legacy::Error),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Refused(r) => r.fmt(f),
            HttpError::Timeout => write!(f, "no answer within {} s", TIMEOUT.as_secs()),
            HttpError::Client(e) => {
                // The connector's own error (a refused address) is inside.
                let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
                while let Some(s) = source {
                    if let Some(r) = s.downcast_ref::<Refused>() {
                        return r.fmt(f);
                    }
                    source = s.source();
                }
                write!(f, "{e}")
            }
        }
    }
}

impl std::error::Error for HttpError {}

type Connector = hyper_rustls::HttpsConnector<HttpConnector<GuardedResolver>>;

/// The HTTP client libdav sends through: the guard, Basic authentication,
/// a deadline and a cap on the body.
#[derive(Clone)]
pub struct GuardedHttp {
    client: Client<Connector, String>,
    auth: Option<HeaderValue>,
    allow_private: bool,
}

impl GuardedHttp {
    pub fn new(account: &Account, allow_private: bool) -> GuardedHttp {
        let mut http = HttpConnector::new_with_resolver(GuardedResolver { allow_private });
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(15)));
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let auth = account.username.as_ref().map(|u| {
            let plain = format!("{u}:{}", account.password.as_deref().unwrap_or_default());
            let mut v = HeaderValue::from_str(&format!("Basic {}", BASE64.encode(plain)))
                .unwrap_or_else(|_| HeaderValue::from_static(""));
            v.set_sensitive(true);
            v
        });
        GuardedHttp {
            client: Client::builder(TokioExecutor::new()).build(tls),
            auth,
            allow_private,
        }
    }
}

impl tower_service::Service<Request<String>> for GuardedHttp {
    type Response = Response<Limited<Incoming>>;
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, HttpError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), HttpError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<String>) -> Self::Future {
        let client = self.client.clone();
        if let Some(a) = &self.auth {
            req.headers_mut().insert(AUTHORIZATION, a.clone());
        }
        // A literal address never reaches the resolver: it is checked here.
        let literal = req
            .uri()
            .host()
            .map(|h| check_literal(h, self.allow_private));
        Box::pin(async move {
            if let Some(Err(r)) = literal {
                return Err(HttpError::Refused(r));
            }
            let response = tokio::time::timeout(TIMEOUT, client.request(req))
                .await
                .map_err(|_| HttpError::Timeout)?
                .map_err(HttpError::Client)?;
            Ok(response.map(|body| Limited::new(body, MAX_RESPONSE_BYTES)))
        })
    }
}

/// Which collections of an account: address books or calendars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collections {
    AddressBooks,
    Calendars,
}

impl Collections {
    fn protocol(self) -> &'static str {
        match self {
            Collections::AddressBooks => "CardDAV",
            Collections::Calendars => "CalDAV",
        }
    }
}

/// A CardDAV or CalDAV account.
pub struct Dav {
    dav: WebDavClient<GuardedHttp>,
    server: String,
    kind: Collections,
}

/// An item of a collection: its href and etag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub href: String,
    pub etag: Option<String>,
}

/// What changed in a collection since a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    pub token: String,
    pub changed: Vec<Listed>,
    pub deleted: Vec<String>,
}

/// One fetched item: its text, or the status the server gave for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub href: String,
    pub etag: Option<String>,
    pub data: Result<String, u16>,
}

impl Dav {
    /// Checks the account's address (the guard applies at connection time).
    pub fn new(account: &Account, kind: Collections, allow_private: bool) -> Result<Dav, Error> {
        let protocol = kind.protocol();
        let uri: Uri = account
            .url
            .parse()
            .map_err(|e| dav_error(protocol, &account.url, "the address", &format!("{e}")))?;
        if let Some(h) = uri.host() {
            check_literal(h, allow_private)
                .map_err(|r| dav_error(protocol, &account.url, "the address", &r.to_string()))?;
        }
        Ok(Dav {
            dav: WebDavClient::new(uri, GuardedHttp::new(account, allow_private)),
            server: account.url.clone(),
            kind,
        })
    }

    fn fail<E: std::fmt::Display>(&self, what: &str) -> impl FnOnce(E) -> Error + '_ {
        let what = what.to_string();
        move |e| dav_error(self.kind.protocol(), &self.server, &what, &e.to_string())
    }

    /// The collections of the account's kind (address books or calendars):
    /// the configured URL when it is one, those under it when it is a home
    /// set, else those of the principal's home set (the discovery of
    /// RFC 6352 and RFC 4791).
    pub async fn collections(&self) -> Result<Vec<String>, Error> {
        let base = self.dav.base_url().path().to_string();
        let same = |a: &str| a.trim_end_matches('/') == base.trim_end_matches('/');
        let here = self.collections_under(&base).await?;
        if let Some(c) = here.iter().find(|c| same(c)) {
            return Ok(vec![c.clone()]);
        }
        if !here.is_empty() {
            return Ok(here);
        }
        let mut found = Vec::new();
        if let Some(principal) = self
            .dav
            .find_current_user_principal()
            .await
            .map_err(self.fail("the current user"))?
        {
            for home in self.home_sets(principal.path()).await? {
                found.extend(self.collections_under(home.path()).await?);
            }
        }
        Ok(found)
    }

    /// The collections of the account's kind at or under `path`.
    async fn collections_under(&self, path: &str) -> Result<Vec<String>, Error> {
        let found = match self.kind {
            Collections::AddressBooks => {
                self.dav
                    .request(FindAddressBooks::new(path))
                    .await
                    .map_err(self.fail("the address books"))?
                    .addressbooks
            }
            Collections::Calendars => {
                self.dav
                    .request(FindCalendars::new(path))
                    .await
                    .map_err(self.fail("the calendars"))?
                    .calendars
            }
        };
        Ok(found.into_iter().map(|c| c.href).collect())
    }

    /// The principal's home sets of the account's kind.
    async fn home_sets(&self, principal: &str) -> Result<Vec<Uri>, Error> {
        Ok(match self.kind {
            Collections::AddressBooks => {
                self.dav
                    .request(FindAddressBookHomeSet::new(principal))
                    .await
                    .map_err(self.fail("the address book home"))?
                    .home_sets
            }
            Collections::Calendars => {
                self.dav
                    .request(FindCalendarHomeSet::new(principal))
                    .await
                    .map_err(self.fail("the calendar home"))?
                    .home_sets
            }
        })
    }

    /// What changed since `token` (everything when `None`). `Ok(None)` when
    /// the server refuses the token or offers no sync-collection report: the
    /// caller then lists the collection whole.
    pub async fn changes(
        &self,
        collection: &str,
        token: Option<&str>,
    ) -> Result<Option<Changes>, Error> {
        let mut req = SyncCollection::new(collection);
        if let Some(t) = token {
            req = req.with_sync_token(t);
        }
        match self.dav.request(req).await {
            Ok(r) => Ok(Some(Changes {
                token: r.new_sync_token,
                changed: r
                    .changed
                    .into_iter()
                    .map(|l| Listed {
                        href: l.href,
                        etag: l.etag,
                    })
                    .collect(),
                deleted: r.deleted,
            })),
            Err(WebDavError::PreconditionFailed(_)) => Ok(None),
            // A server without the report (RFC 6578 is optional) answers
            // 403, 405, 501 or the like: its items are listed instead.
            Err(WebDavError::BadStatusCode(s)) if s.is_client_error() || s.as_u16() == 501 => {
                Ok(None)
            }
            Err(e) => Err(self.fail("the changes")(e)),
        }
    }

    /// Every item of a collection with its etag.
    pub async fn list(&self, collection: &str) -> Result<Vec<Listed>, Error> {
        let r = self
            .dav
            .request(ListResources::new(collection))
            .await
            .map_err(self.fail("the collection's items"))?;
        Ok(r.resources
            .into_iter()
            .filter(|l| l.href.trim_end_matches('/') != collection.trim_end_matches('/'))
            .map(|l| Listed {
                href: l.href,
                etag: l.etag,
            })
            .collect())
    }

    /// The items at `hrefs` (at most `FETCH_BATCH` per call): vCards of an
    /// address book, calendar objects of a calendar.
    pub async fn fetch(&self, collection: &str, hrefs: &[String]) -> Result<Vec<Fetched>, Error> {
        let resources = match self.kind {
            Collections::AddressBooks => {
                self.dav
                    .request(GetAddressBookResources::new(collection).with_hrefs(hrefs))
                    .await
                    .map_err(self.fail("the cards"))?
                    .resources
            }
            Collections::Calendars => {
                self.dav
                    .request(GetCalendarResources::new(collection).with_hrefs(hrefs))
                    .await
                    .map_err(self.fail("the calendar items"))?
                    .resources
            }
        };
        Ok(resources
            .into_iter()
            .map(|f| match f.content {
                Ok(c) => Fetched {
                    href: f.href,
                    etag: Some(c.etag),
                    data: Ok(c.data),
                },
                Err(status) => Fetched {
                    href: f.href,
                    etag: None,
                    data: Err(status.as_u16()),
                },
            })
            .collect())
    }
}

/// What a conditional write found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    /// Written; the new etag when the server says it.
    Done(Option<String>),
    /// A create found the resource there already (a write whose answer was
    /// lost): the caller replaces it instead of making a second one.
    Exists,
    /// A replace found the resource changed since its etag.
    Changed,
}

impl Dav {
    /// Writes a calendar object at `href`: created only where there is none
    /// (`If-None-Match: *`) when `etag` is `None`, else replaced only while
    /// it still has `etag` (`If-Match`). Nothing is ever written twice.
    pub async fn put(&self, href: &str, data: &str, etag: Option<&str>) -> Result<Put, Error> {
        let content_type = match self.kind {
            Collections::AddressBooks => "text/vcard; charset=utf-8",
            Collections::Calendars => "text/calendar; charset=utf-8",
        };
        let result = match etag {
            None => {
                self.dav
                    .request(PutResource::new(href).create(data, content_type))
                    .await
            }
            Some(etag) => {
                self.dav
                    .request(PutResource::new(href).update(data, content_type, etag))
                    .await
            }
        };
        match result {
            Ok(r) => Ok(Put::Done(r.etag)),
            Err(WebDavError::BadStatusCode(s)) if s.as_u16() == 412 => Ok(if etag.is_none() {
                Put::Exists
            } else {
                Put::Changed
            }),
            Err(WebDavError::PreconditionFailed(_)) if etag.is_none() => Ok(Put::Exists),
            Err(e) => Err(self.fail("a write")(e)),
        }
    }

    /// The etag of the resource at `href`, or `None` when it is gone.
    pub async fn etag(&self, href: &str) -> Result<Option<String>, Error> {
        match self.dav.request(GetEtag::new(href)).await {
            Ok(r) => Ok(Some(r.etag)),
            Err(WebDavError::BadStatusCode(s)) if s.as_u16() == 404 => Ok(None),
            Err(e) => Err(self.fail("an etag")(e)),
        }
    }

    /// Deletes the resource at `href`; one already gone is fine.
    pub async fn delete(&self, href: &str) -> Result<(), Error> {
        match self.dav.request(Delete::new(href).force()).await {
            Ok(_) => Ok(()),
            Err(WebDavError::BadStatusCode(s)) if s.as_u16() == 404 => Ok(()),
            Err(e) => Err(self.fail("a delete")(e)),
        }
    }
}

/// A CardDAV or CalDAV server that did not give what was asked, in words a
/// person can act on.
pub fn dav_error(protocol: &str, server: &str, what: &str, why: &str) -> Error {
    Error::new(
        Kind::Unavailable,
        "dav_server_error",
        Text::new(
            format!("The {protocol} server {server} did not give {what}: {why}."),
            format!("{protocol} サーバー {server} から {what} を取得できませんでした: {why}。"),
        ),
        Text::new(
            "Check the connection's address, user name and password (PATCH …/settings); the sync is tried again later.",
            "連携のアドレス・ユーザー名・パスワードを確認してください（PATCH …/settings）。同期は後で再試行されます。",
        ),
    )
    .with_details(json!({"protocol": protocol, "server": server, "what": what, "why": why}))
}
