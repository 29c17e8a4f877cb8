//! The passwords of mail connections, encrypted with a key kept outside the
//! database: a copy of the database (a backup, a PostgreSQL replica) does
//! not give away anybody's mail password. The key is 32 random bytes in a
//! file of the data directory (or one the operator names), made on first
//! use and readable by its owner only.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use kizuna_domain::{Error, Kind, Result, Text};
use std::path::Path;

/// What a sealed value starts with, so a stored value says how to open it.
const PREFIX: &str = "sealed:v1:";

#[derive(Clone)]
pub struct SecretKey(XChaCha20Poly1305);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

impl SecretKey {
    /// Reads the key file, or makes it (mode 0600) when there is none.
    pub fn load_or_create(path: &Path) -> Result<SecretKey> {
        let unreadable = |e: &dyn std::fmt::Display| {
            let p = path.display();
            Error::new(
                Kind::BadInput,
                "secret_key_unusable",
                Text::new(
                    format!("The secret key file {p} cannot be used: {e}."),
                    format!("秘密鍵ファイル {p} を使用できません: {e}。"),
                ),
                Text::new(
                    format!(
                        "Restore {p} from where it is kept (it holds 64 hexadecimal digits), or name another with --secret-key-file; a new key cannot read the passwords stored with the old one."
                    ),
                    format!(
                        "保管している {p}（16 進数 64 桁）を元に戻すか、--secret-key-file で別のファイルを指定してください。新しい鍵では、古い鍵で保存したパスワードは読めません。"
                    ),
                ),
            )
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes = unhex(text.trim())
                    .filter(|b| b.len() == 32)
                    .ok_or_else(|| unreadable(&"it must hold 64 hexadecimal digits"))?;
                Ok(SecretKey::from_bytes(&bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = XChaCha20Poly1305::generate_key(&mut OsRng);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| unreadable(&e))?;
                }
                write_private(path, &hex(&key)).map_err(|e| unreadable(&e))?;
                Ok(SecretKey(XChaCha20Poly1305::new(&key)))
            }
            Err(e) => Err(unreadable(&e)),
        }
    }

    fn from_bytes(bytes: &[u8]) -> SecretKey {
        SecretKey(XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(
            bytes,
        )))
    }

    /// Encrypts a secret for storing; every call gives another text.
    pub fn seal(&self, plain: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self.0.encrypt(&nonce, plain.as_bytes()).unwrap_or_default();
        format!("{PREFIX}{}{}", hex(&nonce), hex(&sealed))
    }

    pub fn is_sealed(value: &str) -> bool {
        value.starts_with(PREFIX)
    }

    /// Decrypts what `seal` made with this key.
    pub fn open(&self, sealed: &str) -> Result<String> {
        let wrong_key = || {
            Error::bad_request(
                "secret_unreadable",
                "A stored password cannot be decrypted with this server's secret key (the key file was replaced or belongs to another server).",
                "保存されたパスワードをこのサーバーの秘密鍵で復号できません（鍵ファイルが置き換えられたか、別のサーバーのものです）。",
            )
        };
        let bytes = sealed
            .strip_prefix(PREFIX)
            .and_then(unhex)
            .filter(|b| b.len() > 24)
            .ok_or_else(wrong_key)?;
        let (nonce, data) = bytes.split_at(24);
        let plain = self
            .0
            .decrypt(XNonce::from_slice(nonce), data)
            .map_err(|_| wrong_key())?;
        String::from_utf8(plain).map_err(|_| wrong_key())
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_password_opens_with_its_key_only() {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("secret.key");
        let key = SecretKey::load_or_create(&path).expect("made");
        let sealed = key.seal("hunter2");
        assert!(SecretKey::is_sealed(&sealed));
        assert!(!sealed.contains("hunter2"));
        assert_ne!(sealed, key.seal("hunter2"), "a fresh nonce every time");
        let again = SecretKey::load_or_create(&path).expect("read back");
        assert_eq!(again.open(&sealed).expect("opens"), "hunter2");
        let other = SecretKey::load_or_create(&dir.path().join("other.key")).expect("made");
        assert_eq!(
            other.open(&sealed).expect_err("wrong key").code,
            "secret_unreadable"
        );
        std::fs::write(dir.path().join("bad.key"), "not a key").expect("write");
        let e = SecretKey::load_or_create(&dir.path().join("bad.key")).expect_err("refused");
        assert_eq!(e.code, "secret_key_unusable");
        assert!(e.fix.en.contains("--secret-key-file") && e.fix.ja.contains("--secret-key-file"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
