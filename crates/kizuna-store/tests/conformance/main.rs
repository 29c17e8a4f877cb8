//! The store conformance suite (DESIGN.md, Storage): every test runs once on
//! SQLite (a fresh file) and once on PostgreSQL (a fresh database, when
//! `KIZUNA_TEST_POSTGRES_URL` is set), so that both backends are proven to
//! behave the same through the one `Store` API.

/// `conformance!(name, |store| async move { …; Ok(()) })` defines the tests
/// `name::sqlite` and `name::postgres` with the same body.
macro_rules! conformance {
    ($name:ident, |$store:ident| $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                kizuna_testkit::run(
                    kizuna_testkit::Backend::Sqlite,
                    concat!(stringify!($name), "::sqlite"),
                    |$store: Store| $body,
                )
                .await;
            }

            #[tokio::test]
            async fn postgres() {
                kizuna_testkit::run(
                    kizuna_testkit::Backend::Postgres,
                    concat!(stringify!($name), "::postgres"),
                    |$store: Store| $body,
                )
                .await;
            }
        }
    };
}

// Declared after the macro, so that its textual scope covers them.
mod fixtures;
mod isolation;
mod modules;
mod orgs;
mod outbox;
mod records_bin;
mod records_read;
mod records_write;
mod referrers;
mod sessions;
mod sorting;
mod sync_state;
mod users;
