//! Plots as PNG: line charts (linear or log-log) with title, axis labels and legend, and image
//! grids. Text is drawn with DejaVu Sans compiled into the binary, so no font package is needed.

use anyhow::{Context, Result};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

const FONT: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// Plot width in pixels.
pub const WIDTH: u32 = 900;
/// Plot height in pixels.
pub const HEIGHT: u32 = 600;

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
}

/// A line chart's text and scales.
#[derive(Clone, Debug)]
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
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if log {
        return (lo / 1.3, hi * 1.3);
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    (lo - pad, hi + pad)
}

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

/// Draws `series` as lines with markers into a PNG at `path` (written atomically).
pub fn line_chart(path: &Path, chart: &Chart, series: &[Series]) -> Result<()> {
    register_font();
    let mut buf = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let xs = range(
            series.iter().flat_map(|s| s.points.iter().map(|p| p.0)),
            chart.x_log,
        );
        let ys = range(
            series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
            chart.y_log,
        );
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(chart.title, (FAMILY, 26))
            .margin(18)
            .x_label_area_size(50)
            .y_label_area_size(80);
        macro_rules! draw {
            ($ctx:expr) => {{
                let mut ctx = $ctx;
                ctx.configure_mesh()
                    .x_desc(chart.x_label)
                    .y_desc(chart.y_label)
                    .label_style((FAMILY, 16))
                    .x_label_formatter(&|x| format_tick(*x))
                    .y_label_formatter(&|y| format_tick(*y))
                    .axis_desc_style((FAMILY, 18))
                    .draw()
                    .map_err(draw_err)?;
                for (i, s) in series.iter().enumerate() {
                    let color = PALETTE[i % PALETTE.len()];
                    let pts: Vec<(f64, f64)> = s
                        .points
                        .iter()
                        .copied()
                        .filter(|(x, y)| {
                            x.is_finite()
                                && y.is_finite()
                                && (!chart.x_log || *x > 0.0)
                                && (!chart.y_log || *y > 0.0)
                        })
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
                    .position(legend_position(series, ys, chart.y_log))
                    .draw()
                    .map_err(draw_err)?;
            }};
        }
        match (chart.x_log, chart.y_log) {
            (true, true) => draw!(builder
                .build_cartesian_2d((xs.0..xs.1).log_scale(), (ys.0..ys.1).log_scale())
                .map_err(draw_err)?),
            (false, true) => draw!(builder
                .build_cartesian_2d(xs.0..xs.1, (ys.0..ys.1).log_scale())
                .map_err(draw_err)?),
            (true, false) => draw!(builder
                .build_cartesian_2d((xs.0..xs.1).log_scale(), ys.0..ys.1)
                .map_err(draw_err)?),
            (false, false) => draw!(builder
                .build_cartesian_2d(xs.0..xs.1, ys.0..ys.1)
                .map_err(draw_err)?),
        }
        root.present().map_err(draw_err)?;
    }
    save_png(path, &buf, WIDTH, HEIGHT)
}

/// One image of a grid: grayscale pixels in [0, 1] and a two-line caption; `highlight`
/// draws the caption in red (a wrong prediction).
pub struct Tile<'a> {
    /// Row-major pixels in [0, 1].
    pub pixels: &'a [f32],
    /// First caption line under the image.
    pub caption: String,
    /// Second caption line.
    pub detail: String,
    /// Mark the tile (red caption and frame).
    pub highlight: bool,
}

/// Draws tiles of `height × width` images in a grid with captions into a PNG.
pub fn image_grid(
    path: &Path,
    title: &str,
    tiles: &[Tile],
    height: usize,
    width: usize,
) -> Result<(u32, u32)> {
    register_font();
    let cols = (tiles.len() as f64).sqrt().ceil().max(1.0) as usize;
    let rows = tiles.len().div_ceil(cols).max(1);
    let cell = 150u32;
    let caption_h = 40u32;
    let title_h = 40u32;
    let (w, h) = (
        cols as u32 * cell,
        title_h + rows as u32 * (cell + caption_h),
    );
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        root.draw_text(title, &(FAMILY, 22).into_font().color(&BLACK), (10, 8))
            .map_err(draw_err)?;
        let scale = ((cell - 16) as usize / height.max(width)).max(1) as i32;
        for (k, t) in tiles.iter().enumerate() {
            let (r, c) = (k / cols, k % cols);
            let x0 = c as i32 * cell as i32 + 8;
            let y0 = title_h as i32 + r as i32 * (cell + caption_h) as i32 + 4;
            for i in 0..height {
                for j in 0..width {
                    let v = t
                        .pixels
                        .get(i * width + j)
                        .copied()
                        .unwrap_or(0.0)
                        .clamp(0.0, 1.0);
                    let g = (255.0 * (1.0 - v)) as u8;
                    let (px, py) = (x0 + j as i32 * scale, y0 + i as i32 * scale);
                    root.draw(&Rectangle::new(
                        [(px, py), (px + scale, py + scale)],
                        RGBColor(g, g, g).filled(),
                    ))
                    .map_err(draw_err)?;
                }
            }
            let color = if t.highlight {
                RGBColor(214, 39, 40)
            } else {
                BLACK
            };
            if t.highlight {
                let (x1, y1) = (x0 + width as i32 * scale, y0 + height as i32 * scale);
                root.draw(&Rectangle::new(
                    [(x0 - 2, y0 - 2), (x1 + 2, y1 + 2)],
                    color.stroke_width(2),
                ))
                .map_err(draw_err)?;
            }
            let ty = y0 + height as i32 * scale + 4;
            root.draw_text(
                &t.caption,
                &(FAMILY, 14).into_font().color(&color),
                (x0, ty),
            )
            .map_err(draw_err)?;
            root.draw_text(
                &t.detail,
                &(FAMILY, 12).into_font().color(&color),
                (x0, ty + 17),
            )
            .map_err(draw_err)?;
        }
        root.present().map_err(draw_err)?;
    }
    save_png(path, &buf, w, h)?;
    Ok((w, h))
}

/// Ticks without trailing zeros: `2` not `2.0`, `0.05`, `1e-4` for tiny values.
fn format_tick(v: f64) -> String {
    // A tick that is zero up to rounding (−1e-17) reads as 0.
    if v.abs() < 1e-12 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.0e}");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
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
