//! E-mails into the CRM: kept in Emails with the Contact, Lead or Deal they
//! concern (MAIL-11), or made a Case when the sender is a Contact (MAIL-10).
//!
//! Who an e-mail concerns: the record a person picked (search and add),
//! else its correspondent — the sender of a received e-mail, the recipients
//! of one the connection's owner sent — as a Contact (the earliest created);
//! when no Contact matches, the connection's `unmatched_email` setting
//! decides: `lead` (the default: the Lead with that address, a new Lead when
//! there is none) or `skip` (not added; the history says why). An e-mail is
//! one item by its Message-ID: added twice, it is there once.

use super::items::{Incoming, Kind, NotRead, Parsed, Probe, Target, apply};
use super::{INTO_CRM, crm_org, settings};
use crate::engine::{STALE_RUN_MS, Trigger, as_run, check_runnable};
use kizuna_connectors::email::{Email, Mailbox};
use kizuna_domain::validate::email_key;
use kizuna_domain::{Error, Kind as ErrorKind, Result, Text};
use kizuna_store::{Integration, Org, Origin, Run, Store};
use serde_json::{Map, Value, json};

/// The source of e-mails added by hand or from files.
pub const EMAIL_SOURCE: &str = "email";
/// The longest body kept: the CRM field's limit.
const BODY_LIMIT: usize = 32_000;

fn text<'a>(fields: &'a Map<String, Value>, f: &str) -> &'a str {
    fields.get(f).and_then(Value::as_str).unwrap_or_default()
}

/// CRM Emails (MAIL-11), one per Message-ID.
pub struct Emails;

impl Kind for Emails {
    fn module(&self) -> &'static str {
        "Emails"
    }

    fn data_type(&self) -> &'static str {
        "email"
    }

    fn dedup_rule(&self) -> &'static str {
        "MAIL-11"
    }

    fn keys(&self, fields: &Map<String, Value>) -> Vec<String> {
        let id = text(fields, "Message_ID").trim().to_lowercase();
        if id.is_empty() {
            Vec::new()
        } else {
            vec![format!("msgid:{id}")]
        }
    }

    fn probe(&self, fields: &Map<String, Value>) -> Option<Probe> {
        let id = text(fields, "Message_ID").trim().to_lowercase();
        (!id.is_empty()).then_some(Probe::Text("Message_ID", id))
    }

    fn explain(&self, key: &str) -> (String, String) {
        let id = key.trim_start_matches("msgid:");
        (
            format!("the Message-ID {id}"),
            format!("Message-ID「{id}」"),
        )
    }
}

/// CRM Cases made from e-mails (MAIL-10); an e-mail makes one Case at most
/// (its item is keyed by Message-ID), and existing Cases are not matched.
pub struct Cases;

impl Kind for Cases {
    fn module(&self) -> &'static str {
        "Cases"
    }

    fn data_type(&self) -> &'static str {
        "case"
    }

    fn dedup_rule(&self) -> &'static str {
        "MAIL-10"
    }

    fn keys(&self, _: &Map<String, Value>) -> Vec<String> {
        Vec::new()
    }

    fn probe(&self, _: &Map<String, Value>) -> Option<Probe> {
        None
    }

    fn explain(&self, key: &str) -> (String, String) {
        (key.to_string(), key.to_string())
    }
}

/// Where an e-mail goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// The record its correspondent is (MAIL-11).
    Correspondent,
    /// A record a person picked: Contacts, Leads or Deals.
    Record(String, i64),
    /// A Case, when its sender is a Contact (MAIL-10).
    Case,
}

impl Destination {
    /// `?record=Contacts:12` and `?as=case` of the API.
    pub fn parse(record: Option<&str>, as_: Option<&str>) -> Result<Destination> {
        match (record, as_) {
            (None, None) => Ok(Destination::Correspondent),
            (None, Some("case")) => Ok(Destination::Case),
            (Some(r), None) => {
                let parsed = r
                    .split_once(':')
                    .filter(|(m, _)| ["Contacts", "Leads", "Deals"].contains(m))
                    .and_then(|(m, id)| Some((m.to_string(), id.parse().ok()?)));
                parsed.map(|(m, id)| Destination::Record(m, id)).ok_or_else(|| {
                    Error::bad_request(
                        "invalid_email_record",
                        format!("record={r}: an e-mail goes to a Contact, Lead or Deal, given as Contacts:ID, Leads:ID or Deals:ID."),
                        format!("record={r}: メールの追加先は連絡先・見込み客・商談です。Contacts:ID、Leads:ID、Deals:ID の形で指定してください。"),
                    )
                    .with_rule("MAIL-11")
                })
            }
            _ => Err(Error::bad_request(
                "invalid_email_destination",
                "Give either record=Module:ID or as=case, not both (as takes only \"case\").",
                "record=Module:ID と as=case のどちらか一方を指定してください（as は \"case\" のみ）。",
            )),
        }
    }
}

/// Whether the connection's owner sent the e-mail (from their login
/// address, or the sender of their SMTP settings).
fn sent_by(owner: &[String], e: &Email) -> bool {
    e.from
        .as_ref()
        .is_some_and(|f| owner.iter().any(|o| email_key(o) == email_key(&f.address)))
}

/// The addresses the connection's owner sends from.
async fn owner_addresses(store: &Store, i: &Integration) -> Result<Vec<String>> {
    let mut out: Vec<String> = store
        .user_by_id(i.created_by)
        .await?
        .map(|u| u.email)
        .into_iter()
        .collect();
    if let Some(from) = i.settings.0["smtp"]["from"].as_str() {
        // `Name <address>` or the bare address.
        let address = from
            .rsplit_once('<')
            .map_or(from, |(_, a)| a.trim_end_matches('>'));
        out.push(address.trim().to_string());
    }
    Ok(out)
}

/// MAIL-11's fourth way: a message the user writes, sent through their own
/// SMTP server and then kept in the CRM as a Sent e-mail with the record it
/// concerns (`record`, else its recipients' Contact). Body:
/// `{"to": [..], "cc": [..], "subject", "body", "record": "Contacts:12"}`.
pub async fn send(
    store: &Store,
    ctx: &super::MailContext,
    i: &Integration,
    body: &Value,
) -> Result<Run> {
    if !super::is_mail(i) {
        return Err(super::import::not_a_mail_connection(i));
    }
    check_runnable(store, i).await?;
    let list = |k: &str| -> Vec<String> {
        match &body[k] {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    };
    let message = kizuna_connectors::smtp::Outgoing {
        to: list("to"),
        cc: list("cc"),
        subject: body["subject"].as_str().unwrap_or_default().to_string(),
        body: body["body"].as_str().unwrap_or_default().to_string(),
    };
    let destination = Destination::parse(body["record"].as_str(), None)?;
    let owner = owner_addresses(store, i).await?;
    let account = settings::smtp_account(&i.settings.0, &ctx.key()?, &owner[0])?
        .ok_or_else(|| no_smtp(i.id))?;
    let raw =
        kizuna_connectors::smtp::send_as(&account, ctx.allow_private_addresses, &message).await?;
    add_message(
        store,
        i,
        Trigger::Api,
        &destination,
        &raw,
        json!({"sent": true}),
    )
    .await
}

fn no_smtp(id: i64) -> Error {
    Error::new(
        ErrorKind::BadInput,
        "no_smtp_server",
        Text::new(
            format!("Mail connection {id} has no SMTP server to send through."),
            format!("メール連携 {id} には送信に使う SMTP サーバーがありません。"),
        ),
        Text::new(
            format!("Set it: PATCH /api/v1/integrations/{id}/settings {{\"smtp\": {{\"host\", \"port\", \"username\", \"password\"}}}}."),
            format!("設定してください: PATCH /api/v1/integrations/{id}/settings {{\"smtp\": {{\"host\", \"port\", \"username\", \"password\"}}}}。"),
        ),
    )
    .with_rule("MAIL-11")
}

fn addresses(list: &[Mailbox]) -> String {
    list.iter()
        .map(|m| match &m.name {
            Some(n) => format!("{n} <{}>", m.address),
            None => m.address.clone(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The body as the CRM keeps it: cut to the field's limit, with a notice.
fn body(e: &Email, notices: &mut Vec<Error>) -> String {
    let length = e.body.chars().count();
    if length <= BODY_LIMIT {
        return e.body.clone();
    }
    notices.push(super::reasons::truncated(
        ("The e-mail's text", "メール本文"),
        "Body",
        BODY_LIMIT as u32,
        length,
    ));
    e.body.chars().take(BODY_LIMIT).collect()
}

fn base(e: &Email) -> Parsed {
    Parsed {
        uid: e.message_id.clone(),
        hash: e.message_id.clone().unwrap_or_default(),
        ..Parsed::default()
    }
}

/// An e-mail as a CRM Emails record, concerning `link` (a lookup field and
/// a record id).
fn as_email(e: &Email, sent: bool, link: Option<(&'static str, i64)>) -> Parsed {
    let mut p = base(e);
    let mut v = vec![
        (
            "Direction",
            ("Direction", "方向"),
            json!(if sent { "Sent" } else { "Received" }),
        ),
        ("To", ("To", "宛先"), json!(addresses(&e.to))),
        ("Cc", ("Cc", "CC"), json!(addresses(&e.cc))),
    ];
    if let Some(s) = &e.subject {
        v.push(("Subject", ("Subject", "件名"), json!(s)));
    }
    if let Some(f) = &e.from {
        v.push(("From", ("From", "差出人"), json!(f.address)));
    }
    if let Some(d) = e
        .date
        .and_then(chrono::DateTime::<chrono::Utc>::from_timestamp_millis)
    {
        v.push((
            "Sent_At",
            ("Date", "日時"),
            json!(d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        ));
    }
    if let Some(id) = &e.message_id {
        v.push(("Message_ID", ("Message-ID", "Message-ID"), json!(id)));
    }
    let mut notices = Vec::new();
    v.push(("Body", ("Text", "本文"), json!(body(e, &mut notices))));
    if let Some((field, id)) = link {
        v.push((field, (field, field), json!(id)));
    }
    p.values = v;
    p.notices = notices;
    p
}

/// MAIL-10: an e-mail as a Case of the Contact who sent it.
fn as_case(e: &Email, contact: i64) -> Parsed {
    let mut p = base(e);
    let mut notices = Vec::new();
    p.values = vec![
        (
            "Subject",
            ("Subject", "件名"),
            json!(
                e.subject
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "(no subject)".into())
            ),
        ),
        (
            "Email",
            ("Sender", "差出人"),
            json!(e.from.as_ref().map(|f| f.address.clone())),
        ),
        ("Contact_Name", ("Contact name", "連絡先名"), json!(contact)),
        (
            "Description",
            ("Text", "本文"),
            json!(body(e, &mut notices)),
        ),
    ];
    p.notices = notices;
    p
}

/// MAIL-10's refusal: no Contact has the sender's address.
pub fn no_contact_for_case(sender: Option<&str>) -> Error {
    let s = sender.unwrap_or("-");
    Error::new(
        ErrorKind::Conflict,
        "no_contact_for_case",
        Text::new(
            format!("No Contact in the CRM has the sender's address {s}: an e-mail becomes a Case only when its sender is a Contact."),
            format!("差出人のアドレス {s} を持つ連絡先が CRM にありません。メールを問い合わせにできるのは、差出人が連絡先の場合だけです。"),
        ),
        Text::new(
            format!("Add {s} as a Contact first (or to an existing Contact's Email), then add the e-mail as a Case again."),
            format!("先に {s} を連絡先として追加する（または既存の連絡先のメールアドレスに設定する）と、問い合わせとして追加できます。"),
        ),
    )
    .with_rule("MAIL-10")
    .with_details(json!({"sender": sender}))
}

fn unmatched_skipped(addresses: &[String]) -> Error {
    let list = addresses.join(", ");
    Error::new(
        ErrorKind::BadInput,
        "no_matching_record",
        Text::new(
            format!("No Contact has the address of the e-mail's correspondent ({list}), and the connection's settings add such e-mails nowhere."),
            format!("メールの相手（{list}）のアドレスを持つ連絡先がなく、連携の設定ではそのようなメールは追加しません。"),
        ),
        Text::new(
            "Add it to a record yourself (POST …/emails?record=Contacts:ID), or set unmatched_email to \"lead\" to keep such e-mails with a Lead.",
            "レコードを指定して追加する（POST …/emails?record=Contacts:ID）か、unmatched_email を \"lead\" にすると見込み客に追加されます。",
        ),
    )
    .with_rule("MAIL-11")
}

/// Who an e-mail concerns: a lookup field and a record, or why none.
async fn correspondent(
    store: &Store,
    org: &Org,
    i: &Integration,
    owner: &[String],
    e: &Email,
) -> Result<std::result::Result<(&'static str, i64), Error>> {
    let people: Vec<&Mailbox> = if sent_by(owner, e) {
        e.to.iter().chain(&e.cc).collect()
    } else {
        e.from.iter().collect()
    };
    let keys: Vec<String> = people.iter().map(|m| email_key(&m.address)).collect();
    if keys.is_empty() {
        return Ok(Err(unmatched_skipped(&[])));
    }
    let mut tx = store.begin().await?;
    let holders = store
        .records_by_email_keys_in(&mut tx, org.id, &["Contacts", "Leads"], &keys)
        .await?;
    drop(tx);
    // In the order of the correspondents, oldest record first.
    for module in ["Contacts", "Leads"] {
        if module == "Leads" && settings::unmatched_email(&i.settings.0) == "skip" {
            return Ok(Err(unmatched_skipped(&keys)));
        }
        for k in &keys {
            if let Some((_, r)) = holders.iter().find(|(hk, r)| hk == k && r.module == module) {
                return Ok(Ok((
                    if module == "Contacts" {
                        "Contact"
                    } else {
                        "Lead"
                    },
                    r.id,
                )));
            }
        }
    }
    // A new Lead for the first correspondent.
    let who = people[0];
    let local = who.address.split('@').next().unwrap_or(&who.address);
    let name: String = who
        .name
        .clone()
        .unwrap_or_else(|| local.to_string())
        .chars()
        .take(80)
        .collect();
    let mut fields = Map::new();
    fields.insert("Last_Name".into(), json!(name));
    fields.insert("Email".into(), json!(who.address));
    fields.insert("Lead_Source".into(), json!("Mail"));
    let lead =
        kizuna_apps::records::create(store, org, "Leads", &fields, Origin::Integration(i.id))
            .await?;
    Ok(Ok(("Lead", lead.id)))
}

/// The largest e-mail taken.
pub use kizuna_connectors::email::MAX_MESSAGE_BYTES;

/// Adds one e-mail, as a `.eml` holds it, through connection `i`.
pub async fn add_message(
    store: &Store,
    i: &Integration,
    trigger: Trigger,
    destination: &Destination,
    raw: &[u8],
    at: Value,
) -> Result<Run> {
    let message = kizuna_connectors::email::parse_message(raw).map_err(|e| e.0);
    let mut one = std::iter::once((message, at));
    add(store, i, trigger, destination, &mut one, &mut |_| {}).await
}

/// An e-mail read (or why it could not be), with where it was read.
pub type Message = (std::result::Result<Email, String>, Value);

/// Adds e-mails to the CRM through connection `i`, in one run, a batch per
/// transaction; `messages` are read as they are needed (an mbox of any
/// size costs a batch of memory).
pub async fn add(
    store: &Store,
    i: &Integration,
    trigger: Trigger,
    destination: &Destination,
    messages: &mut (dyn Iterator<Item = Message> + Send),
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<Run> {
    if !super::is_mail(i) {
        return Err(super::import::not_a_mail_connection(i));
    }
    check_runnable(store, i).await?;
    let org = crm_org(store, i).await?;
    let owner = owner_addresses(store, i).await?;
    let kind: &'static dyn Kind = match destination {
        Destination::Case => &Cases,
        _ => &Emails,
    };
    let module = kizuna_apps::records::enabled_module(store, &org, kind.module()).await?;
    // A picked record must be the org's (404 otherwise, as everywhere).
    let picked = match destination {
        Destination::Record(m, id) => {
            kizuna_apps::records::get(store, &org, m, *id).await?;
            let field = match m.as_str() {
                "Contacts" => "Contact",
                "Leads" => "Lead",
                _ => "Deal",
            };
            Some((field, *id))
        }
        _ => None,
    };
    store
        .interrupt_stale_runs(i.id, kizuna_store::now_ms() - STALE_RUN_MS)
        .await?;
    // Categories are a contacts-and-calendar filter: every e-mail counts.
    let options = settings::MailSettings {
        category: None,
        ..settings::read(&i.settings.0)
    };
    let how = How {
        store,
        org: &org,
        i,
        owner: &owner,
        destination,
        picked,
    };
    let (run, result) = as_run(
        store,
        i,
        trigger,
        (INTO_CRM, kind.data_type()),
        async |run| {
            let target = Target {
                store,
                org: &org,
                kind,
                module,
                integration: i.id,
                source: EMAIL_SOURCE,
                settings: &options,
                run,
            };
            let mut n = 0usize;
            loop {
                let mut items = Vec::new();
                for (message, at) in &mut *messages {
                    n += 1;
                    items.push(how.incoming(n, message, at).await?);
                    if items.len() == 500 {
                        break;
                    }
                }
                if items.is_empty() {
                    return Ok(());
                }
                apply(&target, items).await?;
                progress(n as u64);
            }
        },
    )
    .await?;
    result.map(|()| run)
}

/// What decides where each e-mail of one `add` goes.
struct How<'a> {
    store: &'a Store,
    org: &'a Org,
    i: &'a Integration,
    owner: &'a [String],
    destination: &'a Destination,
    picked: Option<(&'static str, i64)>,
}

impl How<'_> {
    async fn incoming(
        &self,
        n: usize,
        message: std::result::Result<Email, String>,
        at: Value,
    ) -> Result<Incoming> {
        let e = match message {
            Err(why) => {
                return Ok(Incoming {
                    key: format!("unreadable:{n}:{}", kizuna_store::now_ms()),
                    etag: None,
                    item: Err(NotRead::Unreadable(why)),
                    at,
                });
            }
            Ok(e) => e,
        };
        let sent = sent_by(self.owner, &e);
        let item = match self.destination {
            Destination::Case => Ok(as_case(&e, self.sender_contact(&e).await?)),
            Destination::Record(..) => Ok(as_email(&e, sent, self.picked)),
            Destination::Correspondent => {
                match correspondent(self.store, self.org, self.i, self.owner, &e).await? {
                    Ok(link) => Ok(as_email(&e, sent, Some(link))),
                    Err(why) => Err(NotRead::Skipped(why)),
                }
            }
        };
        Ok(Incoming {
            key: match &e.message_id {
                Some(id) => format!("msgid:{}", id.to_lowercase()),
                None => format!("nomsgid:{n}:{}", kizuna_store::now_ms()),
            },
            etag: None,
            item,
            at,
        })
    }

    /// MAIL-10: the Contact who sent the e-mail (the earliest created), or
    /// the refusal.
    async fn sender_contact(&self, e: &Email) -> Result<i64> {
        let sender = e.from.as_ref().map(|f| email_key(&f.address));
        if let Some(s) = &sender {
            let mut tx = self.store.begin().await?;
            let found = self
                .store
                .records_by_email_keys_in(
                    &mut tx,
                    self.org.id,
                    &["Contacts"],
                    std::slice::from_ref(s),
                )
                .await?;
            if let Some((_, r)) = found.into_iter().next() {
                return Ok(r.id);
            }
        }
        Err(no_contact_for_case(
            e.from.as_ref().map(|f| f.address.as_str()),
        ))
    }
}
