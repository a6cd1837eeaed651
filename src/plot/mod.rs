//! Plots as PNG: line charts (linear or log axes) with title, axis labels and legend, charts of
//! several stacked panels, and image grids. Text is drawn with DejaVu Sans compiled into the
//! binary, so no font package is needed.

pub mod axis;
mod grid;

pub use grid::{image_grid, Tile};

use anyhow::{Context, Result};
use axis::Ticks;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

const FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// Plot width in pixels.
pub const WIDTH: u32 = 900;
/// Plot height in pixels (of a one-panel chart; each further panel adds [`PANEL_HEIGHT`]).
pub const HEIGHT: u32 = 600;
/// Height of each panel after the first in [`panels`].
pub const PANEL_HEIGHT: u32 = 450;

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the embedded DejaVu Sans font is corrupt"));
    });
}

/// One named line of points.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// `(x, y)` points.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series from y values at x = 1, 2, 3... (epochs).
    pub fn by_epoch(name: &str, ys: &[f64]) -> Series {
        Series {
            name: name.into(),
            points: ys
                .iter()
                .enumerate()
                .map(|(i, &y)| ((i + 1) as f64, y))
                .collect(),
        }
    }

    /// Whether any point can be drawn on these axes.
    fn drawable(&self, chart: &Chart) -> bool {
        self.points.iter().any(|&p| chart.keeps(p))
    }
}

/// A line chart's text and scales.
#[derive(Clone, Debug, Default)]
pub struct Chart<'a> {
    /// Title above the plot.
    pub title: &'a str,
    /// x-axis label.
    pub x_label: &'a str,
    /// y-axis label.
    pub y_label: &'a str,
    /// Logarithmic x axis.
    pub x_log: bool,
    /// Logarithmic y axis.
    pub y_log: bool,
    /// The x values are whole numbers (epochs, ranks): ticks only at whole numbers.
    pub x_integer: bool,
    /// A line of text inside the plot (say, why a series is missing).
    pub note: Option<&'a str>,
}

impl Chart<'_> {
    /// Whether a point can be drawn (finite, positive on a log axis).
    fn keeps(&self, (x, y): (f64, f64)) -> bool {
        x.is_finite() && y.is_finite() && (!self.x_log || x > 0.0) && (!self.y_log || y > 0.0)
    }

    fn ticks(&self, series: &[Series]) -> (Ticks, Ticks) {
        let points = || {
            series
                .iter()
                .flat_map(|s| s.points.iter().copied())
                .filter(|&p| self.keeps(p))
        };
        let x = if self.x_log {
            axis::log(points().map(|p| p.0))
        } else {
            axis::linear(points().map(|p| p.0), self.x_integer)
        };
        let y = if self.y_log {
            axis::log(points().map(|p| p.1))
        } else {
            axis::linear(points().map(|p| p.1), false)
        };
        (x, y)
    }
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Upper right, unless the lines end in the upper half of the plot (accuracy curves): then
/// lower right, so the legend does not hide where the curves end.
fn legend_position(series: &[Series], ys: (f64, f64), log: bool) -> SeriesLabelPosition {
    let ends: Vec<f64> = series
        .iter()
        .filter_map(|s| s.points.last().map(|p| p.1))
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
        .collect();
    if ends.is_empty() {
        return SeriesLabelPosition::UpperRight;
    }
    let f = |v: f64| if log { v.ln() } else { v };
    let mid = 0.5 * (f(ys.0) + f(ys.1));
    let mean = ends.iter().map(|&v| f(v)).sum::<f64>() / ends.len() as f64;
    if mean > mid {
        SeriesLabelPosition::LowerRight
    } else {
        SeriesLabelPosition::UpperRight
    }
}

/// Draws `series` as lines with markers into a PNG at `path` (written atomically). Series
/// without a drawable point are left out of the legend.
pub fn line_chart(path: &Path, chart: &Chart, series: &[Series]) -> Result<()> {
    panels(path, &[(chart.clone(), series.to_vec())])
}

/// Draws one chart per entry, stacked top to bottom, into one PNG at `path`: for quantities
/// with different units that belong together (each panel has its own axis).
pub fn panels(path: &Path, charts: &[(Chart, Vec<Series>)]) -> Result<()> {
    register_font();
    let heights: Vec<u32> = (0..charts.len())
        .map(|i| if i == 0 { HEIGHT } else { PANEL_HEIGHT })
        .collect();
    let height: u32 = heights.iter().sum::<u32>().max(HEIGHT);
    let mut buf = vec![0u8; (WIDTH * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let mut rest = root.clone();
        for ((chart, series), h) in charts.iter().zip(&heights) {
            let (area, below) = rest.split_vertically(*h);
            draw_panel(&area, chart, series)?;
            rest = below;
        }
        root.present().map_err(draw_err)?;
    }
    save_png(path, &buf, WIDTH, height)
}

/// Draws one chart into `area`; with nothing drawable, the title and the note only.
fn draw_panel(
    area: &DrawingArea<BitMapBackend, Shift>,
    chart: &Chart,
    series: &[Series],
) -> Result<()> {
    let shown: Vec<&Series> = series.iter().filter(|s| s.drawable(chart)).collect();
    if shown.is_empty() {
        let (w, h) = area.dim_in_pixel();
        area.draw_text(
            chart.title,
            &(FAMILY, 26).into_font().color(&BLACK),
            (18, 18),
        )
        .map_err(draw_err)?;
        let note = chart.note.unwrap_or("nothing to draw");
        area.draw_text(
            note,
            &(FAMILY, 22).into_font().color(&BLACK.mix(0.7)),
            (w as i32 / 6, h as i32 / 2),
        )
        .map_err(draw_err)?;
        return Ok(());
    }
    let (xt, yt) = chart.ticks(series);
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(chart.title, (FAMILY, 26))
        .margin(18)
        .x_label_area_size(50)
        .y_label_area_size(90);
    macro_rules! draw {
        ($x:expr, $y:expr) => {{
            let mut ctx = builder.build_cartesian_2d($x, $y).map_err(draw_err)?;
            ctx.configure_mesh()
                .x_desc(chart.x_label)
                .y_desc(chart.y_label)
                .label_style((FAMILY, 16))
                .x_label_formatter(&|x| axis::tick_label(*x))
                .y_label_formatter(&|y| axis::tick_label(*y))
                .axis_desc_style((FAMILY, 18))
                .draw()
                .map_err(draw_err)?;
            for (i, s) in shown.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                let pts: Vec<(f64, f64)> = s
                    .points
                    .iter()
                    .copied()
                    .filter(|&p| chart.keeps(p))
                    .collect();
                ctx.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                    .map_err(draw_err)?
                    .label(s.name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                    });
                if pts.len() <= 60 {
                    ctx.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                        .map_err(draw_err)?;
                }
            }
            ctx.configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font((FAMILY, 16))
                .position(legend_position(series, yt.range, chart.y_log))
                .draw()
                .map_err(draw_err)?;
            // Bottom left, beside the x-axis label: never over the data.
            if let Some(note) = chart.note {
                let (_, h) = area.dim_in_pixel();
                area.draw_text(
                    note,
                    &(FAMILY, 16).into_font().color(&BLACK.mix(0.7)),
                    (12, h as i32 - 26),
                )
                .map_err(draw_err)?;
            }
        }};
    }
    let log = |t: &Ticks| {
        (t.range.0..t.range.1)
            .log_scale()
            .with_key_points(t.major.clone())
            .with_light_points(t.minor.clone())
    };
    let (x, y) = (axis::Linear(xt.clone()), axis::Linear(yt.clone()));
    match (chart.x_log, chart.y_log) {
        (true, true) => draw!(log(&xt), log(&yt)),
        (false, true) => draw!(x, log(&yt)),
        (true, false) => draw!(log(&xt), y),
        (false, false) => draw!(x, y),
    }
    Ok(())
}

fn draw_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing failed: {e:?}")
}

/// Encodes an RGB buffer as PNG and writes it atomically.
fn save_png(path: &Path, rgb: &[u8], w: u32, h: u32) -> Result<()> {
    let img =
        image::RgbImage::from_raw(w, h, rgb.to_vec()).context("image buffer of the wrong size")?;
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, image::ImageFormat::Png)
        .with_context(|| format!("{}: cannot encode PNG", path.display()))?;
    crate::artifacts::write_atomic(path, bytes.get_ref())
}
