//! Appending a write: find or create its series, classify every sample
//! against what each series holds, log what is accepted to the WAL, then
//! apply it to the series' chunks, in that order.

use super::series::{MemSeries, SeriesData};
use super::{lock, AppendMode, AppendOutcome, Head, SeriesInput, SeriesSamples, AHEAD};
use crate::chunk_file::ChunkFiles;
use crate::error::{AppendError, RejectReason, TsdbError};
use crate::labels::{is_valid_label_name, is_valid_metric_name, LabelsRef, METRIC_NAME};
use crate::sample::{Sample, SeriesRef, Timestamp};
use crate::wal::{self, RefSample, WalWriter};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

/// Hashes a pointer key: spreads its aligned low bits over the word.
#[derive(Default)]
struct PointerHasher(u64);

impl std::hash::Hasher for PointerHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(26);
    }
}

/// Where a sample goes after classification.
pub(super) enum Placement {
    InOrder,
    OutOfOrder,
    Duplicate,
}

/// One series of a write and the head series it goes to.
struct Target<'w, 'a> {
    series: Arc<MemSeries>,
    r: SeriesRef,
    input: &'w SeriesInput<'a>,
}

/// The sample times a write may store, and the clock they were set by.
#[derive(Clone, Copy)]
struct AcceptedTimes {
    now_ms: Timestamp,
    min: Timestamp,
    max: Timestamp,
}

/// A classified write: the samples to log and apply, in order, with the
/// target each belongs to and where in its series it goes.
#[derive(Default)]
struct Classified {
    accepted: Vec<RefSample>,
    places: Vec<(usize, Placement)>,
    out_of_order: u64,
}

impl Classified {
    fn accept(&mut self, target: usize, series: SeriesRef, sample: Sample, place: Placement) {
        self.accepted.push(RefSample { series, sample });
        self.places.push((target, place));
    }
}

/// For each target of a write, the slot of its series, and for each slot
/// the first target naming it: a write may name one series twice, and each
/// series must be locked once.
fn lock_slots(targets: &[Target<'_, '_>]) -> (Vec<usize>, Vec<usize>) {
    let mut seen: HashMap<*const MemSeries, usize, std::hash::BuildHasherDefault<PointerHasher>> =
        HashMap::with_capacity_and_hasher(targets.len(), Default::default());
    let mut slot_of = Vec::with_capacity(targets.len());
    let mut slot_series = Vec::with_capacity(targets.len());
    for (ti, t) in targets.iter().enumerate() {
        let slot = *seen.entry(Arc::as_ptr(&t.series)).or_insert_with(|| {
            slot_series.push(ti);
            slot_series.len() - 1
        });
        slot_of.push(slot);
    }
    (slot_of, slot_series)
}

/// Locks each slot's series, in slot order, loading the series a few
/// places ahead into the cache.
fn lock_series<'t>(
    targets: &'t [Target<'_, '_>],
    slot_series: &[usize],
) -> Vec<MutexGuard<'t, SeriesData>> {
    slot_series
        .iter()
        .enumerate()
        .map(|(k, &ti)| {
            if let Some(&next) = slot_series.get(k + AHEAD) {
                targets[next].series.prefetch();
            }
            lock(&targets[ti].series.data)
        })
        .collect()
}

/// Puts the accepted samples into their series' chunks, in the order they
/// were logged.
fn apply(
    guards: &mut [MutexGuard<'_, SeriesData>],
    slot_of: &[usize],
    classified: &Classified,
    files: Option<&ChunkFiles>,
) {
    let places = &classified.places;
    for (k, (rs, (ti, place))) in classified.accepted.iter().zip(places).enumerate() {
        if let Some((next, _)) = places.get(k + AHEAD) {
            guards[slot_of[*next]].open.prefetch_tail();
        }
        let d = &mut guards[slot_of[*ti]];
        match place {
            Placement::InOrder => d.push_in_order(rs.sample, files),
            Placement::OutOfOrder => d.push_ooo(rs.sample),
            Placement::Duplicate => {}
        }
    }
}

impl Head {
    /// Validates a series' labels against the naming rules and limits.
    fn validate(&self, labels: LabelsRef<'_>) -> Result<(), (RejectReason, String)> {
        let lim = &self.opts.limits;
        let name = match labels.get(METRIC_NAME) {
            Some(n) => n,
            None => {
                return Err((
                    RejectReason::MissingMetricName,
                    "series has no metric name (__name__ label)".into(),
                ))
            }
        };
        if !is_valid_metric_name(name) {
            return Err((
                RejectReason::InvalidMetricName,
                format!("invalid metric name {name:?}"),
            ));
        }
        if let Some(d) = labels.duplicate_name() {
            return Err((
                RejectReason::DuplicateLabelName,
                format!("duplicate label name {d:?}"),
            ));
        }
        let n = labels.pairs().len();
        if lim.max_labels_per_series > 0 && n > lim.max_labels_per_series {
            return Err((
                RejectReason::TooManyLabels,
                format!(
                    "{n} labels exceed the limit of {}",
                    lim.max_labels_per_series
                ),
            ));
        }
        for (name, value) in labels.pairs() {
            if *name != METRIC_NAME && !is_valid_label_name(name) {
                return Err((
                    RejectReason::InvalidLabelName,
                    format!("invalid label name {name:?}"),
                ));
            }
            if lim.max_label_name_length > 0 && name.len() > lim.max_label_name_length {
                return Err((
                    RejectReason::LabelNameTooLong,
                    format!(
                        "label name {name:?} is {} bytes, over the limit of {}",
                        name.len(),
                        lim.max_label_name_length
                    ),
                ));
            }
            if lim.max_label_value_length > 0 && value.len() > lim.max_label_value_length {
                return Err((
                    RejectReason::LabelValueTooLong,
                    format!(
                        "value of label {name:?} is {} bytes, over the limit of {}",
                        value.len(),
                        lim.max_label_value_length
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Refuses a new series past the head's series limits. Checked under
    /// the index's read lock before the series is created, so writers
    /// running at once can overshoot by the series they create together.
    fn check_series_limits(&self, labels: LabelsRef<'_>) -> Result<(), (RejectReason, String)> {
        let lim = &self.opts.limits;
        if lim.max_global_series == 0 && lim.max_global_series_per_metric == 0 {
            return Ok(());
        }
        let index = self.read_index();
        if lim.max_global_series > 0 && index.series.len() >= lim.max_global_series {
            return Err((
                RejectReason::SeriesLimit,
                format!(
                    "the store holds {} series, its limit (limits.max_global_series)",
                    lim.max_global_series
                ),
            ));
        }
        if lim.max_global_series_per_metric > 0 {
            let name = labels.get(crate::labels::METRIC_NAME).unwrap_or("");
            if index.postings.count(crate::labels::METRIC_NAME, name)
                >= lim.max_global_series_per_metric
            {
                return Err((
                    RejectReason::SeriesPerMetricLimit,
                    format!(
                        "metric {name:?} has {} series, its limit (limits.max_global_series_per_metric)",
                        lim.max_global_series_per_metric
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Creates the series (or finds it, if another writer just did); a new
    /// series is logged before it can be found, so no sample record can
    /// ever precede its series record. Lock order everywhere: WAL, then
    /// index, then series data.
    fn create_locked(
        &self,
        wal: &mut WalWriter,
        labels: LabelsRef<'_>,
        h: u64,
    ) -> Result<(SeriesRef, Arc<MemSeries>), TsdbError> {
        let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = index.find_ref(h, labels) {
            return Ok(found);
        }
        let r = SeriesRef(index.next_ref);
        let owned = self.interner.intern(labels.to_label_set());
        let mut buf = Vec::new();
        wal::encode_series(&mut buf, std::iter::once((r, &owned)));
        wal.write(&buf, None)?;
        self.counters.series_created.fetch_add(1, Ordering::Relaxed);
        Ok((r, index.insert(r, h, owned)))
    }

    /// Appends owned series (import, tests); see [`Head::append_inputs`].
    pub fn append(
        &self,
        write: &[SeriesSamples],
        mode: AppendMode,
        now_ms: Timestamp,
    ) -> Result<AppendOutcome, TsdbError> {
        let pairs: Vec<Vec<(&str, &str)>> = write
            .iter()
            .map(|s| s.labels.iter().map(|l| (l.name, l.value)).collect())
            .collect();
        let inputs: Vec<SeriesInput> = pairs
            .iter()
            .zip(write)
            .map(|(p, s)| SeriesInput {
                labels: LabelsRef::from_sorted(p),
                samples: &s.samples,
            })
            .collect();
        self.append_inputs(&inputs, mode, now_ms)
    }

    /// Appends a write. Valid series and samples are stored even when others
    /// in the same write are refused; refusals are listed in the outcome.
    /// An `Err` means nothing of the samples was stored (WAL failure).
    pub fn append_inputs(
        &self,
        write: &[SeriesInput<'_>],
        mode: AppendMode,
        now_ms: Timestamp,
    ) -> Result<AppendOutcome, TsdbError> {
        self.append_inputs_then(write, mode, now_ms, |_| {})
    }

    /// [`Head::append_inputs`], calling `logged` as soon as the write is in
    /// the WAL, before its samples are encoded into chunks. A writer can
    /// acknowledge from `logged`: the series of the write stay locked until
    /// they are applied, so a reader that comes after the acknowledgement
    /// waits for them and sees every acknowledged sample. `logged` is not
    /// called when the write fails or is refused whole before logging. It
    /// must not wait for a reader: the write's series are locked while it
    /// runs.
    pub fn append_inputs_then(
        &self,
        write: &[SeriesInput<'_>],
        mode: AppendMode,
        now_ms: Timestamp,
        logged: impl FnOnce(&AppendOutcome),
    ) -> Result<AppendOutcome, TsdbError> {
        let mut outcome = AppendOutcome::default();
        if self.refuse_oversized(write, &mut outcome) {
            return Ok(outcome);
        }
        let mut targets = self.find_or_create_series(write, &mut outcome)?;
        let window = self.accepted_times(now_ms);
        // Which targets share a series (computed before taking the WAL lock).
        let (mut slot_of, mut slot_series) = lock_slots(&targets);
        let mut wal = lock(&self.wal);
        if self.recreate_removed(&mut wal, &mut targets)? {
            (slot_of, slot_series) = lock_slots(&targets);
        }
        // Lock every series of the write (each once: a write may name one
        // series twice) while the WAL lock is held, classify without
        // changing anything, log, release the WAL, then apply. Holding the
        // series from classification to apply keeps each series' memory in
        // WAL order; releasing the WAL before applying lets the next write
        // classify and log while this one encodes chunks. Series locks are
        // only ever acquired under the WAL lock or one at a time, so holding
        // many here cannot deadlock.
        let mut guards = lock_series(&targets, &slot_series);
        let classified =
            self.classify_write(&targets, &slot_of, &guards, mode, window, &mut outcome);
        self.log_accepted(&mut wal, &classified.accepted)?;
        drop(wal);
        self.count_appended(&mut outcome, &classified);
        logged(&outcome);
        apply(
            &mut guards,
            &slot_of,
            &classified,
            self.chunk_files.as_ref(),
        );
        drop(guards);
        Ok(outcome)
    }

    /// Refuses a write with more series than `limits.max_series_per_write`
    /// whole; true when it did.
    fn refuse_oversized(&self, write: &[SeriesInput<'_>], outcome: &mut AppendOutcome) -> bool {
        let lim = &self.opts.limits;
        if lim.max_series_per_write == 0 || write.len() <= lim.max_series_per_write {
            return false;
        }
        let n: usize = write.iter().map(|s| s.samples.len()).sum();
        self.counters.reject(RejectReason::TooManySeries, n);
        outcome.errors.push(AppendError {
            reason: RejectReason::TooManySeries,
            message: format!(
                "write has {} series, over the limit of {}",
                write.len(),
                lim.max_series_per_write
            ),
            samples: n,
        });
        true
    }

    /// The head's series for every series of the write that has samples:
    /// existing ones found under one read lock without allocating, new
    /// ones validated, checked against the series limits and created
    /// (refusals go to `outcome`).
    fn find_or_create_series<'w, 'a>(
        &self,
        write: &'w [SeriesInput<'a>],
        outcome: &mut AppendOutcome,
    ) -> Result<Vec<Target<'w, 'a>>, TsdbError> {
        let mut targets: Vec<Target> = Vec::with_capacity(write.len());
        let mut missing: Vec<(&SeriesInput, u64)> = Vec::new();
        {
            let live: Vec<(&SeriesInput, u64)> = write
                .iter()
                .filter(|s| !s.samples.is_empty())
                .map(|s| (s, s.labels.hash()))
                .collect();
            let index = self.read_index();
            // Each lookup is a chain of three cache misses (slot, series,
            // labels); start them for lookups a few places ahead, one link
            // per stage, so they overlap instead of following each other.
            let hash_at = |i: usize| live.get(i).map(|(_, h)| *h);
            for (i, &(input, h)) in live.iter().enumerate() {
                if let Some(h) = hash_at(i + 3 * AHEAD) {
                    index.by_hash.home(h);
                }
                if let Some(s) =
                    hash_at(i + 2 * AHEAD).and_then(|h| index.by_hash.first_with_hash(h))
                {
                    crate::prefetch::prefetch(Arc::as_ptr(s));
                }
                if let Some(s) = hash_at(i + AHEAD).and_then(|h| index.by_hash.first_with_hash(h)) {
                    s.labels.prefetch();
                }
                match index.find_ref(h, input.labels) {
                    Some((r, series)) => targets.push(Target { series, r, input }),
                    None => missing.push((input, h)),
                }
            }
        }
        for (input, h) in missing {
            if let Err((reason, msg)) = self
                .validate(input.labels)
                .and_then(|()| self.check_series_limits(input.labels))
            {
                self.reject(
                    outcome,
                    reason,
                    format!("{msg} in series {}", input.labels),
                    input.samples.len(),
                );
                continue;
            }
            let mut wal = lock(&self.wal);
            let (r, series) = self.create_locked(&mut wal, input.labels, h)?;
            targets.push(Target { series, r, input });
        }
        Ok(targets)
    }

    /// The sample times this write may store: within retention, and not
    /// beyond `limits.creation_grace_period` ahead of the server's clock.
    fn accepted_times(&self, now_ms: Timestamp) -> AcceptedTimes {
        AcceptedTimes {
            now_ms,
            min: if self.opts.retention_ms > 0 {
                now_ms.saturating_sub(self.opts.retention_ms)
            } else {
                Timestamp::MIN
            },
            max: if self.opts.max_future_ms > 0 {
                now_ms.saturating_add(self.opts.max_future_ms)
            } else {
                Timestamp::MAX
            },
        }
    }

    /// A cut may have dropped a series between lookup and now (under the
    /// WAL lock, held by the caller): such targets get their series again.
    /// True when any did.
    fn recreate_removed(
        &self,
        wal: &mut WalWriter,
        targets: &mut [Target<'_, '_>],
    ) -> Result<bool, TsdbError> {
        let mut recreated = false;
        for t in targets {
            if t.series.removed.load(Ordering::Acquire) {
                let (r, s) = self.create_locked(wal, t.input.labels, t.input.labels.hash())?;
                t.series = s;
                t.r = r;
                recreated = true;
            }
        }
        Ok(recreated)
    }

    /// Decides where every sample of the write goes, against what its
    /// series holds and what the write itself carries, changing nothing;
    /// refusals and duplicates go to `outcome`.
    fn classify_write(
        &self,
        targets: &[Target<'_, '_>],
        slot_of: &[usize],
        guards: &[MutexGuard<'_, SeriesData>],
        mode: AppendMode,
        window: AcceptedTimes,
        outcome: &mut AppendOutcome,
    ) -> Classified {
        let mut out = Classified::default();
        // Scratch order state per series, so several samples of one series
        // in one write — in one entry or in several naming the same series —
        // are classified against each other; a series named more than once
        // also remembers what this write accepted for it.
        let mut slot_last: Vec<Option<Sample>> = guards.iter().map(|d| d.last).collect();
        let mut targets_per_slot = vec![0u32; guards.len()];
        for &slot in slot_of {
            targets_per_slot[slot] += 1;
        }
        let mut pending: HashMap<usize, BTreeMap<Timestamp, u64>> = HashMap::new();
        for (ti, t) in targets.iter().enumerate() {
            let (r, input) = (t.r, t.input);
            let slot = slot_of[ti];
            let d = &guards[slot];
            let shared = targets_per_slot[slot] > 1;
            let mut last = slot_last[slot];
            let mut ooo_seen: BTreeSet<Timestamp> = BTreeSet::new();
            for sample in input.samples {
                if sample.t < window.min {
                    self.reject(
                        outcome,
                        RejectReason::TooOld,
                        format!(
                            "sample at {} is older than retention allows ({}) for series {}",
                            sample.t, window.min, input.labels
                        ),
                        1,
                    );
                    continue;
                }
                if sample.t > window.max {
                    self.reject(outcome, RejectReason::TooFarInFuture, format!("sample at {} is too far in the future: more than {} ms ahead of the server's clock ({}; limits.creation_grace_period), for series {}", sample.t, self.opts.max_future_ms, window.now_ms, input.labels), 1);
                    continue;
                }
                if shared {
                    let bits = sample.v.to_bits();
                    match pending.get(&slot).and_then(|m| m.get(&sample.t)) {
                        Some(b) if *b == bits => {
                            outcome.duplicates += 1;
                            continue;
                        }
                        Some(_) => {
                            self.reject(
                                outcome,
                                RejectReason::DuplicateTimestamp,
                                format!("sample at {} has a different value than another sample for the same time in this write, for series {}", sample.t, input.labels),
                                1,
                            );
                            continue;
                        }
                        None => {}
                    }
                }
                let view = ClassifyView { data: d, last };
                let placed = view.classify(*sample, mode, self.opts.out_of_order_window_ms);
                if shared && matches!(placed, Ok(Placement::InOrder | Placement::OutOfOrder)) {
                    pending
                        .entry(slot)
                        .or_default()
                        .insert(sample.t, sample.v.to_bits());
                }
                match placed {
                    Ok(Placement::InOrder) => {
                        last = Some(*sample);
                        out.accept(ti, r, *sample, Placement::InOrder);
                    }
                    Ok(Placement::OutOfOrder) => {
                        if ooo_seen.insert(sample.t) {
                            out.accept(ti, r, *sample, Placement::OutOfOrder);
                            out.out_of_order += 1;
                        } else {
                            outcome.duplicates += 1;
                        }
                    }
                    Ok(Placement::Duplicate) => outcome.duplicates += 1,
                    Err((reason, msg)) => self.reject(
                        outcome,
                        reason,
                        format!("{msg} for series {}", input.labels),
                        1,
                    ),
                }
            }
            slot_last[slot] = last;
        }
        out
    }

    /// Writes the accepted samples to the WAL (under its lock, held by the
    /// caller) and widens the head's time bounds before anything is
    /// acknowledged, so a reader never sees a head narrower than that.
    fn log_accepted(&self, wal: &mut WalWriter, accepted: &[RefSample]) -> Result<(), TsdbError> {
        if accepted.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(accepted.len() * 12 + 16);
        wal::encode_samples(&mut buf, accepted);
        let (min_t, max_t) = accepted
            .iter()
            .fold((Timestamp::MAX, Timestamp::MIN), |(lo, hi), a| {
                (lo.min(a.sample.t), hi.max(a.sample.t))
            });
        wal.write(&buf, Some(max_t))?;
        self.min_t.fetch_min(min_t, Ordering::Relaxed);
        self.max_t.fetch_max(max_t, Ordering::Relaxed);
        Ok(())
    }

    fn count_appended(&self, outcome: &mut AppendOutcome, classified: &Classified) {
        outcome.appended = classified.accepted.len();
        self.counters
            .samples_appended
            .fetch_add(classified.accepted.len() as u64, Ordering::Relaxed);
        self.counters
            .samples_out_of_order_appended
            .fetch_add(classified.out_of_order, Ordering::Relaxed);
        self.counters
            .duplicates_ignored
            .fetch_add(outcome.duplicates as u64, Ordering::Relaxed);
    }

    fn reject(
        &self,
        outcome: &mut AppendOutcome,
        reason: RejectReason,
        message: String,
        samples: usize,
    ) {
        self.counters.reject(reason, samples);
        outcome.errors.push(AppendError {
            reason,
            message,
            samples,
        });
    }
}

struct ClassifyView<'a> {
    data: &'a SeriesData,
    last: Option<Sample>,
}

impl ClassifyView<'_> {
    fn classify(
        &self,
        s: Sample,
        mode: AppendMode,
        ooo_window: i64,
    ) -> Result<Placement, (RejectReason, String)> {
        let Some(last) = self.last else {
            return Ok(Placement::InOrder);
        };
        if s.t > last.t {
            return Ok(Placement::InOrder);
        }
        if s.t == last.t {
            return if s.same_as(&last) {
                Ok(Placement::Duplicate)
            } else {
                Err((RejectReason::DuplicateTimestamp, format!("sample at {} has a different value than the one already stored at that time", s.t)))
            };
        }
        let existing = self
            .data
            .ooo
            .get(&s.t)
            .copied()
            .or_else(|| self.data.chunk_value_at(s.t));
        let in_window = ooo_window > 0 && s.t >= last.t.saturating_sub(ooo_window);
        if mode == AppendMode::Live && !in_window {
            // A retried write repeats what is stored: accept it as a no-op.
            if existing == Some(s.v.to_bits()) {
                return Ok(Placement::Duplicate);
            }
            return Err((
                RejectReason::OutOfOrder,
                format!(
                    "out-of-order sample at {}: newest stored is {}",
                    s.t, last.t
                ),
            ));
        }
        match existing {
            None => Ok(Placement::OutOfOrder),
            Some(bits) if bits == s.v.to_bits() => Ok(Placement::Duplicate),
            Some(_) => Err((
                RejectReason::DuplicateTimestamp,
                format!(
                    "sample at {} has a different value than the one already stored at that time",
                    s.t
                ),
            )),
        }
    }
}

pub(super) fn classify(
    d: &SeriesData,
    s: Sample,
    mode: AppendMode,
    ooo_window: i64,
) -> Result<Placement, (RejectReason, String)> {
    ClassifyView {
        data: d,
        last: d.last,
    }
    .classify(s, mode, ooo_window)
}
