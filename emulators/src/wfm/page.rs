//! The page at `/`: what the WFM received, for a person to read.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::store::Store;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Renders the store.
pub fn render(store: &Store) -> String {
    let mut h = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>wfm-sim</title><style>\
         body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin-bottom:2em}\
         td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f0f0f0}td.l{text-align:left}\
         </style></head><body><h1>WFM emulator</h1>",
    );
    let _ = write!(
        h,
        "<p>{} agent states, {} queue rows, {} agent-queue rows, {} agent rows, {} activity lists, {} rows replaced by upsert.</p>",
        store.agent_states.len(),
        store.queue_rows.len(),
        store.agent_queue_rows.len(),
        store.agent_rows.len(),
        store.activity.len(),
        store.replaced
    );
    h.push_str("<h2>Calls</h2><table><tr><th>path</th><th>status</th><th>calls</th></tr>");
    for (path, by_status) in &store.calls {
        for (status, n) in by_status {
            let _ = write!(h, "<tr><td class=l>{}</td><td>{status}</td><td>{n}</td></tr>", esc(path));
        }
    }
    h.push_str(
        "</table><h2>Queue intervals</h2><table><tr><th>interval</th><th>queue</th><th>received</th>\
                <th>handled</th><th>abandoned</th><th>handle time</th><th>SL %</th></tr>",
    );
    for ((start, queue), r) in store.queue_rows.iter().rev().take(200) {
        let _ = write!(
            h,
            "<tr><td class=l>{}</td><td class=l>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.1}</td></tr>",
            esc(start),
            esc(queue),
            esc(&r.queue_name),
            r.contacts_received,
            r.handled_short + r.handled_long,
            r.abandoned_short + r.abandoned_long,
            r.handle_time,
            r.svc_lvl_pct
        );
    }
    h.push_str("</table><h2>Agent states (latest 100)</h2><table><tr><th>time</th><th>agent</th><th>state</th><th>reason</th></tr>");
    for s in store.agent_states.iter().rev().take(100) {
        let _ = write!(
            h,
            "<tr><td class=l>{}</td><td class=l>{}/{}</td><td class=l>{}</td><td class=l>{}</td></tr>",
            esc(s.event_utc_time),
            esc(s.acd_id),
            esc(s.login_id),
            esc(s.event_code),
            esc(s.reason_code)
        );
    }
    let mut per_agent: BTreeMap<&str, usize> = BTreeMap::new();
    for s in store.agent_states.iter() {
        *per_agent.entry(s.login_id).or_default() += 1;
    }
    let _ = write!(h, "</table><p>{} agents reported states.</p></body></html>", per_agent.len());
    h
}
