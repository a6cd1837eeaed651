//! The plots of `analyze hessian` (with the `cli` feature, which brings plotters).

use super::hessian::HessianReport;
use super::lanczos::{self, Density};
use crate::plot::{self, Chart, Series};
use anyhow::Result;
use std::path::{Path, PathBuf};

fn eigen_series(name: &str, values: &[lanczos::RitzValue]) -> Series {
    Series {
        name: name.into(),
        points: values
            .iter()
            .enumerate()
            .map(|(i, e)| ((i + 1) as f64, e.value))
            .collect(),
    }
}

/// `hessian_top_k_<tag>.png` (the largest eigenvalues, the Gauss–Newton matrix's beside them when
/// computed), or with `--smallest`
/// `hessian_extremes_<tag>.png` (both ends, each on its own axis so that small negative values
/// are not squashed against large positive ones); `hessian_density_<tag>.png` when computed.
pub(super) fn write_plots(r: &HessianReport, dir: &Path, tag: &str) -> Result<Vec<PathBuf>> {
    let what = format!("{} on {} ({} images)", r.activation, r.dataset, r.samples);
    let largest_title = if r.ggn.is_some() {
        format!("Hessian and Gauss–Newton top eigenvalues, {what}")
    } else {
        format!("Largest Hessian eigenvalues by Lanczos, {what}")
    };
    let chart = |title, y_label| Chart {
        title,
        x_label: "rank i",
        y_label,
        x_integer: true,
        ..Chart::default()
    };
    let mut top = vec![eigen_series("largest λᵢ (Hessian)", &r.lanczos.largest)];
    if let Some(g) = &r.ggn {
        top.push(eigen_series("largest λᵢ (Gauss–Newton)", &g.largest));
    }
    let largest = (chart(&largest_title, "eigenvalue λᵢ"), top);
    let mut paths = Vec::new();
    if r.lanczos.smallest.is_empty() {
        let top = dir.join(format!("hessian_top_k_{tag}.png"));
        plot::panels(&top, &[largest])?;
        paths.push(top);
    } else {
        let smallest_title = format!("Smallest Hessian eigenvalues by Lanczos, {what}");
        let both = dir.join(format!("hessian_extremes_{tag}.png"));
        plot::panels(
            &both,
            &[
                largest,
                (
                    chart(&smallest_title, "eigenvalue λᵢ (negative: concave)"),
                    vec![eigen_series("smallest λᵢ", &r.lanczos.smallest)],
                ),
            ],
        )?;
        paths.push(both);
    }
    if let Some(density) = &r.density {
        let path = dir.join(format!("hessian_density_{tag}.png"));
        write_density_plot(r, density, &path)?;
        paths.push(path);
    }
    Ok(paths)
}

fn write_density_plot(r: &HessianReport, density: &Density, path: &Path) -> Result<()> {
    let floor = 1e-8;
    plot::line_chart(
        path,
        &Chart {
            title: &format!(
                "Hessian eigenvalue density (SLQ), {} on {}",
                r.activation, r.dataset
            ),
            x_label: "eigenvalue",
            y_label: "density (log scale)",
            y_log: true,
            ..Chart::default()
        },
        &[Series {
            name: format!(
                "{} runs × {} steps, σ = {}",
                density.runs,
                density.steps,
                super::readable(density.sigma)
            ),
            points: density
                .grid
                .iter()
                .zip(&density.density)
                .map(|(&x, &d)| (x, d.max(floor)))
                .collect(),
        }],
    )
}
