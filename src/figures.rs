//! The figures a training run leaves: its curves (loss, accuracy, test metrics, learning rate,
//! the overfitting gap), the grid of sample predictions, and the sharpness through training.

use crate::analysis::curvature::{CurvaturePoint, Momentum};
use crate::artifacts::GridOptions;
use crate::data::Dataset;
use crate::nn::Mlp;
use crate::plot::{self, Chart, Series, Tile};
use crate::predict::predict_features;
use crate::train::{EpochMetrics, Results};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Said on every chart that would show validation metrics when there is no validation set.
pub const NO_VALIDATION: &str = "no validation set (--val-fraction 0)";

fn column(results: &Results, f: impl Fn(&EpochMetrics) -> f64) -> Vec<f64> {
    results.epochs.iter().map(f).collect()
}

/// One per-run chart of curves against the epoch.
struct Curves {
    title: &'static str,
    y_label: &'static str,
    note: Option<&'static str>,
    series: Vec<Series>,
}

/// Writes the six per-run plots to `paths` (in [`crate::artifacts::PLOTS`] order).
pub fn write_run_plots(r: &Results, paths: &[PathBuf]) -> Result<()> {
    let what = format!("{} on {}", r.config.activation, r.config.dataset);
    let no_val = (r.sizes.val == 0).then_some(NO_VALIDATION);
    let by_epoch = |name, f: fn(&EpochMetrics) -> f64| Series::by_epoch(name, &column(r, f));
    let curves = [
        Curves {
            title: "Loss",
            y_label: "mean cross-entropy (nats)",
            note: no_val,
            series: vec![
                by_epoch("train", |m| m.train_loss),
                by_epoch("validation", |m| m.val_loss),
            ],
        },
        Curves {
            title: "Accuracy",
            y_label: "accuracy (fraction correct)",
            note: no_val,
            series: vec![
                by_epoch("train", |m| m.train_accuracy),
                by_epoch("validation", |m| m.val_accuracy),
            ],
        },
        Curves {
            title: "Test loss",
            y_label: "mean cross-entropy (nats)",
            note: None,
            series: vec![by_epoch("test", |m| m.test_loss)],
        },
        Curves {
            title: "Test accuracy",
            y_label: "accuracy (fraction correct)",
            note: None,
            series: vec![by_epoch("test", |m| m.test_accuracy)],
        },
        Curves {
            title: "Learning rate",
            y_label: "learning rate",
            note: None,
            series: vec![by_epoch("learning rate", |m| m.lr)],
        },
    ];
    for (c, path) in curves.iter().zip(paths) {
        let title = format!("{}, {what}", c.title);
        plot::line_chart(
            path,
            &Chart {
                title: &title,
                x_label: "epoch",
                y_label: c.y_label,
                x_integer: true,
                note: c.note,
                ..Chart::default()
            },
            &c.series,
        )?;
    }
    if let Some(path) = paths.get(curves.len()) {
        write_gap_plot(r, &what, path)?;
    }
    Ok(())
}

/// The overfitting gap in two panels, each with its own unit: accuracy in percentage points
/// and loss in nats.
fn write_gap_plot(r: &Results, what: &str, path: &Path) -> Result<()> {
    let no_val = (r.sizes.val == 0).then_some(NO_VALIDATION);
    let acc_title = format!("Overfitting gap, {what}: train − validation accuracy");
    let loss_title = format!("Overfitting gap, {what}: validation − train loss");
    let chart = |title, y_label| Chart {
        title,
        x_label: "epoch",
        y_label,
        x_integer: true,
        note: no_val,
        ..Chart::default()
    };
    plot::panels(
        path,
        &[
            (
                chart(&acc_title, "percentage points"),
                vec![Series::by_epoch(
                    "train − validation accuracy",
                    &column(r, |m| 100.0 * (m.train_accuracy - m.val_accuracy)),
                )],
            ),
            (
                chart(&loss_title, "nats (mean cross-entropy)"),
                vec![Series::by_epoch(
                    "validation − train loss",
                    &column(r, |m| m.val_loss - m.train_loss),
                )],
            ),
        ],
    )
}

/// Draws test images with their predicted and true labels and the predicted class's
/// probability (right in green, wrong in red) into a PNG at `path`; returns its size.
pub fn write_prediction_grid(
    model: &Mlp<f32>,
    test: &Dataset,
    grid: GridOptions,
    path: &Path,
    tag: &str,
) -> Result<(u32, u32)> {
    let (predicted, probabilities) = predict_features(model, &test.features);
    let wrong = |i: &usize| predicted[*i] != test.labels[*i];
    let chosen: Vec<usize> = if grid.mistakes_only {
        (0..test.len()).filter(wrong).take(grid.count).collect()
    } else {
        (0..test.len().min(grid.count.max(1))).collect()
    };
    let tiles: Vec<Tile> = chosen
        .iter()
        .map(|&i| Tile {
            pixels: test.features.row(i).to_slice().unwrap_or(&[]),
            caption: format!(
                "pred {} · true {} · {:.0}%",
                test.classes[predicted[i]],
                test.classes[test.labels[i]],
                100.0 * probabilities[[i, predicted[i]]]
            ),
            wrong: wrong(&i),
        })
        .collect();
    let title = if grid.mistakes_only {
        let all_wrong = (0..test.len()).filter(wrong).count();
        format!(
            "Mistakes, {tag}: {} of the {all_wrong} wrong predictions on {} test images",
            tiles.len(),
            test.len()
        )
    } else {
        let n_wrong = tiles.iter().filter(|t| t.wrong).count();
        format!(
            "Predictions, {tag}: {n_wrong} of {} wrong (red), right in green",
            tiles.len()
        )
    };
    plot::image_grid(path, &title, &tiles, test.height, test.width)
}

/// `plots/sharpness_<tag>.png`: the Hessian's largest eigenvalue at each tracked point against
/// the optimizer step, on a log axis, with the optimizer's stability threshold
/// ([`Momentum::threshold`]: `2/η`, `2(1+μ)/η` with heavy-ball momentum `μ`, or Nesterov's) at the learning
/// rate of each point, so that it follows the schedule; the Gauss–Newton matrix's largest
/// eigenvalue too where it was measured. `what` names the run in the title. `momentum` is
/// `None` for an optimizer without such a threshold (Adam): then no threshold is drawn.
pub fn write_sharpness_plot(
    path: &Path,
    points: &[CurvaturePoint],
    momentum: Option<Momentum>,
    what: &str,
) -> Result<()> {
    let series = |name: &str, f: &dyn Fn(&CurvaturePoint) -> Option<f64>| Series {
        name: name.into(),
        points: points
            .iter()
            .filter_map(|p| f(p).map(|y| (p.step as f64, y)))
            .collect(),
    };
    let mut lines = Vec::new();
    if let Some(momentum) = momentum {
        let threshold = format!("stability threshold {}", momentum.label());
        lines.push(series(&threshold, &|p| Some(momentum.threshold(p.lr))));
    }
    // The Gauss–Newton line first, so that the Hessian's, drawn over it, stays visible where
    // the two agree.
    if points.iter().any(|p| p.ggn_lambda_max.is_some()) {
        lines.push(series("λ_max (Gauss–Newton)", &|p| p.ggn_lambda_max));
    }
    lines.push(series("λ_max (Hessian)", &|p| Some(p.lambda_max)));
    plot::line_chart(
        path,
        &Chart {
            title: &format!("Sharpness through training, {what}"),
            x_label: "optimizer step",
            y_label: "largest eigenvalue (log scale)",
            y_log: true,
            ..Chart::default()
        },
        &lines,
    )
}

/// `plots/compare_<metric>_<ds>.png` for each curve of runs on one dataset (`compare`): one
/// line per run, named by its activation.
pub fn write_compare_plots(
    runs: &[Results],
    out: &Path,
    dataset: crate::data::DatasetName,
) -> Result<()> {
    type Metric = fn(&EpochMetrics) -> f64;
    let metrics: [(&str, &str, Metric); 5] = [
        ("train_loss", "training loss", |m| m.train_loss),
        ("val_loss", "validation loss", |m| m.val_loss),
        ("train_accuracy", "training accuracy", |m| m.train_accuracy),
        ("val_accuracy", "validation accuracy", |m| m.val_accuracy),
        ("test_accuracy", "test accuracy", |m| m.test_accuracy),
    ];
    let no_validation = runs.iter().any(|r| r.config.val_fraction == 0.0);
    for (key, label, f) in metrics {
        let series: Vec<Series> = runs
            .iter()
            .map(|r| {
                Series::by_epoch(
                    r.config.activation.as_str(),
                    &r.epochs.iter().map(f).collect::<Vec<_>>(),
                )
            })
            .collect();
        let path = out
            .join("plots")
            .join(format!("compare_{key}_{dataset}.png"));
        plot::line_chart(
            &path,
            &Chart {
                title: &format!("ReLU vs Tanh on {dataset}: {label}"),
                x_label: "epoch",
                y_label: label,
                x_integer: true,
                note: (key.starts_with("val") && no_validation).then_some(NO_VALIDATION),
                ..Chart::default()
            },
            &series,
        )?;
    }
    Ok(())
}
