//! Sending plain-text mail through an SMTP server (`--smtp-url`):
//! `smtp://host:port` (STARTTLS when the server offers it),
//! `smtp://host:port?tls=required`, `smtps://host:port`, with
//! `user:password@` for servers that want a login.

use kizuna_domain::{Error, Kind, Result, Text};
use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// How long one delivery may take before it counts as failed and is retried.
const TIMEOUT: Duration = Duration::from_secs(30);

/// An SMTP server and the address mail comes from.
#[derive(Clone)]
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    server: String,
}

impl Smtp {
    /// Checks the URL and the sender address; connects only when sending.
    pub fn new(url: &str, from: &str) -> Result<Smtp> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| {
                bad_setting(
                    "smtp_url_invalid",
                    "--smtp-url",
                    url_without_password(url),
                    &e,
                )
            })?
            .timeout(Some(TIMEOUT))
            .build();
        let from: Mailbox = from
            .parse()
            .map_err(|e| bad_setting("mail_from_invalid", "--mail-from", from.to_string(), &e))?;
        Ok(Smtp {
            transport,
            from,
            server: url_without_password(url),
        })
    }

    /// The server, as it may be shown to people (no password).
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Sends one message. The error is the server's (or the network's)
    /// answer, for the outbox to show.
    pub async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), String> {
        let to: Mailbox = to.parse().map_err(|e| format!("recipient {to}: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_string())
            .map_err(|e| format!("building the message: {e}"))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("{}: {e}", self.server))
    }
}

/// How a user's SMTP server is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain, then STARTTLS, which the server must offer (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// Plain text: only for a server on the same machine or network.
    None,
}

/// A user's own SMTP account (a mail connection's `smtp` settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender, e.g. `Taro Yamada <taro@example.jp>`.
    pub from: String,
}

/// A message a user writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub body: String,
}

fn refused(server: &str, why: &str) -> Error {
    Error::new(
        Kind::Unavailable,
        "smtp_send_failed",
        Text::new(
            format!("The SMTP server {server} did not take the message: {why}."),
            format!("SMTP サーバー {server} がメッセージを受け付けませんでした: {why}。"),
        ),
        Text::new(
            "Check the connection's SMTP settings (host, port, security, user name, password) and send again; nothing was recorded.",
            "連携の SMTP 設定（ホスト・ポート・暗号化・ユーザー名・パスワード）を確認して再送信してください。何も記録されていません。",
        ),
    )
    .with_details(serde_json::json!({"server": server}))
}

/// Sends a user's message through their own SMTP server, connecting to the
/// address the guard let through (the name is resolved once, here), and
/// returns the message as sent, for the CRM to keep.
pub async fn send_as(account: &Account, allow_private: bool, m: &Outgoing) -> Result<Vec<u8>> {
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    let server = format!("{}:{}", account.host, account.port);
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        Error::new(
            Kind::BadInput,
            "invalid_message",
            Text::new(
                format!("The message cannot be sent: {what} is not usable ({e})."),
                format!("メッセージを送信できません: {what} が使用できません（{e}）。"),
            ),
            Text::new(
                "Give each address as name@example.jp or Name <name@example.jp>, at least one recipient in \"to\", and a sender in the connection's smtp.from; nothing was sent.",
                "アドレスは name@example.jp または Name <name@example.jp> の形で、\"to\" に宛先を 1 つ以上、連携の smtp.from に差出人を指定してください。何も送信されていません。",
            ),
        )
        .with_details(serde_json::json!({"field": what}))
    };
    let from: Mailbox = account.from.parse().map_err(|e| bad("from", &e))?;
    // A Message-ID of its own, so the copy kept in the CRM is one item.
    let mut builder = Message::builder()
        .from(from)
        .subject(&m.subject)
        .message_id(None);
    if m.to.is_empty() {
        return Err(bad("to", &"at least one recipient"));
    }
    for to in &m.to {
        builder = builder.to(to.parse().map_err(|e| bad(to, &e))?);
    }
    for cc in &m.cc {
        builder = builder.cc(cc.parse().map_err(|e| bad(cc, &e))?);
    }
    let message = builder
        .header(ContentType::TEXT_PLAIN)
        .body(m.body.clone())
        .map_err(|e| bad("the message", &e))?;
    crate::net::check_literal(&account.host, allow_private)
        .map_err(|r| refused(&server, &r.to_string()))?;
    let addr = crate::net::resolve(&account.host, allow_private)
        .await
        .map_err(|r| refused(&server, &r.to_string()))?[0];
    let tls = |host: &str| {
        TlsParameters::new(host.to_string()).map_err(|e| refused(&server, &e.to_string()))
    };
    let security = match account.security {
        Security::None => Tls::None,
        Security::StartTls => Tls::Required(tls(&account.host)?),
        Security::Tls => Tls::Wrapper(tls(&account.host)?),
    };
    let mut transport =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
            .port(account.port)
            .tls(security)
            .timeout(Some(TIMEOUT));
    if let Some(user) = &account.username {
        transport = transport.credentials(Credentials::new(
            user.clone(),
            account.password.clone().unwrap_or_default(),
        ));
    }
    let raw = message.formatted();
    transport
        .build()
        .send(message)
        .await
        .map_err(|e| refused(&server, &e.to_string()))?;
    Ok(raw)
}

/// `url` with the password (if any) replaced by `***`.
fn url_without_password(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(at)) if at > scheme.len() => {
            let userinfo = &rest[..at - scheme.len() - 3];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{}", &url[at + 1..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn bad_setting(
    code: &'static str,
    option: &str,
    value: String,
    e: &dyn std::fmt::Display,
) -> Error {
    Error::new(
        Kind::BadInput,
        code,
        Text::new(
            format!("{option} {value} is not usable: {e}."),
            format!("{option} {value} は使用できません: {e}。"),
        ),
        Text::new(
            format!(
                "Give {option} in the form smtp://host:port, smtps://host:port or smtp://user:password@host:port?tls=required, and an address such as Kizuna <kizuna@example.com> for --mail-from."
            ),
            format!(
                "{option} は smtp://host:port、smtps://host:port、smtp://user:password@host:port?tls=required の形式で、--mail-from は Kizuna <kizuna@example.com> のようなアドレスで指定してください。"
            ),
        ),
    )
    .with_rule("GEN-9")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_never_shown() {
        assert_eq!(
            url_without_password("smtp://kizuna:s3cret@mail.example.com:587?tls=required"),
            "smtp://kizuna:***@mail.example.com:587?tls=required"
        );
        assert_eq!(
            url_without_password("smtp://127.0.0.1:2525"),
            "smtp://127.0.0.1:2525"
        );
    }

    #[test]
    fn bad_settings_are_refused_with_the_option_named() {
        let e = Smtp::new("http://x", "kizuna@example.com")
            .err()
            .expect("refused");
        assert_eq!(e.code, "smtp_url_invalid");
        assert!(e.message.en.contains("--smtp-url"), "{}", e.message.en);
        assert!(e.message.ja.contains("--smtp-url"), "{}", e.message.ja);
        let e = Smtp::new("smtp://127.0.0.1:2525", "not an address")
            .err()
            .expect("refused");
        assert_eq!(e.code, "mail_from_invalid");
        assert!(e.fix.en.contains("--mail-from"));
    }
}
