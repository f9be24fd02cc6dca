//! No Docker engine runs here, so the compose file is checked by reading it: every acd-bridge
//! service runs an existing subcommand, and every mounted configuration loads as the program
//! would load it.

mod common;

use std::path::Path;

use serde_yaml::Value;

#[test]
fn every_service_runs_a_real_subcommand_with_a_config_it_accepts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let compose: Value =
        serde_yaml::from_str(&std::fs::read_to_string(root.join("docker-compose.yml")).unwrap()).unwrap();
    let services = compose["services"].as_mapping().unwrap();
    let mut checked = Vec::new();
    for (name, svc) in services {
        let name = name.as_str().unwrap();
        if svc["image"].as_str().is_some_and(|i| i.starts_with("apache/kafka")) {
            continue;
        }
        assert!(svc["healthcheck"].is_mapping() || svc["profiles"].is_sequence(), "{name} has no health check");
        let command: Vec<String> =
            svc["command"].as_sequence().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        // The subcommand exists and accepts these flags (with --help appended, clap parses them all).
        let mut args = command.clone();
        args.push("--help".into());
        let out = std::process::Command::new(common::BIN).args(&args).output().unwrap();
        assert!(out.status.success(), "{name}: acd-bridge {command:?}: {}", String::from_utf8_lossy(&out.stderr));
        if let Some(i) = command.iter().position(|a| a == "--config") {
            let in_container = Path::new(&command[i + 1]);
            let host = svc["volumes"]
                .as_sequence()
                .unwrap()
                .iter()
                .filter_map(|v| v.as_str())
                .find_map(|v| {
                    let mut parts = v.split(':');
                    let (h, c) = (parts.next()?, parts.next()?);
                    in_container.strip_prefix(c).ok().map(|rest| root.join(h).join(rest))
                })
                .unwrap_or_else(|| panic!("{name}: {in_container:?} is not mounted"));
            // Secret files are read at their container paths; point them at the mounted copies.
            let text = std::fs::read_to_string(&host)
                .unwrap()
                .replace("/etc/acd-bridge/", &format!("{}/deploy/", root.display()));
            let tmp = std::env::temp_dir().join(common::unique("compose-cfg"));
            std::fs::write(&tmp, text).unwrap();
            let cfg = acd_core::Config::load_with_env(Some(&tmp), std::iter::empty());
            let _ = std::fs::remove_file(&tmp);
            let cfg = cfg.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(cfg.kafka.brokers, "kafka:9092");
            assert!(!cfg.wfm.access_key_secret.expose().is_empty());
        }
        checked.push(name.to_string());
    }
    checked.sort();
    assert_eq!(checked, ["consume", "demo", "produce", "wfm-sim"]);
}
