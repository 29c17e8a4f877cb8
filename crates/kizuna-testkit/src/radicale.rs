//! A real CardDAV/CalDAV server for tests: Radicale (from PyPI), started on
//! a free port of 127.0.0.1 with `--auth-type none` and a temporary storage
//! folder. Any Basic user name logs in; its first request makes its
//! principal collection, and address books are made with an extended MKCOL.

use crate::peer::{python, python_has, start_on_free_port};
use crate::skip_or_fail;
use std::process::{Child, Command, Stdio};

/// The one user the tests log in as.
pub const USER: &str = "sales";
pub const PASSWORD: &str = "any password works";

/// Radicale listening on `port`; stopped when dropped.
pub struct Radicale {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
    http: reqwest::Client,
}

impl Drop for Radicale {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Radicale {
    /// Starts Radicale, or `None` when it is not installed (the test has
    /// then been reported as skipped, or failed under
    /// `KIZUNA_TEST_SERVICES=required`).
    pub fn start(test: &str) -> Option<Radicale> {
        if !python_has("radicale") {
            skip_or_fail(
                test,
                "Radicale",
                "python3 -m radicale is not installed (pip install radicale)",
            );
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log_path = dir.path().join("radicale.log");
        let (port, child) = start_on_free_port("Radicale", &log_path, |port| {
            let log = std::fs::File::create(&log_path).expect("the Radicale log");
            Command::new(python())
                .args(["-m", "radicale", "--server-hosts"])
                .arg(format!("127.0.0.1:{port}"))
                .args(["--auth-type", "none", "--storage-filesystem-folder"])
                .arg(dir.path().join("collections"))
                .args(["--logging-level", "warning"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("Radicale starts")
        });
        Some(Radicale {
            port,
            dir,
            child,
            http: reqwest::Client::new(),
        })
    }

    /// The server's root URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The path of address book `name` of the test user.
    pub fn book_path(&self, name: &str) -> String {
        format!("/{USER}/{name}/")
    }

    /// The full URL of a path.
    pub fn at(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A request of the test user.
    fn request(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("a method"),
                self.at(path),
            )
            .basic_auth(USER, Some(PASSWORD))
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: String,
        content_type: &str,
    ) -> (u16, String) {
        let r = self
            .request(method, path)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .expect("Radicale answers");
        let status = r.status().as_u16();
        let etag = r
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (status, etag)
    }

    /// Makes an address book of the test user; returns its path.
    pub async fn make_address_book(&self, name: &str) -> String {
        // The user's principal collection is made by their first request.
        self.send("PROPFIND", &format!("/{USER}/"), String::new(), "text/xml")
            .await;
        let path = self.book_path(name);
        let body = r#"<?xml version="1.0" encoding="utf-8"?>
<D:mkcol xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">
  <D:set><D:prop><D:resourcetype><D:collection/><C:addressbook/></D:resourcetype></D:prop></D:set>
</D:mkcol>"#;
        let (status, _) = self
            .send("MKCOL", &path, body.to_string(), "text/xml; charset=utf-8")
            .await;
        assert_eq!(status, 201, "MKCOL {path}");
        path
    }

    /// Makes a calendar (events and tasks) of the test user; returns its path.
    pub async fn make_calendar(&self, name: &str) -> String {
        self.send("PROPFIND", &format!("/{USER}/"), String::new(), "text/xml")
            .await;
        let path = self.book_path(name);
        let body = r#"<?xml version="1.0" encoding="utf-8"?>
<D:mkcol xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:set><D:prop><D:resourcetype><D:collection/><C:calendar/></D:resourcetype>
  <C:supported-calendar-component-set><C:comp name="VEVENT"/><C:comp name="VTODO"/></C:supported-calendar-component-set>
  </D:prop></D:set>
</D:mkcol>"#;
        let (status, _) = self
            .send("MKCOL", &path, body.to_string(), "text/xml; charset=utf-8")
            .await;
        assert_eq!(status, 201, "MKCOL {path}");
        path
    }

    /// Puts a vCard at `book`/`name`; returns its etag.
    pub async fn put_card(&self, book: &str, name: &str, vcard: &str) -> String {
        self.put(book, name, vcard, "text/vcard; charset=utf-8")
            .await
    }

    /// Puts a calendar object at `calendar`/`name`; returns its etag.
    pub async fn put_calendar_item(&self, calendar: &str, name: &str, ics: &str) -> String {
        self.put(calendar, name, ics, "text/calendar; charset=utf-8")
            .await
    }

    async fn put(&self, collection: &str, name: &str, text: &str, content_type: &str) -> String {
        let path = format!("{collection}{name}");
        let (status, etag) = self
            .send("PUT", &path, text.to_string(), content_type)
            .await;
        assert!(matches!(status, 201 | 204), "PUT {path}: {status}");
        etag
    }

    /// The text of an item, or `None` when there is none.
    pub async fn get(&self, path: &str) -> Option<String> {
        let r = self
            .request("GET", path)
            .send()
            .await
            .expect("Radicale answers");
        if r.status().as_u16() == 404 {
            return None;
        }
        assert_eq!(r.status().as_u16(), 200, "GET {path}");
        Some(r.text().await.expect("a body"))
    }

    /// Deletes an item.
    pub async fn delete(&self, path: &str) {
        let (status, _) = self.send("DELETE", path, String::new(), "text/plain").await;
        assert!(matches!(status, 200 | 204), "DELETE {path}: {status}");
    }

    /// Lists a collection once, so that Radicale has parsed its items. Items
    /// written past the server (`put_file_directly`) are parsed on the first
    /// listing and kept in Radicale's cache: for 10,000 cards that listing
    /// took 53 s on a slow machine, and 4 s once cached. A test that times
    /// a client's work warms the collection first, so that it times the
    /// client.
    pub async fn warm(&self, collection: &str) {
        let body = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>"#;
        let r = self
            .request("PROPFIND", collection)
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("Depth", "1")
            .body(body)
            .send()
            .await
            .expect("Radicale answers");
        assert_eq!(r.status().as_u16(), 207, "PROPFIND {collection}");
    }

    /// Writes an item straight into the server's storage, past its checks
    /// (a duplicate UID, a broken card: what other clients leave behind).
    pub fn put_file_directly(&self, book: &str, name: &str, text: &str) {
        let dir = self
            .dir
            .path()
            .join("collections/collection-root")
            .join(book.trim_matches('/'));
        std::fs::write(dir.join(name), text).expect("write into Radicale's storage");
    }
}

/// A vCard 3.0 text with the given UID, names, e-mail and extra lines.
pub fn vcard(uid: &str, last: &str, first: &str, email: Option<&str>, extra: &[&str]) -> String {
    let mut lines = vec![
        "BEGIN:VCARD".to_string(),
        "VERSION:3.0".to_string(),
        format!("UID:{uid}"),
        format!("N:{last};{first};;;"),
        format!("FN:{first} {last}"),
    ];
    if let Some(e) = email {
        lines.push(format!("EMAIL;TYPE=INTERNET:{e}"));
    }
    lines.extend(extra.iter().map(|l| l.to_string()));
    lines.push("END:VCARD".to_string());
    lines.join("\r\n") + "\r\n"
}
