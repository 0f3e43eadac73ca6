//! The scans running in this process: a broadcast channel per scan for its
//! watchers, and the token that cancels it. And, for scans running in
//! another process, the wake-ups that tell their watchers here to read the
//! database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::status::Batch;

#[derive(Debug, Clone)]
struct Live {
    sender: broadcast::Sender<Arc<Batch>>,
    cancel: CancellationToken,
}

/// Shared by the routes and the scan tasks.
#[derive(Debug)]
pub struct Registry {
    live: Mutex<HashMap<String, Live>>,
    /// Per scan running elsewhere and watched here: the newest event id
    /// another instance announced.
    elsewhere: Mutex<HashMap<String, watch::Sender<i64>>>,
    /// How many events a watcher may fall behind before it is refilled from
    /// the database.
    capacity: usize,
}

impl Registry {
    pub fn new(capacity: usize) -> Self {
        Self {
            live: Mutex::new(HashMap::new()),
            elsewhere: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        // Every critical section is a single map operation: a poisoned map is intact.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `scan_id` live; its task publishes on the sender and stops when
    /// the token is cancelled.
    pub fn register(
        &self,
        scan_id: &str,
        cancel: CancellationToken,
    ) -> broadcast::Sender<Arc<Batch>> {
        let (sender, _) = broadcast::channel(self.capacity);
        self.lock().insert(
            scan_id.to_owned(),
            Live {
                sender: sender.clone(),
                cancel,
            },
        );
        sender
    }

    /// The scans running here.
    pub fn live(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// A receiver of the scan's events, if it runs here.
    pub fn subscribe(&self, scan_id: &str) -> Option<broadcast::Receiver<Arc<Batch>>> {
        self.lock().get(scan_id).map(|l| l.sender.subscribe())
    }

    /// Cancels the scan if it runs here.
    pub fn cancel(&self, scan_id: &str) -> bool {
        match self.lock().get(scan_id) {
            Some(live) => {
                live.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Forgets a finished run of a scan, the one publishing on `sender`; its
    /// watchers see the channel close. A run registered since (the scan was
    /// resumed while this one was ending) stays.
    pub fn remove(&self, scan_id: &str, sender: &broadcast::Sender<Arc<Batch>>) {
        let mut live = self.lock();
        if live
            .get(scan_id)
            .is_some_and(|l| l.sender.same_channel(sender))
        {
            live.remove(scan_id);
        }
    }

    /// Wake-ups for a scan running elsewhere: the receiver changes when
    /// another instance announces a newer event of the scan.
    pub fn watch_elsewhere(&self, scan_id: &str) -> watch::Receiver<i64> {
        let mut elsewhere = self.elsewhere.lock().unwrap_or_else(|e| e.into_inner());
        // Scans nobody here watches any more are forgotten.
        elsewhere.retain(|_, sender| sender.receiver_count() > 0);
        elsewhere
            .entry(scan_id.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Another instance announced event `id` of `scan_id`.
    pub fn wake(&self, scan_id: &str, id: i64) {
        let elsewhere = self.elsewhere.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = elsewhere.get(scan_id) {
            sender.send_if_modified(|newest| {
                let newer = id > *newest;
                *newest = (*newest).max(id);
                newer
            });
        }
    }

    /// How many watchers each live scan has.
    pub fn watchers(&self) -> Vec<(String, usize)> {
        self.lock()
            .iter()
            .map(|(id, live)| (id.clone(), live.sender.receiver_count()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_that_ends_forgets_only_itself() {
        let registry = Registry::new(8);
        let (first_cancel, second_cancel) = (CancellationToken::new(), CancellationToken::new());
        let first = registry.register("s1", first_cancel.clone());
        // Resumed before the first run had gone: the new run takes the name.
        let second = registry.register("s1", second_cancel.clone());
        registry.remove("s1", &first);
        assert_eq!(registry.live(), vec!["s1".to_owned()]);
        let _watcher = registry.subscribe("s1").expect("the resumed run is live");
        assert_eq!((first.receiver_count(), second.receiver_count()), (0, 1));
        assert!(registry.cancel("s1"));
        assert!(second_cancel.is_cancelled() && !first_cancel.is_cancelled());

        registry.remove("s1", &second);
        assert!(registry.live().is_empty());
        assert!(registry.subscribe("s1").is_none());
    }
}
