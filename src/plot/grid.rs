//! Image grids: each image drawn as it is (0 black, 1 white) with a one-line caption, green
//! when the prediction is right and red when it is wrong.

use super::{draw_err, register_font, save_png, FAMILY};
use anyhow::Result;
use plotters::prelude::*;
use std::path::Path;

/// One image of a grid: grayscale pixels in [0, 1] and its caption.
pub struct Tile<'a> {
    /// Row-major pixels in [0, 1].
    pub pixels: &'a [f32],
    /// The line under the image, e.g. `pred 7 · true 7 · 98%`.
    pub caption: String,
    /// A wrong prediction: red caption and frame (green caption otherwise).
    pub wrong: bool,
}

const GREEN: RGBColor = RGBColor(0, 128, 0);
const RED: RGBColor = RGBColor(214, 39, 40);
/// Caption font size: legible when the PNG is shown at its own size, whatever the tile count.
const CAPTION_PX: u32 = 16;

/// Draws `height × width` images in a grid with captions into a PNG; returns its size. Columns
/// are as wide as the longest caption, so captions never overlap.
pub fn image_grid(
    path: &Path,
    title: &str,
    tiles: &[Tile],
    height: usize,
    width: usize,
) -> Result<(u32, u32)> {
    register_font();
    let font = (FAMILY, CAPTION_PX).into_font();
    let text_w = |t: &str| font.box_size(t).map(|(w, _)| w).unwrap_or(0);
    let image = 134u32;
    let lines: Vec<Vec<String>> = tiles
        .iter()
        .map(|t| wrap(&t.caption, image + 16, text_w))
        .collect();
    let caption_w = lines.iter().flatten().map(|l| text_w(l)).max().unwrap_or(0);
    let line_h = CAPTION_PX + 4;
    let caption_h = lines.iter().map(Vec::len).max().unwrap_or(1) as u32 * line_h;
    let cell_w = image.max(caption_w) + 24;
    let cell_h = image + 8 + caption_h + 12;
    let cols = (tiles.len() as f64).sqrt().ceil().max(1.0) as usize;
    let rows = tiles.len().div_ceil(cols).max(1);
    let title_h = 40u32;
    let title_font = (FAMILY, 22).into_font();
    let title_w = title_font.box_size(title).map(|(w, _)| w).unwrap_or(0) + 20;
    let w = (cols as u32 * cell_w).max(title_w).max(300);
    let h = title_h + rows as u32 * cell_h;
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        root.draw_text(title, &title_font.color(&BLACK), (10, 8))
            .map_err(draw_err)?;
        let scale = (image as usize / height.max(width).max(1)).max(1) as i32;
        for (k, t) in tiles.iter().enumerate() {
            let (r, c) = (k / cols, k % cols);
            let x0 = c as i32 * cell_w as i32 + 8;
            let y0 = title_h as i32 + r as i32 * cell_h as i32 + 4;
            for i in 0..height {
                for j in 0..width {
                    let v = t.pixels.get(i * width + j).copied().unwrap_or(0.0);
                    let g = (255.0 * v.clamp(0.0, 1.0)).round() as u8;
                    let (px, py) = (x0 + j as i32 * scale, y0 + i as i32 * scale);
                    root.draw(&Rectangle::new(
                        [(px, py), (px + scale, py + scale)],
                        RGBColor(g, g, g).filled(),
                    ))
                    .map_err(draw_err)?;
                }
            }
            let color = if t.wrong { RED } else { GREEN };
            if t.wrong {
                let (x1, y1) = (x0 + width as i32 * scale, y0 + height as i32 * scale);
                root.draw(&Rectangle::new(
                    [(x0 - 3, y0 - 3), (x1 + 3, y1 + 3)],
                    color.stroke_width(3),
                ))
                .map_err(draw_err)?;
            }
            let ty = y0 + height as i32 * scale + 6;
            for (i, line) in lines[k].iter().enumerate() {
                let y = ty + (i as u32 * line_h) as i32;
                root.draw_text(line, &font.color(&color), (x0, y))
                    .map_err(draw_err)?;
            }
        }
        root.present().map_err(draw_err)?;
    }
    save_png(path, &buf, w, h)?;
    Ok((w, h))
}

/// Breaks a caption at its ` · ` separators into lines no wider than `limit` pixels (a part
/// wider than that gets a line of its own), so long class names do not widen every column.
fn wrap(caption: &str, limit: u32, width: impl Fn(&str) -> u32) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for part in caption.split(" · ") {
        match lines.last_mut() {
            Some(line) if width(&format!("{line} · {part}")) <= limit => {
                line.push_str(" · ");
                line.push_str(part);
            }
            _ => lines.push(part.to_string()),
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn captions_wrap_at_separators_only_when_too_wide() {
        let chars = |s: &str| s.chars().count() as u32;
        assert_eq!(
            wrap("pred 7 · true 7 · 98%", 30, chars),
            ["pred 7 · true 7 · 98%"]
        );
        assert_eq!(
            wrap("pred Ankle boot · true Sneaker · 42%", 24, chars),
            ["pred Ankle boot", "true Sneaker · 42%"]
        );
        assert_eq!(wrap("a · b", 1, chars), ["a", "b"]);
    }
}
