//! Shared-memory conformance (V01–V06) across real processes, and the resource tracker's
//! cleanup after a killed child.

mod support;

use support::{created_by, run, start};

#[cfg(target_os = "linux")]
use std::thread;
#[cfg(target_os = "linux")]
use std::time::{Duration, Instant};

use processing::shm::{Pod, RawArray, RawValue, SharedMemory, Zeroable};
use processing::sync::{Array, Event, Lock, Value};
use processing::Process;

#[cfg(target_os = "linux")]
const SLACK: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- V01

type Values = (Value<i32>, Value<f64>, Value<i16>, Value<i64>, Value<u8>);
type Raws = (
    RawValue<i32>,
    RawValue<f64>,
    RawValue<i16>,
    RawValue<i64>,
    RawValue<u8>,
);

fn write_values((v, r): (Values, Raws)) {
    v.0.set(-7);
    v.1.set(2.5);
    v.2.set(-300);
    v.3.set(1 << 40);
    v.4.set(255);
    r.0.set(v.0.get() * 2);
    r.1.set(v.1.get() * 2.0);
    r.2.set(v.2.get() * 2);
    r.3.set(v.3.get() * 2);
    r.4.set(v.4.get() / 2);
}

/// The five values of `Values`/`Raws`, zero, made with `$kind::new`.
macro_rules! zeros {
    ($kind:ident) => {
        (
            $kind::new(0).unwrap(),
            $kind::new(0.0).unwrap(),
            $kind::new(0).unwrap(),
            $kind::new(0).unwrap(),
            $kind::new(0).unwrap(),
        )
    };
}

#[test]
fn v01_child_writes_visible() {
    let v: Values = zeros!(Value);
    let r: Raws = zeros!(RawValue);
    run(write_values, (v.clone(), r.clone()));
    assert_eq!(
        (v.0.get(), v.1.get(), v.2.get(), v.3.get(), v.4.get()),
        (-7, 2.5, -300, 1 << 40, 255)
    );
    assert_eq!(
        (r.0.get(), r.1.get(), r.2.get(), r.3.get(), r.4.get()),
        (-14, 5.0, -600, 1 << 41, 127)
    );
}

// ---------------------------------------------------------------- V02

fn hold_shared_lock((lock, held, release): (Lock, Event, Event)) {
    let _g = lock.acquire().unwrap();
    held.set();
    release.wait();
}

fn bump_all((own, a, b, raw): (Value<u32>, Value<u32>, Value<u32>, RawValue<u32>)) {
    *own.lock().unwrap() += 1;
    *a.lock().unwrap() += 1;
    *b.lock().unwrap() += 1;
    raw.set(raw.get() + 1);
}

#[test]
fn v02_own_lock_given_lock_and_raw() {
    let own = Value::new(10u32).unwrap();
    let shared_lock = Lock::new().unwrap();
    let a = Value::with_lock(20u32, shared_lock.clone()).unwrap();
    let b = Value::with_lock(30u32, shared_lock.clone()).unwrap();
    let raw = RawValue::new(40u32).unwrap();
    run(bump_all, (own.clone(), a.clone(), b.clone(), raw.clone()));
    assert_eq!((own.get(), a.get(), b.get(), raw.get()), (11, 21, 31, 41));

    // The given lock really guards both values: while a child holds it, neither can be
    // locked here, but the value with its own lock can.
    let (held, release) = (Event::new().unwrap(), Event::new().unwrap());
    let mut p = start(
        hold_shared_lock,
        (shared_lock.clone(), held.clone(), release.clone()),
    );
    held.wait();
    assert!(a.get_lock().try_acquire().unwrap_err().is_would_block());
    assert!(b.get_lock().try_acquire().unwrap_err().is_would_block());
    assert!(own.get_lock().try_acquire().is_ok());
    release.set();
    p.join().unwrap();
    assert!(a.get_lock().try_acquire().is_ok());
}

// ---------------------------------------------------------------- V03

fn prefix_sum(a: Array<i64>) {
    let mut items = a.lock().unwrap();
    for i in 1..items.len() {
        items[i] += items[i - 1];
    }
}

fn raw_prefix_sum(a: RawArray<i64>) {
    for i in 1..a.len() {
        let s = a.get(i).unwrap() + a.get(i - 1).unwrap();
        a.set(i, s).unwrap();
    }
}

#[test]
fn v03_array_ops_and_child_prefix_sum() {
    let a = Array::<i64>::new(10).unwrap();
    assert_eq!(a.len(), 10);
    assert_eq!(a.to_vec(), vec![0; 10], "zero-filled on creation");
    a.write(0, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).unwrap();
    assert_eq!(a.get(3), Some(4));
    assert_eq!(a.slice(2..5).unwrap(), vec![3, 4, 5]);
    a.write(2, &[30, 40]).unwrap();
    assert_eq!(a.slice(..4).unwrap(), vec![1, 2, 30, 40]);
    a.write(2, &[3, 4]).unwrap();
    assert_eq!(a.get(10), None);
    assert!(a.set(10, 1).unwrap_err().is_out_of_range());
    assert!(a.slice(8..11).unwrap_err().is_out_of_range());
    assert!(a.write(9, &[1, 2]).unwrap_err().is_out_of_range());
    run(prefix_sum, a.clone());
    assert_eq!(a.to_vec(), vec![1, 3, 6, 10, 15, 21, 28, 36, 45, 55]);

    let raw = RawArray::from_slice(&[1i64; 8]).unwrap();
    run(raw_prefix_sum, raw.clone());
    assert_eq!(
        raw.iter().collect::<Vec<_>>(),
        (1..=8).collect::<Vec<i64>>()
    );
}

// ---------------------------------------------------------------- V04

#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C)]
struct Particle {
    pos: [f32; 3],
    mass: f32,
    id: u64,
}

fn move_particles(a: Array<Particle>) {
    let mut ps = a.lock().unwrap();
    for p in ps.iter_mut() {
        p.pos[0] += 1.0;
        p.id *= 10;
    }
}

#[test]
fn v04_arrays_of_repr_c_structs() {
    let init: Vec<Particle> = (0..4)
        .map(|i| Particle {
            pos: [i as f32, 0.0, 0.0],
            mass: 1.0,
            id: i,
        })
        .collect();
    let a = Array::from_slice(&init).unwrap();
    run(move_particles, a.clone());
    let after = a.to_vec();
    for (i, p) in after.iter().enumerate() {
        assert_eq!(
            *p,
            Particle {
                pos: [i as f32 + 1.0, 0.0, 0.0],
                mass: 1.0,
                id: i as u64 * 10
            }
        );
    }
    // Types with pointers are rejected at compile time: see the compile_fail doctest on
    // `processing_shm::RawValue`.
}

// ---------------------------------------------------------------- V05

fn attach_and_write((name, len): (String, usize)) -> Result<usize, String> {
    let shm = SharedMemory::open(&name).map_err(|e| e.to_string())?;
    shm.write(0, b"from the child").map_err(|e| e.to_string())?;
    Ok(shm.len().min(len))
}

#[test]
fn v05_shared_memory_by_name() {
    let shm = SharedMemory::create(4096).unwrap();
    assert_eq!(
        run(attach_and_write, (shm.name().to_string(), 4096)),
        Ok(4096)
    );
    let mut buf = [0u8; 14];
    shm.read(0, &mut buf).unwrap();
    assert_eq!(&buf, b"from the child");

    let name = format!("processing-v05-{}", std::process::id());
    let named = SharedMemory::create_named(&name, 100).unwrap();
    assert!(SharedMemory::create_named(&name, 100)
        .unwrap_err()
        .is_already_exists());
    assert_eq!(run(attach_and_write, (name.clone(), 100)), Ok(100));
    drop(named);
    assert!(SharedMemory::create(0).unwrap_err().is_invalid_size());
    assert!(SharedMemory::open("processing-v05-missing")
        .unwrap_err()
        .is_not_found());
    assert!(run(attach_and_write, ("processing-v05-missing".to_string(), 1)).is_err());
}

// ---------------------------------------------------------------- V06

/// Whether segment `name` exists (Linux: looks in /dev/shm without attaching; elsewhere:
/// tries to attach).
fn in_dev_shm(name: &str) -> bool {
    if cfg!(target_os = "linux") {
        std::path::Path::new("/dev/shm").join(name).exists()
    } else {
        SharedMemory::open(name).is_ok()
    }
}

#[cfg(target_os = "linux")]
fn until_gone(names: &[String]) {
    let start = Instant::now();
    while names.iter().any(|n| in_dev_shm(n)) {
        assert!(start.elapsed() < SLACK, "segments left behind: {names:?}");
        thread::sleep(Duration::from_millis(20));
    }
}

fn attach_and_drop(shm: SharedMemory) -> usize {
    shm.len()
}

#[test]
fn v06_segment_removed_after_last_handle() {
    let shm = SharedMemory::create(64).unwrap();
    let name = shm.name().to_string();
    assert_eq!(run(attach_and_drop, shm.clone()), 64);
    assert!(in_dev_shm(&name), "the parent still holds it");
    drop(shm);
    assert!(!in_dev_shm(&name), "the last handle removes it at once");
}

/// Creates segments (a raw one and a few primitives), publishes their names and waits to
/// be killed.
#[cfg(any(target_os = "linux", windows))]
fn create_and_wait((names, ready): (RawArray<u8>, Event)) {
    let shm = SharedMemory::create(1 << 20).unwrap();
    let lock = Lock::new().unwrap();
    let value = Value::new(5u64).unwrap();
    lock.acquire().unwrap().forget();
    let list = format!("{} {}\n", shm.name(), std::process::id());
    names.write(0, list.as_bytes()).unwrap();
    ready.set();
    let _keep = (shm, lock, value);
    std::thread::sleep(std::time::Duration::from_secs(600));
}

/// A child running [`create_and_wait`], once its segments exist: the child, the name of its
/// raw segment and its pid.
#[cfg(any(target_os = "linux", windows))]
fn start_creator() -> (Process<()>, String, String) {
    let names = RawArray::<u8>::new(256).unwrap();
    let ready = Event::new().unwrap();
    let p = start(create_and_wait, (names.clone(), ready.clone()));
    ready.wait();
    let text = String::from_utf8(names.to_vec()).unwrap();
    let mut words = text.trim_end_matches('\0').split_whitespace();
    let shm_name = words.next().unwrap().to_string();
    let pid = words.next().unwrap().to_string();
    (p, shm_name, pid)
}

#[cfg(target_os = "linux")]
#[test]
fn v06_segment_removed_after_killed_creator() {
    let (mut p, shm_name, pid) = start_creator();
    let created = created_by("/dev/shm".as_ref(), &pid);
    assert!(
        created.len() >= 3 && created.contains(&shm_name),
        "{created:?}"
    );
    p.kill().unwrap();
    let _ = p.join();
    // The resource tracker removes them once their only holder is gone.
    until_gone(&created);
}

/// /dev/shm holds no entry of a killed child's once the tracker swept (the whole-suite
/// check is `cargo xtask test`'s; this one is local to one killed child).
#[cfg(target_os = "linux")]
#[test]
fn v06_dev_shm_clean_after_killed_child() {
    let (mut p, _, pid) = start_creator();
    p.kill().unwrap();
    let _ = p.join();
    let start_t = Instant::now();
    loop {
        let left = created_by("/dev/shm".as_ref(), &pid);
        if left.is_empty() {
            break;
        }
        assert!(start_t.elapsed() < SLACK, "left in /dev/shm: {left:?}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Creates one segment in a fresh process (whose first creation sweeps what dead processes
/// left on Windows).
#[cfg(windows)]
fn create_one(_: ()) -> bool {
    SharedMemory::create(8).is_ok()
}

/// V06 on Windows: a segment is a file in `%TEMP%\processing-shm`; the segments of a creator
/// killed with `TerminateProcess` are deleted by the next process that creates a segment.
#[cfg(windows)]
#[test]
fn v06_killed_creator_segments_swept_on_windows() {
    let dir = std::env::temp_dir().join("processing-shm");
    let (mut p, shm_name, pid) = start_creator();
    let created = created_by(&dir, &pid);
    assert!(
        created.len() >= 3 && created.contains(&shm_name),
        "{created:?}"
    );
    p.kill().unwrap();
    assert!(p.join().is_err());
    assert!(run(create_one, ()));
    let left: Vec<&String> = created.iter().filter(|n| dir.join(n).exists()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(SharedMemory::open(&shm_name).unwrap_err().is_not_found());
}
