//! [`ErrorChain`]: an error in the form that crosses a process boundary.
//!
//! An error that happens in one process and is reported in another (a pool task's codec
//! failure, a worker's channel error, a cluster host's report) cannot travel as its Rust type:
//! `dyn Error` is not serializable. It travels as an `ErrorChain`: for each link of the chain of
//! [`source`](std::error::Error::source)s, the link's kind (its Rust type name where known), its
//! message, and — when the link is an operating-system error — its raw OS error code. The
//! receiving side gets back an error whose `source()` chain has the same messages, and whose
//! last link is a real [`std::io::Error`] (with the same `raw_os_error()`, hence the same
//! `kind()`) when the original chain reached one.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// An error together with its chain of causes, in a form that can be serialized, compared and
/// cloned.
///
/// ```
/// use processing::core::ErrorChain;
/// let os = std::io::Error::from_raw_os_error(2);
/// let chain = ErrorChain::with_source("cannot open the spill file", &os);
/// let bytes = processing::core::codec::encode(&chain).unwrap();
/// let back: ErrorChain = processing::core::codec::decode(&bytes).unwrap();
/// assert_eq!(back, chain);
/// assert_eq!(back.message(), "cannot open the spill file");
/// let io = back.os_error().unwrap();
/// assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
/// ```
#[derive(Clone)]
pub struct ErrorChain {
    kind: String,
    message: String,
    os_error: Option<i32>,
    source: Option<Box<ErrorChain>>,
    /// The link re-created as an OS error (`os_error` is `Some`), so that `source()` of the
    /// link above reaches a real `std::io::Error`.
    io: Option<Arc<std::io::Error>>,
}

impl ErrorChain {
    /// A message without an underlying error.
    pub fn new(message: impl Into<String>) -> Self {
        ErrorChain {
            kind: String::new(),
            message: message.into(),
            os_error: None,
            source: None,
            io: None,
        }
    }

    /// A message caused by `source` (whose whole chain is kept).
    pub fn with_source(message: impl Into<String>, source: &(dyn Error + 'static)) -> Self {
        let mut e = ErrorChain::new(message);
        e.source = Some(Box::new(ErrorChain::of(source)));
        e
    }

    /// The chain of `error`: its message and the messages of its sources, the OS error code
    /// of each link that is a `std::io::Error`.
    pub fn of(error: &(dyn Error + 'static)) -> Self {
        if let Some(chain) = error.downcast_ref::<ErrorChain>() {
            return chain.clone();
        }
        let mut link = ErrorChain::new(error.to_string());
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            link.kind = "std::io::Error".into();
            if let Some(code) = io.raw_os_error() {
                link.os_error = Some(code);
                link.io = Some(Arc::new(std::io::Error::from_raw_os_error(code)));
            }
        }
        if let Some(next) = error.source() {
            link.source = Some(Box::new(ErrorChain::of(next)));
        }
        link
    }

    /// The chain of `error`, recording its type name as the kind.
    pub fn of_typed<E: Error + 'static>(error: &E) -> Self {
        let mut chain = ErrorChain::of(error);
        if chain.kind.is_empty() {
            chain.kind = std::any::type_name::<E>().into();
        }
        chain
    }

    /// The kind of the first link: the Rust type name of the original error when it was
    /// recorded (`"std::io::Error"` for an OS error), empty otherwise.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The first link's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The next link of the chain (the cause of this one), if any.
    pub fn cause(&self) -> Option<&ErrorChain> {
        self.source.as_deref()
    }

    /// The messages of every link, first to last.
    pub fn messages(&self) -> Vec<&str> {
        self.links().map(|link| link.message.as_str()).collect()
    }

    /// The first operating-system error of the chain, re-created from its code.
    pub fn os_error(&self) -> Option<&std::io::Error> {
        self.links().find_map(|link| link.io.as_deref())
    }

    /// This link and every cause after it, first to last.
    fn links(&self) -> impl Iterator<Item = &ErrorChain> {
        std::iter::successors(Some(self), |link| link.source.as_deref())
    }

    /// The link as it travels: without its cause and its re-created OS error.
    fn wire(&self) -> WireLink {
        WireLink {
            kind: self.kind.clone(),
            message: self.message.clone(),
            os_error: self.os_error,
        }
    }
}

/// `From<String>` and `From<&str>` for the message types here (each through its `new`).
macro_rules! from_message {
    ($($t:ident),*) => {$(
        impl From<String> for $t {
            fn from(message: String) -> Self {
                $t::new(message)
            }
        }

        impl From<&str> for $t {
            fn from(message: &str) -> Self {
                $t::new(message)
            }
        }
    )*};
}

from_message!(ErrorChain, ErrorContext);

/// The links, first to last, each as it travels (kind, message, OS error code).
impl fmt::Debug for ErrorChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ErrorChain")
            .field(&self.links().map(ErrorChain::wire).collect::<Vec<_>>())
            .finish()
    }
}

impl fmt::Display for ErrorChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for ErrorChain {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        if let Some(io) = &self.io {
            // An OS error link: its cause is the re-created `std::io::Error`.
            return Some(&**io);
        }
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

/// Two chains are equal when kinds, messages and OS error codes of every link are.
impl PartialEq for ErrorChain {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.message == other.message
            && self.os_error == other.os_error
            && self.source == other.source
    }
}

impl Eq for ErrorChain {}

#[derive(Debug, Serialize, Deserialize)]
struct WireLink {
    kind: String,
    message: String,
    os_error: Option<i32>,
}

impl Serialize for ErrorChain {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let links: Vec<WireLink> = self.links().map(ErrorChain::wire).collect();
        links.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ErrorChain {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let links = Vec::<WireLink>::deserialize(deserializer)?;
        let mut chain: Option<ErrorChain> = None;
        for link in links.into_iter().rev() {
            chain = Some(ErrorChain {
                kind: link.kind,
                message: link.message,
                os_error: link.os_error,
                io: link
                    .os_error
                    .map(|c| Arc::new(std::io::Error::from_raw_os_error(c))),
                source: chain.map(Box::new),
            });
        }
        chain.ok_or_else(|| serde::de::Error::custom("an error chain has at least one link"))
    }
}

/// What failed, in words, and the error that caused it (if there is one) as its
/// [`source`](std::error::Error::source): the payload of an error variant that adds context to
/// an underlying error without turning it into a string.
///
/// Its `Display` is `"{message}: {source}"` (just the source's text when the message is empty,
/// just the message when there is no source).
///
/// ```
/// use processing::core::ErrorContext;
/// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
/// let e = ErrorContext::with_source("cannot connect to 127.0.0.1:9", refused);
/// assert_eq!(e.message(), "cannot connect to 127.0.0.1:9");
/// let io = std::error::Error::source(&e).unwrap().downcast_ref::<std::io::Error>().unwrap();
/// assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
/// let plain: ErrorContext = "the server was restarted".into();
/// assert!(std::error::Error::source(&plain).is_none());
/// ```
#[derive(Debug)]
pub struct ErrorContext {
    message: String,
    source: Option<crate::BoxError>,
}

impl ErrorContext {
    /// A message without an underlying error.
    pub fn new(message: impl Into<String>) -> Self {
        ErrorContext {
            message: message.into(),
            source: None,
        }
    }

    /// A message caused by `source`.
    pub fn with_source(message: impl Into<String>, source: impl Into<crate::BoxError>) -> Self {
        ErrorContext {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// The message (without the source's).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The first error of type `E` in the source chain.
    pub fn find_source<E: Error + 'static>(&self) -> Option<&E> {
        find_in_chain(self.source()?)
    }

    /// The operating system's error somewhere in the source chain, if there is one.
    pub fn os_error(&self) -> Option<&std::io::Error> {
        self.find_source::<std::io::Error>()
    }
}

impl fmt::Display for ErrorContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.source, self.message.is_empty()) {
            (Some(source), true) => write!(f, "{source}"),
            (Some(source), false) => write!(f, "{}: {source}", self.message),
            (None, _) => f.write_str(&self.message),
        }
    }
}

impl Error for ErrorContext {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

/// The first error of type `E` in the chain that starts at `error` (`error` itself, then its
/// `source()`, and so on): how every error of the workspace finds the OS error behind it.
///
/// ```
/// let io = std::io::Error::from(std::io::ErrorKind::NotFound);
/// let e = processing::core::ErrorContext::with_source("cannot open", io);
/// let found = processing::core::find_in_chain::<std::io::Error>(&e).unwrap();
/// assert_eq!(found.kind(), std::io::ErrorKind::NotFound);
/// ```
pub fn find_in_chain<'a, E: Error + 'static>(error: &'a (dyn Error + 'static)) -> Option<&'a E> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::ErrorChain;
    use std::error::Error;

    #[test]
    fn chain_keeps_messages_and_reaches_the_os_error_after_a_round_trip() {
        let os = std::io::Error::from_raw_os_error(32);
        let outer = std::io::Error::other(ErrorChain::with_source("writing the task", &os));
        let chain = ErrorChain::of_typed(&outer);
        let back: ErrorChain =
            crate::codec::decode(&crate::codec::encode(&chain).unwrap()).unwrap();
        assert_eq!(back, chain);
        assert_eq!(back.messages().len(), 2);
        let mut last: &(dyn Error + 'static) = &back;
        while let Some(next) = last.source() {
            last = next;
        }
        let io = last.downcast_ref::<std::io::Error>().unwrap();
        assert_eq!(io.raw_os_error(), Some(32));
    }
}
