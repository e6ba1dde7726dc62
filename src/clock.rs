//! The time the ingest side sees, passed in rather than read: a [`Clock`] (wall clock and
//! monotonic time) and a [`Spawner`] that runs a task after a delay. The server runs on
//! [`Time::real`] (the system clocks and tokio); tests use [`FakeClock`], whose time moves
//! only when told, so linger, expiry and alignment are tested without sleeping.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Reads the time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Wall-clock time now.
    fn now(&self) -> SystemTime;
    /// Monotonic time now.
    fn instant(&self) -> Instant;
}

/// A task to run later.
pub type Task = Box<dyn FnOnce() + Send + 'static>;

/// Runs tasks later.
pub trait Spawner: Send + Sync + fmt::Debug {
    /// Runs `task` once `delay` has passed, in the background.
    fn after(&self, delay: Duration, task: Task);
}

/// A clock and a spawner, as the hub and its publishers use them.
#[derive(Clone, Debug)]
pub struct Time {
    clock: Arc<dyn Clock>,
    spawner: Arc<dyn Spawner>,
}

impl Time {
    /// The system clocks, and tokio's timer on the current runtime.
    pub fn real() -> Self {
        Time::new(Arc::new(SystemClock), Arc::new(TokioSpawner))
    }

    /// Any clock and spawner.
    pub fn new(clock: Arc<dyn Clock>, spawner: Arc<dyn Spawner>) -> Self {
        Time { clock, spawner }
    }

    /// A fake clock that is also the spawner: time moves, and tasks run, only on
    /// [`FakeClock::advance`].
    pub fn fake() -> (Self, Arc<FakeClock>) {
        let fake = Arc::new(FakeClock::new());
        (Time::new(fake.clone(), fake.clone()), fake)
    }

    /// Wall-clock time now.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Monotonic time now.
    pub fn instant(&self) -> Instant {
        self.clock.instant()
    }

    /// Runs `task` once `delay` has passed.
    pub fn after(&self, delay: Duration, task: impl FnOnce() + Send + 'static) {
        self.spawner.after(delay, Box::new(task));
    }

    /// Milliseconds since the Unix epoch divided by `per_ms`: a number that grows with
    /// time, for object names that must never repeat across publishes (CDNs cache them as
    /// immutable).
    pub fn epoch_number(&self, per_ms: u64) -> u64 {
        crate::wallclock::epoch_number(self.now(), per_ms)
    }
}

/// `SystemTime::now` and `Instant::now`.
#[derive(Debug)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn instant(&self) -> Instant {
        Instant::now()
    }
}

/// Spawns on the current tokio runtime; outside one (a benchmark, a plain unit test) the
/// task is dropped, as nothing would ever run it.
#[derive(Debug)]
pub struct TokioSpawner;

impl Spawner for TokioSpawner {
    fn after(&self, delay: Duration, task: Task) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            tokio::time::sleep(delay).await;
            task();
        });
    }
}

/// A clock that stands still until [`FakeClock::advance`] moves it, running the tasks
/// that fall due on the way, in order, each at its own time.
pub struct FakeClock {
    wall: SystemTime,
    mono: Instant,
    state: Mutex<FakeState>,
}

#[derive(Default)]
struct FakeState {
    elapsed: Duration,
    /// (due, order of scheduling, task).
    timers: Vec<(Duration, u64, Task)>,
    scheduled: u64,
}

impl fmt::Debug for FakeClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeClock")
            .field("elapsed", &self.lock().elapsed)
            .finish_non_exhaustive()
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeClock {
    /// A clock at 2027-01-01T00:00:00Z (any fixed time: tests are repeatable).
    pub fn new() -> Self {
        FakeClock {
            wall: UNIX_EPOCH + Duration::from_secs(1_798_761_600),
            mono: Instant::now(),
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves time on by `by`, running each task that falls due, at its due time. Tasks
    /// run with no lock held, so they may schedule more (which run too, if due).
    pub fn advance(&self, by: Duration) {
        let target = self.lock().elapsed + by;
        loop {
            let task = {
                let mut state = self.lock();
                let next = (state.timers.iter().enumerate())
                    .filter(|(_, (due, _, _))| *due <= target)
                    .min_by_key(|(_, (due, order, _))| (*due, *order))
                    .map(|(i, _)| i);
                let Some(i) = next else {
                    state.elapsed = target;
                    return;
                };
                let (due, _, task) = state.timers.swap_remove(i);
                state.elapsed = state.elapsed.max(due);
                task
            };
            task();
        }
    }

    /// Tasks waiting for their time.
    pub fn pending(&self) -> usize {
        self.lock().timers.len()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> SystemTime {
        self.wall + self.lock().elapsed
    }

    fn instant(&self) -> Instant {
        self.mono + self.lock().elapsed
    }
}

impl Spawner for FakeClock {
    fn after(&self, delay: Duration, task: Task) {
        let mut state = self.lock();
        let due = state.elapsed + delay;
        let order = state.scheduled;
        state.scheduled += 1;
        state.timers.push((due, order, task));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn fake_time_runs_due_tasks_in_order_at_their_time() {
        let (time, fake) = Time::fake();
        let t0 = time.now();
        let log = Arc::new(Mutex::new(Vec::new()));
        for (ms, name) in [(300, "c"), (100, "a"), (200, "b")] {
            let (log, clock) = (log.clone(), time.clone());
            time.after(Duration::from_millis(ms), move || {
                let at = clock.now().duration_since(t0).unwrap();
                log.lock().unwrap().push((name, at.as_millis()));
            });
        }
        fake.advance(Duration::from_millis(150));
        assert_eq!(*log.lock().unwrap(), [("a", 100)]);
        assert_eq!(time.now().duration_since(t0).unwrap().as_millis(), 150);
        fake.advance(Duration::from_secs(1));
        assert_eq!(*log.lock().unwrap(), [("a", 100), ("b", 200), ("c", 300)]);
        assert_eq!(fake.pending(), 0);
    }

    #[test]
    fn a_task_may_schedule_another_that_runs_if_due() {
        let (time, fake) = Time::fake();
        let runs = Arc::new(AtomicU32::new(0));
        let (t, r) = (time.clone(), runs.clone());
        time.after(Duration::from_millis(10), move || {
            r.fetch_add(1, Ordering::SeqCst);
            let r = r.clone();
            t.after(Duration::from_millis(10), move || {
                r.fetch_add(1, Ordering::SeqCst);
            });
        });
        fake.advance(Duration::from_millis(15));
        assert_eq!((runs.load(Ordering::SeqCst), fake.pending()), (1, 1));
        fake.advance(Duration::from_millis(5));
        assert_eq!((runs.load(Ordering::SeqCst), fake.pending()), (2, 0));
    }
}
