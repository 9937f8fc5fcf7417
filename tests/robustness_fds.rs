//! R13: descriptors of finished children are released by `join` and drop, not by the next
//! start. One test per binary: it counts this process's descriptors.

#[cfg(target_os = "linux")]
#[test]
fn r13_join_and_drop_release_a_childs_descriptors() {
    use processing::Process;
    use processing_suite::process_cases::{noop, wait_at_gate, Gate};

    fn open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
    }
    // The first start brings up what lives for the program (fork server, tracker link).
    let mut warm = Process::new(noop, ());
    warm.start().unwrap();
    warm.join().unwrap();
    drop(warm);
    let gate = Gate::new();
    let baseline = open_fds();
    let mut last = None;
    for i in 0..100 {
        let mut p = Process::new(noop, ());
        p.start().unwrap();
        p.join().unwrap();
        if i == 99 {
            // Right after the last join, without another start.
            last = Some(open_fds());
        }
    }
    let after_join = last.unwrap();
    assert!(
        after_join <= baseline + 2,
        "{after_join} descriptors after the last join, baseline {baseline}"
    );
    let after_drop = open_fds();
    assert!(
        after_drop <= baseline + 2,
        "{after_drop} descriptors after the last drop, baseline {baseline}"
    );
    // 100 children alive together (each waits at the gate, so every start's sweep sees them
    // running), then joined and dropped: nothing of them stays open until some later start.
    let mut all: Vec<Process<()>> = (0..100)
        .map(|_| {
            let mut p = Process::new(wait_at_gate, gate.port());
            p.start().unwrap();
            p
        })
        .collect();
    for _ in 0..100 {
        gate.open();
    }
    for p in &mut all {
        p.join().unwrap();
    }
    let joined = open_fds();
    drop(all);
    let dropped = open_fds();
    assert!(
        dropped <= baseline + 2,
        "{dropped} descriptors after joining and dropping 100 children ({joined} before the drop), baseline {baseline}"
    );
}
