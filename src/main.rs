//! `vigil`: the observability stack's single binary.
//!
//! This crate owns the command line, configuration, HTTP wiring and process
//! lifecycle. Storage, query and protocol logic live in the library crates;
//! nothing here may bypass the store's append path or its querier.

// Outside tests, nothing from outside may be unwrapped: errors are values.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod access_log;
mod agent_cmd;
mod alertmanagers;
mod api;
mod assets;
mod build_info;
mod check_cli;
mod config;
mod dashboard_store;
mod ingest;
mod k8s_metrics;
mod local_agent;
mod logs_cli;
mod metric_metadata;
mod own_log;
mod query_cli;
mod rules;
mod selector;
mod selfmetrics;
mod server;
mod test_rules_cli;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "vigil",
    version = build_info::VERSION,
    about = "Vigil: metrics storage, Prometheus-compatible APIs and a dashboard in one binary.",
    long_about = "Vigil: metrics storage, Prometheus-compatible APIs and a dashboard in one binary.\n\n\
        Without a command it runs all-in-one: the server on 127.0.0.1:9090 with data in ./data.\n\
        Flags given on the command line override the config file."
)]
struct Cli {
    /// Address to listen on, HOST:PORT [default: 127.0.0.1:9090 all-in-one, 0.0.0.0:9090 for `server`]
    #[arg(long, global = true, value_name = "HOST:PORT")]
    listen_addr: Option<String>,

    /// Directory for the WAL and blocks [default: ./data]
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// YAML config file (see docs/CONFIG.md)
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Log filter, e.g. info, debug, vigil=debug,tsdb=trace
    #[arg(long, global = true, default_value = "info", value_name = "FILTER")]
    log_level: String,

    /// Log line format: text (colour only on a terminal) or json (one
    /// object per line, for kubectl logs and log shippers)
    #[arg(long, global = true, default_value = "text", value_name = "FORMAT")]
    log_format: LogFormat,

    /// All-in-one: do not run the built-in agent that collects this host's
    /// node metrics and Vigil's own /metrics
    #[arg(long, global = true)]
    no_local_agent: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (storage, query APIs, dashboard) from a YAML config
    Server,
    /// Run the collector agent: scrape the targets of --config (prometheus.yml's
    /// scrape_configs) and ship them by remote_write
    Agent,
    /// Run a PromQL query against a running Vigil (at --listen-addr) and print the result
    Query(query_cli::QueryArgs),
    /// Run a LogQL query against a running Vigil (at --listen-addr) and print
    /// the lines (or a metric query's table), like logcli
    Logs(logs_cli::LogsArgs),
    /// Check configuration files (as promtool check)
    #[command(subcommand)]
    Check(check_cli::CheckCommand),
    /// Run unit tests (as promtool test)
    #[command(subcommand)]
    Test(TestCommand),
}

#[derive(Subcommand, Debug)]
enum TestCommand {
    /// Run rule unit tests in promtool's format (as `promtool test rules`)
    Rules {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Stack of the threads that parse and evaluate queries.
const QUERY_STACK_BYTES: usize = 32 << 20;

/// glibc gives each thread that contends for the heap its own arena (up to
/// 8 per core); with many short-lived request buffers that fragments memory
/// and inflates RSS. Two arenas measured better on the ingest benchmark.
///
/// glibc also raises its mmap threshold (up to 32 MiB) each time a mapped
/// block is freed, after which large buffers come from the heap and their
/// memory stays with the process once freed. Queries over blocks allocate
/// and free a decoded row group (~1 MiB) after another: with the
/// threshold left to move, the resident memory a query over 100 000
/// series left behind grew by ~100 MiB. A fixed threshold gives such
/// buffers back to the system when they are freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    // SAFETY: mallopt only adjusts allocator tuning; it is called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    // The checking and testing tools print verdicts; the store's progress
    // logs would only get in the way.
    if matches!(cli.command, Some(Command::Check(_) | Command::Test(_))) && cli.log_level == "info"
    {
        cli.log_level = "warn".into();
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .with_context(|| format!("invalid --log-level {:?}", cli.log_level))?;
    // Colour only for a person at a terminal: `kubectl logs` and log
    // shippers would store the escapes.
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    // All-in-one also stores its own log in its log store (own_log.rs).
    let own_log: own_log::Sink = Default::default();
    let own = own_log::OwnLogLayer::new(own_log.clone());
    match cli.log_format {
        LogFormat::Text => tracing_subscriber::registry()
            .with(filter)
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .with(own)
            .init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(filter)
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr),
            )
            .with(own)
            .init(),
    }

    if let Some(Command::Query(args)) = &cli.command {
        let addr = cli.listen_addr.as_deref().unwrap_or("127.0.0.1:9090");
        return query_cli::run(addr, args);
    }
    if let Some(Command::Test(TestCommand::Rules { files })) = &cli.command {
        std::process::exit(test_rules_cli::run(files));
    }
    if let Some(Command::Check(cmd)) = &cli.command {
        std::process::exit(check_cli::run(cmd));
    }
    if let Some(Command::Logs(args)) = &cli.command {
        let addr = cli.listen_addr.as_deref().unwrap_or("127.0.0.1:9090");
        return logs_cli::run(addr, args);
    }
    if let Some(Command::Agent) = &cli.command {
        let path = cli
            .config
            .as_deref()
            .context("`vigil agent` needs --config FILE (scrape_configs and remote_write)")?;
        let data_dir = cli
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("data-agent"));
        // The agent's own /metrics and probes; node_exporter's port is taken
        // on most nodes, so a port of its own.
        let listen = cli.listen_addr.as_deref().unwrap_or("0.0.0.0:9091");
        return agent_cmd::run(path, &data_dir, listen);
    }
    let config = match &cli.config {
        Some(path) => config::ServerConfig::load(path)?,
        None => config::ServerConfig::default(),
    };
    let default_listen = match cli.command {
        Some(Command::Server) => "0.0.0.0:9090",
        _ => "127.0.0.1:9090",
    };
    let local_agent = (cli.command.is_none() && !cli.no_local_agent && config.local_agent.enabled)
        .then_some(config.local_agent.scrape_interval);
    let settings = server::ServerSettings {
        local_agent,
        own_log,
        listen_addr: cli
            .listen_addr
            .clone()
            .or_else(|| config.listen_addr.clone())
            .unwrap_or_else(|| default_listen.to_string()),
        data_dir: cli
            .data_dir
            .clone()
            .or_else(|| config.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("data")),
        config,
    };
    tune_malloc();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Writes and queries run on blocking threads; a bounded pool keeps
        // idle threads (and their allocator arenas) from piling up.
        .max_blocking_threads(32)
        // Queries recurse once per level of their syntax tree (bounded at
        // promql::nesting::MAX_DEPTH); the stack is reserved, not used,
        // until a deep query needs it.
        .thread_stack_size(QUERY_STACK_BYTES)
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(server::run(settings))
}
