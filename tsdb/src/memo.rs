//! A bounded map from text to what was computed from it (compiled
//! regexes, parsed queries): dashboards and rules send the same text over
//! and over, and computing it again costs as much as a small query.

use std::collections::HashMap;
use std::sync::Mutex;

pub struct Memo<V> {
    map: Mutex<HashMap<String, V>>,
    capacity: usize,
}

impl<V: Clone> Memo<V> {
    /// Holds at most `capacity` entries; when full it starts over (cheap,
    /// and a working set larger than this costs what it did uncached).
    pub fn new(capacity: usize) -> Self {
        Memo {
            map: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The value for `key`, computed by `make` if absent. Errors are
    /// returned and not kept; `make` runs outside the lock, so a slow one
    /// does not stall other keys.
    pub fn get_or_try_insert<E>(
        &self,
        key: &str,
        make: impl FnOnce(&str) -> Result<V, E>,
    ) -> Result<V, E> {
        let lock = || self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = lock().get(key) {
            return Ok(v.clone());
        }
        let v = make(key)?;
        let mut map = lock();
        if map.len() >= self.capacity {
            map.clear();
        }
        map.insert(key.to_string(), v.clone());
        Ok(v)
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn computes_once_keeps_no_errors_and_stays_bounded() {
        let m: Memo<usize> = Memo::new(4);
        let calls = Cell::new(0);
        let len = |k: &str| {
            calls.set(calls.get() + 1);
            if k.is_empty() {
                Err("empty")
            } else {
                Ok(k.len())
            }
        };
        assert_eq!(m.get_or_try_insert("abc", len), Ok(3));
        assert_eq!(m.get_or_try_insert("abc", len), Ok(3));
        assert_eq!(calls.get(), 1);
        assert!(m.get_or_try_insert("", len).is_err());
        assert!(m.get_or_try_insert("", len).is_err());
        assert_eq!(calls.get(), 3);
        for k in ["a", "bb", "ccc", "dddd", "eeeee", "ffffff"] {
            assert_eq!(m.get_or_try_insert(k, len), Ok(k.len()));
        }
        assert!(m.len() <= 4);
    }
}
