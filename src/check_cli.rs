//! `vigil check rules FILE...`: validates rule files as `promtool check
//! rules` does, with the same output shape and exit status.
//! `vigil check k8s-metrics FILE...`: validates prometheus-adapter
//! configurations (the custom and external metrics rules) the same way.

use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum CheckCommand {
    /// Check Prometheus rule files (as `promtool check rules`)
    Rules {
        /// Rule files to check
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check prometheus-adapter configurations (rules, externalRules,
    /// resourceRules) as k8s_metrics_api.adapter_config_file loads them
    K8sMetrics {
        /// Adapter configuration files to check
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Prints a verdict per file; the exit status is 1 when any failed.
pub fn run(cmd: &CheckCommand) -> i32 {
    let files = match cmd {
        CheckCommand::Rules { files } => files,
        CheckCommand::K8sMetrics { files } => return check_adapter_configs(files),
    };
    let mut failed = false;
    for f in files {
        println!("Checking {}", f.display());
        match alerting::rule_file::load(f) {
            Ok(groups) => {
                let n: usize = groups.iter().map(|g| g.rules.len()).sum();
                println!("  SUCCESS: {n} rules found");
                for dup in duplicates(&groups) {
                    println!("  WARNING: duplicate rule: {dup}");
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("  FAILED:");
                eprintln!("{e}");
            }
        }
        println!();
    }
    i32::from(failed)
}

fn check_adapter_configs(files: &[PathBuf]) -> i32 {
    let mut failed = false;
    for f in files {
        println!("Checking {}", f.display());
        match crate::k8s_metrics::adapter_config::AdapterConfig::load(f) {
            Ok(c) => println!(
                "  SUCCESS: {} rules, {} external rules, resource rules {}",
                c.rules.len(),
                c.external_rules.len(),
                if c.resource_rules.is_some() {
                    "present"
                } else {
                    "absent"
                }
            ),
            Err(e) => {
                failed = true;
                eprintln!("  FAILED:");
                eprintln!("{e}");
            }
        }
        println!();
    }
    i32::from(failed)
}

/// Recording rules with the same name and labels in one file (promtool lints these).
fn duplicates(groups: &[alerting::RuleGroup]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for g in groups {
        for r in &g.rules {
            if let alerting::RuleKind::Recording { record } = &r.kind {
                let labels: Vec<String> = r
                    .labels
                    .iter()
                    .map(|(k, t)| format!("{k}={}", t.source()))
                    .collect();
                let key = format!("{record}{{{}}}", labels.join(","));
                if !seen.insert(key.clone()) {
                    out.push(key);
                }
            }
        }
    }
    out
}
