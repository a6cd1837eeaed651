//! Curvature tracking: the warm-started λ_max agrees with a cold `analyze hessian` on the same
//! model and samples, the warm start cannot hide an eigenvalue that overtook the previous top
//! one, the trace estimate brackets the exact trace, and the sharpness figure is written.

mod common;

use common::temp_dir;
use ferrograd::analysis::curvature::{
    stability_threshold, warm_top_eigen, CurvatureOptions, CurvaturePoint, CurvatureTracker,
    Momentum,
};
use ferrograd::analysis::hessian::{analyze, to_f64, HessianOperator, HessianOptions};
use ferrograd::artifacts::{ModelFile, Normalisation};
use ferrograd::data::{load_digits, DatasetName};
use ferrograd::figures::write_sharpness_plot;
use ferrograd::nn::{Activation, Init, Mlp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Moves every parameter by up to `size`, standing in for a few training steps.
fn nudge(model: &Mlp<f32>, size: f32, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for l in &model.layers {
        for p in [&l.weight, &l.bias] {
            p.update(|mut a| a.mapv_inplace(|x| x + rng.random_range(-size..size)));
        }
    }
}

#[test]
fn warm_tracked_lambda_max_matches_a_cold_analyze_hessian_on_the_saved_model() {
    let (train, _) = load_digits().unwrap();
    let model = Mlp::<f32>::new(&[64, 24, 10], Activation::Tanh, Init::Xavier, 1);
    let options = CurvatureOptions {
        samples: 300,
        ggn: true,
        ..CurvatureOptions::default()
    };
    let mut tracker = CurvatureTracker::new(options.clone(), &train);
    let cold = tracker.measure(&model, 0, 0, 0.05).unwrap();
    nudge(&model, 0.02, 2);
    let warm = tracker.measure(&model, 1, 40, 0.05).unwrap();
    assert_eq!(tracker.history(), &[cold.clone(), warm.clone()][..]);
    for p in [&cold, &warm] {
        assert!(p.residual <= options.tol * p.lambda_max, "{p:?}");
        assert!(p.ggn_residual.unwrap() <= options.tol * p.ggn_lambda_max.unwrap());
        assert!(p.trace.is_none() && p.trace_se.is_none());
    }
    assert!(
        warm.hvps < cold.hvps,
        "the warm start saved nothing: {} vs {} products",
        warm.hvps,
        cold.hvps
    );

    let out = temp_dir("curvature-agree");
    let path = out.join("model.fgm");
    ModelFile::from_mlp(
        &model,
        "digits",
        [train.height, train.width],
        train.classes.clone(),
        Normalisation {
            kind: "digits 0..16".into(),
            divisor: 16.0,
        },
    )
    .save(&path)
    .unwrap();
    let (report, _, _) = analyze(&HessianOptions {
        model: path,
        dataset: Some(DatasetName::Digits),
        data_dir: None,
        samples: options.samples,
        top_k: 1,
        iters: 200,
        tol: 1e-3,
        smallest: false,
        ggn: true,
        trace: false,
        density: false,
        cost: false,
        probes: 2,
        slq_runs: 1,
        slq_steps: 2,
        seed: 9,
        out: out.clone(),
    })
    .unwrap();
    let analysed = report.lanczos.largest[0].value;
    let rel = (warm.lambda_max - analysed).abs() / analysed;
    assert!(
        rel <= 1e-3,
        "tracker {} vs analyze {analysed}",
        warm.lambda_max
    );
    let analysed = report.ggn.unwrap().largest[0].value;
    let rel = (warm.ggn_lambda_max.unwrap() - analysed).abs() / analysed;
    assert!(
        rel <= 1e-3,
        "Gauss–Newton {:?} vs {analysed}",
        warm.ggn_lambda_max
    );
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn a_warm_start_still_finds_an_eigenvalue_that_overtook_the_previous_top_one() {
    // diag(…small…, 5, 10) with the previous top eigenvector that of 5.
    let n = 60;
    let diag: Vec<f64> = (0..n)
        .map(|i| match i {
            58 => 5.0,
            59 => 10.0,
            _ => i as f64 / n as f64,
        })
        .collect();
    let mut apply = |v: &[f64]| v.iter().zip(&diag).map(|(a, d)| a * d).collect::<Vec<_>>();
    let mut previous = vec![0.0; n];
    previous[58] = 1.0;
    let opts = CurvatureOptions::default();
    let mut rng = StdRng::seed_from_u64(1);
    let top = warm_top_eigen(&mut apply, n, Some(&previous), &opts, &mut rng);
    assert!((top.value - 10.0).abs() <= 1e-3 * 10.0, "{}", top.value);
    assert!(
        top.vector[59].abs() > 0.999,
        "eigenvector {:?}",
        &top.vector[58..]
    );
    assert!(top.residual <= 1e-2, "{}", top.residual);
    // The failure the mixing guards against: from the old eigenvector alone Lanczos stops at 5.
    let pure = CurvatureOptions { mix: 0.0, ..opts };
    let stuck = warm_top_eigen(&mut apply, n, Some(&previous), &pure, &mut rng);
    assert_eq!((stuck.value, stuck.products), (5.0, 1));
}

#[test]
fn the_trace_estimate_brackets_the_exact_trace() {
    let (train, _) = load_digits().unwrap();
    let model = Mlp::<f32>::new(&[64, 6, 10], Activation::Sigmoid, Init::Xavier, 3);
    let options = CurvatureOptions {
        samples: 100,
        trace: true,
        probes: 100,
        ..CurvatureOptions::default()
    };
    let mut tracker = CurvatureTracker::new(options, &train);
    let p = tracker.measure(&model, 0, 0, 0.1).unwrap();
    let head = train.head(100);
    let x = head.features.mapv(f64::from);
    let h = HessianOperator::new(&to_f64(&model), &x, &head.labels).dense();
    let exact = h.diag().sum();
    let (trace, se) = (p.trace.unwrap(), p.trace_se.unwrap());
    assert!(
        se > 0.0 && (trace - exact).abs() <= 5.0 * se,
        "{trace} ± {se} vs {exact}"
    );
    assert!(p.hvps >= 100);
}

#[test]
fn a_model_that_does_not_fit_the_samples_is_an_error() {
    let (train, _) = load_digits().unwrap();
    let model = Mlp::<f32>::new(&[10, 4, 10], Activation::Relu, Init::Xavier, 1);
    let mut tracker = CurvatureTracker::new(CurvatureOptions::default(), &train);
    let e = tracker.measure(&model, 0, 0, 0.1).unwrap_err().to_string();
    assert!(e.contains("10 inputs") && e.contains("64 features"), "{e}");
    assert!(tracker.history().is_empty());

    let model = Mlp::<f32>::new(&[64, 4, 10], Activation::Relu, Init::Xavier, 1);
    let mut none = CurvatureTracker::new(
        CurvatureOptions {
            samples: 0,
            ..CurvatureOptions::default()
        },
        &train,
    );
    let e = none.measure(&model, 0, 0, 0.1).unwrap_err().to_string();
    assert!(e.contains("no samples"), "{e}");
}

#[test]
fn a_diverged_model_is_an_error_not_a_nan_point() {
    let (train, _) = load_digits().unwrap();
    let model = Mlp::<f32>::new(&[64, 4, 10], Activation::Tanh, Init::Xavier, 1);
    let mut tracker = CurvatureTracker::new(CurvatureOptions::default(), &train);
    tracker.measure(&model, 0, 0, 0.1).unwrap();
    for bad in [f32::NAN, f32::INFINITY] {
        model.layers[1].bias.update(|mut b| b[0] = bad);
        let e = tracker.measure(&model, 3, 30, 0.1).unwrap_err().to_string();
        assert!(e.contains("diverged") && e.contains("epoch 3"), "{e}");
    }
    assert_eq!(tracker.history().len(), 1);
}

#[test]
fn the_threshold_and_the_sharpness_figure() {
    assert_eq!(stability_threshold(0.1, 0.0), 20.0);
    assert!((stability_threshold(0.1, 0.9) - 38.0).abs() < 1e-12);
    assert_eq!(
        Momentum::HeavyBall(0.9).threshold(0.1),
        stability_threshold(0.1, 0.9)
    );
    // Nesterov: the iteration on a quadratic of curvature λ at exactly the threshold has an
    // eigenvalue −1 (det(M + I) = 0), and just below it both eigenvalues lie inside the unit
    // circle.
    for &(lr, mu) in &[(0.1, 0.9), (0.03, 0.5), (1.0, 0.0)] {
        let l = Momentum::Nesterov(mu).threshold(lr);
        let m = |l: f64| [[1.0 - lr * l * (1.0 + mu), -lr * mu * mu], [l, mu]];
        let a = m(l);
        let det = (a[0][0] + 1.0) * (a[1][1] + 1.0) - a[0][1] * a[1][0];
        assert!(det.abs() < 1e-9, "{lr} {mu}: det(M + I) = {det}");
        let b = m(0.99 * l);
        let (tr, dt) = (b[0][0] + b[1][1], b[0][0] * b[1][1] - b[0][1] * b[1][0]);
        // Both roots of z² − tr z + dt inside the unit circle (Jury's conditions).
        assert!(
            dt.abs() < 1.0 && 1.0 - tr + dt > 0.0 && 1.0 + tr + dt > 0.0,
            "{lr} {mu}"
        );
    }
    let point = |step: usize, lr: f64, lambda: f64| CurvaturePoint {
        epoch: step / 10,
        step,
        lr,
        lambda_max: lambda,
        residual: 1e-3,
        trace: None,
        trace_se: None,
        ggn_lambda_max: Some(lambda * 0.9),
        ggn_residual: Some(1e-3),
        hvps: 5,
        seconds: 0.1,
    };
    let points = [
        point(0, 0.1, 2.0),
        point(10, 0.1, 15.0),
        point(20, 0.05, 30.0),
    ];
    let out = temp_dir("sharpness");
    let path = out.join("sharpness_tanh_digits.png");
    write_sharpness_plot(
        &path,
        &points,
        Some(Momentum::HeavyBall(0.9)),
        "tanh on digits",
    )
    .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 1000 && bytes.starts_with(b"\x89PNG"));
    let json = serde_json::to_value(&points[0]).unwrap();
    assert!(json["trace"].is_null() && json["hvps"] == 5);
    let back: CurvaturePoint = serde_json::from_value(json).unwrap();
    assert_eq!(back, points[0]);
    let _ = std::fs::remove_dir_all(out);
}
