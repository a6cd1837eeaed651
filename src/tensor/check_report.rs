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
