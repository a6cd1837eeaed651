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

#[cfg(test)]
mod tests {
    use super::*;

    fn point(axis: &str, value: usize, seconds: f64) -> Point {
        Point {
            axis: axis.into(),
            value,
            threads: 1,
            batch: value,
            width: 128,
            depth: 3,
            step_seconds: seconds,
            images_per_second: value as f64 / seconds,
        }
    }

    #[test]
    fn rows_printed_as_measured_then_the_fits_are_the_whole_report() {
        let report = ScalingReport {
            blas: "test".into(),
            steps: 1,
            points: vec![point("batch", 16, 0.001), point("batch", 32, 0.0025)],
            fits: vec![Fit {
                axis: "batch".into(),
                threads: 1,
                exponent: 1.3219,
                prefactor: 1e-5,
            }],
            build: crate::build_info::BuildInfo::current(),
        };
        let mut live = format!("{}\n", Point::TABLE_HEADER);
        for p in &report.points {
            live += &format!("{p}\n");
        }
        live += &report.fits_table().to_string();
        assert_eq!(report.to_string(), live);
        let rows: Vec<String> = report.points.iter().map(|p| p.to_string()).collect();
        // Columns line up under the header: each row as wide as it.
        for r in &rows {
            assert_eq!(
                r.chars().count(),
                Point::TABLE_HEADER.chars().count(),
                "{r:?}"
            );
        }
        assert!(
            rows[1].contains(" 2.500 ") && rows[1].ends_with(" 12800"),
            "{rows:?}"
        );
        assert!(live.ends_with("\nfitted t ∝ xᵅ:\n  batch  1 thread(s): α = 1.32\n"));
    }
}
