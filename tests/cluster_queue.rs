//! Conformance K10: the cluster Queue, 3 producer hosts and 2 consumer hosts (separate
//! processes: this binary re-run in a role) moving 30 000 items while one consumer is
//! SIGKILLed.
#![cfg(feature = "cluster")]

mod cluster_support;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cluster_support::{wait_for, Redis, KEY};
use processing::cluster::{Queue, QueueError};

const PER_PRODUCER: u64 = 10_000;
const PREFETCH: usize = 16;

fn open(url: &str) -> Queue<u64> {
    Queue::open_with(
        url,
        "k10",
        Some(KEY.as_bytes().to_vec()),
        Duration::from_secs(1),
        PREFETCH,
    )
    .unwrap()
}

/// The body of a producer or consumer process (does nothing in a normal test run).
#[test]
fn k10_role() {
    let Ok(role) = std::env::var("K10_ROLE") else {
        return;
    };
    let url = std::env::var("K10_URL").unwrap();
    let q = open(&url);
    if role == "produce" {
        let from: u64 = std::env::var("K10_FROM").unwrap().parse().unwrap();
        for i in from..from + PER_PRODUCER {
            q.put(&i).unwrap();
        }
        return;
    }
    let out = PathBuf::from(std::env::var("K10_OUT").unwrap());
    let done = PathBuf::from(std::env::var("K10_DONE").unwrap());
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&out)
        .unwrap();
    let mut empty_after_done = 0;
    loop {
        match q.get_timeout(Duration::from_secs(1)) {
            Ok(i) => {
                // Recorded before the item is acknowledged (at the next get).
                file.write_all(format!("{i}\n").as_bytes()).unwrap();
                empty_after_done = 0;
            }
            Err(QueueError::Empty) => {
                if done.exists() {
                    empty_after_done += 1;
                    if empty_after_done >= 3 {
                        return;
                    }
                }
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn role(envs: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "k10_role", "--test-threads=1"])
        .stdout(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn lines(p: &PathBuf) -> Vec<u64> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}

#[test]
fn k10_queue_three_producers_two_consumers_one_killed_nothing_lost() {
    let Some(redis) = Redis::start() else { return };
    let url = redis.url();
    let dir = redis.dir.join("k10");
    std::fs::create_dir_all(&dir).unwrap();
    let done = dir.join("done");
    let outs: Vec<PathBuf> = (0..2).map(|i| dir.join(format!("consumer{i}"))).collect();
    let mut consumers: Vec<Child> = outs
        .iter()
        .map(|o| {
            role(&[
                ("K10_ROLE", "consume".into()),
                ("K10_URL", url.clone()),
                ("K10_OUT", o.to_string_lossy().into_owned()),
                ("K10_DONE", done.to_string_lossy().into_owned()),
            ])
        })
        .collect();
    let producers: Vec<Child> = (0..3)
        .map(|p| {
            role(&[
                ("K10_ROLE", "produce".into()),
                ("K10_URL", url.clone()),
                ("K10_FROM", (p * PER_PRODUCER).to_string()),
            ])
        })
        .collect();
    wait_for("consumers to get going", Duration::from_secs(120), || {
        lines(&outs[0]).len() >= 2000
    });
    consumers[0].kill().unwrap();
    consumers[0].wait().unwrap();
    for mut p in producers {
        assert!(p.wait().unwrap().success(), "a producer failed");
    }
    std::fs::write(&done, b"").unwrap();
    let status = consumers[1].wait().unwrap();
    assert!(status.success(), "the surviving consumer failed");
    let mut count: HashMap<u64, u32> = HashMap::new();
    let mut total = 0usize;
    for o in &outs {
        for i in lines(o) {
            *count.entry(i).or_default() += 1;
            total += 1;
        }
    }
    let all = 3 * PER_PRODUCER;
    let missing = (0..all).filter(|i| !count.contains_key(i)).count();
    assert_eq!(missing, 0, "no item is lost");
    let duplicates = total - all as usize;
    // At-least-once: only items the killed consumer had received and not acknowledged come
    // twice, at most one prefetch batch.
    assert!(
        duplicates <= PREFETCH,
        "{duplicates} duplicates, at most {PREFETCH} allowed"
    );
    eprintln!("k10: {total} deliveries of {all} items, {duplicates} duplicates");
    let mut c = redis.client();
    assert_eq!(c.cmd(&["XLEN", "processing:queue:k10"]).unwrap().int(), 0);
}
