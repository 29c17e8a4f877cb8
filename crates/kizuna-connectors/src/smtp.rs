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
