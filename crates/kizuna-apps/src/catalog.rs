//! The standard modules and fields each app starts with. An org gets its own copy
//! when it is created; from then on they are data that administrators extend.

use kizuna_domain::field::{FieldDef, FieldType as T, ModuleDef};
use kizuna_domain::org::App;

fn f(name: &str, t: T) -> FieldDef {
    let mut field = FieldDef::new(name, t);
    field.label_ja = crate::labels_ja::label_ja(name)
        .unwrap_or_default()
        .to_string();
    field
}

/// A module; its name field (the first required text, else the first text)
/// is sortable, so that its list sorts by name from the start. More fields
/// can be made sortable; each one's index costs every write of the module.
fn module(api_name: &str, label_ja: &str, mut fields: Vec<FieldDef>) -> ModuleDef {
    let text = |f: &FieldDef| f.field_type == T::Text;
    if let Some(name) = fields
        .iter()
        .position(|f| text(f) && f.required)
        .or_else(|| fields.iter().position(text))
    {
        fields[name].sortable = true;
    }
    ModuleDef {
        api_name: api_name.to_string(),
        label: api_name.replace('_', " "),
        label_ja: label_ja.to_string(),
        enabled: true,
        fields,
    }
}

/// Where a lead or contact came from (Leads and Contacts share the list).
const LEAD_SOURCES: &[&str] = &["Advertisement", "Event", "Web", "Referral", "Mail", "Other"];

/// Fields every person-like CRM module shares.
fn person_fields() -> Vec<FieldDef> {
    vec![
        f("First_Name", T::Text).max(40),
        f("Last_Name", T::Text).max(80).required(),
        f("Email", T::Email),
        f("Title", T::Text).max(100),
        f("Phone", T::Phone).max(50),
        f("Mobile", T::Phone).max(30),
        f("Fax", T::Phone).max(30),
        f("Description", T::Textarea).max(32000),
    ]
}

/// The CRM contact map of `spec/mail.md` (MAIL-2), with its maximum lengths.
fn crm_contact_fields() -> Vec<FieldDef> {
    let mut fields = person_fields();
    fields.extend([
        f("Account_Name", T::Text).max(200),
        f("Account", T::Lookup).lookup("Accounts"),
        f("Department", T::Text).max(50),
        f("Home_Phone", T::Phone).max(30),
        f("Other_Phone", T::Phone).max(30),
        f("Assistant", T::Text).max(50),
        f("Asst_Phone", T::Phone).max(30),
        f("Reports_To", T::Text).max(50),
        f("Mailing_Street", T::Text).max(250),
        f("Mailing_City", T::Text).max(30),
        f("Mailing_State", T::Text).max(30),
        f("Mailing_Zip", T::Text).max(30),
        f("Mailing_Country", T::Text).max(30),
        f("Other_Street", T::Text).max(250),
        f("Other_City", T::Text).max(30),
        f("Other_State", T::Text).max(30),
        f("Other_Zip", T::Text).max(30),
        f("Other_Country", T::Text).max(30),
        f("Date_of_Birth", T::Date),
        f("Lead_Source", T::Picklist).picklist(LEAD_SOURCES),
    ]);
    fields
}

fn crm() -> Vec<ModuleDef> {
    let mut lead = person_fields();
    lead.extend([
        f("Company", T::Text).max(200),
        f("Lead_Status", T::Picklist).picklist(&[
            "Not Contacted",
            "Attempted to Contact",
            "Contacted",
            "Qualified",
            "Lost",
        ]),
        f("Lead_Source", T::Picklist).picklist(LEAD_SOURCES),
        f("Street", T::Text).max(250),
        f("City", T::Text).max(30),
        f("Country", T::Text).max(30),
    ]);
    vec![
        module("Leads", "見込み客", lead),
        module("Contacts", "連絡先", crm_contact_fields()),
        module(
            "Accounts",
            "取引先",
            vec![
                f("Account_Name", T::Text).max(200).required(),
                f("Website", T::Url),
                f("Phone", T::Phone),
                f("Industry", T::Picklist).picklist(&[
                    "Manufacturing",
                    "Retail",
                    "Services",
                    "Technology",
                    "Other",
                ]),
                f("Employees", T::Integer),
                f("Annual_Revenue", T::Currency),
                f("Billing_Street", T::Text).max(250),
                f("Billing_City", T::Text).max(30),
                f("Billing_Country", T::Text).max(30),
                f("Description", T::Textarea),
            ],
        ),
        module(
            "Deals",
            "商談",
            vec![
                f("Deal_Name", T::Text).max(120).required(),
                f("Account", T::Lookup).lookup("Accounts"),
                f("Contact", T::Lookup).lookup("Contacts"),
                f("Amount", T::Currency),
                f("Stage", T::Picklist)
                    .picklist(&[
                        "Qualification",
                        "Needs Analysis",
                        "Proposal",
                        "Negotiation",
                        "Closed Won",
                        "Closed Lost",
                    ])
                    .required(),
                f("Closing_Date", T::Date),
                f("Probability", T::Percent),
                f("Description", T::Textarea),
            ],
        ),
        module(
            "Campaigns",
            "キャンペーン",
            vec![
                f("Campaign_Name", T::Text).max(120).required(),
                f("Type", T::Picklist).picklist(&[
                    "Conference",
                    "Webinar",
                    "Trade Show",
                    "Email",
                    "Other",
                ]),
                f("Status", T::Picklist).picklist(&["Planning", "Active", "Inactive", "Complete"]),
                f("Start_Date", T::Date),
                f("End_Date", T::Date),
                f("Budgeted_Cost", T::Currency),
                f("Actual_Cost", T::Currency),
                // An event's figures, kept by CRM ⇄ Events (EVT-14).
                f("Tickets_Sold", T::Integer),
                f("Check_Ins", T::Integer),
                f("Revenue", T::Currency),
                f("Description", T::Textarea),
            ],
        ),
        // Kept in step with Desk's products by CRM ⇄ Desk (DSK-14).
        module(
            "Products",
            "製品",
            vec![
                f("Product_Name", T::Text).max(200).required(),
                f("Product_Code", T::Text).max(100),
                f("Unit_Price", T::Currency),
                f("Product_Active", T::Boolean),
                f("Description", T::Textarea).max(32000),
            ],
        ),
        module(
            "Tasks",
            "タスク",
            vec![
                f("Subject", T::Text).max(255).required(),
                f("Due_Date", T::Date),
                f("Priority", T::Picklist)
                    .picklist(&["Highest", "High", "Normal", "Low", "Lowest"]),
                f("Status", T::Picklist).picklist(&[
                    "Not Started",
                    "Deferred",
                    "In Progress",
                    "Completed",
                    "Waiting for input",
                ]),
                f("Contact", T::Lookup).lookup("Contacts"),
                f("Deal", T::Lookup).lookup("Deals"),
                f("Description", T::Textarea).max(32000),
            ],
        ),
        module(
            "Events",
            "イベント",
            vec![
                f("Title", T::Text).max(255).required(),
                f("Start_DateTime", T::Datetime).required(),
                f("End_DateTime", T::Datetime).required(),
                f("Venue", T::Text).max(255),
                f("Contact", T::Lookup).lookup("Contacts"),
                // MAIL-5/6: each participant's address, with the Contact,
                // Lead or user it is in the CRM.
                f("Participants", T::Textarea).max(32000),
                f("Description", T::Textarea).max(32000),
            ],
        ),
        module(
            "Cases",
            "問い合わせ",
            vec![
                f("Subject", T::Text).max(255).required(),
                f("Email", T::Email),
                f("Contact_Name", T::Lookup).lookup("Contacts"),
                f("Status", T::Picklist).picklist(&["New", "Escalated", "On Hold", "Closed"]),
                f("Priority", T::Picklist).picklist(&["High", "Medium", "Low"]),
                f("Description", T::Textarea).max(32000),
            ],
        ),
        // MAIL-11: e-mails kept with the Contact, Lead or Deal they concern.
        module(
            "Emails",
            "メール",
            vec![
                f("Subject", T::Text).max(255),
                f("From", T::Email),
                f("To", T::Textarea).max(32000),
                f("Cc", T::Textarea).max(32000),
                f("Sent_At", T::Datetime),
                f("Direction", T::Picklist).picklist(&["Received", "Sent"]),
                f("Message_ID", T::Text).max(998),
                f("Body", T::Textarea).max(32000),
                f("Contact", T::Lookup).lookup("Contacts"),
                f("Lead", T::Lookup).lookup("Leads"),
                f("Deal", T::Lookup).lookup("Deals"),
            ],
        ),
        module(
            "Notes",
            "メモ",
            vec![
                f("Note_Title", T::Text).max(120),
                f("Note_Content", T::Textarea).max(32000).required(),
                f("Contact", T::Lookup).lookup("Contacts"),
                f("Account", T::Lookup).lookup("Accounts"),
                f("Deal", T::Lookup).lookup("Deals"),
            ],
        ),
        module(
            "Projects",
            "プロジェクト",
            vec![
                f("Project_Name", T::Text).max(200).required(),
                f("Status", T::Picklist).picklist(&["Active", "On Hold", "Completed", "Cancelled"]),
                f("Start_Date", T::Date),
                f("End_Date", T::Date),
                f("Description", T::Textarea),
            ],
        ),
    ]
}

fn desk() -> Vec<ModuleDef> {
    vec![
        module(
            "Contacts",
            "連絡先",
            vec![
                f("First_Name", T::Text).max(40),
                f("Last_Name", T::Text).max(80).required(),
                f("Email", T::Email),
                f("Phone", T::Phone),
                f("Account", T::Lookup).lookup("Accounts"),
            ],
        ),
        module(
            "Accounts",
            "取引先",
            vec![
                f("Account_Name", T::Text).max(200).required(),
                f("Website", T::Url),
                f("Phone", T::Phone),
            ],
        ),
        module(
            "Tickets",
            "チケット",
            vec![
                f("Subject", T::Text).max(255).required(),
                f("Description", T::Textarea),
                f("Status", T::Picklist).picklist(&["Open", "On Hold", "Escalated", "Closed"]),
                f("Priority", T::Picklist).picklist(&["High", "Medium", "Low"]),
                f("Department", T::Text).max(100).required(),
                f("Contact", T::Lookup).lookup("Contacts"),
                f("Account", T::Lookup).lookup("Accounts"),
                f("Email", T::Email),
            ],
        ),
        module(
            "Products",
            "製品",
            vec![
                f("Product_Name", T::Text).max(200).required(),
                f("Product_Code", T::Text).max(100),
                f("Unit_Price", T::Currency),
                f("Description", T::Textarea),
            ],
        ),
    ]
}

fn projects() -> Vec<ModuleDef> {
    vec![
        module(
            "Projects",
            "プロジェクト",
            vec![
                f("Project_Name", T::Text).max(200).required(),
                f("Group", T::Lookup).lookup("Project_Groups"),
                f("Owner", T::Email),
                f("Status", T::Picklist).picklist(&["Active", "On Hold", "Completed", "Cancelled"]),
                f("Fixed_Timeline", T::Boolean),
                f("Start_Date", T::Date),
                f("End_Date", T::Date),
                f("Description", T::Textarea),
            ],
        ),
        module(
            "Project_Groups",
            "プロジェクトグループ",
            vec![f("Group_Name", T::Text).max(100).required()],
        ),
        module(
            "Tasks",
            "タスク",
            vec![
                f("Task_Name", T::Text).max(255).required(),
                f("Project", T::Lookup).lookup("Projects").required(),
                f("Parent_Task", T::Lookup).lookup("Tasks"),
                f("Status", T::Picklist).picklist(&["Open", "In Progress", "Completed"]),
                f("Due_Date", T::Date),
                f("Recurring", T::Boolean),
                f("Add_To_CRM", T::Boolean),
                f("Description", T::Textarea),
            ],
        ),
        module(
            "Comments",
            "コメント",
            vec![
                f("Content", T::Textarea).required(),
                f("Task", T::Lookup).lookup("Tasks").required(),
            ],
        ),
        module(
            "Client_Companies",
            "クライアント会社",
            vec![
                f("Company_Name", T::Text).max(200).required(),
                f("Website", T::Url),
            ],
        ),
        module(
            "Client_Users",
            "クライアントユーザー",
            vec![
                f("Name", T::Text).max(120).required(),
                f("Email", T::Email).required(),
                f("Client_Company", T::Lookup).lookup("Client_Companies"),
            ],
        ),
        module(
            "Portal_Users",
            "ポータルユーザー",
            vec![
                f("Name", T::Text).max(120).required(),
                f("Email", T::Email).required(),
                f("Role", T::Picklist).picklist(&[
                    "Administrator",
                    "Manager",
                    "Employee",
                    "Contractor",
                ]),
            ],
        ),
    ]
}

fn events() -> Vec<ModuleDef> {
    vec![
        module(
            "Events",
            "イベント",
            vec![
                f("Event_Name", T::Text).max(200).required(),
                f("Start_Date", T::Date),
                f("End_Date", T::Date),
                f("Currency", T::Text).max(3),
                f("Budget", T::Currency),
                f("Expenses", T::Currency),
                f("Status", T::Picklist).picklist(&["Draft", "Live", "Completed", "Cancelled"]),
            ],
        ),
        module(
            "Ticket_Classes",
            "チケットクラス",
            vec![
                f("Ticket_Name", T::Text).max(120).required(),
                f("Event", T::Lookup).lookup("Events").required(),
                f("Price", T::Currency),
                f("Quantity", T::Integer),
            ],
        ),
        module(
            "Ticket_Form_Fields",
            "チケット購入フォーム項目",
            vec![
                f("Label", T::Text).max(120).required(),
                // The form's field types. Events has no number, currency or
                // file fields (EVT-13).
                f("Type", T::Picklist)
                    .picklist(crate::events::FORM_FIELD_TYPES)
                    .required(),
                f("Section", T::Picklist)
                    .picklist(&["ticket", "buyer"])
                    .required(),
                // A dropdown's values, one per line.
                f("Options", T::Textarea).max(4000),
                // The Attendees field the form field added (EVT-12); derived
                // from the label when not given.
                f("Field_Name", T::Text).max(64),
                f("Event", T::Lookup).lookup("Events"),
            ],
        ),
        module(
            "Orders",
            "注文",
            vec![
                f("Event", T::Lookup).lookup("Events").required(),
                f("Buyer_Email", T::Email).required(),
                f("Total", T::Currency),
                f("Status", T::Picklist).picklist(&["pending", "paid", "refunded", "cancelled"]),
            ],
        ),
        module(
            "Attendees",
            "参加者",
            vec![
                f("Email", T::Email).required(),
                f("First_Name", T::Text).max(40),
                f("Last_Name", T::Text).max(80).required(),
                f("Company", T::Text).max(200),
                f("Event", T::Lookup).lookup("Events").required(),
                f("Order", T::Lookup).lookup("Orders"),
                f("Status", T::Picklist)
                    .picklist(&["registered", "confirmed", "attended", "cancelled"])
                    .required(),
            ],
        ),
    ]
}

fn inventory() -> Vec<ModuleDef> {
    vec![
        module(
            "Items",
            "商品",
            vec![
                f("Item_Name", T::Text).max(200).required(),
                f("SKU", T::Text).max(100).unique(),
                f("Rate", T::Currency),
                f("Stock_On_Hand", T::Integer),
                f("Description", T::Textarea),
            ],
        ),
        module(
            "Contacts",
            "顧客",
            vec![
                f("Contact_Name", T::Text).max(200).required(),
                f("Email", T::Email),
                f("Phone", T::Phone),
                f("Billing_Address", T::Textarea).max(500),
                f("Shipping_Address", T::Textarea).max(500),
            ],
        ),
        module(
            "Sales_Orders",
            "受注",
            vec![
                f("Order_Number", T::Text).max(50).required().unique(),
                f("Customer", T::Lookup).lookup("Contacts").required(),
                f("Status", T::Picklist).picklist(&[
                    "draft",
                    "confirmed",
                    "shipped",
                    "closed",
                    "void",
                ]),
                f("Total", T::Currency),
                f("Order_Date", T::Date),
            ],
        ),
        module(
            "Invoices",
            "請求書",
            vec![
                f("Invoice_Number", T::Text).max(50).required().unique(),
                f("Customer", T::Lookup).lookup("Contacts").required(),
                f("Sales_Order", T::Lookup).lookup("Sales_Orders"),
                f("Status", T::Picklist).picklist(&["draft", "sent", "paid", "overdue", "void"]),
                f("Total", T::Currency),
                f("Due_Date", T::Date),
            ],
        ),
        module(
            "Shipments",
            "出荷",
            vec![
                f("Shipment_Number", T::Text).max(50).required(),
                f("Sales_Order", T::Lookup)
                    .lookup("Sales_Orders")
                    .required(),
                f("Carrier", T::Text).max(100),
                f("Tracking_Number", T::Text).max(100),
                f("Delivery_Status", T::Picklist).picklist(&[
                    "pending",
                    "shipped",
                    "in_transit",
                    "delivered",
                    "failed",
                ]),
                f("Shipped_Date", T::Date),
            ],
        ),
        module(
            "Returns",
            "返品",
            vec![
                f("Return_Number", T::Text).max(50).required(),
                f("Sales_Order", T::Lookup)
                    .lookup("Sales_Orders")
                    .required(),
                f("Item", T::Lookup).lookup("Items"),
                f("Quantity", T::Integer),
                f("Reason", T::Textarea).max(2000),
            ],
        ),
    ]
}

/// The standard modules of an app, in the order they are shown.
pub fn standard_modules(app: App) -> Vec<ModuleDef> {
    match app {
        App::Crm => crm(),
        App::Desk => desk(),
        App::Projects => projects(),
        App::Events => events(),
        App::Inventory => inventory(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Contacts limits of MAIL-2 are proven beside the contact map that
    // uses them: kizuna-sync `mail::contacts` tests.

    #[test]
    fn every_lookup_points_at_a_module_of_the_same_app() {
        for app in App::ALL {
            let modules = standard_modules(app);
            for m in &modules {
                for field in &m.fields {
                    if let Some(target) = &field.lookup_module {
                        assert!(
                            modules.iter().any(|x| &x.api_name == target),
                            "{}.{}.{} -> {target}",
                            app.as_str(),
                            m.api_name,
                            field.api_name
                        );
                    }
                    assert!(kizuna_domain::field::is_valid_api_name(&field.api_name));
                }
            }
        }
    }

    #[test]
    fn every_standard_field_has_a_japanese_label_and_every_module_sorts_by_name() {
        for app in App::ALL {
            for m in standard_modules(app) {
                for field in &m.fields {
                    assert!(
                        !field.label_ja.is_empty(),
                        "{}.{}.{} has no Japanese label (labels_ja.rs)",
                        app.as_str(),
                        m.api_name,
                        field.api_name
                    );
                }
                let sortable: Vec<&str> = m
                    .fields
                    .iter()
                    .filter(|f| f.sortable)
                    .map(|f| f.api_name.as_str())
                    .collect();
                let has_text = m.fields.iter().any(|f| f.field_type == T::Text);
                assert_eq!(
                    sortable.len(),
                    usize::from(has_text),
                    "{}.{}: {sortable:?}",
                    app.as_str(),
                    m.api_name
                );
                for name in sortable {
                    let name = m.field(name).expect("the sortable field");
                    kizuna_store::sort_index::check_sortable(&m.api_name, name)
                        .expect("a name field can be sorted by");
                }
            }
        }
        let crm = standard_modules(App::Crm);
        let contacts = crm
            .iter()
            .find(|m| m.api_name == "Contacts")
            .expect("Contacts");
        assert!(contacts.field("Last_Name").is_some_and(|f| f.sortable));
    }
}
