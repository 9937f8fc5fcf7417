//! Options and output shared by every benchmark area.

use std::time::Duration;

/// What the run was asked for.
#[allow(dead_code)]
pub struct Ctx {
    pub quick: bool,
    only: Option<Vec<String>>,
}

#[allow(dead_code)]
impl Ctx {
    pub fn from_args() -> Ctx {
        let args: Vec<String> = std::env::args().collect();
        let quick = args.iter().any(|a| a == "--quick");
        let only = args
            .iter()
            .position(|a| a == "--only")
            .and_then(|i| args.get(i + 1))
            .map(|s| s.split(',').map(str::to_string).collect());
        Ctx { quick, only }
    }

    /// Whether `metric` was asked for.
    pub fn want(&self, metric: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|m| m == metric))
    }

    /// Prints one result line. `extra` is a list of already-JSON-encoded `"key": value` pairs.
    pub fn emit(&self, metric: &str, value: f64, unit: &str, extra: &[(&str, String)]) {
        if !self.want(metric) {
            return;
        }
        let mut line = format!(
            "{{\"metric\": \"{metric}\", \"value\": {}, \"unit\": \"{unit}\", \"impl\": \"processing\"",
            round3(value)
        );
        for (k, v) in extra {
            line.push_str(&format!(", \"{k}\": {v}"));
        }
        line.push('}');
        println!("{line}");
    }
}

/// A JSON string literal.
#[allow(dead_code)]
pub fn json_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// The smallest of `rounds` measurements, as `benches/python/baseline.py`'s `best_of_3`.
#[allow(dead_code)]
pub fn best_of(rounds: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..rounds).map(|_| f()).min().unwrap_or_default()
}
