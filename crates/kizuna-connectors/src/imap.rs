//! IMAP (RFC 3501) as a mail connection reads it, over async-imap: a folder's
//! UIDVALIDITY and the UIDs after the last one seen, and the messages
//! themselves, each capped in size. The server is reached through the
//! address guard, with TLS from the first byte (port 993) unless the
//! connection says otherwise.

use crate::email::MAX_MESSAGE_BYTES;
use crate::net::{check_literal, resolve};
use futures_util::StreamExt;
use kizuna_domain::{Error, Kind, Text};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// How long connecting and each command may take.
const TIMEOUT: Duration = Duration::from_secs(60);
/// Messages fetched per command.
pub const FETCH_BATCH: usize = 50;

/// Where a connection's IMAP server is and who it logs in as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub host: String,
    pub port: u16,
    /// TLS from the first byte; off only for a server on the same machine.
    pub tls: bool,
    pub username: String,
    pub password: String,
}

/// A selected folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Folder {
    pub uid_validity: u32,
}

/// A message of a folder: its UID and its bytes, or why they were not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub uid: u32,
    pub raw: Result<Vec<u8>, String>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}

/// A logged-in IMAP session.
pub struct Imap {
    session: async_imap::Session<Box<dyn Io>>,
    server: String,
}

/// An IMAP server that did not give what was asked, in words a person can
/// act on.
pub fn imap_error(server: &str, what: &str, why: &str) -> Error {
    Error::new(
        Kind::Unavailable,
        "imap_server_error",
        Text::new(
            format!("The IMAP server {server} did not give {what}: {why}."),
            format!("IMAP サーバー {server} から {what} を取得できませんでした: {why}。"),
        ),
        Text::new(
            "Check the connection's IMAP settings (host, port, TLS, user name, password, folder); the sync is tried again later.",
            "連携の IMAP 設定（ホスト・ポート・TLS・ユーザー名・パスワード・フォルダー）を確認してください。同期は後で再試行されます。",
        ),
    )
    .with_details(json!({"server": server, "what": what, "why": why}))
}

async fn timed<T, E: std::fmt::Display>(
    server: &str,
    what: &str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, Error> {
    match tokio::time::timeout(TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(imap_error(server, what, &e.to_string())),
        Err(_) => Err(imap_error(
            server,
            what,
            &format!("no answer within {} s", TIMEOUT.as_secs()),
        )),
    }
}

impl Imap {
    /// Connects (to the address the guard lets through) and logs in.
    pub async fn connect(account: &Account, allow_private: bool) -> Result<Imap, Error> {
        let server = format!("{}:{}", account.host, account.port);
        check_literal(&account.host, allow_private)
            .map_err(|r| imap_error(&server, "a connection", &r.to_string()))?;
        let addr = resolve(&account.host, allow_private)
            .await
            .map_err(|r| imap_error(&server, "a connection", &r.to_string()))?[0];
        let tcp = timed(
            &server,
            "a connection",
            tokio::net::TcpStream::connect((addr.ip(), account.port)),
        )
        .await?;
        let stream: Box<dyn Io> = if account.tls {
            let mut roots = tokio_rustls::rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let config = tokio_rustls::rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from(account.host.clone())
                .map_err(|e| imap_error(&server, "a TLS connection", &e.to_string()))?;
            let tls = tokio_rustls::TlsConnector::from(Arc::new(config));
            Box::new(timed(&server, "a TLS connection", tls.connect(name, tcp)).await?)
        } else {
            Box::new(tcp)
        };
        let mut client = async_imap::Client::new(stream);
        let greeting = timed(&server, "a greeting", client.read_response()).await?;
        if greeting.is_none() {
            return Err(imap_error(
                &server,
                "a greeting",
                "it closed the connection",
            ));
        }
        let session = timed(&server, "a login", async {
            client
                .login(&account.username, &account.password)
                .await
                .map_err(|(e, _)| e)
        })
        .await?;
        Ok(Imap { session, server })
    }

    /// Selects a folder (read-only: messages stay unread).
    pub async fn examine(&mut self, folder: &str) -> Result<Folder, Error> {
        let server = self.server.clone();
        let mailbox = timed(
            &server,
            &format!("the folder {folder}"),
            self.session.examine(folder),
        )
        .await?;
        Ok(Folder {
            uid_validity: mailbox.uid_validity.unwrap_or_default(),
        })
    }

    /// The UIDs of the selected folder after `after`, in order.
    pub async fn uids_after(&mut self, after: u32) -> Result<Vec<u32>, Error> {
        let server = self.server.clone();
        let found = timed(
            &server,
            "the folder's messages",
            self.session
                .uid_search(format!("UID {}:*", after.saturating_add(1))),
        )
        .await?;
        // `N:*` names the last message even when its UID is below N.
        let mut uids: Vec<u32> = found.into_iter().filter(|u| *u > after).collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// The messages at `uids` of the selected folder; one over the size cap
    /// is not downloaded, and says so.
    pub async fn fetch(&mut self, uids: &[u32]) -> Result<Vec<Message>, Error> {
        let server = self.server.clone();
        let set: Vec<String> = uids.iter().map(u32::to_string).collect();
        let set = set.join(",");
        let mut sizes = Vec::new();
        {
            let mut stream = timed(
                &server,
                "the message sizes",
                self.session.uid_fetch(&set, "(UID RFC822.SIZE)"),
            )
            .await?;
            while let Some(f) = stream.next().await {
                let f = f.map_err(|e| imap_error(&server, "the message sizes", &e.to_string()))?;
                if let Some(uid) = f.uid {
                    sizes.push((uid, f.size.unwrap_or_default() as usize));
                }
            }
        }
        // (UID, size) of the messages small enough to read, and the others.
        type Sizes = Vec<(u32, usize)>;
        let (small, large): (Sizes, Sizes) = sizes
            .into_iter()
            .partition(|(_, s)| *s <= MAX_MESSAGE_BYTES);
        let mut out: Vec<Message> = large
            .into_iter()
            .map(|(uid, size)| Message {
                uid,
                raw: Err(format!(
                    "the message is {size} bytes; at most {MAX_MESSAGE_BYTES} are read"
                )),
            })
            .collect();
        if !small.is_empty() {
            let set: Vec<String> = small.iter().map(|(u, _)| u.to_string()).collect();
            let mut stream = timed(
                &server,
                "the messages",
                self.session.uid_fetch(set.join(","), "(UID BODY.PEEK[])"),
            )
            .await?;
            while let Some(f) = stream.next().await {
                let f = f.map_err(|e| imap_error(&server, "the messages", &e.to_string()))?;
                if let Some(uid) = f.uid {
                    out.push(Message {
                        uid,
                        raw: f
                            .body()
                            .map(<[u8]>::to_vec)
                            .ok_or_else(|| "the server sent no body".to_string()),
                    });
                }
            }
        }
        out.sort_by_key(|m| m.uid);
        Ok(out)
    }

    pub async fn logout(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.session.logout()).await;
    }
}
