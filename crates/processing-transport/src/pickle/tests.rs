use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::{from_slice, to_vec, ByteBuf, PickleError, PickleValue, MAX_DEPTH};
use crate::{ConnectionError, FrameError, Pipe};

use PickleValue as P;

/// The pickles of `tests/data/pickle_corpus.hex` (written by Python 3.12).
fn corpus(name: &str) -> Vec<u8> {
    let text = include_str!("../../tests/data/pickle_corpus.hex");
    let hex = text
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} is in the corpus"));
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn s(v: &str) -> PickleValue {
    P::Str(v.into())
}

#[path = "../../tests/common/pickle_fixtures.rs"]
mod pickle_fixtures;

use pickle_fixtures::{echo_value, Shape};

#[test]
fn pickle_python_data_decodes_in_protocols_3_to_5() {
    for proto in 3..=5 {
        let v: PickleValue = from_slice(&corpus(&format!("echo_p{proto}"))).unwrap();
        assert_eq!(v, echo_value(), "protocol {proto}");
    }
    let nested: PickleValue = from_slice(&corpus("nested_p5")).unwrap();
    let P::Dict(pairs) = &nested else {
        panic!("{nested:?}")
    };
    assert_eq!(pairs[0], (P::Int(1), s("one")));
    assert_eq!(
        pairs[1],
        (
            P::Tuple(vec![P::Int(2), P::Int(3)]),
            P::FrozenSet(vec![P::Int(4)])
        )
    );
    assert_eq!(pairs[2], (s("set"), P::Set(vec![P::Int(5), P::Int(6)])));
    assert_eq!(pairs[3], (s("e"), P::Tuple(vec![])));
    let strings: PickleValue = from_slice(&corpus("strings_p4")).unwrap();
    assert_eq!(
        strings,
        P::List(vec![
            s(""),
            s("x"),
            s("é€😀"),
            s(&"a".repeat(300)),
            P::Bytes(vec![]),
            P::Bytes(b"y".to_vec()),
            P::Bytes(vec![0; 300]),
        ])
    );
    let many: Vec<u32> = from_slice(&corpus("many_p4")).unwrap();
    assert_eq!(many, (0..1200).collect::<Vec<_>>());
    let dict: HashMap<String, u32> = from_slice(&corpus("dict_many_p5")).unwrap();
    assert_eq!(dict.len(), 1100);
    assert_eq!(dict["1099"], 1099);
    // bytearray is data under protocol 5 only.
    let ba: PickleValue = from_slice(&corpus("bytearray_p5")).unwrap();
    assert_eq!(ba, P::ByteArray(b"q".to_vec()));
}

#[test]
fn pickle_integers_map_by_range() {
    let v: PickleValue = from_slice(&corpus("scalars_p4")).unwrap();
    let P::List(items) = v else { panic!() };
    assert_eq!(items[0], P::Bool(true));
    assert_eq!(items[13], P::Int(u64::MAX.into()));
    assert_eq!(items[14], P::Int(1 << 70));
    assert_eq!(items[15], P::Int(-(1i128 << 100)));
    let P::BigInt(big) = &items[16] else {
        panic!("{:?}", items[16])
    };
    assert_eq!(big.len(), 26);
    assert_eq!(items[19], P::Float(f64::INFINITY));
    // Typed: 2**70 does not fit an i64, 2**200 fits nothing.
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Head(
        bool,
        bool,
        i8,
        u8,
        i8,
        u8,
        u16,
        u16,
        u32,
        i32,
        i32,
        i64,
        i64,
        u64,
        i128,
        i128,
        PickleValue,
        f32,
        f64,
        f64,
        f64,
    );
    let head: Head = from_slice(&corpus("scalars_p2")).unwrap();
    assert_eq!(head.13, u64::MAX);
    assert_eq!(head.12, i64::MIN);
    assert!(head.19.is_infinite() && head.18.is_sign_negative() && head.17 == 0.5);
    let too_big = from_slice::<i128>(&to_vec(&P::BigInt(vec![1; 26])).unwrap()).unwrap_err();
    assert!(
        matches!(too_big, PickleError::IntTooLarge { bytes: 26 }),
        "{too_big}"
    );
    let e = from_slice::<Vec<u8>>(&to_vec(&[1u32, 300]).unwrap()).unwrap_err();
    assert!(matches!(e, PickleError::Custom(_)), "{e}");
    // Our own integers, every width, both ways.
    for v in [
        0i128,
        -1,
        255,
        256,
        65535,
        65536,
        i32::MIN.into(),
        i32::MAX as i128 + 1,
        i64::MIN.into(),
        u64::MAX.into(),
        i128::MIN,
        i128::MAX,
    ] {
        assert_eq!(from_slice::<i128>(&to_vec(&v).unwrap()).unwrap(), v);
    }
    let umax = to_vec(&u128::MAX).unwrap();
    assert_eq!(from_slice::<u128>(&umax).unwrap(), u128::MAX);
    assert!(matches!(from_slice::<PickleValue>(&umax).unwrap(), P::BigInt(b) if b.len() == 17));
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Record {
    name: String,
    tags: BTreeSet<String>,
    scores: BTreeMap<u32, Vec<f64>>,
    pair: (bool, Option<String>),
    nothing: Option<u8>,
    shapes: Vec<Shape>,
    raw: ByteBuf,
    unit: (),
}

fn record() -> Record {
    Record {
        name: "r".into(),
        tags: ["a".to_string(), "b".to_string()].into(),
        scores: [(1, vec![0.5, -2.0]), (7, vec![])].into(),
        pair: (true, Some("s".into())),
        nothing: None,
        shapes: vec![
            Shape::Point,
            Shape::Circle(1.5),
            Shape::Rect { w: 2, h: 3 },
            Shape::Pair(-1, 1),
        ],
        raw: ByteBuf(vec![0, 255]),
        unit: (),
    }
}

#[test]
fn pickle_typed_struct_round_trips() {
    let r = record();
    let bytes = to_vec(&r).unwrap();
    assert_eq!(from_slice::<Record>(&bytes).unwrap(), r);
    // The same bytes as a dynamic value: dict with str keys, tuple, None, bytes.
    let v: PickleValue = from_slice(&bytes).unwrap();
    let P::Dict(fields) = v else { panic!() };
    assert_eq!(fields[0], (s("name"), s("r")));
    assert_eq!(
        fields[3],
        (s("pair"), P::Tuple(vec![P::Bool(true), s("s")]))
    );
    assert_eq!(fields[4], (s("nothing"), P::None));
    assert_eq!(fields[6], (s("raw"), P::Bytes(vec![0, 255])));
    assert_eq!(
        fields[2].1,
        P::Dict(vec![
            (P::Int(1), P::List(vec![P::Float(0.5), P::Float(-2.0)])),
            (P::Int(7), P::List(vec![])),
        ])
    );
    let P::List(shapes) = &fields[5].1 else {
        panic!()
    };
    assert_eq!(shapes[0], s("Point"));
    assert_eq!(shapes[1], P::Dict(vec![(s("Circle"), P::Float(1.5))]));
}

#[test]
fn pickle_dynamic_value_round_trips_every_type() {
    let v = P::List(vec![
        P::None,
        P::Bool(false),
        P::Int(-5),
        P::Int(i128::MAX),
        P::BigInt(vec![1; 40]),
        P::Float(-0.25),
        s("é"),
        P::Bytes(b"b".to_vec()),
        P::ByteArray(b"ba".to_vec()),
        P::Tuple(vec![]),
        P::Tuple(vec![P::Int(1), P::Int(2), P::Int(3), P::Int(4)]),
        P::Set(vec![P::Int(1)]),
        P::FrozenSet(vec![]),
        P::Dict(vec![(P::Tuple(vec![P::Int(1)]), P::Set(vec![]))]),
        echo_value(),
    ]);
    let bytes = to_vec(&v).unwrap();
    assert_eq!(from_slice::<PickleValue>(&bytes).unwrap(), v);
}

#[test]
fn pickle_memo_references_are_copied() {
    // Python: `shared = [1, "two"]; [shared, shared, (shared,)]`, written with the memo.
    for proto in 2..=5 {
        let v: Vec<PickleValue> = from_slice(&corpus(&format!("shared_p{proto}"))).unwrap();
        let shared = P::List(vec![P::Int(1), s("two")]);
        assert_eq!(v, [shared.clone(), shared.clone(), P::Tuple(vec![shared])]);
    }
}

#[test]
fn pickle_refuses_every_opcode_that_imports_or_calls() {
    for (proto, opcode) in [(2, "GLOBAL"), (4, "STACK_GLOBAL"), (5, "STACK_GLOBAL")] {
        for name in ["instance", "os_system", "runs_code"] {
            let bytes = corpus(&format!("hostile_{name}_p{proto}"));
            let e = from_slice::<PickleValue>(&bytes).unwrap_err();
            match e {
                PickleError::Refused { opcode: o, .. } => assert_eq!(o, opcode, "{name}"),
                e => panic!("{name}: {e}"),
            }
            assert!(e.is_refused());
        }
    }
    // bytearray under protocol 4 (Python 3.12's default) is a call.
    let e = from_slice::<PickleValue>(&corpus("bytearray_p4")).unwrap_err();
    assert!(matches!(
        e,
        PickleError::Refused {
            opcode: "STACK_GLOBAL",
            ..
        }
    ));
    // Each one, even where it would be the first opcode.
    for (code, name) in [
        (b'c', "GLOBAL"),
        (0x93, "STACK_GLOBAL"),
        (b'R', "REDUCE"),
        (b'b', "BUILD"),
        (b'i', "INST"),
        (b'o', "OBJ"),
        (0x81, "NEWOBJ"),
        (0x92, "NEWOBJ_EX"),
        (0x82, "EXT1"),
        (0x83, "EXT2"),
        (0x84, "EXT4"),
        (b'P', "PERSID"),
        (b'Q', "BINPERSID"),
        (0x97, "NEXT_BUFFER"),
        (0x98, "READONLY_BUFFER"),
    ] {
        let e = from_slice::<PickleValue>(&[0x80, 4, b'N', code, b'.']).unwrap_err();
        assert_eq!(
            e,
            PickleError::Refused {
                opcode: name,
                code,
                offset: 3
            }
        );
        assert!(e.to_string().contains(name), "{e}");
    }
}

#[test]
fn pickle_unhashable_keys_and_elements_are_refused() {
    // Python's own loads refuses these (TypeError: unhashable type); so does ours, which keeps
    // every decoded value writable again.
    let cases: [(&[u8], &str); 4] = [
        // {[]: None}: EMPTY_DICT EMPTY_LIST NONE SETITEM
        (
            &[0x80, 4, b'}', b']', b'N', b's', b'.'],
            "unhashable dict key",
        ),
        // {({}, ): 1}: a tuple key holding a dict
        (
            &[0x80, 4, b'}', b'}', 0x85, b'K', 1, b's', b'.'],
            "unhashable dict key",
        ),
        // {bytearray()}: EMPTY_SET MARK BYTEARRAY8(0) ADDITEMS
        (
            &[
                0x80, 5, 0x8f, b'(', 0x96, 0, 0, 0, 0, 0, 0, 0, 0, 0x90, b'.',
            ],
            "unhashable set element",
        ),
        // frozenset([set()])
        (&[0x80, 4, b'(', 0x8f, 0x91, b'.'], "unhashable set element"),
    ];
    for (pickle, why) in cases {
        match from_slice::<PickleValue>(pickle) {
            Err(PickleError::Malformed { reason, .. }) => assert_eq!(reason, why),
            other => panic!("{pickle:?}: {other:?}"),
        }
    }
    // A tuple of scalars and a frozenset are fine as keys.
    let ok = [0x80, 4, b'}', b'K', 1, 0x85, b'N', b's', b'.'];
    assert!(from_slice::<PickleValue>(&ok).is_ok());
}

#[test]
fn pickle_hostile_shapes_fail_typed_without_cost() {
    // A billion laughs: 40 doublings of one shared tuple in 83 bytes.
    let mut laughs = vec![0x80, 4, b'N'];
    for _ in 0..40 {
        laughs.extend_from_slice(&[b'2', 0x86]);
    }
    laughs.push(b'.');
    assert!(matches!(
        from_slice::<PickleValue>(&laughs).unwrap_err(),
        PickleError::TooDeep | PickleError::TooLarge { .. }
    ));
    // Wide sharing without depth: a list of 1000 ints referenced 10 000 times.
    let mut wide = vec![0x80, 4, b']', b'(', b']', b'('];
    for _ in 0..1000 {
        wide.extend_from_slice(&[b'K', 1]);
    }
    wide.extend_from_slice(&[b'e', 0x94]);
    for _ in 0..10_000 {
        wide.extend_from_slice(&[b'h', 0]);
    }
    wide.extend_from_slice(b"e.");
    let e = from_slice::<PickleValue>(&wide).unwrap_err();
    assert!(matches!(e, PickleError::TooLarge { .. }), "{e}");
    // The same list referenced twice is within the budget.
    let n = wide.len() - 20_000 - 2;
    let two = [&wide[..n + 4], b"e."].concat();
    let P::List(items) = from_slice::<PickleValue>(&two).unwrap() else {
        panic!()
    };
    assert_eq!(items.len(), 3);
    // Deep nesting, built without recursion, refused without overflowing the stack.
    let depth = 1_000_000;
    let mut deep = vec![0x80, 4];
    deep.extend_from_slice(&vec![b']'; depth]);
    deep.extend_from_slice(&vec![b'a'; depth - 1]);
    deep.push(b'.');
    assert_eq!(
        from_slice::<PickleValue>(&deep).unwrap_err(),
        PickleError::TooDeep
    );
    let mut ok = vec![0x80, 4];
    ok.extend_from_slice(&[b']'; MAX_DEPTH]);
    ok.extend_from_slice(&[b'a'; MAX_DEPTH - 1]);
    ok.push(b'.');
    from_slice::<PickleValue>(&ok).unwrap();
    // A list that contains itself.
    assert_eq!(
        from_slice::<PickleValue>(&corpus("recursive_p4")).unwrap_err(),
        PickleError::Recursive
    );
    // Length fields larger than the message: no allocation, a typed error.
    for bad in [
        &b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f."[..],
        b"\x80\x04\x8d\x00\x00\x00\x00\x00\x00\x00\x80.",
        b"\x80\x04B\xff\xff\xff\xff.",
        b"\x80\x04\x8b\xff\xff\xff\x7f.",
        b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xffN.",
        b"\x80\x04N",
        b"",
    ] {
        assert_eq!(
            from_slice::<PickleValue>(bad).unwrap_err(),
            PickleError::Truncated
        );
    }
    assert!(matches!(
        from_slice::<PickleValue>(b"\x80\x04\x8b\xff\xff\xff\xff.").unwrap_err(),
        PickleError::Malformed { .. }
    ));
    assert_eq!(
        from_slice::<PickleValue>(b"\x80\x06N.").unwrap_err(),
        PickleError::Protocol(6)
    );
    assert_eq!(
        from_slice::<PickleValue>(b"\x80\x04N.N").unwrap_err(),
        PickleError::TrailingBytes(1)
    );
    for bad in [
        &b"\x80\x04a."[..],
        b"\x80\x04Na.",
        b"\x80\x04(t0.",
        b"\x80\x04h\x05.",
    ] {
        assert!(matches!(
            from_slice::<PickleValue>(bad).unwrap_err(),
            PickleError::Malformed { .. }
        ));
    }
    assert!(matches!(
        from_slice::<PickleValue>(b"\x80\x04\xff.").unwrap_err(),
        PickleError::Unsupported { code: 0xff, .. }
    ));
}

#[test]
fn pickle_over_a_pipe_and_typed_recv_names_a_pickle() {
    let (a, b) = Pipe::new::<u32>().unwrap();
    a.send_pickle(&record()).unwrap();
    assert_eq!(b.recv_pickle::<Record>().unwrap(), record());
    // A refused pickle consumes its message; the connection goes on.
    a.send_bytes(&corpus("hostile_runs_code_p4")).unwrap();
    let e = b.recv_pickle::<PickleValue>().unwrap_err();
    assert!(
        matches!(e, ConnectionError::Pickle(PickleError::Refused { .. })),
        "{e}"
    );
    a.send_bytes(&corpus("echo_p4")).unwrap();
    assert_eq!(b.recv_pickle::<PickleValue>().unwrap(), echo_value());
    // The typed (postcard) receive says what it met.
    a.send_bytes(&corpus("echo_p4")).unwrap();
    let e = b.recv().unwrap_err();
    assert!(
        matches!(e, ConnectionError::Frame(FrameError::PickleMessage)),
        "{e}"
    );
    a.send(&7).unwrap();
    assert_eq!(b.recv().unwrap(), 7);
}

#[test]
fn pickle_protocol_0_numbers() {
    // Python: pickle.dumps([1, True, 2**70, -0.5], protocol=0) (True is `I01`).
    let v: PickleValue =
        from_slice(b"(lp0\nI1\naI01\naL1180591620717411303424L\naF-0.5\na.").unwrap();
    assert_eq!(
        v,
        P::List(vec![
            P::Int(1),
            P::Bool(true),
            P::Int(1 << 70),
            P::Float(-0.5)
        ])
    );
    let e = from_slice::<PickleValue>(&[b"L", "9".repeat(60).as_bytes(), b"L\n."].concat());
    assert!(matches!(e.unwrap_err(), PickleError::IntTooLarge { .. }));
    let e = from_slice::<PickleValue>(b"Lx\n.").unwrap_err();
    assert!(matches!(e, PickleError::Malformed { .. }), "{e}");
}

#[test]
fn pickle_dict_keys_are_written_hashable() {
    // Python's dict keys must be hashable: sequences in a key become tuples, sets frozensets.
    let mut m = BTreeMap::new();
    m.insert(vec![1u8, 2], BTreeSet::from([3u8]));
    let bytes = to_vec(&(
        m.clone(),
        BTreeMap::from([(BTreeSet::from([vec![4u8]]), 5u8)]),
    ))
    .unwrap();
    let v: PickleValue = from_slice(&bytes).unwrap();
    assert_eq!(
        v,
        P::Tuple(vec![
            P::Dict(vec![(
                P::Tuple(vec![P::Int(1), P::Int(2)]),
                P::List(vec![P::Int(3)])
            )]),
            P::Dict(vec![(P::Tuple(vec![P::Tuple(vec![P::Int(4)])]), P::Int(5))]),
        ])
    );
    // And they read back into the Rust types.
    type Keyed = (
        BTreeMap<Vec<u8>, BTreeSet<u8>>,
        BTreeMap<BTreeSet<Vec<u8>>, u8>,
    );
    let back: Keyed = from_slice(&bytes).unwrap();
    assert_eq!(back.0, m);
    let key = P::Set(vec![P::Int(1)]);
    let v = P::Dict(vec![(
        P::Tuple(vec![key, P::ByteArray(b"a".to_vec())]),
        P::None,
    )]);
    assert_eq!(
        from_slice::<PickleValue>(&to_vec(&v).unwrap()).unwrap(),
        P::Dict(vec![(
            P::Tuple(vec![P::FrozenSet(vec![P::Int(1)]), P::Bytes(b"a".to_vec())]),
            P::None
        )])
    );
    // A dict cannot be a key.
    let e = to_vec(&BTreeMap::from([(BTreeMap::from([(1, 2)]), 3)])).unwrap_err();
    assert!(matches!(e, PickleError::Custom(_)), "{e}");
}

/// Under Miri (`cargo xtask models`): the encoder and the decoder over every value type, a
/// typed struct, Python's own pickles with memo references, and every prefix of a pickle
/// (each an error, never a read past the end or a leak).
#[test]
fn miri_pickle_round_trips_python_data_and_truncations() {
    let r = record();
    let bytes = to_vec(&r).unwrap();
    assert_eq!(from_slice::<Record>(&bytes).unwrap(), r);
    let v = P::List(vec![
        P::None,
        P::Bool(true),
        P::Int(i128::MIN),
        P::BigInt(vec![0x80; 20]),
        P::Float(1.5),
        s("ü"),
        P::Bytes(vec![0, 1, 2]),
        P::ByteArray(vec![3]),
        P::Tuple(vec![P::Int(1), P::Int(2)]),
        P::Set(vec![P::Int(9)]),
        P::FrozenSet(vec![s("f")]),
        P::Dict(vec![(s("k"), P::List(vec![]))]),
    ]);
    let bytes = to_vec(&v).unwrap();
    assert_eq!(from_slice::<PickleValue>(&bytes).unwrap(), v);
    for cut in 0..bytes.len() {
        assert!(from_slice::<PickleValue>(&bytes[..cut]).is_err(), "{cut}");
    }
    let v: PickleValue = from_slice(&corpus("echo_p5")).unwrap();
    assert_eq!(v, echo_value());
    let shared: Vec<PickleValue> = from_slice(&corpus("shared_p4")).unwrap();
    assert_eq!(shared.len(), 3);
    let nested = corpus("nested_p5");
    for cut in 0..nested.len() {
        assert!(from_slice::<PickleValue>(&nested[..cut]).is_err(), "{cut}");
    }
}
