//! The desktop mail client's contacts export (CSV), in English or Japanese,
//! UTF-8 or Shift_JIS (what the Japanese edition writes): each row read
//! into the same contact form a vCard fills, a row at a time.

use crate::content::content_hash;
use crate::vcard::{CardError, Contact, ContactField};
use encoding_rs::{SHIFT_JIS, UTF_8};
use std::io::{BufRead, Read};

/// The columns of the export, by their English and Japanese headers.
const COLUMNS: &[(ContactField, &[&str])] = {
    use ContactField as F;
    &[
        (F::FirstName, &["First Name", "名"]),
        (F::LastName, &["Last Name", "姓"]),
        (
            F::Email,
            &[
                "E-mail Address",
                "E-mail 1 Address",
                "電子メール アドレス",
                "電子メール 1 アドレス",
            ],
        ),
        (F::JobTitle, &["Job Title", "役職"]),
        (F::Company, &["Company", "会社名", "会社"]),
        (F::Department, &["Department", "部署"]),
        (F::BusinessPhone, &["Business Phone", "会社電話"]),
        (F::HomePhone, &["Home Phone", "自宅電話"]),
        (F::OtherPhone, &["Other Phone", "その他の電話"]),
        (F::BusinessFax, &["Business Fax", "会社 FAX", "会社FAX"]),
        (F::MobilePhone, &["Mobile Phone", "携帯電話"]),
        (
            F::AssistantName,
            &["Assistant's Name", "秘書の名前", "秘書"],
        ),
        (F::AssistantPhone, &["Assistant's Phone", "秘書の電話"]),
        (F::ManagerName, &["Manager's Name", "上司の名前", "上司"]),
        (
            F::BusinessStreet,
            &["Business Street", "番地 (会社)", "会社 番地"],
        ),
        (
            F::BusinessCity,
            &["Business City", "市区町村 (会社)", "会社 市区町村"],
        ),
        (
            F::BusinessState,
            &["Business State", "都道府県 (会社)", "会社 都道府県"],
        ),
        (
            F::BusinessPostalCode,
            &["Business Postal Code", "郵便番号 (会社)", "会社 郵便番号"],
        ),
        (
            F::BusinessCountry,
            &[
                "Business Country/Region",
                "Business Country",
                "国/地域 (会社)",
                "会社 国/地域",
            ],
        ),
        (
            F::OtherStreet,
            &["Other Street", "番地 (その他)", "その他 番地"],
        ),
        (
            F::OtherCity,
            &["Other City", "市区町村 (その他)", "その他 市区町村"],
        ),
        (
            F::OtherState,
            &["Other State", "都道府県 (その他)", "その他 都道府県"],
        ),
        (
            F::OtherPostalCode,
            &["Other Postal Code", "郵便番号 (その他)", "その他 郵便番号"],
        ),
        (
            F::OtherCountry,
            &[
                "Other Country/Region",
                "Other Country",
                "国/地域 (その他)",
                "その他 国/地域",
            ],
        ),
        (F::Notes, &["Notes", "メモ"]),
        (F::Birthday, &["Birthday", "誕生日"]),
    ]
};

const CATEGORIES: &[&str] = &["Categories", "分類"];

/// One row of the export.
#[derive(Debug)]
pub struct CsvContact {
    /// The row's number in the file (the header is row 1).
    pub row: u64,
    pub contact: Result<Contact, CardError>,
}

/// Reads the export a row at a time. The first bytes decide the encoding:
/// UTF-8 (with or without a byte order mark) when they are valid UTF-8,
/// else Shift_JIS.
pub struct CsvReader {
    rows: csv::StringRecordsIntoIter<Box<dyn Read + Send>>,
    columns: Vec<(ContactField, usize)>,
    categories: Option<usize>,
    row: u64,
}

/// Why the file is not an export this reader knows.
pub fn not_an_export(why: &str) -> CardError {
    CardError(format!("not the mail client's contacts export: {why}"))
}

impl CsvReader {
    pub fn new<R: BufRead + Send + 'static>(mut input: R) -> Result<CsvReader, CardError> {
        let head = input
            .fill_buf()
            .map_err(|e| CardError(e.to_string()))?
            .to_vec();
        // A cut multi-byte character at the end of the sample is not a sign
        // of another encoding.
        let sample = &head[..head.len().min(64 * 1024)];
        let utf8 = match std::str::from_utf8(sample) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        };
        let decoder = encoding_rs_io::DecodeReaderBytesBuilder::new()
            .encoding(Some(if utf8 { UTF_8 } else { SHIFT_JIS }))
            .bom_override(true)
            .build(input);
        let boxed: Box<dyn Read + Send> = Box::new(decoder);
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(true)
            .from_reader(boxed);
        let headers = reader
            .headers()
            .map_err(|e| not_an_export(&e.to_string()))?
            .clone();
        let find = |names: &[&str]| {
            headers
                .iter()
                .position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)))
        };
        let columns: Vec<(ContactField, usize)> = COLUMNS
            .iter()
            .filter_map(|(f, names)| find(names).map(|i| (*f, i)))
            .collect();
        if !columns.iter().any(|(f, _)| {
            matches!(
                f,
                ContactField::LastName | ContactField::FirstName | ContactField::Email
            )
        }) {
            return Err(not_an_export(
                "no name or e-mail column (First Name, Last Name, E-mail Address; 名, 姓, 電子メール アドレス)",
            ));
        }
        Ok(CsvReader {
            categories: find(CATEGORIES),
            rows: reader.into_records(),
            columns,
            row: 1,
        })
    }
}

/// `YYYY-MM-DD` from the export's dates (`1980/4/1`, `4/1/1980`,
/// `1980-04-01`); the client writes `0/0/00` for none.
fn birthday(s: &str) -> Option<String> {
    let parts: Vec<u32> = s
        .split(['/', '-', '.'])
        .map(|p| p.trim().parse().ok())
        .collect::<Option<_>>()?;
    let (y, m, d) = match parts.as_slice() {
        [y, m, d] if *y > 31 => (*y, *m, *d),
        [m, d, y] if *y > 31 => (*y, *m, *d),
        _ => return None,
    };
    (chrono::NaiveDate::from_ymd_opt(y as i32, m, d))
        .map(|date| date.format("%Y-%m-%d").to_string())
}

impl Iterator for CsvReader {
    type Item = CsvContact;

    fn next(&mut self) -> Option<CsvContact> {
        let record = self.rows.next()?;
        self.row += 1;
        let row = self.row;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                return Some(CsvContact {
                    row,
                    contact: Err(CardError(format!("the row could not be read: {e}"))),
                });
            }
        };
        let mut c = Contact::default();
        for (f, i) in &self.columns {
            let Some(v) = record.get(*i).map(str::trim).filter(|v| !v.is_empty()) else {
                continue;
            };
            let v = if *f == ContactField::Birthday {
                match birthday(v) {
                    Some(b) => b,
                    None => continue,
                }
            } else {
                v.to_string()
            };
            c.fields.insert(*f, v);
        }
        if let Some(cats) = self.categories.and_then(|i| record.get(i)) {
            c.categories = cats
                .split([';', ','])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
        }
        let canonical: Vec<String> = c
            .fields
            .iter()
            .map(|(f, v)| format!("{f:?}:{v}"))
            .chain(c.categories.iter().map(|x| format!("cat:{x}")))
            .collect();
        c.hash = content_hash(&canonical.join("\n"), &[]);
        let contact = if c.fields.is_empty() {
            Err(CardError("the row is empty".into()))
        } else {
            Ok(c)
        };
        Some(CsvContact { row, contact })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ContactField as F;

    #[test]
    fn an_english_export_in_utf8_fills_the_contact_form() {
        let csv = "\u{feff}First Name,Last Name,E-mail Address,Job Title,Company,Business Phone,Birthday,Categories,Notes\r\n\
                   Taro,Yamada,taro@example.jp,Sales,Kizuna KK,03-1234-5678,1980/4/1,CRM;Friends,\"met at the fair, twice\"\r\n\
                   ,,,,,,0/0/00,,\r\n";
        let rows: Vec<CsvContact> = CsvReader::new(std::io::Cursor::new(csv.as_bytes().to_vec()))
            .expect("an export")
            .collect();
        assert_eq!(rows.len(), 2);
        let c = rows[0].contact.as_ref().expect("Taro");
        assert_eq!(rows[0].row, 2);
        assert_eq!(c.get(F::FirstName), Some("Taro"));
        assert_eq!(c.get(F::Email), Some("taro@example.jp"));
        assert_eq!(c.get(F::Company), Some("Kizuna KK"));
        assert_eq!(c.get(F::Birthday), Some("1980-04-01"));
        assert_eq!(c.get(F::Notes), Some("met at the fair, twice"));
        assert_eq!(c.categories, ["CRM", "Friends"]);
        assert!(rows[1].contact.is_err(), "an empty row fails alone");
    }

    #[test]
    fn a_japanese_export_in_shift_jis_is_read() {
        let text = "姓,名,電子メール アドレス,会社名,部署,携帯電話\r\n山田,太郎,taro@example.jp,株式会社絆,営業部,090-1111-2222\r\n";
        let (bytes, _, bad) = SHIFT_JIS.encode(text);
        assert!(!bad);
        let rows: Vec<CsvContact> = CsvReader::new(std::io::Cursor::new(bytes.into_owned()))
            .expect("an export")
            .collect();
        let c = rows[0].contact.as_ref().expect("a contact");
        assert_eq!(c.get(F::LastName), Some("山田"));
        assert_eq!(c.get(F::FirstName), Some("太郎"));
        assert_eq!(c.get(F::Company), Some("株式会社絆"));
        assert_eq!(c.get(F::Department), Some("営業部"));
        assert_eq!(c.get(F::MobilePhone), Some("090-1111-2222"));
    }

    #[test]
    fn a_csv_without_name_or_email_columns_is_refused() {
        let e = CsvReader::new(std::io::Cursor::new(b"a,b\r\n1,2\r\n".to_vec()))
            .err()
            .expect("refused");
        assert!(e.0.contains("no name or e-mail column"), "{e:?}");
    }
}
