//! Helpers shared by the cross-crate conformance suite in `tests/`, the examples and the
//! benchmark programs of the `processing` workspace. Not part of the public API.

pub mod process_cases;
