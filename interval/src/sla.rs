//! Service level in percent, by the configured formula; 100.0 when the denominator is 0.

use serde::{Deserialize, Serialize};

/// The three formulas as the configuration writes them.
pub const FORMULAS: [&str; 3] = [
    "handled_within/received",
    "handled_within/(received-abandoned_within)",
    "(handled_within+abandoned_within)/received",
];

impl TryFrom<String> for Formula {
    type Error = String;

    fn try_from(text: String) -> Result<Formula, String> {
        Formula::parse(&text).ok_or_else(|| format!("must be one of {FORMULAS:?}, is {text:?}"))
    }
}

impl From<Formula> for String {
    fn from(f: Formula) -> String {
        f.text().to_string()
    }
}

/// `sla.formula`, read once from the configuration's text (and written back as that text).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Formula {
    /// `handled_within/received`
    #[default]
    HandledOverReceived,
    /// `handled_within/(received-abandoned_within)`
    HandledOverReceivedLessShortAbandons,
    /// `(handled_within+abandoned_within)/received`
    HandledAndShortAbandonsOverReceived,
}

impl Formula {
    /// Parses the configuration's text.
    pub fn parse(text: &str) -> Option<Formula> {
        match text.replace(' ', "").as_str() {
            "handled_within/received" => Some(Formula::HandledOverReceived),
            "handled_within/(received-abandoned_within)" => Some(Formula::HandledOverReceivedLessShortAbandons),
            "(handled_within+abandoned_within)/received" => Some(Formula::HandledAndShortAbandonsOverReceived),
            _ => None,
        }
    }

    /// The configuration's text for it.
    pub fn text(self) -> &'static str {
        match self {
            Formula::HandledOverReceived => FORMULAS[0],
            Formula::HandledOverReceivedLessShortAbandons => FORMULAS[1],
            Formula::HandledAndShortAbandonsOverReceived => FORMULAS[2],
        }
    }

    /// The percentage for these counts.
    pub fn percent(self, handled_within: i64, abandoned_within: i64, received: i64) -> f64 {
        let (num, den) = match self {
            Formula::HandledOverReceived => (handled_within, received),
            Formula::HandledOverReceivedLessShortAbandons => (handled_within, received - abandoned_within),
            Formula::HandledAndShortAbandonsOverReceived => (handled_within + abandoned_within, received),
        };
        if den <= 0 {
            100.0
        } else {
            100.0 * num as f64 / den as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_formulas() {
        // 10 received: 6 handled within, 1 handled late, 2 abandoned within, 1 abandoned late.
        assert_eq!(Formula::parse("handled_within/received").unwrap().percent(6, 2, 10), 60.0);
        assert_eq!(Formula::parse("handled_within/(received-abandoned_within)").unwrap().percent(6, 2, 10), 75.0);
        assert_eq!(Formula::parse("(handled_within+abandoned_within)/received").unwrap().percent(6, 2, 10), 80.0);
        assert_eq!(Formula::HandledOverReceived.percent(0, 0, 0), 100.0);
        assert_eq!(Formula::HandledOverReceivedLessShortAbandons.percent(0, 3, 3), 100.0);
        assert!(Formula::parse("nonsense").is_none());
    }
}
