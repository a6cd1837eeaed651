//! The `analyze scaling` report as text: one row per measured point (printed as each is
//! measured, under [`Point::TABLE_HEADER`]), then the fitted exponents.

use super::scaling::{Fit, Point, ScalingReport};
use std::fmt;

impl Point {
    /// The header of the table [`Point`]'s rows make.
    pub const TABLE_HEADER: &'static str = "grid    value  threads      ms/step       images/s";
}

/// One table row, without a line end.
impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<6} {:>6} {:>8} {:>12.3} {:>14.0}",
            self.axis,
            self.value,
            self.threads,
            self.step_seconds * 1e3,
            self.images_per_second
        )
    }
}

/// The fitted exponents, after a blank line (see [`ScalingReport::fits_table`]).
pub struct FitsTable<'a>(&'a [Fit]);

impl fmt::Display for FitsTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\nfitted t ∝ xᵅ:")?;
        for fit in self.0 {
            writeln!(
                f,
                "  {:<6} {} thread(s): α = {:.2}",
                fit.axis, fit.threads, fit.exponent
            )?;
        }
        Ok(())
    }
}

impl ScalingReport {
    /// The fitted exponents alone: what follows the rows when they were printed as measured.
    pub fn fits_table(&self) -> FitsTable<'_> {
        FitsTable(&self.fits)
    }
}

/// The whole table, then the fitted exponents.
impl fmt::Display for ScalingReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", Point::TABLE_HEADER)?;
        for p in &self.points {
            writeln!(f, "{p}")?;
        }
        write!(f, "{}", self.fits_table())
    }
}
