//! A read that callers arriving while it runs share instead of repeating.

use std::future::Future;
use std::time::Instant;
use tokio::sync::Mutex;

/// The newest answer of one read and when it came. Every viewer of the overview re-reads it on
/// the same change event, and counting a million-row table takes tens of milliseconds: a caller
/// that arrives while a read runs waits for it and takes its answer; one that arrives after it
/// finished reads again, so no answer predates the read that was running when its caller came.
#[derive(Debug)]
pub struct JoinedRead<T> {
    newest: Mutex<Option<(Instant, T)>>,
}

impl<T> Default for JoinedRead<T> {
    fn default() -> Self {
        Self { newest: Mutex::new(None) }
    }
}

impl<T: Clone> JoinedRead<T> {
    /// The answer of `read`, or of the read already running when this call came.
    pub async fn read<F: Future<Output = T>>(&self, read: impl FnOnce() -> F) -> T {
        let arrived = Instant::now();
        let mut newest = self.newest.lock().await;
        if let Some((finished, answer)) = newest.as_ref() {
            if *finished > arrived {
                return answer.clone();
            }
        }
        let answer = read().await;
        *newest = Some((Instant::now(), answer.clone()));
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::JoinedRead;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::sync::Notify;

    #[tokio::test]
    async fn callers_during_a_read_share_it_and_later_callers_read_again() {
        let shared = Arc::new(JoinedRead::<u32>::default());
        let reads = Arc::new(AtomicU32::new(0));
        let release = Arc::new(Notify::new());
        let call = |shared: Arc<JoinedRead<u32>>, reads: Arc<AtomicU32>, release: Arc<Notify>| async move {
            shared
                .read(|| async move {
                    let n = reads.fetch_add(1, Ordering::SeqCst) + 1;
                    release.notified().await;
                    n * 10
                })
                .await
        };
        let first = tokio::spawn(call(shared.clone(), reads.clone(), release.clone()));
        while reads.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // two more arrive while the first read runs
        let others: Vec<_> =
            (0..2).map(|_| tokio::spawn(call(shared.clone(), reads.clone(), release.clone()))).collect();
        for _ in 0..10 {
            tokio::task::yield_now().await; // they reach the lock and wait
        }
        release.notify_one(); // one release: callers that read again themselves would wait forever
        let answer = |task| async { tokio::time::timeout(Duration::from_secs(10), task).await };
        assert_eq!(answer(first).await.expect("the first caller answered").expect("first caller"), 10);
        for other in others {
            let joined = answer(other).await.expect("a caller that arrived during the read shared it");
            assert_eq!(joined.expect("joined caller"), 10, "took the running read's answer");
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1, "one read for three callers");

        // after it finished, a caller reads again
        let later = tokio::spawn(call(shared.clone(), reads.clone(), release.clone()));
        while reads.load(Ordering::SeqCst) == 1 {
            tokio::task::yield_now().await;
        }
        release.notify_one();
        assert_eq!(later.await.expect("later caller"), 20);
    }

    #[tokio::test]
    async fn a_read_whose_caller_went_away_leaves_the_next_caller_free_to_read() {
        let shared = Arc::new(JoinedRead::<u32>::default());
        let started = Arc::new(Notify::new());
        let stuck = tokio::spawn({
            let (shared, started) = (shared.clone(), started.clone());
            async move {
                shared
                    .read(|| async move {
                        started.notify_one();
                        std::future::pending::<u32>().await
                    })
                    .await
            }
        });
        started.notified().await;
        stuck.abort(); // a request whose client hung up
        assert!(stuck.await.is_err_and(|e| e.is_cancelled()));
        assert_eq!(shared.read(|| async { 2 }).await, 2);
    }
}
