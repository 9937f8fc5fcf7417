//! What the pickle unit tests and the root suite's Python tests both use (they include this
//! file by path, next to their own `PickleValue` import): the dynamic value of the corpus's
//! `echo_*` entries and of the Python scripts, and an enum with every kind of variant.

use serde::{Deserialize, Serialize};

use super::PickleValue;

/// An enum with a unit, a newtype, a struct and a tuple variant.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub(crate) enum Shape {
    Point,
    Circle(f64),
    Rect { w: u32, h: u32 },
    Pair(i8, i8),
}

/// `{"a": [1, 2.5, "x", None, b"y", (True,)]}` as a [`PickleValue`].
pub(crate) fn echo_value() -> PickleValue {
    use PickleValue as P;
    let s = |x: &str| P::Str(x.into());
    P::Dict(vec![(
        s("a"),
        P::List(vec![
            P::Int(1),
            P::Float(2.5),
            s("x"),
            P::None,
            P::Bytes(b"y".to_vec()),
            P::Tuple(vec![P::Bool(true)]),
        ]),
    )])
}
