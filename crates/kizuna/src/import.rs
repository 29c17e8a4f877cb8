//! `kizuna import`: files a mail client exported, into the CRM through the
//! user's mail connection (made when they have none), with a progress bar on
//! a terminal and one closing line of counts.

use crate::DataArgs;
use indicatif::{ProgressBar, ProgressStyle};
use kizuna_domain::Error;
use kizuna_store::Counts;
use kizuna_sync::mail::import::{FileKind, import_file};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Some records failed (exit 1); the history says why.
#[derive(Debug)]
pub struct SomeFailed(pub i64, pub i64);

impl std::fmt::Display for SomeFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} record(s) failed; see GET /api/v1/integrations/{}/history / {} 件のレコードが失敗しました。理由は履歴を参照してください",
            self.0, self.1, self.0
        )
    }
}

impl std::error::Error for SomeFailed {}

pub async fn run(org: i64, email: &str, files: &[PathBuf], data: &DataArgs) -> anyhow::Result<()> {
    // Every file is checked before anything is imported.
    for f in files {
        FileKind::of(&f.to_string_lossy())?;
    }
    let store = data.open().await?;
    let user = store.require_user_by_email(email).await?;
    let connection = match kizuna_sync::mail::connection_of(&store, org, user.id).await? {
        Some(i) => i,
        None => {
            let ctx = data.mail(false);
            kizuna_sync::mail::connect(&store, &ctx, &user, org, &serde_json::json!({})).await?
        }
    };
    let mut total = Counts::default();
    for path in files {
        let name = path.to_string_lossy().into_owned();
        let file = std::fs::File::open(path).map_err(|e| {
            Error::bad_request(
                "file_unreadable",
                format!("{name} could not be opened: {e}"),
                format!("{name} を開けませんでした: {e}"),
            )
        })?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(size);
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_message(name.clone());
            bar
        } else {
            ProgressBar::hidden()
        };
        let shown = bar.clone();
        let mut progress = move |at: u64| shown.set_position(at);
        let run = import_file(&store, &connection, &name, file, &mut progress).await?;
        bar.finish_and_clear();
        total.add(Counts {
            added: run.added,
            updated: run.updated + run.linked,
            linked: 0,
            deleted: run.deleted,
            skipped: run.skipped,
            failed: run.failed,
        });
        eprintln!(
            "{name}: run {} of integration {}: added {}, updated {}, skipped {}, failed {}",
            run.id,
            connection.id,
            run.added,
            run.updated + run.linked,
            run.skipped,
            run.failed
        );
    }
    println!(
        "added {}, updated {}, skipped {}, failed {}",
        total.added, total.updated, total.skipped, total.failed
    );
    if total.failed > 0 {
        return Err(SomeFailed(total.failed, connection.id).into());
    }
    Ok(())
}
