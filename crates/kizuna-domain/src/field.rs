//! Modules and fields as data: what a record of a module may hold.

use serde::{Deserialize, Serialize};

/// The field types of the source product, by their API identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    Textarea,
    Email,
    Phone,
    Url,
    Picklist,
    Multiselect,
    Date,
    Datetime,
    Integer,
    Decimal,
    Currency,
    Percent,
    Boolean,
    Lookup,
    File,
}

impl FieldType {
    pub const ALL: [FieldType; 16] = [
        FieldType::Text,
        FieldType::Textarea,
        FieldType::Email,
        FieldType::Phone,
        FieldType::Url,
        FieldType::Picklist,
        FieldType::Multiselect,
        FieldType::Date,
        FieldType::Datetime,
        FieldType::Integer,
        FieldType::Decimal,
        FieldType::Currency,
        FieldType::Percent,
        FieldType::Boolean,
        FieldType::Lookup,
        FieldType::File,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Textarea => "textarea",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::Picklist => "picklist",
            FieldType::Multiselect => "multiselect",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Integer => "integer",
            FieldType::Decimal => "decimal",
            FieldType::Currency => "currency",
            FieldType::Percent => "percent",
            FieldType::Boolean => "boolean",
            FieldType::Lookup => "lookup",
            FieldType::File => "file",
        }
    }

    pub fn parse(s: &str) -> Option<FieldType> {
        FieldType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The length limit a field of this type gets when its definition names none,
    /// so that no value is unbounded.
    pub fn default_max_length(self) -> Option<u32> {
        match self {
            FieldType::Text | FieldType::Picklist | FieldType::File => Some(255),
            FieldType::Email | FieldType::Url => Some(255),
            FieldType::Phone => Some(50),
            FieldType::Textarea => Some(32000),
            _ => None,
        }
    }

    /// Types whose value is a string whose length counts.
    pub fn is_textual(self) -> bool {
        matches!(
            self,
            FieldType::Text
                | FieldType::Textarea
                | FieldType::Email
                | FieldType::Phone
                | FieldType::Url
                | FieldType::Picklist
                | FieldType::File
        )
    }
}

/// One field of a module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDef {
    pub api_name: String,
    /// Made from the API name when left out.
    #[serde(default)]
    pub label: String,
    /// The label in Japanese; empty when there is none (the English label is
    /// shown instead).
    #[serde(default)]
    pub label_ja: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    #[serde(default)]
    pub max_length: Option<u32>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub unique: bool,
    #[serde(default)]
    pub picklist: Vec<String>,
    /// For `lookup`: the module whose records this field points at.
    #[serde(default)]
    pub lookup_module: Option<String>,
    #[serde(default)]
    pub custom: bool,
    /// A field marked unused keeps its data but accepts no new values.
    #[serde(default = "yes")]
    pub in_use: bool,
    /// Lists may be sorted by this field: the store keeps an index over its
    /// values (a list of a million records sorts in a millisecond, not a
    /// second), which every write of the module maintains.
    #[serde(default)]
    pub sortable: bool,
}

fn yes() -> bool {
    true
}

impl FieldDef {
    pub fn new(api_name: &str, field_type: FieldType) -> Self {
        FieldDef {
            api_name: api_name.to_string(),
            label: api_name.replace('_', " "),
            label_ja: String::new(),
            field_type,
            max_length: field_type.default_max_length(),
            required: false,
            unique: false,
            picklist: Vec::new(),
            lookup_module: None,
            custom: false,
            in_use: true,
            sortable: false,
        }
    }

    pub fn sortable(mut self) -> Self {
        self.sortable = true;
        self
    }

    /// The label in the reader's language: Japanese when asked for and
    /// there is one, else English.
    pub fn label_in(&self, japanese: bool) -> &str {
        if japanese && !self.label_ja.is_empty() {
            &self.label_ja
        } else {
            &self.label
        }
    }

    pub fn max(mut self, n: u32) -> Self {
        self.max_length = Some(n);
        self
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub fn unique(mut self) -> Self {
        self.unique = true;
        self
    }

    pub fn picklist(mut self, values: &[&str]) -> Self {
        self.picklist = values.iter().map(|v| v.to_string()).collect();
        self
    }

    pub fn lookup(mut self, module: &str) -> Self {
        self.lookup_module = Some(module.to_string());
        self
    }

    /// The limit that applies to this field's values, the type's default when
    /// the definition names none.
    pub fn effective_max_length(&self) -> Option<u32> {
        self.max_length.or(self.field_type.default_max_length())
    }
}

/// One module (record type) of an org, with its fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleDef {
    pub api_name: String,
    pub label: String,
    pub label_ja: String,
    pub enabled: bool,
    pub fields: Vec<FieldDef>,
}

impl ModuleDef {
    pub fn field(&self, api_name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.api_name == api_name)
    }

    /// The field whose normalised value is indexed for look-ups by e-mail
    /// (dedup across modules, EVT-7): the field named `Email`, else the first
    /// e-mail field.
    pub fn email_key_field(&self) -> Option<&FieldDef> {
        self.fields
            .iter()
            .find(|f| f.api_name == "Email" && f.field_type == FieldType::Email)
            .or_else(|| {
                self.fields
                    .iter()
                    .find(|f| f.field_type == FieldType::Email)
            })
    }
}

/// An API name is what a field or module is called in URLs, JSON and SQL JSON
/// paths: ASCII letters, digits and underscores, starting with a letter.
pub fn is_valid_api_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_name_round_trips() {
        for t in FieldType::ALL {
            assert_eq!(FieldType::parse(t.as_str()), Some(t));
            let json = serde_json::to_string(&t).expect("serialise");
            assert_eq!(json, format!("\"{}\"", t.as_str()));
        }
        assert_eq!(FieldType::parse("string"), None);
    }

    #[test]
    fn api_names_refuse_sql_and_path_characters() {
        assert!(is_valid_api_name("Mailing_Street"));
        assert!(is_valid_api_name("Custom_1"));
        assert!(!is_valid_api_name("1abc"));
        assert!(!is_valid_api_name("a.b"));
        assert!(!is_valid_api_name("a'b"));
        assert!(!is_valid_api_name(""));
        assert!(!is_valid_api_name(&"a".repeat(65)));
    }
}
