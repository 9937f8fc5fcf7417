//! What travels over the bootstrap channel between a parent and its child.
//!
//! Parent → child: one launch frame, whose body is a postcard [`Config`] and whose OS handles
//! are the argument's handles (the first `split`) followed by the config's own (redirections).
//! Child → parent: [`Report`] frames: `Ready` once the child took over, then one final report.
//! A frame is one frame of processing-core's framer ([`processing_core::frame`]) whose body is
//! `[split: u32 LE][postcard body]`; its handles are attached to its first byte (Unix).

use std::io;
use std::path::PathBuf;

use processing_core::frame::{self, FrameError, FrameSource, RESERVED};
use processing_core::TransferableHandle;
use serde::{Deserialize, Serialize};

use crate::target::BuildId;
use crate::StartMethod;

/// Environment marker of a child: the bootstrap channel (a descriptor number on Unix, two
/// handle values on Windows). It carries no secret.
pub(crate) const CHILD_MARKER: &str = "PROCESSING_BOOTSTRAP";
/// Environment marker of the fork server: its control socket and the expected parent pid.
pub(crate) const SERVER_MARKER: &str = "PROCESSING_FORKSERVER";
/// Setting this (to anything but `0`) disables the pre-main hook; `processing::init()` then
/// runs the bootstrap.
pub(crate) const NO_AUTO_BOOTSTRAP: &str = "PROCESSING_NO_AUTO_BOOTSTRAP";

/// Exit code of a child whose bootstrap could not proceed (the parent reports why).
pub(crate) const EXIT_BOOTSTRAP_FAILED: i32 = 70;

/// The largest frame body (split count included) either side accepts.
const MAX_FRAME: u64 = 1 << 31;
/// Bytes of the split count at the front of a frame's body.
const SPLIT: usize = 4;

/// Everything a child needs to become the process its parent asked for.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Config {
    pub(crate) build: BuildId,
    pub(crate) entry: i64,
    pub(crate) args: Vec<u8>,
    pub(crate) name: String,
    pub(crate) daemon: bool,
    pub(crate) authkey: Vec<u8>,
    pub(crate) parent_pid: u32,
    pub(crate) parent_name: String,
    pub(crate) method: StartMethod,
    pub(crate) setup: Setup,
}

/// Settings the child applies to itself (for the spawn method the environment, working
/// directory and redirections were already applied by the exec).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Setup {
    pub(crate) env: Vec<(String, String)>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) stdio: [StdioMsg; 3],
    pub(crate) limits: Vec<(crate::Resource, u64, u64)>,
    pub(crate) die_with_parent: bool,
}

impl Setup {
    /// Whether there is nothing to apply (so applying cannot fail).
    pub(crate) fn is_empty(&self) -> bool {
        self.env.is_empty()
            && self.cwd.is_none()
            && self.stdio.iter().all(|s| matches!(s, StdioMsg::Keep))
            && self.limits.is_empty()
            && !self.die_with_parent
    }
}

/// One redirection as the child applies it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) enum StdioMsg {
    /// Keep what the process has.
    #[default]
    Keep,
    /// Install this handle.
    Handle(TransferableHandle),
}

/// Why a child refused to run the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Refusal {
    DifferentBinary,
    Setup,
    Config,
    Fork,
}

/// A message from child to parent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Report {
    /// The bootstrap took over; the target is about to run.
    Ready { pid: u32 },
    /// The bootstrap refused the launch.
    Refused {
        why: Refusal,
        detail: processing_core::ErrorChain,
    },
    /// The target returned this encoded value (its handles came with the frame).
    Returned(Vec<u8>),
    /// The target panicked.
    Panicked {
        message: String,
        location: Option<String>,
    },
    /// The arguments or the value could not travel.
    Failed(processing_core::ErrorChain),
}

/// A received frame.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) split: u32,
    /// The frame's body: the split count, then the postcard body.
    payload: Vec<u8>,
    pub(crate) handles: Vec<processing_core::OwnedOsHandle>,
}

impl Frame {
    /// The frame whose body [`read_payload`] returned, with the handles that came with it. A
    /// body without its split count is `InvalidData`.
    pub(crate) fn new(
        payload: Vec<u8>,
        handles: Vec<processing_core::OwnedOsHandle>,
    ) -> io::Result<Frame> {
        let Some(split) = payload.first_chunk::<SPLIT>() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a frame without its split count",
            ));
        };
        Ok(Frame {
            split: u32::from_le_bytes(*split),
            payload,
            handles,
        })
    }

    /// The postcard body.
    pub(crate) fn body(&self) -> &[u8] {
        self.payload.get(SPLIT..).unwrap_or_default()
    }
}

/// The bytes of a frame to send, behind [`RESERVED`] bytes of header room (for
/// [`frame::seal`]): the split count, then `body`.
pub(crate) fn frame_bytes(split: u32, body: &[u8]) -> io::Result<Vec<u8>> {
    if (SPLIT + body.len()) as u64 > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "message too large",
        ));
    }
    let mut buf = Vec::with_capacity(RESERVED + SPLIT + body.len());
    buf.extend_from_slice(&[0; RESERVED]);
    buf.extend_from_slice(&split.to_le_bytes());
    buf.extend_from_slice(body);
    Ok(buf)
}

/// Reads one frame's body (the split count, then the postcard body) from `src`; `None` at a
/// clean end of the stream.
pub(crate) fn read_payload<S: FrameSource<Error = io::Error>>(
    src: &mut S,
) -> io::Result<Option<Vec<u8>>> {
    let mut payload = Vec::new();
    match frame::read_frame(src, MAX_FRAME, &mut payload) {
        Ok(()) => Ok(Some(payload)),
        Err(e) if FrameError::of(&e).is_some_and(|f| f.is_eof()) => Ok(None),
        Err(e) => Err(e),
    }
}
