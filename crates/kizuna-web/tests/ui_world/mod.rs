//! A browser as the UI's HTTP tests meet it: its cookies, its language,
//! redirects not followed, forms posted; and what a page answered.

use kizuna_testkit::TestApp;
use reqwest::header::{HeaderMap, SET_COOKIE};
use std::collections::HashMap;

pub const PASSWORD: &str = "correct horse battery";

/// A browser: its cookies, its language, no redirects followed (the tests
/// look at them).
pub struct Browser<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    pub cookies: HashMap<String, String>,
    language: &'static str,
    /// Sent as `X-Forwarded-Proto` (a TLS proxy in front).
    pub proto: Option<&'static str>,
}

/// What a page answered.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The `Set-Cookie` header for `name`, whole.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }

    /// The value of the hidden `csrf` field of the page's first form.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a CSRF field")
            + 19;
        self.body[at..]
            .split('"')
            .next()
            .expect("a value")
            .to_string()
    }
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp, language: &'static str) -> Browser<'a> {
        Browser {
            app,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a client"),
            cookies: HashMap::new(),
            language,
            proto: None,
        }
    }

    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let cookies: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut request = request
            .header("Accept-Language", self.language)
            .header("Cookie", cookies.join("; "));
        if let Some(p) = self.proto {
            request = request.header("X-Forwarded-Proto", p);
        }
        let r = request.send().await.expect("the server answers");
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        for v in headers.get_all(SET_COOKIE).iter() {
            let c =
                cookie::Cookie::parse(v.to_str().expect("ASCII").to_string()).expect("a cookie");
            if c.max_age().is_some_and(|a| a.is_zero()) {
                self.cookies.remove(c.name());
            } else {
                self.cookies
                    .insert(c.name().to_string(), c.value().to_string());
            }
        }
        Answer {
            status,
            headers,
            body: r.text().await.expect("a body"),
        }
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        let request = self.http.get(self.app.url(path));
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let request = self.http.post(self.app.url(path)).form(form);
        self.send(request).await
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> Answer {
        let form = self.get("/sign-in").await;
        let csrf = form.csrf();
        self.post(
            "/sign-in",
            &[
                ("email", email),
                ("password", password),
                ("csrf", &csrf),
                ("next", "/home"),
            ],
        )
        .await
    }
}
