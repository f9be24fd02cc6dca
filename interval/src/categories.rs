//! Event codes to the four categories of docs/intervals.md (case-insensitive, configurable).

use rustc_hash::FxHashMap as HashMap;

use serde::{Deserialize, Serialize};

/// An agent state's category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Category {
    LoggedOut,
    Ready,
    NotReady,
    Busy,
}

/// The code map; codes not in it are BUSY.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Categories {
    map: HashMap<String, Category>,
}

impl Default for Categories {
    fn default() -> Self {
        let mut map = HashMap::default();
        for (cat, codes) in [
            (Category::LoggedOut, &["LOGOUT", "LOGOFF", "LOGGED_OUT", "UNSTAFF", "UNSTAFFED", "10", "110"][..]),
            (Category::Ready, &["AVAIL", "AVAILABLE", "READY", "IDLE", "20"][..]),
            (
                Category::NotReady,
                &[
                    "AUX",
                    "NOT READY",
                    "NOT_READY",
                    "NOTREADY",
                    "BREAK",
                    "LUNCH",
                    "LOGIN",
                    "LOGON",
                    "50",
                    "51",
                    "52",
                    "100",
                ][..],
            ),
        ] {
            for c in codes {
                map.insert(c.to_string(), cat);
            }
        }
        Categories { map }
    }
}

impl Categories {
    /// Adds or changes one code's category.
    pub fn set(&mut self, code: &str, category: Category) {
        self.map.insert(code.to_uppercase(), category);
    }

    /// The category of `code`.
    pub fn of(&self, code: &str) -> Category {
        if let Some(c) = self.map.get(code) {
            return *c;
        }
        // Keys are upper case and trimmed: a code that already is (most BUSY codes) missed.
        let canonical = code.is_ascii() && !code.bytes().any(|b| b.is_ascii_lowercase() || b.is_ascii_whitespace());
        if canonical {
            return Category::Busy;
        }
        self.map.get(&code.trim().to_uppercase()).copied().unwrap_or(Category::Busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_table_is_case_insensitive() {
        let c = Categories::default();
        assert_eq!(c.of("logout"), Category::LoggedOut);
        assert_eq!(c.of("110"), Category::LoggedOut);
        assert_eq!(c.of("Avail"), Category::Ready);
        assert_eq!(c.of("not ready"), Category::NotReady);
        assert_eq!(c.of("LOGIN"), Category::NotReady);
        for busy in ["ACD", "ACW", "RING", "CallContact", "IN CALL", "WRAP UP", "whatever"] {
            assert_eq!(c.of(busy), Category::Busy, "{busy}");
        }
        let mut c = c;
        c.set("training", Category::NotReady);
        assert_eq!(c.of("TRAINING"), Category::NotReady);
    }
}
