//! Service level in percent, by the configured formula; 100.0 when the denominator is 0.

use serde::{Deserialize, Serialize};

/// `sla.formula`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Formula {
    /// `handled_within/received`
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
