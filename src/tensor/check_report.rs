//! What `gradcheck` reports: every op's first- and second-order errors, as a table through
//! `Display` and as a JSON array through `Serialize`.

use super::check::{check_all, OpReport, TOLERANCE};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Every op's check, in catalogue order (JSON: the array of [`OpReport`]s).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GradcheckReport {
    /// One report per op.
    pub ops: Vec<OpReport>,
}

impl GradcheckReport {
    /// Checks every op, with shapes and values drawn from `seed` (see [`check_all`]).
    pub fn run(seed: u64) -> GradcheckReport {
        GradcheckReport {
            ops: check_all(seed),
        }
    }

    /// The names of the ops whose errors exceed [`TOLERANCE`].
    pub fn failed(&self) -> Vec<&str> {
        self.ops
            .iter()
            .filter(|r| !r.pass)
            .map(|r| r.op.as_str())
            .collect()
    }
}

impl fmt::Display for GradcheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<22} {:>14} {:>14}  pass (tolerance {:.0e})",
            "op", "first order", "second order", TOLERANCE
        )?;
        for r in &self.ops {
            writeln!(
                f,
                "{:<22} {:>14.3e} {:>14.3e}  {}",
                r.op,
                r.first_order,
                r.second_order,
                if r.pass { "yes" } else { "NO" }
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(name: &str, first: f64, second: f64) -> OpReport {
        OpReport {
            op: name.into(),
            first_order: first,
            second_order: second,
            pass: first <= TOLERANCE && second <= TOLERANCE,
        }
    }

    #[test]
    fn json_is_the_bare_array_and_failures_are_named_in_the_table() {
        let report = GradcheckReport {
            ops: vec![op("exp", 1e-9, 2e-9), op("log", 1e-9, 5e-3)],
        };
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            serde_json::to_value(&report.ops).unwrap()
        );
        assert_eq!(report.failed(), vec!["log"]);
        let text = report.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].contains("tolerance 1e-6"), "{text}");
        assert!(
            lines[1].starts_with("exp ") && lines[1].ends_with("yes"),
            "{text}"
        );
        assert!(
            lines[2].contains("5.000e-3") && lines[2].ends_with("NO"),
            "{text}"
        );
    }
}
