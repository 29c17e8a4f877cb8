//! The UI's two languages. Every string of a page is written in both beside
//! its markup (`{{ l.of("Sign in", "ログイン") }}`), so a page cannot be
//! half translated without it showing in review; refusals carry their own
//! two texts (`kizuna_domain::Text`).

use kizuna_domain::Text;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    /// The code of `<html lang>` and of the user's setting.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code {
            "ja" => Some(Lang::Ja),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language the browser prefers of the two (by `q`, then by order);
    /// Japanese when it names neither, since most of Kizuna's users read it.
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for part in header.unwrap_or_default().split(',') {
            let mut pieces = part.split(';');
            let tag = pieces
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            let q = pieces
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or_default();
            let Some(lang) = Lang::parse(primary) else {
                continue;
            };
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::Ja, |(_, l)| l)
    }

    /// `en` or `ja`, whichever this language is.
    pub fn of<'a>(self, en: &'a str, ja: &'a str) -> &'a str {
        match self {
            Lang::Ja => ja,
            Lang::En => en,
        }
    }

    /// A refusal's text in this language.
    pub fn text(self, t: &Text) -> String {
        self.of(&t.en, &t.ja).to_string()
    }

    /// A stored text (`{"en", "ja"}`, as history items keep their reasons)
    /// in this language; the English one when it has no such language.
    pub fn json_text(self, t: &serde_json::Value) -> String {
        t[self.code()]
            .as_str()
            .or(t["en"].as_str())
            .unwrap_or_default()
            .to_string()
    }

    /// A refusal's cause and fix, in this language, as one sentence pair.
    pub fn refusal(self, e: &kizuna_domain::Error) -> String {
        format!("{} {}", self.text(&e.message), self.text(&e.fix))
    }

    /// The other language, for the switch in the page header.
    pub fn other(self) -> Lang {
        match self {
            Lang::Ja => Lang::En,
            Lang::En => Lang::Ja,
        }
    }

    /// This language's name, in itself.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Ja => "日本語",
            Lang::En => "English",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browsers_preference_decides_by_q_then_order_and_japanese_otherwise() {
        assert_eq!(
            Lang::from_accept_language(Some("en-US,en;q=0.9,ja;q=0.8")),
            Lang::En
        );
        assert_eq!(Lang::from_accept_language(Some("ja,en-US;q=0.9")), Lang::Ja);
        assert_eq!(
            Lang::from_accept_language(Some("fr, en;q=0.5, ja;q=0.7")),
            Lang::Ja
        );
        assert_eq!(Lang::from_accept_language(Some("en;q=0, fr")), Lang::Ja);
        assert_eq!(Lang::from_accept_language(Some("de")), Lang::Ja);
        assert_eq!(Lang::from_accept_language(None), Lang::Ja);
        assert_eq!(Lang::from_accept_language(Some("EN-gb")), Lang::En);
    }
}
