//! Running rule groups: a thread per group evaluating at its aligned
//! slots, counting missed and slow evaluations; reloading files without
//! losing alert state; snapshots for `/api/v1/rules` and `/api/v1/alerts`.

use crate::clock::{lock, now_ms};
use crate::dispatch::Dispatcher;
use crate::group::{Backend, EvalOptions, GroupState};
use crate::notifier::Notifier;
use crate::rule_file::{self, Lang, RuleFileError, RuleGroup};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Counters for `/metrics` (Prometheus's `prometheus_rule_*` names).
#[derive(Debug, Default)]
pub struct RuleCounters {
    pub evaluations: AtomicU64,
    pub evaluation_failures: AtomicU64,
    pub missed_iterations: AtomicU64,
    pub reloads: AtomicU64,
    pub reload_failures: AtomicU64,
}

struct Running {
    state: Arc<Mutex<GroupState>>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: JoinHandle<()>,
}

pub struct RuleManager {
    backend: Arc<dyn Backend>,
    opts: EvalOptions,
    files: Mutex<Vec<RuleSource>>,
    groups: Mutex<Vec<Running>>,
    pub counters: Arc<RuleCounters>,
    stopped: AtomicBool,
    notifier: Option<Arc<Notifier>>,
    dispatcher: Option<Arc<Dispatcher>>,
}

/// A `rule_files` pattern and the language of its files' expressions.
#[derive(Debug, Clone)]
pub struct RuleSource {
    pub pattern: PathBuf,
    pub lang: Lang,
}

/// Expands the patterns of `rule_files` (a glob in the last element).
pub fn expand_files(patterns: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in patterns {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.contains(['*', '?', '[']) {
            out.push(p.clone());
            continue;
        }
        // `*.yml` has the empty path as its parent: the current directory.
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let re = glob_regex(name);
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("rule_files {}: {e}", p.display()))?
            .flatten()
            .filter(|e| e.file_name().to_str().is_some_and(|n| re.is_match(n)))
            .map(|e| e.path())
            .collect();
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

fn glob_regex(glob: &str) -> regex::Regex {
    let mut re = String::from("^");
    for c in glob.chars() {
        match c {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re)
        .unwrap_or_else(|_| regex::Regex::new("^$").unwrap_or_else(|_| unreachable!()))
}

/// Loads every file; the first error stops (nothing is applied).
pub fn load_all(files: &[(PathBuf, Lang)]) -> Result<Vec<RuleGroup>, RuleFileError> {
    let mut out = Vec::new();
    for (f, lang) in files {
        out.extend(rule_file::load_lang(f, *lang)?);
    }
    Ok(out)
}

fn expand_sources(sources: &[RuleSource]) -> Result<Vec<(PathBuf, Lang)>, String> {
    let mut out = Vec::new();
    for s in sources {
        for f in expand_files(std::slice::from_ref(&s.pattern))? {
            out.push((f, s.lang));
        }
    }
    Ok(out)
}

impl RuleManager {
    /// Firing and resolved alerts go to `notifier` (Alertmanagers) and
    /// `dispatcher` (the built-in notifier), where configured.
    pub fn new(
        backend: Arc<dyn Backend>,
        opts: EvalOptions,
        notifier: Option<Arc<Notifier>>,
        dispatcher: Option<Arc<Dispatcher>>,
    ) -> Self {
        RuleManager {
            notifier,
            dispatcher,
            backend,
            opts,
            files: Mutex::new(Vec::new()),
            groups: Mutex::new(Vec::new()),
            counters: Arc::new(RuleCounters::default()),
            stopped: AtomicBool::new(false),
        }
    }

    /// Loads `patterns` and (re)starts the groups; state of rules that stay
    /// is kept. On any error nothing changes.
    pub fn load(&self, patterns: &[RuleSource]) -> Result<usize, String> {
        let result = expand_sources(patterns).and_then(|files| {
            load_all(&files)
                .map_err(|e| e.to_string())
                .map(|g| (files, g))
        });
        let (files, groups) = match result {
            Ok(v) => v,
            Err(e) => {
                self.counters
                    .reload_failures
                    .fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        *lock(&self.files) = patterns.to_vec();
        let count = groups.iter().map(|g| g.rules.len()).sum();
        let mut running = lock(&self.groups);
        // Stop the old groups first, keeping their state.
        let mut old: HashMap<String, GroupState> = HashMap::new();
        for r in running.drain(..) {
            stop(&r.stop);
            let _ = r.thread.join();
            let state = Arc::try_unwrap(r.state)
                .map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner));
            if let Ok(s) = state {
                old.insert(s.key(), s);
            }
        }
        for g in groups {
            let mut state = GroupState::new(g, &self.opts);
            if let Some(o) = old.remove(&state.key()) {
                state.take_state_from(o);
            }
            running.push(self.start(state));
        }
        self.counters.reloads.fetch_add(1, Ordering::Relaxed);
        tracing::info!(files = files.len(), rules = count, "rule files loaded");
        Ok(count)
    }

    /// Loads the same patterns again (SIGHUP, `POST /-/reload`).
    pub fn reload(&self) -> Result<usize, String> {
        // The notifier's file is read first, so a broken one changes
        // nothing at all, rules included.
        let notifier_config = match self.dispatcher.as_ref().and_then(|d| d.config_path()) {
            Some(p) => Some(
                crate::dispatch::config::DispatchConfig::load(p)
                    .map_err(|e| format!("notifier_config_file: {e}"))?,
            ),
            None => None,
        };
        let patterns = lock(&self.files).clone();
        let n = self.load(&patterns)?;
        if let (Some(d), Some(c)) = (&self.dispatcher, notifier_config) {
            d.reload(c);
            tracing::info!("notifier configuration reloaded");
        }
        Ok(n)
    }

    fn start(&self, state: GroupState) -> Running {
        let state = Arc::new(Mutex::new(state));
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let ctx = GroupContext {
            backend: Arc::clone(&self.backend),
            opts: self.opts.clone(),
            counters: Arc::clone(&self.counters),
            notifier: self.notifier.clone(),
            dispatcher: self.dispatcher.clone(),
        };
        let (s, st) = (Arc::clone(&state), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("rule-group".into())
            // Rule expressions recurse per level, as queries do (the
            // server's query threads have the same stack).
            .stack_size(32 << 20)
            .spawn(move || run_group(&s, &st, &ctx))
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot start a rule group thread; it is not evaluated");
                std::thread::spawn(|| {})
            });
        Running {
            state,
            stop,
            thread,
        }
    }

    /// The built-in notifier, if configured.
    pub fn dispatcher(&self) -> Option<&Arc<Dispatcher>> {
        self.dispatcher.as_ref()
    }

    /// Where alerts are sent, if anywhere.
    pub fn notifier(&self) -> Option<&Arc<Notifier>> {
        self.notifier.as_ref()
    }

    /// Calls `f` with every group's state, in load order.
    pub fn with_groups<T>(&self, mut f: impl FnMut(&GroupState) -> T) -> Vec<T> {
        lock(&self.groups)
            .iter()
            .map(|r| f(&lock(&r.state)))
            .collect()
    }

    pub fn shutdown(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        for r in lock(&self.groups).drain(..) {
            stop(&r.stop);
            let _ = r.thread.join();
        }
        if let Some(n) = &self.notifier {
            n.stop();
        }
        if let Some(d) = &self.dispatcher {
            d.stop();
        }
    }
}

impl Drop for RuleManager {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn stop(s: &(Mutex<bool>, Condvar)) {
    *lock(&s.0) = true;
    s.1.notify_all();
}

/// What a group's thread shares with the manager.
struct GroupContext {
    backend: Arc<dyn Backend>,
    opts: EvalOptions,
    counters: Arc<RuleCounters>,
    notifier: Option<Arc<Notifier>>,
    dispatcher: Option<Arc<Dispatcher>>,
}

fn run_group(state: &Mutex<GroupState>, stop: &(Mutex<bool>, Condvar), ctx: &GroupContext) {
    let (backend, opts, counters) = (&*ctx.backend, &ctx.opts, &*ctx.counters);
    let interval = lock(state).interval;
    let iv = interval.as_millis().max(1) as i64;
    // The first slot after now (a restart does not evaluate twice in one slot).
    let mut next = lock(state).slot_at_or_before(now_ms()) + iv;
    loop {
        let wait = next - now_ms();
        {
            let mut stopped = lock(&stop.0);
            if wait > 0 && !*stopped {
                stopped = stop
                    .1
                    .wait_timeout(stopped, Duration::from_millis(wait as u64))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            if *stopped {
                return;
            }
        }
        let now = now_ms();
        if now < next {
            continue;
        }
        // Slots that passed while the previous evaluation ran are skipped
        // and counted, as Prometheus counts missed iterations.
        let behind = (now - next) / iv;
        if behind > 0 {
            counters
                .missed_iterations
                .fetch_add(behind as u64, Ordering::Relaxed);
            let name = lock(state).group.name.clone();
            tracing::warn!(group = %name, missed = behind, "rule group evaluation is slower than its interval; slots skipped");
            next += behind * iv;
        }
        let mut g = lock(state);
        g.missed += behind as u64;
        g.evaluate(backend, opts, next, now);
        if ctx.notifier.is_some() || ctx.dispatcher.is_some() {
            let out = g.alerts_to_send(opts, next);
            if let Some(d) = &ctx.dispatcher {
                d.send(out.clone());
            }
            if let Some(n) = &ctx.notifier {
                n.send(out);
            }
        }
        counters
            .evaluations
            .fetch_add(g.rules.len() as u64, Ordering::Relaxed);
        let failed = g
            .rules
            .iter()
            .filter(|r| r.health == crate::group::Health::Err)
            .count();
        counters
            .evaluation_failures
            .fetch_add(failed as u64, Ordering::Relaxed);
        drop(g);
        next += iv;
    }
}
