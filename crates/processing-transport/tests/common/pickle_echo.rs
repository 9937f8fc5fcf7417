//! The dynamic value of the pickle corpus's `echo_*` entries and of the Python scripts,
//! `{"a": [1, 2.5, "x", None, b"y", (True,)]}`: shared by the pickle unit tests and the root
//! suite (both include this file by path, next to their own `PickleValue` import).

use super::PickleValue;

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
