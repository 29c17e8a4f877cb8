//! Kizuna's persistence: one `Store` API over SQLite and PostgreSQL, with the
//! migrations of each, the change log, and nothing of HTTP.

mod checkpoint;
pub mod db;
pub mod held;
pub mod integrations;
pub mod links;
pub mod mail;
pub mod meta;
pub mod orgs;
pub mod outbox;
mod placeholders;
mod reader;
pub mod records;
pub mod referrers;
pub mod sessions;
pub mod sort_index;
pub mod sync;
pub mod users;

pub use db::{Db, Dialect, Tx};
pub use held::{Held, HeldField};
pub use integrations::{Integration, NewIntegration};
pub use links::{Link, LinkPair, LinkSide};
pub use mail::{MailItem, MailItemState};
pub use meta::{CopyReport, FieldChange};
pub use orgs::{Department, Member, Org, PlanChange};
pub use outbox::{Mail, NewMail};
pub use records::{
    Change, EmailHolder, ListQuery, Origin, Page, RawRecord, Record, SortKey, Stored,
};
pub use sessions::{Session, random_token};
/// JSON columns as the store returns them.
pub use sqlx::types::Json;
pub use sync::{Counts, Item, Job, Pos, Run, StreamChange, StreamRead};
pub use users::{ApiKey, Principal, User};

use kizuna_domain::Result;

/// The one storage boundary every other crate goes through.
#[derive(Clone)]
pub struct Store {
    pub(crate) db: Db,
    pub(crate) modules: std::sync::Arc<meta::ModuleCache>,
    /// On SQLite, the hot reads that skip sqlx's worker thread (`reader.rs`).
    pub(crate) reader: Option<std::sync::Arc<reader::SqliteReader>>,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `url`: a
    /// `postgres://` URL, or a SQLite file path.
    pub async fn open(url: &str) -> Result<Store> {
        let db = Db::open(url).await?;
        db.migrate().await?;
        let store = Store {
            reader: db::sqlite_path(url)
                .map(|path| std::sync::Arc::new(reader::SqliteReader::new(path))),
            db,
            modules: Default::default(),
        };
        store.reconcile_sort_indexes().await?;
        Ok(store)
    }

    pub fn dialect(&self) -> Dialect {
        self.db.dialect()
    }

    /// The underlying pool, for the benchmark's raw-SQL baseline and for tests
    /// that check the database directly.
    pub fn db(&self) -> &Db {
        &self.db
    }

    pub async fn close(&self) {
        if let Some(reader) = &self.reader {
            reader.close();
        }
        self.db.close().await;
    }
}

/// Now, in UTC milliseconds since the epoch: how every instant is stored.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
