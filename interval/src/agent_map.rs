//! loginId to the WFM's agentValue, agentId and userName (`[agents] map_file`, CSV with the
//! header `loginId,agentValue,agentId,userName`). Without an entry, agentValue is the loginId.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// The WFM identity of an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub agent_value: String,
    pub agent_id: String,
    pub user_name: String,
}

/// The map.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentMap {
    by_login: HashMap<String, Agent>,
}

impl AgentMap {
    /// Parses the CSV text; an error names the line.
    pub fn parse(text: &str) -> Result<AgentMap, String> {
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        match lines.next() {
            Some((_, h)) if h.trim().replace(' ', "") == "loginId,agentValue,agentId,userName" => {}
            Some((n, h)) => {
                return Err(format!("line {}: the header must be loginId,agentValue,agentId,userName, is {h:?}", n + 1))
            }
            None => return Ok(AgentMap::default()),
        }
        let mut by_login = HashMap::new();
        for (n, line) in lines {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            if f.len() != 4 || f[0].is_empty() || f[1].is_empty() {
                return Err(format!(
                    "line {}: expected loginId,agentValue,agentId,userName with the first two set",
                    n + 1
                ));
            }
            by_login.insert(
                f[0].to_string(),
                Agent { agent_value: f[1].to_string(), agent_id: f[2].to_string(), user_name: f[3].to_string() },
            );
        }
        Ok(AgentMap { by_login })
    }

    /// The agent for `login_id`.
    pub fn agent(&self, login_id: &str) -> Agent {
        self.by_login.get(login_id).cloned().unwrap_or_else(|| Agent {
            agent_value: login_id.to_string(),
            agent_id: String::new(),
            user_name: String::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_and_unmapped_agents() {
        let m = AgentMap::parse("loginId,agentValue,agentId,userName\na1,967385,11ec-1,ann@x\n").unwrap();
        assert_eq!(m.agent("a1").agent_value, "967385");
        assert_eq!(m.agent("a1").user_name, "ann@x");
        assert_eq!(m.agent("zz").agent_value, "zz");
        assert!(AgentMap::parse("login,value\n").unwrap_err().contains("line 1"));
        assert!(AgentMap::parse("loginId,agentValue,agentId,userName\nx\n").unwrap_err().contains("line 2"));
    }
}
