//! The driver's side: a pool [`Backend`] whose workers are Redis stream entries.
//!
//! Each pool slot ("worker" to the pool's core) sends its batch as one signed entry of the
//! pool's task stream and waits for the batch's results in order. One reader thread per pool
//! reads the results stream, verifies each batch, and routes each result to the slot waiting
//! for it; a task id is routed once, so a result that arrives twice (a task run again after
//! its host died) is dropped. The reader also renews the pool's keys, fails the tasks no
//! worker of this build is alive to take ([`PoolError::NoCompatibleWorker`]) and the tasks
//! whose entry left the stream without a result (refused by the workers), and fails
//! everything with [`PoolError::Cluster`] when Redis stays unreachable or lost the pool.

use processing_core::ErrorChain;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use processing_pool::backend::{
    entry_to_offset, Backend, Exit, LinkError, Reply, Status, TaskRef, WorkerControl, WorkerInit,
    WorkerLink,
};
use processing_pool::PoolError;

use crate::wire::{self, ClusterKey, ResultBatch, TaskBatch, WireTask, GROUP, KEY_TTL_S};

/// What a slot receives.
enum Msg {
    Done {
        id: u64,
        status: u8,
        payload: Vec<u8>,
    },
    Killed,
}

/// The settings a driver runs with.
#[derive(Debug, Clone)]
pub(crate) struct DriverConfig {
    pub(crate) visibility: Duration,
    pub(crate) max_deliveries: u32,
    pub(crate) worker_wait: Duration,
    pub(crate) connect_timeout: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Outstanding {
    ids: Vec<u64>,
}

pub(crate) struct Inner {
    client: redis::Client,
    key: ClusterKey,
    build: u64,
    pool: String,
    config: DriverConfig,
    /// Task id → the slot waiting for its result (removed when delivered: exactly once).
    routes: Mutex<HashMap<u64, Sender<Msg>>>,
    /// Stream entry id → its task ids, while some of them have no result.
    entries: Mutex<HashMap<String, Outstanding>>,
    /// Why the pool can no longer run tasks.
    broken: Mutex<Option<PoolError>>,
    stop: AtomicBool,
    live_links: AtomicUsize,
    /// A link was killed (`terminate`): the pool ends when its last link goes.
    killed: AtomicBool,
    cleaned: AtomicBool,
}

impl Inner {
    /// Hands each result of `batch` to the link waiting for it (a result nobody waits for any
    /// more is dropped).
    fn deliver(&self, batch: ResultBatch) {
        for r in batch.results {
            let tx = lock(&self.routes).remove(&r.id);
            if let Some(tx) = tx {
                let _ = tx.send(Msg::Done {
                    id: r.id,
                    status: r.status,
                    payload: r.payload,
                });
            }
        }
    }

    fn fail(&self, id: u64, error: &PoolError) {
        let tx = lock(&self.routes).remove(&id);
        if let Some(tx) = tx {
            let payload = processing_core::codec::encode(error).unwrap_or_default();
            let _ = tx.send(Msg::Done {
                id,
                status: Status::Error as u8,
                payload,
            });
        }
    }

    fn fail_all(&self, error: &PoolError) {
        let ids: Vec<u64> = lock(&self.routes).keys().copied().collect();
        for id in ids {
            self.fail(id, error);
        }
        lock(&self.entries).clear();
    }

    fn set_broken(&self, error: PoolError) {
        lock(&self.broken).get_or_insert(error.clone());
        self.fail_all(&error);
    }

    fn keys(&self) -> [String; 4] {
        [
            wire::meta_key(&self.pool),
            wire::tasks_key(&self.pool),
            wire::results_key(&self.pool),
            wire::done_key(&self.pool),
        ]
    }

    /// Deletes the pool's keys (once).
    fn cleanup(&self) {
        if self.cleaned.swap(true, Ordering::SeqCst) {
            return;
        }
        self.stop.store(true, Ordering::SeqCst);
        let Ok(mut con) = wire::connect(&self.client, Duration::from_secs(2)) else {
            // Unreachable: the keys expire on their own within KEY_TTL_S.
            return;
        };
        let mut p = redis::pipe();
        p.cmd("DEL").arg(&self.keys()).ignore();
        p.cmd("SREM")
            .arg(wire::pools_key(self.build))
            .arg(&self.pool)
            .ignore();
        let _: redis::RedisResult<()> = p.query(&mut con);
    }
}

/// The backend of one cluster pool.
pub(crate) struct ClusterBackend {
    inner: Arc<Inner>,
    reader: Mutex<Option<JoinHandle<()>>>,
}

/// `Debug` for the driver's types that show their pool's name (through `inner`).
macro_rules! debug_by_pool {
    ($t:ident) => {
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t))
                    .field("pool", &self.inner.pool)
                    .finish_non_exhaustive()
            }
        }
    };
}

debug_by_pool!(ClusterBackend);

impl ClusterBackend {
    /// Creates the pool's keys and starts its reader.
    pub(crate) fn create(
        url: &str,
        key: ClusterKey,
        config: DriverConfig,
    ) -> Result<ClusterBackend, crate::ClusterError> {
        let client = wire::client(url)?;
        let mut con = wire::connect(&client, config.connect_timeout).map_err(|source| {
            crate::ClusterError::Redis {
                url: wire::redact(url),
                source,
            }
        })?;
        let build = processing_process::build_identity();
        let pool = wire::random_id();
        let inner = Arc::new(Inner {
            client,
            key,
            build,
            pool,
            config,
            routes: Mutex::new(HashMap::new()),
            entries: Mutex::new(HashMap::new()),
            broken: Mutex::new(None),
            stop: AtomicBool::new(false),
            live_links: AtomicUsize::new(0),
            killed: AtomicBool::new(false),
            cleaned: AtomicBool::new(false),
        });
        let [meta, tasks, _, _] = inner.keys();
        let mut p = redis::pipe();
        p.atomic();
        p.cmd("HSET")
            .arg(&meta)
            .arg("build")
            .arg(format!("{build:016x}"))
            .arg("visibility_ms")
            .arg(inner.config.visibility.as_millis() as u64)
            .arg("max_deliveries")
            .arg(inner.config.max_deliveries)
            .ignore();
        p.cmd("EXPIRE").arg(&meta).arg(KEY_TTL_S).ignore();
        p.cmd("XGROUP")
            .arg("CREATE")
            .arg(&tasks)
            .arg(GROUP)
            .arg("$")
            .arg("MKSTREAM")
            .ignore();
        p.cmd("EXPIRE").arg(&tasks).arg(KEY_TTL_S).ignore();
        p.cmd("SADD")
            .arg(wire::pools_key(build))
            .arg(&inner.pool)
            .ignore();
        p.cmd("EXPIRE")
            .arg(wire::pools_key(build))
            .arg(KEY_TTL_S)
            .ignore();
        p.query::<()>(&mut con)
            .map_err(|source| crate::ClusterError::Redis {
                url: wire::redact(url),
                source,
            })?;
        let r = inner.clone();
        let reader = std::thread::Builder::new()
            .name("processing-cluster-reader".into())
            .spawn(move || read_results(r, con))
            .map_err(crate::ClusterError::Thread)?;
        Ok(ClusterBackend {
            inner,
            reader: Mutex::new(Some(reader)),
        })
    }
}

impl Drop for ClusterBackend {
    fn drop(&mut self) {
        self.inner.cleanup();
        if let Some(h) = lock(&self.reader).take() {
            let _ = h.join();
        }
    }
}

impl Backend for ClusterBackend {
    fn start(&self, init: &WorkerInit) -> Result<Box<dyn WorkerLink>, PoolError> {
        if let Some(e) = lock(&self.inner.broken).clone() {
            return Err(e);
        }
        if self.inner.cleaned.load(Ordering::SeqCst) {
            return Err(PoolError::Terminated);
        }
        if init.initializer.is_some() {
            return Err(PoolError::Spawn(
                "a cluster pool has no initializer (worker hosts serve many pools)".into(),
            ));
        }
        let (tx, rx) = mpsc::channel();
        self.inner.live_links.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(ClusterLink {
            inner: self.inner.clone(),
            con: None,
            control: Arc::new(ClusterControl {
                tx: Mutex::new(tx.clone()),
                inner: self.inner.clone(),
            }),
            tx,
            rx,
            ready: false,
            order: VecDeque::new(),
            early: HashMap::new(),
            last: Vec::new(),
            timeout_ms: init.task_timeout.map(|t| t.as_millis() as u64),
            finalized: false,
        }))
    }

    fn is_threads(&self) -> bool {
        false
    }
}

struct ClusterControl {
    tx: Mutex<Sender<Msg>>,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ClusterControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterControl")
            .field("pool", &self.inner.pool)
            .finish_non_exhaustive()
    }
}

impl WorkerControl for ClusterControl {
    fn pid(&self) -> u32 {
        0
    }
    fn kill(&self) {
        // Only `terminate` kills a cluster link (task timeouts are the hosts' business).
        self.inner.killed.store(true, Ordering::SeqCst);
        let _ = lock(&self.tx).send(Msg::Killed);
    }
}

struct ClusterLink {
    inner: Arc<Inner>,
    con: Option<redis::Connection>,
    control: Arc<ClusterControl>,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    ready: bool,
    /// Task ids sent and not answered, in order.
    order: VecDeque<u64>,
    /// Results that came before the one expected.
    early: HashMap<u64, (u8, Vec<u8>)>,
    last: Vec<u8>,
    timeout_ms: Option<u64>,
    finalized: bool,
}

debug_by_pool!(ClusterLink);

impl ClusterLink {
    fn finalize(&mut self) {
        if self.finalized {
            return;
        }
        self.finalized = true;
        let mut routes = lock(&self.inner.routes);
        for id in self.order.drain(..) {
            routes.remove(&id);
        }
        drop(routes);
        // After `terminate`, the last link deletes the pool's keys at once (hosts drop its
        // pending tasks); a link retired by `close` or `max_tasks_per_child` leaves them to
        // the backend's drop (they hold no task by then and expire within KEY_TTL_S anyway).
        if self.inner.live_links.fetch_sub(1, Ordering::SeqCst) == 1
            && self.inner.killed.load(Ordering::SeqCst)
        {
            self.inner.cleanup();
        }
    }

    fn xadd(&mut self, data: &[u8], mac: &[u8]) -> Result<Option<String>, redis::RedisError> {
        let tasks = wire::tasks_key(&self.inner.pool);
        let until = Instant::now() + self.inner.config.connect_timeout;
        loop {
            if self.con.is_none() {
                let left = until.saturating_duration_since(Instant::now());
                self.con = Some(wire::connect(&self.inner.client, left)?);
            }
            let Some(con) = self.con.as_mut() else {
                continue;
            };
            let r: redis::RedisResult<redis::Value> = redis::cmd("XADD")
                .arg(&tasks)
                .arg("NOMKSTREAM")
                .arg("*")
                .arg("d")
                .arg(data)
                .arg("m")
                .arg(mac)
                .query(con);
            match r {
                Ok(v) => return Ok(wire::text(&v)),
                Err(e)
                    if (e.is_io_error() || e.is_connection_dropped()) && Instant::now() < until =>
                {
                    self.con = None;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl WorkerLink for ClusterLink {
    fn control(&self) -> Arc<dyn WorkerControl> {
        self.control.clone()
    }

    fn send(&mut self, tasks: &[TaskRef<'_>]) -> Result<(), LinkError> {
        if lock(&self.inner.broken).is_some() {
            return Err(LinkError::Lost);
        }
        let batch = TaskBatch {
            pool: self.inner.pool.clone(),
            build: self.inner.build,
            timeout_ms: self.timeout_ms,
            tasks: tasks
                .iter()
                .map(|t| WireTask {
                    id: t.id,
                    entry: entry_to_offset(t.entry),
                    input: t.input.to_vec(),
                })
                .collect(),
        };
        let data = processing_core::codec::encode(&batch).map_err(|_| LinkError::Lost)?;
        let mac = self.inner.key.sign(&data);
        let ids: Vec<u64> = tasks.iter().map(|t| t.id).collect();
        {
            let mut routes = lock(&self.inner.routes);
            for id in &ids {
                routes.insert(*id, self.tx.clone());
            }
        }
        self.order.extend(ids.iter().copied());
        match self.xadd(&data, &mac) {
            Ok(Some(entry)) => {
                // Results may already be routed; the entry check skips delivered ids.
                lock(&self.inner.entries).insert(entry, Outstanding { ids });
                Ok(())
            }
            Ok(None) => {
                self.inner.set_broken(PoolError::Cluster(
                    "the Redis server lost this pool's task stream (restarted without persistence?)"
                        .into(),
                ));
                Ok(())
            }
            Err(e) => {
                self.inner
                    .set_broken(PoolError::Cluster(ErrorChain::with_source(
                        "cannot send tasks to Redis",
                        &e,
                    )));
                Ok(())
            }
        }
    }

    fn recv(&mut self, _deadline: Option<Instant>) -> Result<Reply<'_>, LinkError> {
        // Task timeouts are enforced by the worker hosts, which report them as results.
        if !self.ready {
            self.ready = true;
            return Ok(Reply::Ready);
        }
        let Some(&want) = self.order.front() else {
            return Err(LinkError::Lost);
        };
        let (status, payload) = loop {
            if let Some(found) = self.early.remove(&want) {
                break found;
            }
            match self.rx.recv() {
                Ok(Msg::Done {
                    id,
                    status,
                    payload,
                }) => {
                    if id == want {
                        break (status, payload);
                    }
                    self.early.insert(id, (status, payload));
                }
                Ok(Msg::Killed) | Err(_) => return Err(LinkError::Lost),
            }
        };
        self.order.pop_front();
        self.last = payload;
        let status = Status::from_u8(status).ok_or(LinkError::Lost)?;
        Ok(Reply::Done {
            id: want,
            status,
            payload: &self.last,
        })
    }

    fn retire(mut self: Box<Self>) {
        self.finalize();
    }

    fn reap(mut self: Box<Self>) -> Exit {
        self.finalize();
        Exit::default()
    }
}

/// The reader thread of one pool.
fn read_results(inner: Arc<Inner>, mut con: redis::Connection) {
    let results = wire::results_key(&inner.pool);
    let [meta, tasks, _, done] = inner.keys();
    let mut last_id = "0-0".to_string();
    let mut to_delete: Vec<String> = Vec::new();
    let mut last_house = Instant::now();
    let mut no_worker_since: Option<Instant> = None;
    let mut down_since: Option<Instant> = None;
    let house_every = Duration::from_millis(500);
    while !inner.stop.load(Ordering::SeqCst) {
        let step = (|| -> redis::RedisResult<()> {
            if !to_delete.is_empty() {
                redis::cmd("XDEL")
                    .arg(&results)
                    .arg(&to_delete)
                    .query::<()>(&mut con)?;
                to_delete.clear();
            }
            if last_house.elapsed() >= house_every {
                last_house = Instant::now();
                housekeeping(
                    &inner,
                    &mut con,
                    [&meta, &tasks, &results, &done],
                    &mut no_worker_since,
                )?;
            }
            let reply: redis::Value = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(1000)
                .arg("BLOCK")
                .arg(200)
                .arg("STREAMS")
                .arg(&results)
                .arg(&last_id)
                .query(&mut con)?;
            for (_, entries) in wire::read_reply(&reply) {
                for e in entries {
                    let Some((id, d, m)) = wire::stream_entry(e) else {
                        continue;
                    };
                    last_id = id.clone();
                    to_delete.push(id);
                    let (Some(d), Some(m)) = (d, m) else { continue };
                    if !inner.key.verify(d, m) {
                        tracing::warn!(pool = %inner.pool, "dropped a result batch that is not signed with the cluster key");
                        continue;
                    }
                    let Ok(batch) = processing_core::codec::decode::<ResultBatch>(d) else {
                        continue;
                    };
                    if batch.pool != inner.pool {
                        continue;
                    }
                    inner.deliver(batch);
                }
            }
            Ok(())
        })();
        match step {
            Ok(()) => down_since = None,
            Err(e) => {
                if inner.stop.load(Ordering::SeqCst) {
                    break;
                }
                let since = *down_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= inner.config.connect_timeout {
                    inner.set_broken(PoolError::Cluster(ErrorChain::with_source(
                        format!("Redis unreachable for {:?}", inner.config.connect_timeout),
                        &e,
                    )));
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
                if let Ok(c) = wire::connect(&inner.client, Duration::from_millis(500)) {
                    con = c;
                }
            }
        }
    }
}

/// Renews the pool's keys; fails what no worker will run.
fn housekeeping(
    inner: &Inner,
    con: &mut redis::Connection,
    keys: [&String; 4],
    no_worker_since: &mut Option<Instant>,
) -> redis::RedisResult<()> {
    let mut p = redis::pipe();
    for k in keys {
        p.cmd("EXPIRE").arg(k).arg(KEY_TTL_S).ignore();
    }
    p.cmd("EXPIRE")
        .arg(wire::pools_key(inner.build))
        .arg(KEY_TTL_S)
        .ignore();
    p.cmd("SADD")
        .arg(wire::pools_key(inner.build))
        .arg(&inner.pool)
        .ignore();
    p.cmd("EXISTS").arg(keys[0]);
    p.cmd("EXISTS").arg(wire::alive_key(inner.build));
    let entry_ids: Vec<String> = lock(&inner.entries).keys().cloned().collect();
    for id in &entry_ids {
        p.cmd("XRANGE").arg(keys[1]).arg(id).arg(id);
    }
    let replies: Vec<redis::Value> = p.query(con)?;
    let meta_exists = matches!(replies.first(), Some(redis::Value::Int(1)));
    let alive = matches!(replies.get(1), Some(redis::Value::Int(1)));
    if !meta_exists {
        inner.set_broken(PoolError::Cluster(
            "the Redis server lost this pool's state (restarted without persistence?)".into(),
        ));
        return Ok(());
    }
    // Entries gone from the stream: their results were published before they left, so one
    // more read of the results stream delivers them; what is then still missing was refused.
    let mut gone = Vec::new();
    for (id, reply) in entry_ids.iter().zip(replies.iter().skip(2)) {
        if matches!(reply, redis::Value::Array(a) if a.is_empty()) {
            gone.push(id.clone());
        }
    }
    {
        let routes = lock(&inner.routes);
        lock(&inner.entries).retain(|_, o| o.ids.iter().any(|id| routes.contains_key(id)));
    }
    if !gone.is_empty() {
        let mut pending = Vec::new();
        {
            let mut entries = lock(&inner.entries);
            for id in gone {
                if let Some(o) = entries.remove(&id) {
                    pending.push(o);
                }
            }
        }
        if !pending.is_empty() {
            // Collect results published before the entries left (the caller reads next; a
            // direct read here keeps the order of the check).
            let reply: redis::Value = redis::cmd("XRANGE")
                .arg(keys[2])
                .arg("-")
                .arg("+")
                .query(con)?;
            if let redis::Value::Array(list) = &reply {
                for e in list {
                    let Some((_, Some(d), Some(m))) = wire::stream_entry(e) else {
                        continue;
                    };
                    if !inner.key.verify(d, m) {
                        continue;
                    }
                    if let Ok(batch) = processing_core::codec::decode::<ResultBatch>(d) {
                        inner.deliver(batch);
                    }
                }
            }
            let error = PoolError::Cluster(
                "the task left the stream without a result: the workers refused it (its \
                 signature did not verify under their cluster key)"
                    .into(),
            );
            for o in pending {
                for id in o.ids {
                    inner.fail(id, &error);
                }
            }
        }
    }
    let waiting = !lock(&inner.routes).is_empty();
    if alive || !waiting {
        *no_worker_since = None;
    } else {
        let since = *no_worker_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= inner.config.worker_wait {
            let error = PoolError::NoCompatibleWorker {
                build: format!("{:016x}", inner.build),
                waited: since.elapsed(),
            };
            inner.fail_all(&error);
            *no_worker_since = None;
        }
    }
    Ok(())
}
