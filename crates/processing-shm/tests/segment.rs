//! Single-process tests of segments, values and arrays (cross-process ones live in the
//! workspace's root `tests/shm_*.rs`).

use processing_core::codec;
use processing_shm::{Pod, RawArray, RawValue, SharedMemory, Zeroable};

#[cfg(target_os = "linux")]
fn in_dev_shm(name: &str) -> bool {
    std::path::Path::new("/dev/shm").join(name).exists()
}

#[test]
fn create_write_open_read() {
    let shm = SharedMemory::create(100).unwrap();
    assert_eq!(shm.len(), 100);
    assert!(shm.name().starts_with(processing_shm::NAME_PREFIX));
    shm.write(95, b"abcde").unwrap();
    assert!(shm.write(96, b"abcde").unwrap_err().is_out_of_range());
    let other = SharedMemory::open(shm.name()).unwrap();
    let mut buf = [0u8; 5];
    other.read(95, &mut buf).unwrap();
    assert_eq!(&buf, b"abcde");
    assert_eq!(other.as_ptr() as usize % 4096, 0);
}

#[test]
fn errors() {
    assert!(SharedMemory::create(0).unwrap_err().is_invalid_size());
    assert!(SharedMemory::open("processing-test-missing-xyz")
        .unwrap_err()
        .is_not_found());
    assert!(SharedMemory::open("bad/name").is_err());
    let name = format!("processing-test-dup-{}", std::process::id());
    let a = SharedMemory::create_named(&name, 8).unwrap();
    assert!(SharedMemory::create_named(&name, 8)
        .unwrap_err()
        .is_already_exists());
    drop(a);
}

#[cfg(target_os = "linux")]
#[test]
fn last_drop_removes_segment() {
    let shm = SharedMemory::create(10).unwrap();
    let name = shm.name().to_string();
    let clone = shm.clone();
    let second = SharedMemory::open(&name).unwrap();
    drop(shm);
    assert!(in_dev_shm(&name));
    drop(second);
    assert!(in_dev_shm(&name));
    drop(clone);
    assert!(!in_dev_shm(&name));
}

#[cfg(target_os = "linux")]
#[test]
fn in_flight_handle_keeps_segment() {
    let shm = SharedMemory::create(10).unwrap();
    let name = shm.name().to_string();
    shm.write(0, &[7]).unwrap();
    let bytes = codec::encode(&shm).unwrap();
    drop(shm);
    assert!(in_dev_shm(&name), "a serialized handle keeps the segment");
    let back: SharedMemory = codec::decode(&bytes).unwrap();
    let mut b = [0u8];
    back.read(0, &mut b).unwrap();
    assert_eq!(b[0], 7);
    drop(back);
    assert!(!in_dev_shm(&name));
}

#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C)]
struct Point {
    x: f64,
    y: i32,
    tag: u32,
}

#[test]
fn values_and_arrays() {
    let v = RawValue::new(Point {
        x: 1.0,
        y: 2,
        tag: 3,
    })
    .unwrap();
    let v2: RawValue<Point> = codec::decode(&codec::encode(&v).unwrap()).unwrap();
    v2.set(Point {
        x: 4.0,
        y: 5,
        tag: 6,
    });
    assert_eq!(
        v.get(),
        Point {
            x: 4.0,
            y: 5,
            tag: 6
        }
    );

    let a = RawArray::<i32>::new(10).unwrap();
    assert_eq!(a.to_vec(), vec![0; 10]);
    a.write(0, &[1, 2, 3]).unwrap();
    assert_eq!(a.slice(..=2).unwrap(), vec![1, 2, 3]);
    assert!(a.slice(5..11).is_err());
    assert!(a.write(8, &[1, 2, 3]).is_err());
    assert_eq!(a.get(10), None);
    let b: RawArray<i32> = codec::decode(&codec::encode(&a).unwrap()).unwrap();
    b.set(9, 9).unwrap();
    assert_eq!(
        a.iter().collect::<Vec<_>>(),
        vec![1, 2, 3, 0, 0, 0, 0, 0, 0, 9]
    );
    let empty = RawArray::<u8>::new(0).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.to_vec(), Vec::<u8>::new());
}
