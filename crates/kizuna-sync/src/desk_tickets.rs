//! Desk tickets inside CRM records (DSK-3, DSK-6, DSK-7, DSK-9, DSK-10): the
//! related list `Desk_Tickets` of CRM Accounts, Contacts and Deals — and of
//! the custom modules an administrator names — read from the Desk org
//! through the integration's links, and a new ticket made from a CRM
//! contact. The list exists from the moment the integration is set up; a
//! caller sees the tickets of the Desk departments they belong to (all of
//! them as a Desk administrator), and the answer says how many others there
//! are and why they are not shown.

use kizuna_apps::records;
use kizuna_domain::{Error, IntegrationKind, Kind, Result, Role, Text};
use kizuna_store::{Integration, LinkSide, Org, Origin, Record, Store, User};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// The related list's name.
pub const DESK_TICKETS: &str = "Desk_Tickets";

/// The CRM modules that always carry the list (DSK-3).
const STANDARD: [&str; 3] = ["Accounts", "Contacts", "Deals"];

/// Tickets read per page while filtering by department.
const PAGE: u32 = 200;

/// A page of a record's Desk tickets.
#[derive(Debug, Serialize)]
pub struct Tickets {
    pub records: Vec<Record>,
    /// Tickets of this record in departments the caller does not belong to.
    pub hidden: u64,
    /// Why they are not shown, when some are not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden_why: Option<Text>,
    pub next_after: Option<i64>,
    /// The Desk org the tickets are in.
    pub desk_org: i64,
}

/// The CRM org's Desk integration, or why there is no Desk tickets list.
async fn integration_of(store: &Store, crm: &Org) -> Result<(Integration, Org)> {
    let i = store
        .live_integration(IntegrationKind::CrmDesk, crm.id)
        .await?
        .ok_or_else(|| not_integrated(crm))?;
    let (_, desk) = crate::mapping::crm_and_other_orgs(store, &i, kizuna_domain::App::Desk).await?;
    Ok((i, desk))
}

/// Whether `module` of the CRM carries the list under integration `i`.
fn carries(i: &Integration, module: &str) -> bool {
    STANDARD.contains(&module)
        || i.settings.0["related_lists"]
            .as_array()
            .is_some_and(|l| l.iter().any(|m| m.as_str() == Some(module)))
}

/// The Desk contacts and accounts whose tickets belong to a CRM record: its
/// own twin (a contact, an account), or the twins its lookups point at (a
/// deal's contact and account; a custom module's lookups to them).
async fn desk_targets(store: &Store, i: &Integration, crm: &Org, r: &Record) -> Result<Vec<i64>> {
    let module = store.module_of(crm, &r.module).await?;
    let mut wanted: Vec<(&str, i64)> = Vec::new();
    match r.module.as_str() {
        "Contacts" => wanted.push(("contact", r.id)),
        "Accounts" => wanted.push(("account", r.id)),
        _ => {
            for f in &module.fields {
                let dt = match f.lookup_module.as_deref() {
                    Some("Contacts") => "contact",
                    Some("Accounts") => "account",
                    _ => continue,
                };
                if let Some(id) = r.fields.get(&f.api_name).and_then(Value::as_i64) {
                    wanted.push((dt, id));
                }
            }
        }
    }
    let mut out = Vec::new();
    for (dt, id) in wanted {
        for l in store.links(None, i.id, dt, LinkSide::Crm, &[id]).await? {
            out.push(l.other_id);
        }
    }
    Ok(out)
}

/// The Desk departments whose tickets `caller` sees: `None` for all (a Desk
/// administrator), else their departments' names.
async fn visible_departments(
    store: &Store,
    desk: &Org,
    caller: &User,
) -> Result<Option<BTreeSet<String>>> {
    if store.role_of(desk.id, caller.id).await? == Some(Role::Administrator) {
        return Ok(None);
    }
    let mut names = BTreeSet::new();
    for d in store.departments(desk.id).await? {
        if store.department_members(d.id).await?.contains(&caller.id) {
            names.insert(d.name);
        }
    }
    Ok(Some(names))
}

/// A page of the Desk tickets of CRM record `id` of `module`.
pub async fn list(
    store: &Store,
    caller: &User,
    crm: &Org,
    module: &str,
    id: i64,
    after: Option<i64>,
    limit: u32,
) -> Result<Tickets> {
    let r = records::get(store, crm, module, id).await?;
    let (i, desk) = integration_of(store, crm).await?;
    if !carries(&i, module) {
        return Err(not_carried(&i, module));
    }
    let targets = desk_targets(store, &i, crm, &r).await?;
    let departments = visible_departments(store, &desk, caller).await?;
    let limit = limit.clamp(1, 1000) as usize;
    let mut shown: Vec<Record> = Vec::new();
    let mut hidden = 0;
    // Tickets pointing at any target, merged in id order. A full page of
    // one target is complete only up to its last id, so each round takes
    // the tickets up to the smallest such id and reads on from there.
    let mut next_after = None;
    let mut from = after.unwrap_or(0);
    'pages: loop {
        let mut page: Vec<Record> = Vec::new();
        let mut complete_to: Option<i64> = None;
        for t in &targets {
            let part = store
                .related_records(desk.id, *t, "Tickets", Some(from), PAGE)
                .await?;
            if part.len() == PAGE as usize
                && let Some(last) = part.last()
            {
                complete_to = Some(complete_to.map_or(last.id, |c| c.min(last.id)));
            }
            page.extend(part);
        }
        page.sort_by_key(|t| t.id);
        page.dedup_by_key(|t| t.id);
        if let Some(to) = complete_to {
            page.retain(|t| t.id <= to);
        }
        for t in page {
            let department = t
                .fields
                .get("Department")
                .and_then(Value::as_str)
                .unwrap_or("");
            if departments
                .as_ref()
                .is_some_and(|d| !d.contains(department))
            {
                hidden += 1;
                continue;
            }
            if shown.len() == limit {
                next_after = shown.last().map(|s: &Record| s.id);
                break 'pages;
            }
            shown.push(t);
        }
        match complete_to {
            Some(to) => from = to,
            None => break,
        }
    }
    Ok(Tickets {
        hidden_why: (hidden > 0).then(|| hidden_why(&desk)),
        records: shown,
        hidden,
        next_after,
        desk_org: desk.id,
    })
}

/// Creates a Desk ticket for CRM contact `id` (DSK-9): the contact needs an
/// e-mail address, and the department must be one the caller belongs to
/// (DSK-7), else the ticket would vanish from the caller's view.
pub async fn create(
    store: &Store,
    caller: &User,
    crm: &Org,
    module: &str,
    id: i64,
    fields: &Map<String, Value>,
    origin: Origin,
) -> Result<Record> {
    let contact = records::get(store, crm, module, id).await?;
    let (i, desk) = integration_of(store, crm).await?;
    if module != "Contacts" {
        return Err(only_from_contacts(module));
    }
    let email = contact
        .fields
        .get("Email")
        .and_then(Value::as_str)
        .filter(|e| !e.trim().is_empty())
        .ok_or_else(|| contact_without_email(crm, id))?
        .to_string();
    // A ticket without a department is refused by the Tickets module's own
    // validation below (the field is required), naming the field.
    let department = fields
        .get("Department")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
    if !department.is_empty() {
        if let Some(mine) = visible_departments(store, &desk, caller).await?
            && !mine.contains(&department)
        {
            return Err(not_your_department(&desk, &department, &mine));
        }
        let all: Vec<String> = store
            .departments(desk.id)
            .await?
            .into_iter()
            .map(|d| d.name)
            .collect();
        if !all.contains(&department) {
            return Err(no_such_department(&desk, &department, &all));
        }
    }
    let twin = store
        .links(None, i.id, "contact", LinkSide::Crm, &[id])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| contact_not_synced(&i, id))?;
    let desk_contact = records::get(store, &desk, "Contacts", twin.other_id).await?;
    let mut ticket = fields.clone();
    ticket.insert("Contact".into(), json!(desk_contact.id));
    ticket.insert("Email".into(), json!(email));
    if let Some(a) = desk_contact.fields.get("Account").filter(|a| !a.is_null()) {
        ticket.insert("Account".into(), a.clone());
    }
    ticket.entry("Status").or_insert(json!("Open"));
    records::create(store, &desk, "Tickets", &ticket, origin).await
}

fn not_integrated(crm: &Org) -> Error {
    Error::new(
        Kind::NotFound,
        "desk_not_integrated",
        Text::new(
            format!("Org {} ({}) has no Desk integration, so its records have no Desk tickets list.", crm.id, crm.name),
            format!("組織 {}（{}）は Desk と連携していないため、レコードに Desk チケットの一覧はありません。", crm.id, crm.name),
        ),
        Text::new(
            "Set up CRM ⇄ Desk (Settings → Marketplace → Desk): POST /api/v1/integrations {\"kind\": \"crm-desk\", …}.",
            "CRM ⇄ Desk 連携を設定してください（設定 → マーケットプレイス → Desk）: POST /api/v1/integrations {\"kind\": \"crm-desk\", …}。",
        ),
    )
    .with_rule("DSK-3")
}

fn not_carried(i: &Integration, module: &str) -> Error {
    Error::new(
        Kind::NotFound,
        "desk_tickets_not_enabled",
        Text::new(
            format!("{module} has no Desk tickets list: it is on Accounts, Contacts and Deals, and on the custom modules the integration's settings name."),
            format!("{module} には Desk チケットの一覧がありません。一覧があるのは Accounts・Contacts・Deals と、連携の設定で指定したカスタムモジュールです。"),
        ),
        Text::new(
            format!("An administrator adds it (Settings → Marketplace → Desk → Manage → related lists): PATCH /api/v1/integrations/{}/settings {{\"related_lists\": [\"{module}\"]}}.", i.id),
            format!("管理者が追加してください（設定 → マーケットプレイス → Desk → 管理 → 関連リスト）: PATCH /api/v1/integrations/{}/settings {{\"related_lists\": [\"{module}\"]}}。", i.id),
        ),
    )
    .with_rule("DSK-6")
    .with_details(json!({"module": module, "setting": "related_lists"}))
}

fn hidden_why(desk: &Org) -> Text {
    Text::new(
        format!(
            "Some tickets of this record are in Desk departments you do not belong to, so they are not shown here (they are in Desk org {}). A Desk administrator adds you to their department (Desk Settings → General → Departments).",
            desk.id
        ),
        format!(
            "このレコードのチケットの一部は、あなたが所属していない Desk の部門にあるため表示されません（Desk 組織 {}）。Desk の管理者に部門へ追加してもらってください（Desk の設定 → 一般 → 部門）。",
            desk.id
        ),
    )
}

fn only_from_contacts(module: &str) -> Error {
    Error::new(
        Kind::BadInput,
        "ticket_from_contact_only",
        Text::new(
            format!("A Desk ticket is created from a CRM contact; {module} records list their tickets only."),
            format!("Desk チケットは CRM の連絡先から作成します。{module} のレコードではチケットの一覧のみ表示できます。"),
        ),
        Text::new(
            "Create it from the contact the ticket is for: POST …/modules/Contacts/records/{id}/related/Desk_Tickets.",
            "チケットの相手の連絡先から作成してください: POST …/modules/Contacts/records/{id}/related/Desk_Tickets。",
        ),
    )
    .with_rule("DSK-9")
}

fn contact_without_email(crm: &Org, id: i64) -> Error {
    Error::new(
        Kind::Conflict,
        "contact_without_email",
        Text::new(
            format!("Contact {id} has no e-mail address, so it cannot get a new Desk ticket: Desk answers a ticket by e-mail."),
            format!("連絡先 {id} にメールアドレスがないため、新しい Desk チケットを作成できません。Desk はチケットにメールで回答します。"),
        ),
        Text::new(
            format!("Add an e-mail address to the contact (PATCH /api/v1/orgs/{}/modules/Contacts/records/{id} {{\"fields\": {{\"Email\": …}}}}); the \"new ticket\" action is then available.", crm.id),
            format!("連絡先にメールアドレスを追加してください（PATCH /api/v1/orgs/{}/modules/Contacts/records/{id} {{\"fields\": {{\"Email\": …}}}}）。追加すると「新しいチケット」を使えます。", crm.id),
        ),
    )
    .with_rule("DSK-9")
    .with_details(json!({"field": "Email", "id": id}))
}

fn not_your_department(desk: &Org, department: &str, mine: &BTreeSet<String>) -> Error {
    let list: Vec<&str> = mine.iter().map(String::as_str).collect();
    Error::new(
        Kind::Forbidden,
        "not_a_department_member",
        Text::new(
            format!("You do not belong to the Desk department \"{department}\": a ticket created there would not be visible to you in the CRM. Your departments: {}.", if list.is_empty() { "none".to_string() } else { list.join(", ") }),
            format!("Desk の部門「{department}」に所属していないため、そこに作成したチケットは CRM で表示されません。所属部門: {}。", if list.is_empty() { "なし".to_string() } else { list.join("、") }),
        ),
        Text::new(
            format!("Choose one of your departments, or ask a Desk administrator to add you to \"{department}\" (Desk Settings → General → Departments; POST /api/v1/orgs/{}/departments/{{id}}/members).", desk.id),
            format!("所属している部門を選ぶか、Desk の管理者に「{department}」へ追加してもらってください（Desk の設定 → 一般 → 部門。POST /api/v1/orgs/{}/departments/{{id}}/members）。", desk.id),
        ),
    )
    .with_rule("DSK-7")
    .with_details(json!({"field": "Department", "department": department, "yours": list}))
}

fn no_such_department(desk: &Org, department: &str, all: &[String]) -> Error {
    let list = if all.is_empty() {
        ("none yet".to_string(), "まだありません".to_string())
    } else {
        (all.join(", "), all.join("、"))
    };
    Error::new(
        Kind::BadInput,
        "unknown_department",
        Text::new(
            format!("Desk org {} has no department \"{department}\". Its departments: {}.", desk.id, list.0),
            format!("Desk 組織 {} に部門「{department}」はありません。部門: {}。", desk.id, list.1),
        ),
        Text::new(
            format!("Choose one of them, or ask a Desk administrator to create it (POST /api/v1/orgs/{}/departments {{\"name\"}}).", desk.id),
            format!("いずれかを選ぶか、Desk の管理者に作成してもらってください（POST /api/v1/orgs/{}/departments {{\"name\"}}）。", desk.id),
        ),
    )
    .with_details(json!({"field": "Department", "department": department, "departments": all}))
}

fn contact_not_synced(i: &Integration, id: i64) -> Error {
    Error::new(
        Kind::Conflict,
        "contact_not_in_desk_yet",
        Text::new(
            format!("Contact {id} has not reached Desk yet, so a ticket cannot be attached to it."),
            format!("連絡先 {id} はまだ Desk に同期されていないため、チケットを作成できません。"),
        ),
        Text::new(
            format!("Run a sync (POST /api/v1/integrations/{}/sync) or wait for the next one, then try again.", i.id),
            format!("同期を実行する（POST /api/v1/integrations/{}/sync）か次の同期を待ってから、もう一度お試しください。", i.id),
        ),
    )
    .with_details(json!({"id": id}))
}
