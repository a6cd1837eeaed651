//! Axis ranges, tick positions and tick labels, computed here rather than left to plotters so
//! that an epoch axis has integer ticks, a flat series gets a range around its value instead of
//! a degenerate one, and a log axis is labelled at every decade (and between decades when the
//! range is short).

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};

/// An axis: its drawn range, the labelled ticks and the unlabelled (light) grid lines.
#[derive(Clone, Debug, PartialEq)]
pub struct Ticks {
    /// The drawn range, `lo < hi`.
    pub range: (f64, f64),
    /// Labelled tick positions, increasing, inside `range`.
    pub major: Vec<f64>,
    /// Light grid lines without labels.
    pub minor: Vec<f64>,
}

/// A linear plotters coordinate with these ticks (plotters' own `f64` range chooses its ticks
/// itself and cannot take a list).
pub struct Linear(pub Ticks);

impl Ranged for Linear {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let (lo, hi) = self.0.range;
        let f = (v - lo) / (hi - lo);
        limit.0 + (f * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.0.minor.clone()
        } else {
            self.0.major.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.0.range.0..self.0.range.1
    }
}

/// Fewest labelled ticks an axis should show.
const MIN_TICKS: usize = 3;
/// Most labelled ticks before labels crowd.
const MAX_TICKS: usize = 11;

fn finite_range(values: impl Iterator<Item = f64>, log: bool) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    lo.is_finite().then_some((lo, hi))
}

/// A linear axis over `values` (non-finite ones ignored). With `integer`, ticks fall on whole
/// numbers only (epochs, ranks). A flat series gets ±10% of its value (±1 around zero).
pub fn linear(values: impl Iterator<Item = f64>, integer: bool) -> Ticks {
    let (mut lo, mut hi) = finite_range(values, false).unwrap_or((0.0, 1.0));
    // A flat series: ±10% of its value (±1 around zero); on an integer axis the padding
    // below (±0.5) is enough, and keeps ticks off values that do not exist (epoch 0).
    if !integer && hi - lo <= 1e-9 * lo.abs().max(hi.abs()).max(1e-300) {
        let half = if lo == 0.0 { 1.0 } else { 0.1 * lo.abs() };
        (lo, hi) = (lo - half, hi + half);
    }
    let pad = if integer {
        ((hi - lo) * 0.05).max(0.5)
    } else {
        (hi - lo) * 0.05
    };
    let (lo, hi) = (lo - pad, hi + pad);
    let mut step = nice_step((hi - lo) / 6.0);
    if integer {
        // Every whole number while they fit (ranks 1..10 all labelled).
        step = if hi - lo <= MAX_TICKS as f64 {
            1.0
        } else {
            step.max(1.0).round()
        };
    }
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    let major = (first..=last).map(|i| i as f64 * step).collect();
    Ticks {
        range: (lo, hi),
        major,
        minor: Vec::new(),
    }
}

/// The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&s| s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * p)
}

/// A logarithmic axis over the positive finite `values`. Every decade inside the range is
/// labelled; when that gives fewer than three labels, so are 2× and 5× (or every integer
/// multiple) of each decade; the other integer multiples are light grid lines.
pub fn log(values: impl Iterator<Item = f64>) -> Ticks {
    let (lo, hi) = finite_range(values, true).unwrap_or((1.0, 10.0));
    let (lo, hi) = if hi / lo < 1.5 {
        (lo / 1.5, hi * 1.5)
    } else {
        (lo / 1.3, hi * 1.3)
    };
    let decades = lo.log10().floor() as i32..=hi.log10().ceil() as i32;
    let at = |mantissas: &[f64]| -> Vec<f64> {
        decades
            .clone()
            .flat_map(|d| mantissas.iter().map(move |m| m * 10f64.powi(d)))
            .filter(|v| (lo..=hi).contains(v))
            .collect()
    };
    let all: [f64; 9] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
    let half_steps: Vec<f64> = (2..20).map(|i| i as f64 * 0.5).collect();
    let major = [&[1.0][..], &[1.0, 2.0, 5.0], &all, &half_steps]
        .into_iter()
        .map(&at)
        .find(|t| t.len() >= MIN_TICKS)
        .unwrap_or_else(|| at(&half_steps));
    let minor = at(&all)
        .into_iter()
        .filter(|v| !major.iter().any(|m| (m / v - 1.0).abs() < 1e-9))
        .collect();
    Ticks {
        range: (lo, hi),
        major: thin(major),
        minor,
    }
}

/// Keeps every other tick until at most [`MAX_TICKS`] remain.
fn thin(mut ticks: Vec<f64>) -> Vec<f64> {
    while ticks.len() > MAX_TICKS {
        ticks = ticks.into_iter().step_by(2).collect();
    }
    ticks
}

/// A tick label: `2` not `2.0`, `0.0005`, `2.5e-7` for tiny values, `1.5e6` for huge ones;
/// float noise (0.30000000000000004) rounded away.
pub fn tick_label(v: f64) -> String {
    if v.abs() < 1e-300 {
        return "0".into();
    }
    let a = v.abs();
    if (1e-4..1e6).contains(&a) {
        trim(format!("{v:.6}"))
    } else {
        let s = format!("{v:.2e}");
        match s.split_once('e') {
            Some((m, e)) => format!("{}e{e}", trim(m.to_string())),
            None => s,
        }
    }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(t: &Ticks) -> Vec<String> {
        t.major.iter().map(|&v| tick_label(v)).collect()
    }

    #[test]
    fn one_epoch_has_one_integer_tick_and_a_flat_series_distinct_labels() {
        let x = linear([1.0].into_iter(), true);
        assert_eq!(x.major, vec![1.0]);
        let y = linear([0.03].into_iter(), false);
        let l = labels(&y);
        assert!(l.len() >= 3, "{l:?}");
        let mut unique = l.clone();
        unique.dedup();
        assert_eq!(unique, l, "labels repeat");
        assert!(y.range.0 < 0.03 && y.range.1 > 0.03);
    }

    #[test]
    fn short_runs_have_whole_epoch_ticks() {
        for n in 1..=60 {
            let t = linear((1..=n).map(f64::from), true);
            assert!(!t.major.is_empty(), "{n} epochs");
            assert!(
                t.major.iter().all(|v| v.fract() == 0.0),
                "{n}: {:?}",
                t.major
            );
            assert!(t.major.len() <= MAX_TICKS, "{n}: {:?}", t.major);
        }
        assert_eq!(
            linear((1..=3).map(f64::from), true).major,
            vec![1.0, 2.0, 3.0]
        );
    }

    #[test]
    fn log_axes_label_every_decade_and_short_ranges_between() {
        let t = log([0.2, 0.9, 30.0, 4000.0].into_iter());
        for d in [1.0, 10.0, 100.0, 1000.0] {
            assert!(
                t.major.iter().any(|m| (m / d - 1.0).abs() < 1e-9),
                "{d}: {:?}",
                t.major
            );
        }
        // Depth plots: a range inside one decade still gets three or more labels.
        let t = log([3.1, 4.2, 5.0].into_iter());
        assert!(t.major.len() >= 3, "{:?}", t.major);
        assert!(t.major.iter().all(|v| (t.range.0..=t.range.1).contains(v)));
        // Batch sizes 16..1024: more than "100" and "1000".
        assert!(log([16.0, 1024.0].into_iter()).major.len() >= 3);
    }

    #[test]
    fn labels_and_values_read_without_float_noise() {
        assert_eq!(tick_label(0.1 + 0.2), "0.3");
        assert_eq!(tick_label(2.0), "2");
        assert_eq!(tick_label(2.5e-7), "2.5e-7");
    }
}
