//! What a user meets on the command line (issue 15): the prompt, flags that mean the same
//! everywhere, one-line usage errors, predict's dataset check, the persistent data root,
//! progress off a terminal, and what the JSON outputs carry.

mod common;

use common::{bin, run, temp_dir};
use ferrograd::data::{idx, DatasetName};
use ferrograd::prompt::{ask_dataset, parse_choice};
use std::io::Cursor;
use std::path::Path;
use std::process::{Command, Output};

/// A usage error: exit code 2, one line on standard error.
fn usage_error(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error:"), "{err}");
    err
}

/// A run that failed (exit code 1) with its error as the last line of standard error (a
/// download's attempt, or where the data came from, may come before it).
fn failure(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let last = err.lines().last().unwrap_or("").to_string();
    assert!(last.starts_with("error:"), "{err}");
    last
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

/// A small digits model in `out` (1 epoch, hidden 16).
fn small_digits_run(out: &Path, extra: &[&str]) -> Output {
    run(bin()
        .args([
            "train",
            "--dataset",
            "digits",
            "--epochs",
            "3",
            "--hidden",
            "16",
        ])
        .args(extra)
        .arg("--out")
        .arg(out))
}

// Item 8: the prompt.

#[test]
fn the_prompt_asks_again_after_wrong_answers_and_takes_numbers_or_names() {
    let mut out = Vec::new();
    let answer = ask_dataset(&mut Cursor::new("7\nimagenet\n0\n2\n"), &mut out, |_| {
        "found".into()
    })
    .unwrap();
    assert_eq!(answer, DatasetName::Fashion);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.matches("is not a choice").count(), 3, "{text}");
    assert!(text.contains("number from 1 to 4"), "{text}");
    assert_eq!(text.matches("number 1–4 or name").count(), 4, "{text}");

    let mut out = Vec::new();
    let by_name = ask_dataset(&mut Cursor::new("x\nCIFAR10\n"), &mut out, |_| "".into());
    assert_eq!(by_name.unwrap(), DatasetName::Cifar10);
    // The end of input ends the questions with an error instead of looping.
    let eof = ask_dataset(&mut Cursor::new("nope\n"), &mut Vec::new(), |_| "".into());
    assert!(format!("{:#}", eof.unwrap_err()).contains("--dataset"));

    assert_eq!(parse_choice(""), Some(DatasetName::Digits));
    assert_eq!(parse_choice(" 1 "), Some(DatasetName::Mnist));
    assert_eq!(parse_choice("5"), None);
    assert_eq!(parse_choice("fashion-mnist"), Some(DatasetName::Fashion));
}

// Item 9: flags.

#[test]
fn show_examples_and_mistakes_are_accepted_by_train_compare_and_predict() {
    let out = temp_dir("show-examples");
    small_digits_run(&out, &["--show-examples", "5", "--mistakes"]);
    let grid = out.join("predicted_images/sample_predictions_relu_digits.png");
    assert!(grid.is_file());
    // The old spelling still works; predict takes both.
    small_digits_run(&out, &["--examples", "4"]);
    for flag in ["--show-examples", "--examples"] {
        run(bin()
            .args(["predict", flag, "9", "--mistakes", "--out"])
            .arg(&out));
    }
    let help = run(bin().args(["compare", "--help"]));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--show-examples"));
}

#[test]
fn compare_rejects_the_flags_it_cannot_honour_and_does_not_list_them() {
    let help = run(bin().args(["compare", "--help"]));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(!text.contains("--activation"), "{text}");
    assert!(!text.contains("--resume"), "{text}");
    for flag in [&["--activation", "sigmoid"][..], &["--resume"]] {
        let o = bin()
            .args(["compare", "--dataset", "digits"])
            .args(flag)
            .output()
            .unwrap();
        let err = usage_error(&o);
        assert!(err.contains(flag[0]), "{err}");
    }
    let help = run(bin().args(["train", "--help"]));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("--activation") && text.contains("--resume"));
}

#[test]
fn negative_numbers_get_the_validators_message_on_one_line() {
    for (args, expected) in [
        (&["--lr", "-1"][..], "must be a positive number, got -1"),
        (&["--lr=-1"], "must be a positive number, got -1"),
        (
            &["--momentum", "-0.5"],
            "--momentum must be in [0, 1), got -0.5",
        ),
        (
            &["--weight-decay", "-1e-3"],
            "--weight-decay must be a number ≥ 0, got -0.001",
        ),
        (&["--epochs", "-3"], "-3"),
    ] {
        let o = bin()
            .args(["train", "--dataset", "digits"])
            .args(args)
            .output()
            .unwrap();
        let err = usage_error(&o);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("unexpected argument"), "{args:?}: {err}");
    }
    for args in [
        &["analyze", "hessian", "--tol", "-1"][..],
        &["analyze", "hessian", "--top-k", "-2"],
        &["predict", "--show-examples", "-3"],
        &["analyze", "performance", "--epochs", "-1"],
        &["analyze", "scaling", "--steps", "-1"],
        &["gradcheck", "--seed", "-1"],
    ] {
        let err = usage_error(&bin().args(args).output().unwrap());
        assert!(err.contains("invalid value"), "{args:?}: {err}");
    }
}

#[test]
fn every_usage_error_is_one_line() {
    for args in [
        &["train", "--no-such-flag"][..],
        &["train", "--dataset"],
        &["predict", "--show-examples", "0"],
        &["frobnicate"],
        &["analyze", "hessian", "--top-k", "many"],
    ] {
        let err = usage_error(&bin().args(args).output().unwrap());
        assert!(err.contains("--help"), "{args:?}: {err}");
    }
    // Help itself still prints in full, successfully.
    let help = run(bin().args(["train", "--help"]));
    assert!(String::from_utf8_lossy(&help.stdout).lines().count() > 20);
}

// Item 10: predict and datasets.

#[test]
fn predict_refuses_a_dataset_the_model_was_not_trained_on() {
    let out = temp_dir("mismatch");
    small_digits_run(&out, &[]);
    let model = out.join("models/model_relu_digits.msgpack");
    let o = bin()
        .args(["predict", "--dataset", "fashion", "--model"])
        .arg(&model)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = common::one_line_error(&o);
    assert!(
        err.contains("trained on digits") && err.contains("fashion"),
        "{err}"
    );
    assert!(err.contains("--allow-dataset-mismatch"), "{err}");
    let grids: Vec<_> = std::fs::read_dir(out.join("predicted_images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(grids, vec!["sample_predictions_relu_digits.png"]);
    // Asked explicitly, it goes on to the real obstacles (0..16 digits against 8-bit pixels,
    // refused before any download; then 64 inputs against 784 pixels) and never reaches a
    // tensor shape panic.
    let o = bin()
        .args([
            "predict",
            "--dataset",
            "mnist",
            "--allow-dataset-mismatch",
            "--model",
        ])
        .arg(&model)
        .env("FERROGRAD_MIRROR", "http://127.0.0.1:9")
        .env("FERROGRAD_DATA", out.join("no-data"))
        .current_dir(&out)
        .output()
        .unwrap();
    let err = failure(&o);
    assert!(!err.contains("trained on digits"), "{err}");
}

// Item 11: the data root.

fn write_tiny_mnist(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (prefix, n) in [("train", 60), ("t10k", 20)] {
        let pixels: Vec<u8> = (0..n * 28 * 28).map(|i| (i * 7 % 256) as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        std::fs::write(
            dir.join(format!("{prefix}-images-idx3-ubyte")),
            idx::encode(&[n, 28, 28], &pixels),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{prefix}-labels-idx1-ubyte")),
            idx::encode(&[n], &labels),
        )
        .unwrap();
    }
}

/// A command run from an empty folder with no data of its own: downloads go nowhere.
fn isolated(work: &Path, home: &Path) -> Command {
    let mut c = bin();
    c.current_dir(work)
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME")
        .env_remove("FERROGRAD_DATA")
        .env("FERROGRAD_MIRROR", "http://127.0.0.1:9");
    c
}

#[test]
fn data_found_through_ferrograd_data_is_found_again_by_every_command() {
    let root = temp_dir("data-root");
    let (data, work, home) = (root.join("store"), root.join("work"), root.join("home"));
    write_tiny_mnist(&data.join("mnist"));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let train = run(isolated(&work, &home).env("FERROGRAD_DATA", &data).args([
        "train",
        "--dataset",
        "mnist",
        "--epochs",
        "1",
        "--hidden",
        "4",
    ]));
    let err = String::from_utf8_lossy(&train.stderr);
    assert!(
        err.contains(&format!(
            "data: mnist from {}",
            data.join("mnist").display()
        )),
        "{err}"
    );
    // predict and analyze hessian find it again without --data-dir...
    run(isolated(&work, &home)
        .env("FERROGRAD_DATA", &data)
        .args(["predict", "--json"]));
    run(isolated(&work, &home).env("FERROGRAD_DATA", &data).args([
        "analyze",
        "hessian",
        "--samples",
        "10",
        "--top-k",
        "2",
        "--iters",
        "10",
    ]));
    // ...and without it (or a copy in a known folder) they fail, naming the variable.
    let o = isolated(&work, &home).args(["predict"]).output().unwrap();
    let err = failure(&o);
    assert!(err.contains("FERROGRAD_DATA"), "{err}");
    // The per-user folder is a known folder.
    write_tiny_mnist(&home.join(".local/share/ferrograd/mnist"));
    let p = run(isolated(&work, &home).args(["predict"]));
    let err = String::from_utf8_lossy(&p.stderr);
    assert!(err.contains(".local/share/ferrograd/mnist"), "{err}");
}

// Item 12: progress of analyze performance.

#[test]
fn analyze_performance_off_a_terminal_prints_no_progress_only_its_report() {
    let o = run(bin().args([
        "analyze",
        "performance",
        "--dataset",
        "digits",
        "--epochs",
        "2",
        "--hidden",
        "8",
        "--json",
    ]));
    let report = json(&o.stdout);
    assert_eq!(report["epoch_seconds"].as_array().unwrap().len(), 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains('\r') && !err.contains("timed epoch"),
        "{err:?}"
    );
}

/// The GEMM's own thread count is the one reported beside the peak and the speedup: with
/// `OPENBLAS_NUM_THREADS=1` and no `--threads`, rayon has the machine's threads but OpenBLAS
/// one, and the report says so instead of a two-core peak and a missing speedup.
#[test]
fn analyze_performance_reports_the_gemm_threads_openblas_really_has() {
    let args = [
        "analyze",
        "performance",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--hidden",
        "8",
    ];
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (env, threads) in [(Some("1"), None), (None, Some("2"))] {
        let mut c = bin();
        c.env_remove("OMP_NUM_THREADS")
            .env_remove("OPENBLAS_NUM_THREADS");
        if let Some(v) = env {
            c.env("OPENBLAS_NUM_THREADS", v);
        }
        if let Some(t) = threads {
            c.args(["--threads", t]);
        }
        let j = c.args(args).arg("--json");
        let r = json(&run(j).stdout);
        let gemm_threads = if cfg!(feature = "openblas") && env.is_none() {
            2
        } else {
            1
        };
        assert_eq!(r["blas_threads"], gemm_threads, "{env:?} {threads:?}");
        assert_eq!(r["cpu_peak"]["cores"], gemm_threads.min(cores), "{env:?}");
        let speedups = r["gemm_thread_speedups"].as_array().unwrap();
        if gemm_threads == 2 {
            assert!(r["gemm_thread_speedup"].as_f64().unwrap() > 0.0);
            assert_eq!(speedups.len(), 1);
        } else {
            assert!(r["gemm_thread_speedup"].is_null() && speedups.is_empty());
        }
    }
    if cfg!(feature = "openblas") {
        let mut c = bin();
        c.env_remove("OMP_NUM_THREADS")
            .env("OPENBLAS_NUM_THREADS", "1");
        let text = String::from_utf8_lossy(&run(c.args(args)).stdout).into_owned();
        assert!(text.contains("(OpenBLAS: 1)"), "{text}");
        assert!(text.contains("OpenBLAS runs on one thread"), "{text}");
    }
}

/// Training records one thread count and resumes are checked against it, while one OpenBLAS
/// thread changes the arithmetic (the fused weight update): `OPENBLAS_NUM_THREADS=1` without
/// `--threads` must not train another model under the same recorded settings. Found from
/// outside: it did, and a run killed under the variable resumed without it.
#[test]
fn training_runs_openblas_on_the_threads_it_records() {
    let dir = temp_dir("blas-env");
    let model = |env: Option<&str>| {
        let mut c = bin();
        c.env_remove("OMP_NUM_THREADS")
            .env_remove("OPENBLAS_NUM_THREADS");
        if let Some(v) = env {
            c.env("OPENBLAS_NUM_THREADS", v);
        }
        let out = dir.join(env.unwrap_or("none"));
        let o = run(c
            .args(["train", "--dataset", "digits", "--epochs", "1", "--out"])
            .arg(&out));
        let note = String::from_utf8_lossy(&o.stderr).contains("note: OpenBLAS had 1 thread(s)");
        let bytes = std::fs::read(out.join("models/model_relu_digits.msgpack")).unwrap();
        (bytes, note)
    };
    let (plain, plain_note) = model(None);
    let (env, env_note) = model(Some("1"));
    assert!(!plain_note);
    let multi = std::thread::available_parallelism().map_or(1, |n| n.get()) > 1;
    assert_eq!(env_note, cfg!(feature = "openblas") && multi);
    assert!(plain == env, "OPENBLAS_NUM_THREADS=1 trained another model");
}

#[test]
fn analyze_performance_on_a_terminal_draws_its_progress_bar_then_the_report() {
    // util-linux's `script` runs the command on a pseudo-terminal (Debian's bsdutils, which is
    // essential, so every machine the CI runs on has it).
    let command = format!(
        "{} analyze performance --dataset digits --epochs 3 --hidden 8 --threads 1",
        bin().get_program().to_string_lossy()
    );
    let o = run(Command::new("script").args(["-qec", &command, "/dev/null"]));
    let tty = String::from_utf8_lossy(&o.stdout);
    for epoch in 1..=3 {
        assert!(
            tty.contains(&format!("timed epoch {epoch}/3 (each system)")),
            "{tty:?}"
        );
    }
    // The bar is cleared (carriage return, erase line) before the report is printed.
    let cleared = tty.rfind("\r\u{1b}[2K").expect("the bar is erased");
    let report = tty.find("epoch (median of 3)").expect("the report follows");
    assert!(cleared < report, "{tty:?}");
}

// Item 13: JSON.

#[test]
fn results_json_has_timestamp_best_epoch_and_per_class_accuracy() {
    let out = temp_dir("json-results");
    small_digits_run(&out, &[]);
    let r = json(&std::fs::read(out.join("results/results_relu_digits.json")).unwrap());
    let t = r["timestamp"].as_str().unwrap();
    let when = humantime::parse_rfc3339(t).unwrap();
    assert!(when.elapsed().unwrap().as_secs() < 600, "{t}");
    let epochs = r["epochs"].as_array().unwrap();
    let val: Vec<f64> = epochs
        .iter()
        .map(|e| e["val_accuracy"].as_f64().unwrap())
        .collect();
    let best = r["best_epoch"].as_u64().unwrap() as usize;
    assert!(val.iter().all(|&v| v <= val[best - 1]), "{val:?} {best}");
    assert_eq!(val.iter().position(|&v| v == val[best - 1]), Some(best - 1));
    let per_class: Vec<f64> = r["final"]["per_class_accuracy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(per_class.len(), 10);

    // predict --json: the same per-class figures, and what was scored and written.
    let p = json(&run(bin().args(["predict", "--json", "--out"]).arg(&out)).stdout);
    assert_eq!(p["per_class_accuracy"], r["final"]["per_class_accuracy"]);
    assert_eq!(p["accuracy"], r["final"]["test_accuracy"]);
    assert!(p["model"]
        .as_str()
        .unwrap()
        .ends_with("model_relu_digits.msgpack"));
    assert_eq!(p["dataset"], "digits");
    assert_eq!(p["classes"].as_array().unwrap().len(), 10);
    assert!(Path::new(p["grid"].as_str().unwrap()).is_file());

    // Without validation there is no best epoch.
    let out0 = temp_dir("json-noval");
    small_digits_run(&out0, &["--val-fraction", "0"]);
    let r0 = json(&std::fs::read(out0.join("results/results_relu_digits.json")).unwrap());
    assert!(r0["best_epoch"].is_null());
}

#[test]
fn scaling_json_carries_the_build() {
    let out = temp_dir("scaling");
    let o = run(bin()
        .args([
            "analyze",
            "scaling",
            "--steps",
            "1",
            "--threads-list",
            "1",
            "--json",
            "--out",
        ])
        .arg(&out));
    let r = json(&o.stdout);
    assert!(r["build"]["commit"].is_string() && r["build"]["blas"].is_string());
    assert!(r["build"]["target_features"].is_string());
    let file = std::fs::read_dir(out.join("results"))
        .unwrap()
        .next()
        .unwrap();
    assert_eq!(
        json(&std::fs::read(file.unwrap().path()).unwrap())["build"],
        r["build"]
    );
}

// Item 6: the Hessian computes what is asked.

#[test]
fn analyze_hessian_computes_only_what_is_asked() {
    let out = temp_dir("hessian-ask");
    small_digits_run(&out, &[]);
    let hessian = |extra: &[&str]| {
        json(
            &run(bin()
                .args([
                    "analyze",
                    "hessian",
                    "--samples",
                    "50",
                    "--top-k",
                    "3",
                    "--json",
                ])
                .args(extra)
                .arg("--out")
                .arg(&out))
            .stdout,
        )
    };
    let plots = out.join("plots");
    let top = hessian(&[]);
    assert!(top["trace"].is_null() && top["density"].is_null());
    assert!(top["timings"]["gradient"].is_null());
    assert_eq!(top["lanczos"]["largest"].as_array().unwrap().len(), 3);
    assert!(plots.join("hessian_top_k_relu_digits.png").is_file());
    assert!(!plots.join("hessian_density_relu_digits.png").exists());

    assert!(top["ggn"].is_null());
    let ggn = hessian(&["--ggn"]);
    let (h, g) = (&ggn["lanczos"]["largest"], &ggn["ggn"]["largest"]);
    assert_eq!(g.as_array().unwrap().len(), 3);
    assert_eq!(
        h, &top["lanczos"]["largest"],
        "--ggn changes the Hessian's values"
    );
    for e in g.as_array().unwrap() {
        let (v, r) = (
            e["value"].as_f64().unwrap(),
            e["residual"].as_f64().unwrap(),
        );
        assert!(
            v > 0.0 && r <= 1e-3 * v,
            "Gauss–Newton eigenvalue {v} residual {r}"
        );
    }

    let traced = hessian(&["--trace", "--probes", "4"]);
    assert_eq!(traced["trace"]["probes"], 4);
    assert!(traced["density"].is_null());

    let all = hessian(&[
        "--all",
        "--probes",
        "4",
        "--slq-runs",
        "1",
        "--slq-steps",
        "8",
    ]);
    assert!(all["density"]["density"].is_array() && all["trace"].is_object());
    assert_eq!(all["lanczos"]["smallest"].as_array().unwrap().len(), 3);
    assert!(all["timings"]["gradient"].is_number());
    assert!(plots.join("hessian_extremes_relu_digits.png").is_file());
    assert!(plots.join("hessian_density_relu_digits.png").is_file());
}

// Item 7: `analyze` alone.

#[test]
fn analyze_alone_runs_all_three_and_first_checks_there_is_a_model() {
    let work = temp_dir("analyze-all");
    for args in [&["analyze"][..], &["analyze", "all"]] {
        let started = std::time::Instant::now();
        let o = bin().args(args).current_dir(&work).output().unwrap();
        let err = common::one_line_error(&o);
        assert!(err.contains("train one first"), "{err}");
        // Refused before any timing starts.
        assert!(started.elapsed().as_secs() < 10);
    }
    let help = run(bin().args(["analyze", "--help"]));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("all") && text.contains("hessian") && text.contains("scaling"));
}
