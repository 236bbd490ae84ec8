//! `vigil check rules FILE...`: validates rule files as `promtool check
//! rules` does, with the same output shape and exit status.

use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum CheckCommand {
    /// Check Prometheus rule files (as `promtool check rules`)
    Rules {
        /// Rule files to check
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Prints a verdict per file; the exit status is 1 when any failed.
pub fn run(cmd: &CheckCommand) -> i32 {
    let CheckCommand::Rules { files } = cmd;
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
