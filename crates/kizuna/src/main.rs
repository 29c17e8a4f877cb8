//! `kizuna`: the server and its administration commands. A thin layer: every
//! command is a call into the store or the apps.

mod import;
mod mailer;

use clap::{Args, Parser, Subcommand};
use kizuna_apps::{admin, demo};
use kizuna_domain::{App, Error, Kind, Role};
use kizuna_store::Store;
use kizuna_sync::mail::MailContext;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "kizuna",
    version,
    about = "Kizuna (絆): CRM, Desk, Projects, Events and Inventory that work together"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the data is: a SQLite file in the data directory, or PostgreSQL.
#[derive(Args, Clone)]
struct DataArgs {
    /// Directory for the SQLite database (created if absent).
    #[arg(long, default_value = "./kizuna-data", env = "KIZUNA_DATA_DIR")]
    data_dir: PathBuf,
    /// A postgres:// URL; when given, the data directory holds no database.
    #[arg(long, env = "KIZUNA_DATABASE_URL")]
    database_url: Option<String>,
    /// The key mail connections' passwords are encrypted with (64
    /// hexadecimal digits; made on first use). Default: secret.key in the
    /// data directory. Keep it out of database backups.
    #[arg(long, env = "KIZUNA_SECRET_KEY_FILE")]
    secret_key_file: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct ServeArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "KIZUNA_BIND")]
    bind: String,
    /// Days the sync history is kept (at least 7).
    #[arg(long, default_value_t = 30, env = "KIZUNA_HISTORY_DAYS", value_parser = clap::value_parser!(i64).range(7..))]
    history_days: i64,
    /// Seconds a sync job stays a worker's without renewal: after a crash,
    /// its job is picked up again once this has passed.
    #[arg(long, default_value_t = 30, env = "KIZUNA_WORKER_LEASE_SECS", value_parser = clap::value_parser!(u64).range(1..))]
    worker_lease_secs: u64,
    /// SMTP server for administrator mail (smtp://host:port, smtps://…,
    /// user:password@ for a login); without it, mail stays in the outbox.
    #[arg(long, env = "KIZUNA_SMTP_URL")]
    smtp_url: Option<String>,
    /// The sender of administrator mail.
    #[arg(
        long,
        default_value = "Kizuna <kizuna@localhost>",
        env = "KIZUNA_MAIL_FROM"
    )]
    mail_from: String,
    /// Let mail connections reach servers on loopback and private networks
    /// (an on-premises mail server). Off by default: a user could otherwise
    /// make the server probe its own network.
    #[arg(long, env = "KIZUNA_ALLOW_PRIVATE_ADDRESSES")]
    allow_private_addresses: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API.
    Serve(ServeArgs),
    /// Fill the data directory with demo data (once), print an API key, and serve.
    Demo(ServeArgs),
    /// Users: create, deactivate, activate.
    #[command(subcommand)]
    User(UserCommand),
    /// API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Orgs and their members.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Run integrations' syncs.
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Import files a mail client exported (vCard .vcf) into the CRM through
    /// the user's mail connection, by the rules and into the history of a
    /// sync. Ends with `added N, updated N, skipped N, failed N`; exits 0
    /// when nothing failed, 1 when some records failed, 2 on a usage or
    /// connection error.
    Import {
        #[arg(long)]
        org: i64,
        /// The CRM user whose mail connection the import goes through (made
        /// when they have none).
        #[arg(long)]
        user: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Diagnose an org's integrations: each finding with its rule, cause and
    /// fix (exit 1 when there is any).
    Doctor {
        #[arg(long)]
        org: i64,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand)]
enum SyncCommand {
    /// Sync an integration now, to the end of every stream; exit 1 when some
    /// records failed (the history says why).
    Run {
        #[arg(long)]
        integration: i64,
        /// Let a mail connection reach servers on loopback and private
        /// networks (as `serve --allow-private-addresses`).
        #[arg(long, env = "KIZUNA_ALLOW_PRIVATE_ADDRESSES")]
        allow_private_addresses: bool,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from standard input.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Deactivate a user: their API keys stop working at once.
    Deactivate {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Re-activate a user.
    Activate {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create an API key for a user; the key is the last line printed.
    Create {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List a user's API keys (ids and prefixes; never the keys).
    List {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Revoke one of a user's API keys: it is refused from then on.
    Revoke {
        #[arg(long)]
        email: String,
        /// The key's id, as `key list` shows it.
        #[arg(long)]
        id: i64,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an org; its id is the last line printed.
    Create {
        #[arg(long)]
        app: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        plan: String,
        /// E-mail of the user who becomes its administrator.
        #[arg(long)]
        admin: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Add a user to an org with a role.
    AddMember {
        #[arg(long)]
        org: i64,
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = ["administrator", "member"])]
        role: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

impl DataArgs {
    async fn open(&self) -> anyhow::Result<Store> {
        let url = match &self.database_url {
            Some(url) => url.clone(),
            None => {
                std::fs::create_dir_all(&self.data_dir)
                    .map_err(|e| {
                        let d = self.data_dir.display();
                        io_refusal(
                            "data_dir_unusable",
                            (format!("Cannot create the data directory {d}: {e}."), format!("データディレクトリ {d} を作成できません: {e}。")),
                            (format!("Choose a writable directory with --data-dir, or fix the permissions of {d}."), format!("--data-dir で書き込み可能なディレクトリを指定するか、{d} の権限を確認してください。")),
                        )
                    })?;
                self.data_dir
                    .join("kizuna.db")
                    .to_string_lossy()
                    .into_owned()
            }
        };
        let store = Store::open(&url).await?;
        // Standard modules the apps gained since an org was created.
        let added = kizuna_apps::admin::add_missing_standard_modules(&store).await?;
        if added > 0 {
            tracing::info!(added, "standard modules added to existing orgs");
        }
        Ok(store)
    }

    /// What mail connections need of the server: the key of their
    /// passwords (read or made when first needed).
    fn mail(&self, allow_private_addresses: bool) -> MailContext {
        let path = self
            .secret_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secret.key"));
        MailContext::new(path, allow_private_addresses)
    }
}

/// Rust allocations go to mimalloc: ARCHITECTURE.md, *Allocation*.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // An import tells "some records failed" (1) from "it could not run" (2).
    let is_import = matches!(cli.command, Command::Import { .. });
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A refusal in the vocabulary: say its cause and fix in both
            // languages, exit 1. Anything else (cannot open the data) is 1 too.
            match e.downcast_ref::<Error>() {
                Some(err) => {
                    eprintln!(
                        "error [{}]: {}\n  {}",
                        err.code, err.message.en, err.message.ja
                    );
                    eprintln!("fix: {}\n  {}", err.fix.en, err.fix.ja);
                    if err.kind == Kind::Internal {
                        return ExitCode::from(1);
                    }
                }
                None => eprintln!("error: {e:#}"),
            }
            if is_import && e.downcast_ref::<import::SomeFailed>().is_none() {
                return ExitCode::from(2);
            }
            ExitCode::from(1)
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Import {
            org,
            user,
            files,
            data,
        } => import::run(org, &user, &files, &data).await,
        Command::Serve(args) => {
            let store = args.data.open().await?;
            serve(store, &args).await
        }
        Command::Demo(args) => {
            let store = args.data.open().await?;
            let d = demo::ensure_demo(&store).await?;
            let (_, key) = store.create_api_key(d.admin.id).await?;
            println!(
                "Kizuna demo: {} orgs, administrator {} and member {} (password: {})",
                d.orgs.len(),
                d.admin.email,
                d.member.email,
                demo::DEMO_PASSWORD
            );
            for org in &d.orgs {
                println!(
                    "  org {} — {} ({}, plan {})",
                    org.id, org.name, org.app, org.plan
                );
            }
            println!("URL: http://{}/", args.bind);
            println!("API key: {key}");
            serve(store, &args).await
        }
        Command::User(UserCommand::Create { email, name, data }) => {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .map_err(|e| {
                    io_refusal(
                        "password_unreadable",
                        (format!("Cannot read the password from standard input: {e}."), format!("標準入力からパスワードを読み取れません: {e}。")),
                        ("Pipe the password in, e.g. echo 'a long password' | kizuna user create ….".to_string(), "パスワードを標準入力から渡してください（例: echo 'a long password' | kizuna user create …）。".to_string()),
                    )
                })?;
            let password = password.trim_end_matches(['\r', '\n']);
            let store = data.open().await?;
            let user = store.create_user(&email, &name, Some(password)).await?;
            println!("created user {} <{}>", user.id, user.email);
            println!("{}", user.id);
            Ok(())
        }
        Command::User(UserCommand::Deactivate { email, data }) => {
            let user = data.open().await?.set_user_active(&email, false).await?;
            println!(
                "deactivated {}: their API keys are refused from now on",
                user.email
            );
            Ok(())
        }
        Command::User(UserCommand::Activate { email, data }) => {
            let user = data.open().await?.set_user_active(&email, true).await?;
            println!("activated {}", user.email);
            Ok(())
        }
        Command::Key(KeyCommand::Create { email, data }) => {
            let store = data.open().await?;
            let user = store.require_user_by_email(&email).await?;
            let (id, key) = store.create_api_key(user.id).await?;
            println!(
                "API key {id} for {} (shown once; store it now):",
                user.email
            );
            println!("{key}");
            Ok(())
        }
        Command::Key(KeyCommand::List { email, data }) => {
            let store = data.open().await?;
            let user = store.require_user_by_email(&email).await?;
            for k in store.api_keys(user.id).await? {
                let state = if k.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!("{}\t{}…\t{state}", k.id, k.prefix);
            }
            Ok(())
        }
        Command::Key(KeyCommand::Revoke { email, id, data }) => {
            let store = data.open().await?;
            let user = store.require_user_by_email(&email).await?;
            store.revoke_api_key(user.id, id).await?;
            println!("revoked API key {id} of {}", user.email);
            Ok(())
        }
        Command::Org(OrgCommand::Create {
            app,
            name,
            plan,
            admin: email,
            data,
        }) => {
            let app = App::parse(&app)?;
            let store = data.open().await?;
            let user = store.require_user_by_email(&email).await?;
            let org = admin::create_org(&store, app, &name, &plan, &user).await?;
            println!(
                "created {} org \"{}\" on plan {}, administrator {}",
                org.app, org.name, org.plan, user.email
            );
            println!("{}", org.id);
            Ok(())
        }
        Command::Sync(SyncCommand::Run {
            integration,
            allow_private_addresses,
            data,
        }) => {
            let store = data.open().await?;
            let mail = data.mail(allow_private_addresses);
            let runs = kizuna_sync::mail::sync_any(
                &store,
                Some(&mail),
                integration,
                kizuna_sync::engine::Trigger::Cli,
                false,
            )
            .await?;
            let mut failed = 0;
            for r in &runs {
                failed += r.failed;
                println!(
                    "run {} {} {}: added {}, updated {}, linked {}, deleted {}, skipped {}, failed {}",
                    r.id,
                    r.direction,
                    r.data_type,
                    r.added,
                    r.updated,
                    r.linked,
                    r.deleted,
                    r.skipped,
                    r.failed
                );
            }
            if failed > 0 {
                anyhow::bail!(
                    "{failed} record(s) failed; see GET /api/v1/integrations/{integration}/history / {failed} 件のレコードが失敗しました。理由は履歴を参照してください"
                );
            }
            Ok(())
        }
        Command::Doctor { org, data } => {
            let store = data.open().await?;
            store
                .org(org)
                .await?
                .ok_or_else(|| Error::not_found("Org", org))?;
            let mut found = 0;
            for i in store.integrations_of_org(org).await? {
                for f in kizuna_sync::doctor::diagnose(&store, &i).await? {
                    found += 1;
                    println!(
                        "integration {} ({}) [{}] {}",
                        i.id,
                        i.kind,
                        f.rule.unwrap_or("-"),
                        f.code
                    );
                    println!("  {}\n  {}", f.message.en, f.message.ja);
                    println!("  fix: {}\n       {}", f.fix.en, f.fix.ja);
                }
            }
            if found == 0 {
                println!("org {org}: no problem found / 問題は見つかりませんでした");
                return Ok(());
            }
            anyhow::bail!(
                "{found} finding(s) for org {org}, each with its fix above / 組織 {org} に {found} 件の問題があります（対処方法は上記のとおり）"
            )
        }
        Command::Org(OrgCommand::AddMember {
            org,
            email,
            role,
            data,
        }) => {
            let role = Role::parse(&role)?;
            let store = data.open().await?;
            let user = store.require_user_by_email(&email).await?;
            store
                .org(org)
                .await?
                .ok_or_else(|| Error::not_found("Org", org))?;
            store.add_member(org, user.id, role).await?;
            println!("added {} to org {org} as {}", user.email, role.as_str());
            Ok(())
        }
    }
}

/// A refusal caused by the machine (files, ports, standard input), in the
/// vocabulary's form so it is printed in both languages.
fn io_refusal(code: &'static str, message: (String, String), fix: (String, String)) -> Error {
    Error::new(
        Kind::BadInput,
        code,
        kizuna_domain::Text::new(message.0, message.1),
        kizuna_domain::Text::new(fix.0, fix.1),
    )
}

/// How long a deleted record stays in the recycle bin.
const RECYCLE_DAYS: i64 = 30;

async fn serve(store: Store, args: &ServeArgs) -> anyhow::Result<()> {
    // A bad SMTP setting is refused before anything starts.
    let smtp = args
        .smtp_url
        .as_deref()
        .map(|url| kizuna_connectors::smtp::Smtp::new(url, &args.mail_from))
        .transpose()?;
    let bind = &args.bind;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| {
            io_refusal(
                "cannot_listen",
                (format!("Cannot listen on {bind}: {e}."), format!("{bind} で待ち受けできません: {e}。")),
                (format!("Stop what uses {bind}, or choose another address with --bind."), format!("{bind} を使用しているものを停止するか、--bind で別のアドレスを指定してください。")),
            )
        })?;
    tracing::info!("Kizuna serves on http://{}", listener.local_addr()?);
    let (purger, history_days) = (store.clone(), args.history_days);
    tokio::spawn(async move {
        loop {
            let now = kizuna_store::now_ms();
            match purger.purge_deleted(now - RECYCLE_DAYS * 86_400_000).await {
                Ok(0) => {}
                Ok(n) => tracing::info!("purged {n} records deleted over {RECYCLE_DAYS} days ago"),
                Err(e) => tracing::warn!("recycle-bin purge failed: {e}"),
            }
            if let Err(e) = purger.purge_runs(now - history_days * 86_400_000).await {
                tracing::warn!("sync-history purge failed: {e}");
            }
            if let Err(e) = purger.purge_outbox(now - history_days * 86_400_000).await {
                tracing::warn!("outbox purge failed: {e}");
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
    let mail = args.data.mail(args.allow_private_addresses);
    let worker = kizuna_sync::worker::Options {
        lease: Duration::from_secs(args.worker_lease_secs),
        mail: Some(mail.clone()),
        ..Default::default()
    };
    tokio::spawn(kizuna_sync::worker::run(store.clone(), worker));
    let options = kizuna_web::Options {
        smtp: smtp.as_ref().map(|s| s.server().to_string()),
        mail: Some(mail),
    };
    match smtp {
        Some(smtp) => {
            tokio::spawn(mailer::run(store.clone(), smtp));
        }
        None => tracing::info!(
            "no --smtp-url: administrator mail is kept in the outbox (GET /api/v1/orgs/{{org}}/outbox) and not sent"
        ),
    }
    kizuna_web::serve(store, options, listener, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
